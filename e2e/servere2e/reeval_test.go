package servere2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/reevaljob"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// pushDemo pushes the demo image (Alpine, npm, PyPI and Go packages) to
// the registry as repo:v1 and returns host/repo@digest.
func pushDemo(t *testing.T, r *countingRegistry, repo string) string {
	t.Helper()
	img, err := image.Open(context.Background(), "oci-archive:"+filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"), image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	ref, err := name.ParseReference(r.host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img.Image); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.host + "/" + repo + "@" + dg.String()
}

// osvRecord is an OSV record affecting one package below fixed.
func osvRecord(id, eco, pkg, fixed string) []byte {
	b, _ := json.Marshal(map[string]any{
		"schema_version": "1.6.0", "id": id, "modified": "2026-12-02T00:00:00Z", "published": "2026-12-01T00:00:00Z",
		"summary":  "e2e advisory for " + pkg,
		"severity": []map[string]string{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		"affected": []map[string]any{{
			"package": map[string]string{"ecosystem": eco, "name": pkg},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"fixed": fixed}}}},
		}},
	})
	return b
}

// testVulnDB builds a vulnerability database from the repository's test
// OSV records (real npm and Go advisories).
func testVulnDB(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "osv.db")
	src := []string{filepath.Join(repoRoot, "match", "testdata", "osv", "npm"), filepath.Join(repoRoot, "match", "testdata", "osv", "Go")}
	if _, err := vulndb.Import(context.Background(), p, src, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// scanDoc is a stored scan as GET /api/v1/scans/{id} answers, and a
// bulkhead image JSON report.
type scanDoc struct {
	Packages []inventory.Package `json:"packages"`
	OS       *inventory.OS       `json:"os"`
	Findings []finding.Finding   `json:"findings"`
	DB       *report.DBInfo      `json:"vulnerabilityDB"`
}

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// webhookSink receives the re-evaluation webhook and checks signatures.
type webhookSink struct {
	mu       sync.Mutex
	payloads []reeval.Payload
	badSig   int
}

func (ws *webhookSink) handler(secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if !reeval.Verify(secret, b, r.Header.Get(reeval.SignatureHeader)) {
			ws.badSig++
			http.Error(w, "bad signature", 401)
			return
		}
		var p reeval.Payload
		json.Unmarshal(b, &p)
		ws.payloads = append(ws.payloads, p)
	})
}

