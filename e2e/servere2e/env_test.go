// Package servere2e is the acceptance of bulkhead server (issue 14): the
// real binary, built by the test, on SQLite and on PostgreSQL (Debian's,
// started once per test binary by internal/pgtest), with a real registry
// (Debian's docker-registry, once per test binary) on loopback behind a
// proxy that counts its requests.
//
// Without docker-registry or PostgreSQL the tests skip, except under CI,
// where they fail and say what to install.
package servere2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

var (
	repoRoot string
	binary   string // the bulkhead binary built for the run
	buildErr error
	tmpRoot  string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(filepath.Dir(file)))
	var err error
	if tmpRoot, err = os.MkdirTemp("", "bulkhead-servere2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("BULKHEAD_CACHE_DIR", filepath.Join(tmpRoot, "cache"))
	code := pgtest.Main(m)
	stopRegistry()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

var buildOnce sync.Once

// bulkheadBinary builds cmd/bulkhead once for the test binary.
func bulkheadBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binary = filepath.Join(tmpRoot, "bulkhead")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/bulkhead")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// backends are the databases every test runs on.
var backends = []string{sqlstore.SQLite, sqlstore.Postgres}

// dsnFor is a fresh database of a backend.
func dsnFor(t *testing.T, backend string) string {
	if backend == sqlstore.Postgres {
		return pgtest.DSN(t)
	}
	return filepath.Join(t.TempDir(), "server.db")
}

// --- the registry --------------------------------------------------------

// countingRegistry is docker-registry on loopback, reached through a
// reverse proxy that counts every request.
type countingRegistry struct {
	host     string // the proxy's host:port, what references name
	requests atomic.Int64
	cmd      *exec.Cmd
	logs     bytes.Buffer
	proxy    *httptest.Server
}

var (
	regOnce sync.Once
	reg     *countingRegistry
	regErr  error
)

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// registry starts docker-registry once per test binary.
func registry(t *testing.T) *countingRegistry {
	t.Helper()
	regOnce.Do(func() {
		if _, err := exec.LookPath("docker-registry"); err != nil {
			regErr = err
			return
		}
		dir := filepath.Join(tmpRoot, "registry")
		os.MkdirAll(dir, 0o700)
		addr, err := freeAddr()
		if err != nil {
			regErr = err
			return
		}
		cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), addr)
		cp := filepath.Join(dir, "config.yml")
		os.WriteFile(cp, []byte(cfg), 0o644)
		r := &countingRegistry{}
		r.cmd = exec.Command("docker-registry", "serve", cp)
		r.cmd.Stdout, r.cmd.Stderr = &r.logs, &r.logs
		if regErr = r.cmd.Start(); regErr != nil {
			return
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				regErr = fmt.Errorf("docker-registry did not listen on %s: %s", addr, r.logs.String())
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		target, _ := url.Parse("http://" + addr)
		rp := httputil.NewSingleHostReverseProxy(target)
		r.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.requests.Add(1)
			rp.ServeHTTP(w, req)
		}))
		r.host = strings.TrimPrefix(r.proxy.URL, "http://")
		reg = r
	})
	if regErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker-registry: %v (install Debian's docker-registry package; scripts/setup-test-env.sh does it)", regErr)
		}
		t.Skipf("docker-registry: %v", regErr)
	}
	return reg
}

func stopRegistry() {
	if reg != nil {
		reg.proxy.Close()
		reg.cmd.Process.Kill()
		reg.cmd.Wait()
	}
}

// --- the server process --------------------------------------------------

// adminToken is the bootstrap admin token of every server run.
const adminToken = "bkh_e2e-bootstrap-admin-token-0123456789abcdef"

// serverProc is a running `bulkhead server`.
type serverProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	addr string
	logs *servertest.Logs
	done chan error
}

// startServer runs the binary on dsn with the vulnerability database
// dbPath; addr "" picks a free port. env adds to the environment.
func startServer(t *testing.T, dsn, dbPath, addr string, env []string, args ...string) *serverProc {
	t.Helper()
	bin := bulkheadBinary(t)
	if addr == "" {
		var err error
		if addr, err = freeAddr(); err != nil {
			t.Fatal(err)
		}
	}
	p := &serverProc{t: t, addr: addr, url: "http://" + addr, logs: &servertest.Logs{}, done: make(chan error, 1)}
	all := append([]string{"server", "--listen", addr, "--database", dsn, "--db", dbPath, "--db-max-age", "0", "--insecure", "--temp-dir", t.TempDir()}, args...)
	p.cmd = exec.Command(bin, all...)
	p.cmd.Env = append(os.Environ(), append([]string{"BULKHEAD_BOOTSTRAP_TOKEN=" + adminToken}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", addr, p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("bulkhead server exited: %v\n%s", err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bulkhead server not ready in 60 s:\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process.
func (p *serverProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// stop asks for a graceful shutdown (SIGTERM), then kills.
func (p *serverProc) stop() {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// api sends a request with the admin token and decodes a JSON answer.
func (p *serverProc) api(method, path, contentType string, body []byte, out any) (int, http.Header) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %d %v: %s", method, path, resp.StatusCode, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		p.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header
}

// waitFor polls until cond is true or 60 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not done in 60 s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
