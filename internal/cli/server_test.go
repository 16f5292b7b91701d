package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// vulnerableImage holds Django 1.0.1 and json-bigint 0.3.0 (vulnerable in
// the test OSV records) and an AWS key in its environment.
func vulnerableImage(t *testing.T) v1.Image {
	l := tarLayer(t, map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"usr/lib/python3/dist-packages/Django-1.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: Django\nVersion: 1.0.1\n",
		"usr/lib/node_modules/json-bigint/package.json":                 `{"name":"json-bigint","version":"0.3.0"}`,
	})
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Env = []string{"AWS_ACCESS_KEY_ID=AKIAQ7LMX3VZ2KRT9WNB"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// startServer runs bulkhead server on loopback with the SQLite store and a
// database of the test OSV records; it returns its URL, an admin token and
// the database's path.
func startServer(t *testing.T) (url, token, dbPath string) {
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "osv.db")
	if _, err := vulndb.Import(context.Background(), dbPath, []string{filepath.Join("..", "..", "vulndb", "testdata", "osv")}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := openServerStore(t.Context(), filepath.Join(dir, "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	token = "bkh_cli-test-admin-token-0123456789abcdef"
	srv, err := server.New(t.Context(), server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, BootstrapToken: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, token, dbPath
}

// TestImageServerParity: bulkhead image --server gives the findings,
// database info and exit code of a local bulkhead image with the server's
// database, for each filter and suppression flag, and opens no local
// vulnerability database.
func TestImageServerParity(t *testing.T) {
	url, token, dbPath := startServer(t)
	ref := "oci:" + writeLayout(t, vulnerableImage(t))
	cache := t.TempDir()
	t.Setenv("BULKHEAD_CACHE_DIR", cache)
	ignore := filepath.Join(t.TempDir(), "ignore")
	os.WriteFile(ignore, []byte("PYSEC-2008-1\n"), 0o644)
	run := func(args ...string) (int, []byte, string) {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		return code, out.Bytes(), errb.String()
	}
	type doc struct {
		Findings []json.RawMessage `json:"findings"`
		Summary  map[string]int    `json:"summary"`
		DB       json.RawMessage   `json:"vulnerabilityDB"`
		Packages []json.RawMessage `json:"packages"`
	}
	for _, extra := range [][]string{
		nil,
		{"--severity", "HIGH,CRITICAL"},
		{"--ignore-unfixed"},
		{"--ignorefile", ignore},
		{"--scanners", "vuln"},
		{"--scanners", "secret"},
	} {
		name := strings.Join(extra, " ")
		base := append([]string{"image", "--quiet", "--format", "json", "--exit-code", "3", "--scanners", "vuln,secret", "--temp-dir", t.TempDir()}, extra...)
		lcode, lout, lerr := run(append(append(base, "--db", dbPath), ref)...)
		rcode, rout, rerr := run(append(append(base, "--server", url, "--token", token), ref)...)
		if lcode != rcode {
			t.Errorf("%s: exit code local %d, --server %d (%s)", name, lcode, rcode, rerr)
		}
		var l, r doc
		if err := json.Unmarshal(lout, &l); err != nil {
			t.Fatalf("%s: local: %v %s", name, err, lerr)
		}
		if err := json.Unmarshal(rout, &r); err != nil {
			t.Fatalf("%s: --server: %v %s", name, err, rerr)
		}
		if name == "" {
			kinds := map[string]int{}
			for _, f := range r.Findings {
				var k struct{ Kind string }
				json.Unmarshal(f, &k)
				kinds[k.Kind]++
			}
			if kinds["vulnerability"] < 4 || kinds["secret"] < 1 || lcode != 3 {
				t.Fatalf("the fixture image gives %v (exit %d): too little to compare", kinds, lcode)
			}
		}
		if !reflect.DeepEqual(l.Findings, r.Findings) || !reflect.DeepEqual(l.Summary, r.Summary) || len(l.Packages) != len(r.Packages) {
			t.Errorf("%s: local and --server reports differ:\nlocal  %s\nserver %s", name, lout, rout)
		}
		if !bytes.Equal(l.DB, r.DB) {
			t.Errorf("%s: database info: local %s, --server %s", name, l.DB, r.DB)
		}
	}
	// The table, warnings (stale data) included, is the same.
	table := []string{"image", "--quiet", "--scanners", "vuln,secret", "--temp-dir", t.TempDir()}
	lcode, lout, _ := run(append(append(table, "--db", dbPath), ref)...)
	rcode, rout, _ := run(append(append(table, "--server", url, "--token", token), ref)...)
	if lcode != 0 || rcode != 0 || !bytes.Equal(lout, rout) || !bytes.Contains(lout, []byte("AWS")) {
		t.Errorf("tables differ (exit %d, %d):\nlocal:\n%s\n--server:\n%s", lcode, rcode, lout, rout)
	}
	if _, err := os.Stat(filepath.Join(cache, "db")); err == nil {
		t.Error("image --server made a local vulnerability database")
	}
	// $BULKHEAD_TOKEN, and a refused token.
	t.Setenv("BULKHEAD_TOKEN", token)
	if code, _, errs := run("image", "--quiet", "--server", url, ref); code != 0 {
		t.Errorf("with $BULKHEAD_TOKEN: exit %d: %s", code, errs)
	}
	t.Setenv("BULKHEAD_TOKEN", "bkh_wrong")
	if code, _, errs := run("image", "--quiet", "--server", url, ref); code != 1 || !strings.Contains(errs, "401") || !strings.Contains(errs, "BULKHEAD_TOKEN") || strings.Contains(errs, "bkh_wrong") {
		t.Errorf("with a wrong token: exit %d: %s", code, errs)
	}
}

// TestServerTokenCreate: the token is printed once and only its hash is
// stored, with its role.
func TestServerTokenCreate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "server.db")
	var out, errb bytes.Buffer
	if code := Main([]string{"server", "token", "create", "--database", db, "--role", "scan", "ci"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, "bkh_") || len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	st, err := openServerStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.TokenByHash(t.Context(), server.HashToken(tok))
	if err != nil || got.Name != "ci" || got.Role != "scan" {
		t.Errorf("stored token: %+v %v", got, err)
	}
	for _, f := range []string{db, db + "-wal"} {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, []byte(tok)) {
			t.Errorf("the token itself is in %s", f)
		}
	}
	if code := Main([]string{"server", "token", "create", "--database", db, "--role", "root", "x"}, &out, &errb); code == 0 {
		t.Error("--role root was accepted")
	}
}

// TestSBOMServerParity: bulkhead sbom --server uploads the SBOM's
// inventory (the client path of image --server) and reports the findings
// and exit code of a local bulkhead sbom with the server's database.
func TestSBOMServerParity(t *testing.T) {
	url, token, dbPath := startServer(t)
	ref := "oci:" + writeLayout(t, vulnerableImage(t))
	cache := t.TempDir()
	t.Setenv("BULKHEAD_CACHE_DIR", cache)
	run := func(args ...string) (int, []byte, string) {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		return code, out.Bytes(), errb.String()
	}
	sbomFile := filepath.Join(t.TempDir(), "app.cdx.json")
	if code, _, errs := run("image", "--quiet", "--scanners", "vuln", "--format", "cyclonedx", "--output", sbomFile, "--db", dbPath, "--temp-dir", t.TempDir(), ref); code != 0 {
		t.Fatalf("make the SBOM: exit %d: %s", code, errs)
	}
	type doc struct {
		Findings []json.RawMessage `json:"findings"`
		Summary  map[string]int    `json:"summary"`
		Packages []json.RawMessage `json:"packages"`
	}
	base := []string{"sbom", "--quiet", "--format", "json", "--exit-code", "3"}
	lcode, lout, lerr := run(append(base, "--db", dbPath, sbomFile)...)
	rcode, rout, rerr := run(append(base, "--server", url, "--token", token, sbomFile)...)
	var l, r doc
	if err := json.Unmarshal(lout, &l); err != nil {
		t.Fatalf("local: %v %s", err, lerr)
	}
	if err := json.Unmarshal(rout, &r); err != nil {
		t.Fatalf("--server: %v %s", err, rerr)
	}
	if lcode != 3 || rcode != lcode || len(l.Findings) < 4 {
		t.Fatalf("exit codes local %d, --server %d (%s); %d local findings", lcode, rcode, rerr, len(l.Findings))
	}
	if !reflect.DeepEqual(l.Findings, r.Findings) || !reflect.DeepEqual(l.Summary, r.Summary) || len(l.Packages) != len(r.Packages) {
		t.Errorf("local and --server reports differ:\nlocal  %s\nserver %s", lout, rout)
	}
	if _, err := os.Stat(filepath.Join(cache, "db")); err == nil {
		t.Error("sbom --server made a local vulnerability database")
	}
}
