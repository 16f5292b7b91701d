package vulndb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bucket serves the OSV export layout from the fixtures, built the way
// osv.dev's exporter writes it: ecosystems.txt, and per ecosystem all.zip,
// modified_id.csv ("<RFC3339Nano>,<ID>", newest first) and <ID>.json.
type bucket struct {
	t     testing.TB
	mu    sync.Mutex
	recs  map[string]map[string][]byte // feed -> id -> record JSON
	mods  map[string]map[string]string // feed -> id -> modified
	hits  map[string]int
	fault func(w http.ResponseWriter, r *http.Request) bool // true when it answered
	srv   *httptest.Server
}

func newBucket(t testing.TB) *bucket {
	b := &bucket{t: t, recs: map[string]map[string][]byte{}, mods: map[string]map[string]string{}, hits: map[string]int{}}
	for _, f := range fixtures(t) {
		b.set(f.feed, f.ID, f.Modified, f.data)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bucket) set(feed, id, modified string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recs[feed] == nil {
		b.recs[feed], b.mods[feed] = map[string][]byte{}, map[string]string{}
	}
	b.recs[feed][id], b.mods[feed][id] = data, modified
}

func (b *bucket) hit(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits[path]
}

func (b *bucket) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.hits[r.URL.Path]++
	fault := b.fault
	b.mu.Unlock()
	if fault != nil && fault(w, r) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	path, _ := url.PathUnescape(r.URL.Path)
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "ecosystems.txt":
		var feeds []string
		for f := range b.recs {
			feeds = append(feeds, f)
		}
		sort.Strings(feeds)
		fmt.Fprint(w, strings.Join(feeds, "\n")+"\n")
	case len(parts) == 2 && b.recs[parts[0]] != nil:
		feed, file := parts[0], parts[1]
		switch {
		case file == "all.zip":
			var fx []*fixture
			for id, data := range b.recs[feed] {
				fx = append(fx, &fixture{ID: id, data: data})
			}
			sort.Slice(fx, func(i, j int) bool { return fx[i].ID < fx[j].ID })
			w.Header().Set("Content-Type", "application/zip")
			w.Write(zipRecords(b.t, fx))
		case file == "modified_id.csv":
			type line struct{ t, id string }
			var lines []line
			for id, m := range b.mods[feed] {
				tm, err := time.Parse(time.RFC3339Nano, m)
				if err != nil {
					tm = time.Time{}
				}
				lines = append(lines, line{tm.UTC().Format(time.RFC3339Nano), id})
			}
			sort.Slice(lines, func(i, j int) bool {
				if lines[i].t != lines[j].t {
					return lines[i].t > lines[j].t
				}
				return lines[i].id < lines[j].id
			})
			for _, l := range lines {
				fmt.Fprintf(w, "%s,%s\n", l.t, l.id)
			}
		case strings.HasSuffix(file, ".json") && b.recs[feed][strings.TrimSuffix(file, ".json")] != nil:
			w.Write(b.recs[feed][strings.TrimSuffix(file, ".json")])
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func TestUpdateFullThenIncremental(t *testing.T) {
	b := newBucket(t)
	path := filepath.Join(t.TempDir(), "osv.db")
	var progress []Progress
	res, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL, Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	fx := fixtures(t)
	if res.Written != len(uniqueIDs(fx)) || len(res.Feeds) != 6 {
		t.Fatalf("full update: %+v", res)
	}
	for _, f := range res.Feeds {
		if f.Incremental || f.Err != nil {
			t.Errorf("first update of %s: %+v", f.Name, f)
		}
	}
	if len(progress) == 0 || progress[len(progress)-1].Stage != "write" {
		t.Errorf("progress: %v", progress)
	}
	db := openT(t, path)
	if got := lookupIDs(t, db, "crates.io", "ring"); !reflect.DeepEqual(got, []string{"RUSTSEC-2025-0009", "RUSTSEC-2025-0010"}) {
		t.Errorf("ring: %v", got)
	}
	st, _ := db.Status()
	if st.Records != len(uniqueIDs(fx)) || len(st.Feeds) != 6 || !strings.HasPrefix(st.Writer, "OSV http://127.0.0.1") || st.Age() > time.Minute {
		t.Errorf("status %+v", st)
	}
	db.Close()

	// Upstream withdraws one record and amends another: both become newer
	// than the watermark in modified_id.csv.
	newer := time.Now().UTC().Truncate(time.Second)
	withdrawn := strings.Replace(string(fileBytes(t, "testdata/osv/crates.io/RUSTSEC-2025-0009.json")),
		`"modified": "2025-10-28T06:02:18Z"`, fmt.Sprintf(`"modified": %q, "withdrawn": %q`, newer.Format(time.RFC3339), newer.Format(time.RFC3339)), 1)
	b.set("crates.io", "RUSTSEC-2025-0009", newer.Format(time.RFC3339), []byte(withdrawn))
	amended := strings.Replace(string(fileBytes(t, "testdata/osv/PyPI/PYSEC-2020-341.json")),
		`"modified": "2022-01-05T02:16:25.743194Z"`, fmt.Sprintf(`"modified": %q`, newer.Format(time.RFC3339Nano)), 1)
	amended = strings.Replace(amended, `"name": "jw.util"`, `"name": "jw.util.extra"`, 1)
	if amended == string(fileBytes(t, "testdata/osv/PyPI/PYSEC-2020-341.json")) || !strings.Contains(withdrawn, `"withdrawn"`) {
		t.Fatal("fixture edit did not apply")
	}
	b.set("PyPI", "PYSEC-2020-341", newer.Format(time.RFC3339Nano), []byte(amended))

	res, err = Update(t.Context(), path, Options{BaseURL: b.srv.URL, Ecosystems: []string{"PyPI", "crates.io", "AlmaLinux"}})
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]int{}
	for _, f := range res.Feeds {
		if !f.Incremental {
			t.Errorf("%s was not refreshed incrementally", f.Name)
		}
		changed[f.Name] = f.Changed
	}
	if !reflect.DeepEqual(changed, map[string]int{"PyPI": 1, "crates.io": 1, "AlmaLinux": 0}) {
		t.Errorf("changed per feed: %v", changed)
	}
	if b.hit("/PyPI/all.zip") != 1 || b.hit("/crates.io/all.zip") != 1 || b.hit("/PyPI/PYSEC-2020-341.json") != 1 || b.hit("/PyPI/PYSEC-2008-1.json") != 0 {
		t.Errorf("incremental fetched the wrong files: %v", b.hits)
	}
	db = openT(t, path)
	if got := lookupIDs(t, db, "crates.io", "ring"); !reflect.DeepEqual(got, []string{"RUSTSEC-2025-0010"}) {
		t.Errorf("ring after withdrawal: %v", got)
	}
	if got := lookupIDs(t, db, "PyPI", "jw.util"); len(got) != 0 {
		t.Errorf("old index entry kept: %v", got)
	}
	if got := lookupIDs(t, db, "PyPI", "JW-Util.Extra"); !reflect.DeepEqual(got, []string{"PYSEC-2020-341"}) {
		t.Errorf("amended record: %v", got)
	}
	st, _ = db.Status()
	for _, f := range st.Feeds {
		if f.Name == "PyPI" && !f.Watermark.Equal(newer) {
			t.Errorf("PyPI watermark %v, want %v", f.Watermark, newer)
		}
	}
	db.Close()

	// A full refresh drops records the feed no longer has.
	b.mu.Lock()
	delete(b.recs["npm"], "GHSA-wgfq-7857-4jcc")
	delete(b.mods["npm"], "GHSA-wgfq-7857-4jcc")
	b.recs["npm"]["GHSA-mq8p-h798-xcrp"] = fileBytes(t, "testdata/osv/Maven/GHSA-mq8p-h798-xcrp.json")
	b.mu.Unlock()
	res, err = Update(t.Context(), path, Options{BaseURL: b.srv.URL, Ecosystems: []string{"npm"}, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	db = openT(t, path)
	if got := lookupIDs(t, db, "npm", "json-bigint"); len(got) != 0 || res.Deleted != 1 {
		t.Errorf("record gone upstream still there: %v (deleted %d)", got, res.Deleted)
	}
	// The Maven record is also in the Maven feed: removing it from npm's
	// membership must not delete it.
	if got := lookupIDs(t, db, "Maven", "org.apache.hadoop:hadoop-main"); len(got) != 1 {
		t.Errorf("shared record lost: %v", got)
	}
}

func TestParseModifiedIDs(t *testing.T) {
	csv := "2026-03-01T10:00:00.123456Z,PYSEC-2026-3\n2026-02-01T10:00:00Z,PyPI/PYSEC-2026-2\n\n2026-01-01T00:00:00Z,PYSEC-2026-1\n2025-01-01T00:00:00Z,PYSEC-2025-1\n"
	ids, newest, err := parseModifiedIDs(strings.NewReader(csv), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || !reflect.DeepEqual(ids, []string{"PYSEC-2026-3", "PYSEC-2026-2"}) || newest.Format(time.RFC3339Nano) != "2026-03-01T10:00:00.123456Z" {
		t.Errorf("got %v %v %v", ids, newest, err)
	}
	for _, bad := range []string{"2026-03-01T10:00:00Z PYSEC-1\n", "2026-03-01T10:00:00Z,PYSEC-1\nyesterday,PYSEC-2\n", "2026-03-01T10:00:00Z,bad id\n"} {
		if _, _, err := parseModifiedIDs(strings.NewReader(bad), time.Time{}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// sum is a file's digest, to show a failed update left it untouched.
func sum(t *testing.T, path string) [32]byte { return sha256.Sum256(fileBytes(t, path)) }

func TestUpdateFaults(t *testing.T) {
	b := newBucket(t)
	path := filepath.Join(t.TempDir(), "osv.db")
	if _, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL}); err != nil {
		t.Fatal(err)
	}
	before := sum(t, path)
	full := func(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
		if !strings.HasSuffix(r.URL.Path, "/PyPI/all.zip") {
			return nil, false
		}
		b.mu.Lock()
		var fx []*fixture
		for id, data := range b.recs["PyPI"] {
			fx = append(fx, &fixture{ID: id, data: data})
		}
		b.mu.Unlock()
		return zipRecords(t, fx), true
	}
	cases := []struct {
		name    string
		fault   func(w http.ResponseWriter, r *http.Request) bool
		timeout time.Duration
		want    string
	}{
		{"500 on all.zip", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/all.zip") {
				http.Error(w, "backend error", http.StatusInternalServerError)
				return true
			}
			return false
		}, 0, "500 Internal Server Error"},
		{"truncated zip", func(w http.ResponseWriter, r *http.Request) bool {
			z, ok := full(w, r)
			if ok {
				w.Write(z[:len(z)*2/3]) // a complete response of a cut file
			}
			return ok
		}, 0, "not a valid zip"},
		{"connection cut", func(w http.ResponseWriter, r *http.Request) bool {
			z, ok := full(w, r)
			if ok {
				w.Header().Set("Content-Length", fmt.Sprint(len(z)))
				w.Write(z[:len(z)/2])
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			}
			return ok
		}, 0, "unexpected EOF"},
		{"slow body", func(w http.ResponseWriter, r *http.Request) bool {
			z, ok := full(w, r)
			if ok {
				w.Header().Set("Content-Length", fmt.Sprint(len(z)))
				w.Write(z[:100])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
			}
			return ok
		}, 700 * time.Millisecond, "context deadline exceeded"},
		{"500 on a record", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/modified_id.csv") {
				fmt.Fprintf(w, "%s,PYSEC-2008-1\n", time.Now().UTC().Format(time.RFC3339Nano))
				return true
			}
			if strings.HasSuffix(r.URL.Path, "/PYSEC-2008-1.json") {
				http.Error(w, "backend error", http.StatusInternalServerError)
				return true
			}
			return false
		}, 0, "500 Internal Server Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b.mu.Lock()
			b.fault = tc.fault
			b.mu.Unlock()
			defer func() { b.mu.Lock(); b.fault = nil; b.mu.Unlock() }()
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			opts := Options{BaseURL: b.srv.URL, Ecosystems: []string{"Go", "PyPI"}, Full: !strings.Contains(tc.name, "record")}
			start := time.Now()
			_, err := Update(ctx, path, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if sum(t, path) != before {
				t.Error("failed update changed the database file")
			}
			db := openT(t, path)
			if len(lookupIDs(t, db, "PyPI", "django")) != 3 {
				t.Error("previous database does not answer")
			}
			assertNoTemp(t, path)
		})
	}

	t.Run("404 for a named ecosystem", func(t *testing.T) {
		_, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL, Ecosystems: []string{"Go", "NoSuchEcosystem"}})
		if err == nil || !strings.Contains(err.Error(), `"NoSuchEcosystem" not found`) || !strings.Contains(err.Error(), "ecosystems.txt") {
			t.Fatalf("error %v", err)
		}
		if sum(t, path) != before {
			t.Error("failed update changed the database file")
		}
	})
	t.Run("404 for a listed ecosystem", func(t *testing.T) {
		b.mu.Lock()
		b.recs["Ghost"], b.mods["Ghost"] = map[string][]byte{}, map[string]string{}
		b.fault = func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasPrefix(r.URL.Path, "/Ghost/") {
				http.NotFound(w, r)
				return true
			}
			return false
		}
		b.mu.Unlock()
		defer func() { b.mu.Lock(); delete(b.recs, "Ghost"); b.fault = nil; b.mu.Unlock() }()
		res, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		skipped := 0
		for _, f := range res.Feeds {
			if f.Err != nil {
				skipped++
				if f.Name != "Ghost" || !errors.Is(f.Err, errHTTPNotFound) {
					t.Errorf("feed %+v", f)
				}
			}
		}
		if skipped != 1 {
			t.Errorf("feeds %+v", res.Feeds)
		}
	})
	t.Run("no ecosystems.txt", func(t *testing.T) {
		_, err := Update(t.Context(), filepath.Join(t.TempDir(), "osv.db"), Options{BaseURL: b.srv.URL + "/nowhere"})
		if err == nil || !strings.Contains(err.Error(), "--ecosystems") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("second updater is refused", func(t *testing.T) {
		unlock, err := lockFile(path + ".lock")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		_, err = Update(t.Context(), path, Options{BaseURL: b.srv.URL, Ecosystems: []string{"Go"}})
		if err == nil || !strings.Contains(err.Error(), "another bulkhead is updating") {
			t.Fatalf("error %v", err)
		}
	})
}

func assertNoTemp(t *testing.T, path string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// helperEnv makes the test binary run one Update and exit (TestMain).
const helperEnv = "BULKHEAD_VULNDB_UPDATE_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		base, path, _ := strings.Cut(spec, "|")
		_, err := Update(context.Background(), path, Options{BaseURL: base, Full: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestUpdateKilled runs an update in a child process, SIGKILLs it while it
// downloads, and checks the previous database still opens and answers, and
// that the next update cleans up and succeeds.
func TestUpdateKilled(t *testing.T) {
	b := newBucket(t)
	path := filepath.Join(t.TempDir(), "osv.db")
	if _, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL}); err != nil {
		t.Fatal(err)
	}
	before := sum(t, path)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	b.mu.Lock()
	b.fault = func(w http.ResponseWriter, r *http.Request) bool {
		// The child has written Go and PyPI's records into its temporary
		// database (ecosystems are fetched in ecosystems.txt order) when
		// it asks for crates.io's all.zip: hang there.
		if r.URL.Path != "/crates.io/all.zip" {
			return false
		}
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	b.mu.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+b.srv.URL+"|"+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child never reached the download")
	}
	// A temporary database is being written beside the live one.
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".osv.db.*.tmp")); len(m) == 0 {
		t.Error("no temporary database while the update runs")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	close(release)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed: %v", err)
	}
	b.mu.Lock()
	b.fault = nil
	b.mu.Unlock()

	if sum(t, path) != before {
		t.Error("killed update changed the database file")
	}
	db := openT(t, path)
	if len(lookupIDs(t, db, "PyPI", "django")) != 3 || len(lookupIDs(t, db, "crates.io", "ring")) != 2 {
		t.Error("previous database does not answer after the kill")
	}
	db.Close()
	// The kernel dropped the dead child's lock: the next update runs and
	// removes what the child left behind.
	if _, err := Update(t.Context(), path, Options{BaseURL: b.srv.URL, Ecosystems: []string{"Go"}}); err != nil {
		t.Fatal(err)
	}
	assertNoTemp(t, path)
}
