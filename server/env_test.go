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
	"strings"
	"sync"
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

func queueDB(st *sqlstore.Store) server.QueueDB {
	if st.Dialect() == sqlstore.Postgres {
		return server.QueueDB{Postgres: st.Pool(), Migrate: st.MigrateRiver}
	}
	return server.QueueDB{SQLite: st.DB(), Migrate: st.MigrateRiver}
}

// env is a server on loopback with a real store, its matcher, and the
// OpenAPI validation of every exchange.
type env struct {
	t       *testing.T
	srv     *server.Server
	ts      *httptest.Server
	st      *sqlstore.Store
	matcher *pipeline.Matcher
	logs    *syncBuffer
	tokens  map[server.Role]string
	// dbClosed: the test closed the database (the queue cannot stop cleanly).
	dbClosed bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a server; edit changes its configuration first.
func newEnv(t *testing.T, backend string, edit func(*server.Config)) *env {
	t.Helper()
	return newEnvStore(t, openStore(t, backend), edit)
}

// newEnvStore starts a server on a store the test opened.
func newEnvStore(t *testing.T, st *sqlstore.Store, edit func(*server.Config)) *env {
	t.Helper()
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := &env{t: t, st: st, matcher: m, logs: &syncBuffer{}}
	cfg := server.Config{Store: st, Queue: queueDB(st), Matcher: m, BootstrapToken: adminToken,
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBackoff: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, TempDir: t.TempDir()}
	if edit != nil {
		edit(&cfg)
	}
	e.srv, err = server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(servertest.Validating(t, e.srv))
	t.Cleanup(func() {
		e.ts.Close()
		if err := e.srv.Stop(); err != nil && !e.dbClosed {
			t.Errorf("stop: %v", err)
		}
		for _, tok := range e.tokens {
			if tok != "" && strings.Contains(e.logs.String(), tok) {
				t.Errorf("a token is in the server's log")
			}
		}
		if strings.Contains(e.logs.String(), adminToken) {
			t.Errorf("the bootstrap token is in the server's log")
		}
	})
	e.tokens = map[server.Role]string{server.RoleAdmin: adminToken}
	admin := e.client(server.RoleAdmin)
	for _, r := range []server.Role{server.RoleRead, server.RoleScan} {
		var tc server.TokenCreated
		if err := admin.Post(t.Context(), "/api/v1/tokens", server.TokenRequest{Name: "test-" + r.String(), Role: r.String()}, &tc); err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tc.Token
	}
	return e
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
