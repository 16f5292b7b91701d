package reevaljob_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/reevaljob"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const adminToken = "bkh_test-bootstrap-admin-token-0123456789"

func record(id, eco, name, fixed string) []byte {
	b, _ := json.Marshal(map[string]any{
		"schema_version": "1.6.0", "id": id, "modified": "2026-12-02T00:00:00Z", "published": "2026-12-01T00:00:00Z",
		"summary": "test advisory for " + name,
		"affected": []map[string]any{{
			"package": map[string]string{"ecosystem": eco, "name": name},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"fixed": fixed}}}},
		}},
	})
	return b
}

// vulnDB is a database holding one unrelated record.
func vulnDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "r.json")
	os.WriteFile(src, record("BULKTEST-0000", "PyPI", "unrelated", "9.9"), 0o600)
	p := filepath.Join(dir, "osv.db")
	if _, err := vulndb.Import(context.Background(), p, []string{src}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// replica is one server with re-evaluation, started.
func replica(t *testing.T, st *sqlstore.Store, o reevaljob.Options) (*server.Server, string) {
	t.Helper()
	m, err := pipeline.OpenMatcher(o.Match)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dialect() == sqlstore.Postgres {
		o.Lock = reevaljob.PostgresLock(st.Pool())
	}
	srv, err := server.New(t.Context(), server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, BootstrapToken: adminToken,
		Logger: slog.New(slog.DiscardHandler), TempDir: t.TempDir(), FetchPollInterval: 100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Extensions: []server.Extension{reevaljob.New(o)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(servertest.Validating(t, srv))
	t.Cleanup(func() { ts.Close(); srv.Stop(); srv.Matcher().Close() })
	return srv, ts.URL
}

func storeNPM(t *testing.T, st store.Store, name, version string) int64 {
	t.Helper()
	inv := &inventory.Inventory{Target: inventory.Target{Name: "app:1", Digest: "sha256:" + strings.Repeat("a", 64)},
		Packages: []inventory.Package{{Type: inventory.TypeNPM, Name: name, Version: version, PURL: "pkg:npm/" + name + "@" + version}}}
	id, err := st.PutScan(t.Context(), &store.Scan{Digest: inv.Target.Digest, ScannedAt: time.Now(), Source: "upload", Inventory: inv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// mirror is an OSV bucket layout serving one npm record; it counts the
// updates (ecosystems.txt, fetched once per update).
type mirror struct {
	updates atomic.Int64
	url     string
	mu      sync.Mutex
	at      []time.Time // when each update started
}

func newMirror(t *testing.T, rec []byte, id string) *mirror {
	m := &mirror{}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create(id + ".json")
	w.Write(rec)
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ecosystems.txt":
			m.updates.Add(1)
			m.mu.Lock()
			m.at = append(m.at, time.Now())
			m.mu.Unlock()
			io.WriteString(w, "npm\n")
		case "/npm/all.zip":
			w.Write(zb.Bytes())
		case "/npm/modified_id.csv":
			io.WriteString(w, "2026-12-02T00:00:00Z,"+id+"\n")
		case "/npm/" + id + ".json":
			w.Write(rec)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	m.url = srv.URL
	return m
}

// countingNotifier records the runs of all replicas and how many ran at
// once.
type countingNotifier struct {
	runs, inFlight, maxInFlight atomic.Int64
	mu                          sync.Mutex
	changes                     []store.Change
}

func (c *countingNotifier) Notify(_ context.Context, r *reeval.Report) error {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // a run in flight, for another to overlap with
	c.runs.Add(1)
	c.mu.Lock()
	c.changes = append(c.changes, r.Changes...)
	c.mu.Unlock()
	return nil
}

// TestScheduledUpdateOneReplica: two replicas share one PostgreSQL, each
// scheduling `db update` every second; river enqueues the periodic job on
// the leader only, so the mirror sees one update per tick, not two, and
// no two re-evaluations overlap. The update's new advisory shows as a
// change of the stored image.
func TestScheduledUpdateOneReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	st1, st2 := openStore(t, dsn), openStore(t, dsn)
	storeNPM(t, st1, "left-pad", "1.0.0")
	const id = "BULKTEST-2026-0101"
	mir := newMirror(t, record(id, "npm", "left-pad", "1.3.0"), id)
	n := &countingNotifier{}
	opts := func() reevaljob.Options {
		return reevaljob.Options{Match: pipeline.MatchOptions{DBPath: vulnDB(t)}, UpdateInterval: time.Second,
			Update: vulndb.Options{BaseURL: mir.url}, Notifier: n}
	}
	replica(t, st1, opts())
	replica(t, st2, opts())
	// Wait for 4 updates (leader election takes a moment).
	deadline := time.Now().Add(30 * time.Second)
	for mir.updates.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	mir.mu.Lock()
	at := append([]time.Time(nil), mir.at...)
	mir.mu.Unlock()
	if len(at) < 4 {
		t.Fatalf("%d scheduled updates in 30 s, want 4", len(at))
	}
	var gaps []string
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]).Round(10*time.Millisecond).String())
	}
	// One replica's ticks: at most one update per second of the span (and
	// one more for the jitter of river's scheduler); both replicas
	// enqueuing would make about two.
	if span := at[len(at)-1].Sub(at[0]); float64(len(at)-1) > span.Seconds()+1 {
		t.Errorf("%d updates in %s: more than one replica enqueued the scheduled job", len(at), span)
	}
	t.Logf("updates %s apart; %d re-evaluations, at most %d at once", strings.Join(gaps, ", "), n.runs.Load(), n.maxInFlight.Load())
	if n.maxInFlight.Load() > 1 {
		t.Errorf("%d re-evaluations ran at once", n.maxInFlight.Load())
	}
	found := false
	n.mu.Lock()
	for _, c := range n.changes {
		found = found || (c.Finding.ID == id && c.Kind == reeval.Appeared)
	}
	n.mu.Unlock()
	if !found {
		t.Errorf("the updated advisory did not appear in the stored image")
	}
}

// TestImportAPI: the import endpoint takes OSV JSON and zips from admin
// tokens only, refuses what is not OSV with a reason and without writing,
// and queues a re-evaluation whose summary the API reports. Both databases.
func TestImportAPI(t *testing.T) {
	for _, backend := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(backend, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "server.db")
			if backend == sqlstore.Postgres {
				dsn = pgtest.DSN(t)
			}
			st := openStore(t, dsn)
			storeNPM(t, st, "left-pad", "1.0.0")
			dbPath := vulnDB(t)
			_, base := replica(t, st, reevaljob.Options{Match: pipeline.MatchOptions{DBPath: dbPath}})
			scanTok, err := server.CreateToken(t.Context(), st, "ci", server.RoleScan)
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok, ct string, body []byte) (int, []byte) {
				req, _ := http.NewRequest("POST", base+"/api/v1/vulndb/import", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", ct)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b
			}
			before, _ := os.ReadFile(dbPath)
			for _, tc := range []struct {
				tok, ct string
				body    []byte
				status  int
				msg     string
			}{
				{scanTok, "application/json", record("X-1", "npm", "a", "1"), 403, "needs admin"},
				{adminToken, "text/plain", []byte("{}"), 415, "application/json"},
				{adminToken, "application/json", nil, 400, "empty"},
				{adminToken, "application/json", []byte(`{"not":"osv"}`), 422, "no OSV records"},
				{adminToken, "application/zip", []byte("PK\x03\x04 truncated"), 422, "import"},
			} {
				st, b := do(tc.tok, tc.ct, tc.body)
				if st != tc.status || !strings.Contains(string(b), tc.msg) {
					t.Errorf("%s %q: %d %s, want %d with %q", tc.ct, tc.body, st, b, tc.status, tc.msg)
				}
			}
			if after, _ := os.ReadFile(dbPath); !bytes.Equal(before, after) {
				t.Error("a refused import changed the database")
			}
			const id = "BULKTEST-2026-0202"
			status, b := do(adminToken, "application/json", record(id, "npm", "left-pad", "1.3.0"))
			if status != 202 {
				t.Fatalf("import: %d %s", status, b)
			}
			var resp struct {
				Imported     reevaljob.ImportResult
				Reevaluation reevaljob.Job
			}
			json.Unmarshal(b, &resp)
			wait := func(id int64) reevaljob.Job {
				var j reevaljob.Job
				deadline := time.Now().Add(30 * time.Second)
				for j.State != "completed" {
					if time.Now().After(deadline) {
						t.Fatalf("re-evaluation not done: %+v", j)
					}
					time.Sleep(100 * time.Millisecond)
					req, _ := http.NewRequest("GET", base+"/api/v1/reevaluations/"+strconv.FormatInt(id, 10), nil)
					req.Header.Set("Authorization", "Bearer "+scanTok)
					r, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					json.NewDecoder(r.Body).Decode(&j)
					r.Body.Close()
				}
				return j
			}
			j := wait(resp.Reevaluation.ID)
			if j.Output == nil || !j.Output.Ran || j.Output.Summary.Appeared != 1 {
				t.Fatalf("re-evaluation: %+v", j.Output)
			}
			ch, err := st.Changes(t.Context(), time.Time{}, 10)
			if err != nil || len(ch) != 1 || ch[0].Finding.ID != id {
				t.Fatalf("changes: %v %+v", err, ch)
			}

			// A zip of records, as the OSV bucket's all.zip.
			const zid = "BULKTEST-2026-0303"
			var zb bytes.Buffer
			zw := zip.NewWriter(&zb)
			zf, _ := zw.Create(zid + ".json")
			zf.Write(record(zid, "npm", "left-pad", "1.2.0"))
			zw.Close()
			status, b = do(adminToken, "application/zip", zb.Bytes())
			resp.Imported = reevaljob.ImportResult{}
			if err := json.Unmarshal(b, &resp); status != 202 || err != nil || resp.Imported.Written != 1 {
				t.Fatalf("zip import: %d %s", status, b)
			}
			if j := wait(resp.Reevaluation.ID); j.Output == nil || j.Output.Summary == nil || j.Output.Summary.Appeared != 1 {
				t.Fatalf("re-evaluation after the zip import: %+v", j.Output)
			}
		})
	}
}

