package harborscan_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
	"github.com/bulkhead-sec/bulkhead/server/harbor/harbortest"
	"github.com/bulkhead-sec/bulkhead/server/harborscan"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const adminToken = "bkh_test-bootstrap-admin-token-0123456789"

var (
	matcherOnce sync.Once
	matcher     *pipeline.Matcher
	matcherErr  error
	matcherDir  string
)

// sharedMatcher is the bundled snapshot's database, built once.
func sharedMatcher(t *testing.T) *pipeline.Matcher {
	t.Helper()
	matcherOnce.Do(func() {
		matcherDir, matcherErr = os.MkdirTemp("", "harborscan-test-")
		if matcherErr == nil {
			matcher, matcherErr = pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(matcherDir, "osv.db")})
		}
	})
	if matcherErr != nil {
		t.Fatal(matcherErr)
	}
	return matcher
}

// basicRegistry is go-containerregistry's registry behind Basic
// authentication, as a Harbor robot account uses it.
type basicRegistry struct {
	host, user, pass string
	served, refused  atomic.Int64
}

func newBasicRegistry(t *testing.T) *basicRegistry {
	br := &basicRegistry{user: "robot$bulkhead", pass: "robot-pass-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != br.user || p != br.pass {
			br.refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		br.served.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	br.host = strings.TrimPrefix(srv.URL, "http://")
	return br
}

// pushDemo pushes the demo image and returns its digest.
func (br *basicRegistry) pushDemo(t *testing.T, repo string) string {
	t.Helper()
	img, err := image.Open(context.Background(), "oci-archive:../../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	ref, err := name.ParseReference(br.host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img.Image, remote.WithAuth(&authn.Basic{Username: br.user, Password: br.pass})); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dg.String()
}

func (br *basicRegistry) authorization() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(br.user+":"+br.pass))
}

func openStore(t *testing.T, backend string) (*sqlstore.Store, string) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "server.db")
	if backend == sqlstore.Postgres {
		dsn = pgtest.DSN(t)
	}
	st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dsn
}

// newServer makes a server with the Harbor adapter mounted; started, its
// queue runs.
func newServer(t *testing.T, st *sqlstore.Store, start bool, logs io.Writer) (*server.Server, *harborscan.Extension, string) {
	t.Helper()
	ext := harborscan.New(harborscan.Options{Harbor: harbor.Options{RefreshAfter: time.Second}})
	srv, err := server.New(t.Context(), server.Config{Store: st, Queue: server.QueueOf(st), Matcher: sharedMatcher(t),
		BootstrapToken: adminToken, Logger: slog.New(slog.NewTextHandler(logs, nil)), TempDir: t.TempDir(),
		RetryBackoff: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Extensions: []server.Extension{ext}})
	if err != nil {
		t.Fatal(err)
	}
	if start {
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop() })
	}
	// Harbor's routes are validated by harbortest against Harbor's spec;
	// any other exchange against the server's /openapi.json.
	ts := httptest.NewServer(servertest.Validating(t, srv))
	t.Cleanup(ts.Close)
	return srv, ext, ts.URL
}

// TestHarborThroughServer drives the mounted adapter through the real
// server (its token auth, queue and store) as Harbor does, on both
// databases: every exchange validates against the vendored spec, the
// report comes from the stored scan, and the robot account's credential
// is nowhere in the database or the logs.
func TestHarborThroughServer(t *testing.T) {
	reg := newBasicRegistry(t)
	digest := reg.pushDemo(t, "library/demo")
	for _, backend := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(backend, func(t *testing.T) {
			st, _ := openStore(t, backend)
			logs := &servertest.Logs{}
			srv, ext, base := newServer(t, st, true, logs)
			scanTok, err := server.CreateToken(t.Context(), st, "harbor", server.RoleScan)
			if err != nil {
				t.Fatal(err)
			}
			readTok, err := server.CreateToken(t.Context(), st, "reader", server.RoleRead)
			if err != nil {
				t.Fatal(err)
			}
			// The adapter needs a scan token.
			for auth, want := range map[string]int{"": 401, "Bearer wrong-token-0123456789": 401, "Bearer " + readTok: 401} {
				c := harbortest.NewClient(t, base+"/api/v1", auth)
				if _, ex := c.Metadata(); ex.Status != want {
					t.Errorf("metadata with %q: %d, want %d", auth, ex.Status, want)
				}
			}
			c := harbortest.NewClient(t, base+"/api/v1", "Bearer "+scanTok)
			md, ex := c.Metadata()
			if ex.Status != 200 || md.Scanner.Name == "" || md.Properties[harbor.PropDBUpdatedAt] == "" {
				t.Fatalf("metadata: %d %+v", ex.Status, md)
			}
			sr := harbor.ScanRequest{Registry: harbor.Registry{URL: "http://" + reg.host, Authorization: reg.authorization()},
				Artifact: harbor.Artifact{Repository: "library/demo", Digest: digest, Tag: "v1", MimeType: harbor.MediaTypeOCIManifest}}
			id := c.Submit(sr)
			vuln := c.WaitReport(id, harbor.MediaTypeVulnReport, "")
			if vuln.Status != 200 {
				t.Fatalf("report: %d %s", vuln.Status, vuln.Body)
			}
			var rep harbor.VulnerabilityReport
			if err := json.Unmarshal(vuln.Body, &rep); err != nil || len(rep.Vulnerabilities) == 0 {
				t.Fatalf("vulnerability report %v: %s", err, vuln.Body)
			}
			sbom := c.WaitReport(id, harbor.MediaTypeSBOMReport, "sbom_media_type="+strings.ReplaceAll(harbor.SBOMCycloneDX, "+", "%2B"))
			if sbom.Status != 200 || !strings.Contains(string(sbom.Body), "CycloneDX") {
				t.Fatalf("SBOM report: %d %.300s", sbom.Status, sbom.Body)
			}
			// The scan is the server's: stored, and what the API reports.
			jid, _ := strconv.ParseInt(id, 10, 64)
			row, err := srv.JobRow(t.Context(), jid)
			if err != nil {
				t.Fatal(err)
			}
			var out server.ScanOutput
			json.Unmarshal(row.Output(), &out)
			sc, err := st.Scan(t.Context(), out.ScanID)
			if err != nil || sc.Digest != digest {
				t.Fatalf("stored scan %d: %v %+v", out.ScanID, err, sc)
			}
			if n := countVulns(sc); n != len(rep.Vulnerabilities) {
				t.Errorf("the report has %d vulnerabilities, the stored scan %d", len(rep.Vulnerabilities), n)
			}
			// No credential in the queue's rows, nor in the logs.
			secrets := []string{reg.pass, reg.authorization(), base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + reg.pass))}
			for _, s := range secrets {
				if strings.Contains(string(row.EncodedArgs), s) || strings.Contains(logs.String(), s) {
					t.Errorf("the registry credential is in the job row or the logs: %s", row.EncodedArgs)
				}
			}
			if reg.served.Load() == 0 {
				t.Error("the registry served nothing")
			}
			if h := ext.Backend.Held(); h != 0 {
				t.Errorf("%d credentials still held after the scan", h)
			}
			// A second request for the same artifact reads the same
			// stored scan.
			if again := c.WaitReport(c.Submit(sr), harbor.MediaTypeVulnReport, ""); again.Status != 200 {
				t.Fatalf("second scan: %d %s", again.Status, again.Body)
			}
			// An unknown id is a 404.
			if ex := c.GetReport("999999", harbor.MediaTypeVulnReport, ""); ex.Status != 404 {
				t.Errorf("unknown id: %d", ex.Status)
			}
		})
	}
}

