package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// adminToken is the bootstrap token of every test server.
const adminToken = "bkh_test-bootstrap-admin-token-0123456789"

// osvFixtures are the repository's test OSV records.
var osvFixtures = filepath.Join("..", "vulndb", "testdata", "osv")

// testDB builds a vulnerability database from the test OSV records.
func testDB(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "osv.db")
	if _, err := vulndb.Import(context.Background(), p, []string{osvFixtures}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// backends are the databases every suite runs on.
var backends = []string{sqlstore.SQLite, sqlstore.Postgres}

// openStore opens a fresh store of a backend.
func openStore(t testing.TB, backend string) *sqlstore.Store {
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
	return st
}

// env is a server on loopback with a real store, its matcher, and the
// OpenAPI validation of every exchange.
type env struct {
	t       *testing.T
	s       *servertest.Server
	srv     *server.Server
	ts      *httptest.Server
	st      *sqlstore.Store
	matcher *pipeline.Matcher
	logs    *servertest.Logs
	tokens  map[server.Role]string
}

// newEnv starts a server; edit changes its configuration first.
func newEnv(t *testing.T, backend string, edit func(*server.Config)) *env {
	t.Helper()
	return newEnvStore(t, openStore(t, backend), edit)
}

// newEnvStore starts a server on a store the test opened, with a token of
// each role.
func newEnvStore(t *testing.T, st *sqlstore.Store, edit func(*server.Config)) *env {
	t.Helper()
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s := servertest.Start(t, servertest.Options{Matcher: m, Token: adminToken, Store: st, Validate: true,
		Roles: []server.Role{server.RoleRead, server.RoleScan},
		Edit: func(cfg *server.Config) {
			cfg.RetryBackoff, cfg.RetryMax, cfg.FetchPollInterval = 20*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
			if edit != nil {
				edit(cfg)
			}
		}})
	return &env{t: t, s: s, srv: s.Server, ts: s.HTTP, st: st, matcher: m, logs: s.Logs, tokens: s.Tokens}
}

// client is a client with a token of role r (RoleNone: no token).
func (e *env) client(r server.Role) *client.Client {
	c, err := client.New(e.ts.URL, client.Options{Token: e.tokens[r]})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// do sends a raw request with a token of role r.
func (e *env) do(r server.Role, method, path, contentType string, body []byte) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok := e.tokens[r]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// tarLayer is a layer of the given files (regtest.Layer).
func tarLayer(t testing.TB, files map[string]string) v1.Layer { return regtest.Layer(t, files) }

// testImage is an image with Django and json-bigint at the given versions
// (vulnerable below 1.1 and 1.0.0 in the test records) and an AWS key in
// its environment (a secret finding).
func testImage(t testing.TB, django, bigint string) v1.Image {
	t.Helper()
	l := tarLayer(t, map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"usr/lib/python3/dist-packages/Django-" + django + ".dist-info/METADATA": "Metadata-Version: 2.1\nName: Django\nVersion: " + django + "\n",
		"usr/lib/node_modules/json-bigint/package.json":                          `{"name":"json-bigint","version":"` + bigint + `"}`,
	})
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Env = []string{"AWS_ACCESS_KEY_ID=AKIAQ7LMX3VZ2KRT9WNB"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