// TestReevaluationWithoutPull is the acceptance of re-evaluation: the
// real server pulls and scans an image from the registry; an OSV record
// that affects one of its stored packages is imported through the API;
// the re-evaluation then stores exactly the findings (and database
// information) a fresh `bulkhead image` gives with the same database,
// without one request to the registry, and the change is on
// /api/v1/changes, /metrics and the signed webhook.
func TestReevaluationWithoutPull(t *testing.T) {
	r := registry(t)
	ref := pushDemo(t, r, "e2e/reeval-demo")
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dbPath := testVulnDB(t)
			secret := "webhook-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			sink := &webhookSink{}
			hook := httptest.NewServer(sink.handler([]byte(secret)))
			defer hook.Close()
			p := startServer(t, dsnFor(t, backend), dbPath, "", []string{"BULKHEAD_WEBHOOK_SECRET=" + secret}, "--notify-webhook", hook.URL)

			// Scan by reference: the server pulls.
			var job struct {
				ID     int64  `json:"id"`
				State  string `json:"state"`
				ScanID int64  `json:"scanID"`
			}
			body, _ := json.Marshal(map[string]string{"reference": ref})
			if st, _ := p.api("POST", "/api/v1/scans", "application/json", body, &job); st != 202 {
				t.Fatalf("submit: %d", st)
			}
			waitFor(t, "the scan job", func() bool {
				p.api("GET", "/api/v1/jobs/"+strconv.FormatInt(job.ID, 10), "", nil, &job)
				if job.State == "cancelled" || job.State == "discarded" {
					t.Fatalf("scan job %s", job.State)
				}
				return job.State == "completed"
			})
			var before scanDoc
			p.api("GET", "/api/v1/scans/"+strconv.FormatInt(job.ScanID, 10), "", nil, &before)
			var bb *inventory.Package
			for i := range before.Packages {
				if before.Packages[i].Type == inventory.TypeAPK && before.Packages[i].Name == "busybox" {
					bb = &before.Packages[i]
				}
			}
			if bb == nil || before.OS == nil {
				t.Fatalf("no busybox apk in the stored inventory: %s", asJSON(before.Packages))
			}
			src := bb.SourceName
			if src == "" {
				src = bb.Name
			}
			parts := strings.SplitN(before.OS.VersionID, ".", 3)
			eco := "Alpine:v" + parts[0] + "." + parts[1]
			const advisory = "BULKE2E-2026-0001"
			for _, f := range before.Findings {
				if f.ID == advisory {
					t.Fatal("the advisory is there before the import")
				}
			}

			// Import the advisory and re-evaluate; count the registry.
			pulls := r.requests.Load()
			var imp struct {
				Imported     reevaljob.ImportResult `json:"imported"`
				Reevaluation reevaljob.Job          `json:"reevaluation"`
			}
			if st, _ := p.api("POST", "/api/v1/vulndb/import", "application/json", osvRecord(advisory, eco, src, bb.Version+"9"), &imp); st != 202 {
				t.Fatalf("import: %d", st)
			}
			if imp.Imported.Records != 1 || imp.Imported.Skipped != 0 {
				t.Fatalf("import: %+v", imp.Imported)
			}
			var rj reevaljob.Job
			waitFor(t, "the re-evaluation", func() bool {
				p.api("GET", "/api/v1/reevaluations/"+strconv.FormatInt(imp.Reevaluation.ID, 10), "", nil, &rj)
				if rj.State == "cancelled" || rj.State == "discarded" {
					t.Fatalf("re-evaluation %s: %v", rj.State, rj.Errors)
				}
				return rj.State == "completed"
			})
			if got := r.requests.Load() - pulls; got != 0 {
				t.Errorf("the registry saw %d requests during the import and re-evaluation, want 0", got)
			}
			if rj.Output == nil || !rj.Output.Ran || rj.Output.Summary.Images != 1 || rj.Output.Summary.Appeared < 1 {
				t.Fatalf("re-evaluation output: %s", asJSON(rj.Output))
			}

			// The stored findings are a fresh scan's with the same database.
			var after scanDoc
			p.api("GET", "/api/v1/scans/"+strconv.FormatInt(job.ScanID, 10), "", nil, &after)
			out, err := exec.Command(bulkheadBinary(t), "image", "--quiet", "--format", "json", "--db", dbPath, "--db-max-age", "0",
				"--insecure", "--scanners", "vuln,secret,misconfig", "--temp-dir", t.TempDir(), ref).Output()
			if err != nil && len(out) == 0 {
				t.Fatalf("bulkhead image: %v", err)
			}
			var fresh scanDoc
			if err := json.Unmarshal(out, &fresh); err != nil {
				t.Fatalf("bulkhead image output: %v", err)
			}
			if a, b := asJSON(after.Findings), asJSON(fresh.Findings); a != b {
				t.Errorf("re-evaluated findings differ from a fresh bulkhead image:\nserver: %s\nfresh: %s", a, b)
			}
			if a, b := asJSON(after.DB), asJSON(fresh.DB); a != b {
				t.Errorf("database information: server %s, fresh %s", a, b)
			}
			found := false
			for _, f := range after.Findings {
				found = found || f.ID == advisory
			}
			if !found {
				t.Errorf("the imported advisory is not among the stored findings")
			}

			// The change is on the API, the metrics and the webhook.
			var changes []store.Change
			p.api("GET", "/api/v1/changes?since="+url0(before), "", nil, &changes)
			if !hasChange(changes, advisory, reeval.Appeared) {
				t.Errorf("/api/v1/changes has no appearance of %s: %s", advisory, asJSON(changes))
			}
			metrics := p.metrics()
			for _, want := range []string{"bulkhead_reeval_runs_total 1", "bulkhead_reeval_images_total 1"} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			waitFor(t, "the webhook", func() bool {
				sink.mu.Lock()
				defer sink.mu.Unlock()
				return len(sink.payloads) > 0 || sink.badSig > 0
			})
			sink.mu.Lock()
			if sink.badSig > 0 || !hasChange(sink.payloads[0].Changes, advisory, reeval.Appeared) {
				t.Errorf("webhook: %d bad signatures, payload %s", sink.badSig, asJSON(sink.payloads))
			}
			sink.mu.Unlock()
			if strings.Contains(p.logs.String(), secret) {
				t.Error("the webhook secret is in the server's log")
			}
		})
	}
}

// url0 is a since parameter before any change of the test.
func url0(scanDoc) string { return "2000-01-01T00:00:00Z" }

func hasChange(cs []store.Change, id, kind string) bool {
	for _, c := range cs {
		if c.Finding.ID == id && c.Kind == kind {
			return true
		}
	}
	return false
}

// metrics reads /metrics.
func (p *serverProc) metrics() string {
	req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