// countVulns counts the findings a Harbor report lists.
func countVulns(sc *store.Scan) int {
	n := 0
	for _, f := range sc.Findings {
		if f.Kind == finding.KindVulnerability && f.Suppressed == nil {
			n++
		}
	}
	return n
}

// TestHarborCredentialLostOnRestart: a request accepted by a server that
// stops before scanning (its credential lived in its memory) fails on
// the restarted server with a message telling Harbor to scan again; the
// credential was never written to the database.
func TestHarborCredentialLostOnRestart(t *testing.T) {
	reg := newBasicRegistry(t)
	digest := reg.pushDemo(t, "library/demo")
	for _, backend := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(backend, func(t *testing.T) {
			st, _ := openStore(t, backend)
			tok, err := server.CreateToken(t.Context(), st, "harbor", server.RoleScan)
			if err != nil {
				t.Fatal(err)
			}
			// The first server accepts the request but never runs its queue.
			_, _, base1 := newServer(t, st, false, io.Discard)
			c1 := harbortest.NewClient(t, base1+"/api/v1", "Bearer "+tok)
			id := c1.Submit(harbor.ScanRequest{Registry: harbor.Registry{URL: "http://" + reg.host, Authorization: reg.authorization()},
				Artifact: harbor.Artifact{Repository: "library/demo", Digest: digest}})
			served, refused := reg.served.Load(), reg.refused.Load()
			// The restarted server takes the job.
			_, _, base2 := newServer(t, st, true, io.Discard)
			c2 := harbortest.NewClient(t, base2+"/api/v1", "Bearer "+tok)
			pr := c2.WaitReport(id, harbor.MediaTypeVulnReport, "")
			var er harbor.ErrorResponse
			json.Unmarshal(pr.Body, &er)
			if pr.Status != 500 || !strings.Contains(er.Error.Message, "scan the artifact again in Harbor") {
				t.Fatalf("lost credential: %d %s", pr.Status, pr.Body)
			}
			if reg.served.Load() != served || reg.refused.Load() != refused {
				t.Errorf("the registry was asked for the image without its credential")
			}
		})
	}
}

// TestOpenAPI: Harbor's routes are not in the server's /openapi.json (the
// vendored spec describes them), but its description names them; the
// server lists them as foreign routes.
func TestOpenAPI(t *testing.T) {
	st, _ := openStore(t, sqlstore.SQLite)
	srv, _, _ := newServer(t, st, false, io.Discard)
	doc, _ := servertest.Spec(t, srv)
	harborRoutes := []string{"GET /api/v1/metadata", "POST /api/v1/scan", "GET /api/v1/scan/{id}/report"}
	for _, r := range harborRoutes {
		method, path, _ := strings.Cut(r, " ")
		if item := doc.Paths.Value(path); item != nil && item.GetOperation(method) != nil {
			t.Errorf("%s is in /openapi.json", r)
		}
		if !strings.Contains(doc.Info.Description, r) {
			t.Errorf("/openapi.json's description does not name %s: %q", r, doc.Info.Description)
		}
	}
	if !strings.Contains(doc.Info.Description, "Pluggable Scanner API v1.2") {
		t.Errorf("/openapi.json's description does not name Harbor's spec: %q", doc.Info.Description)
	}
	n := 0
	for _, r := range srv.Routes() {
		if r.Foreign != "" {
			n++
			if r.Role != server.RoleScan || !slices.Contains(harborRoutes, r.Method+" "+r.Path) {
				t.Errorf("foreign route %+v", r)
			}
		}
	}
	if n != len(harborRoutes) {
		t.Errorf("%d foreign routes, want %d", n, len(harborRoutes))
	}
}