// TestDocumented: the re-evaluation routes are in the server's
// /openapi.json with their request media types and the role each needs in
// its description, the exchanges of every test here validate against it
// (replica serves through servertest.Validating), and every documented
// operation refuses a missing or unknown token (401) and the roles below
// its own (403).
func TestDocumented(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "server.db"))
	srv, base := replica(t, st, reevaljob.Options{Match: pipeline.MatchOptions{DBPath: vulnDB(t)}})
	tokens := map[server.Role]string{server.RoleAdmin: adminToken}
	for _, r := range []server.Role{server.RoleRead, server.RoleScan} {
		tok, err := server.CreateToken(t.Context(), st, "test-"+r.String(), r)
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
	}
	req, _ := http.NewRequest("GET", base+"/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+tokens[server.RoleRead])
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(r.Body)
	r.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]server.Role{}
	for _, rt := range srv.Routes() {
		routes[rt.Method+" "+rt.Path] = rt.Role
	}
	for op, need := range map[string]server.Role{
		"POST /api/v1/reevaluate":        server.RoleAdmin,
		"POST /api/v1/vulndb/update":     server.RoleAdmin,
		"POST /api/v1/vulndb/import":     server.RoleAdmin,
		"GET /api/v1/reevaluations/{id}": server.RoleRead,
	} {
		method, path, _ := strings.Cut(op, " ")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is not in /openapi.json", op)
			continue
		}
		o := item.GetOperation(method)
		if !strings.Contains(o.Description, "role "+need.String()) {
			t.Errorf("%s: the description does not say it needs role %s: %q", op, need, o.Description)
		}
		if routes[op] != need {
			t.Errorf("%s is served for role %s, documented as %s", op, routes[op], need)
		}
		if o.Responses.Status(401) == nil || o.Responses.Status(403) == nil {
			t.Errorf("%s: 401 and 403 are not documented", op)
		}
	}
	body := doc.Paths.Value("/api/v1/vulndb/import").Post.RequestBody.Value
	if body.GetMediaType("application/json") == nil || body.GetMediaType("application/zip") == nil {
		t.Errorf("the import's media types are not documented")
	}
	if n := servertest.CheckAuth(t, srv, base, tokens); n < 4 {
		t.Errorf("CheckAuth checked %d operations", n)
	}
}
