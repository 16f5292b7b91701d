// Package e2e runs bulkhead against real images built with podman, served by
// a real registry (Debian's docker-registry) on loopback and by podman's
// Docker-compatible socket, and compares what it finds with the native
// package tools on the flattened filesystems.
//
// The tests need root, podman, runc, docker-registry, rpm and debootstrap
// (scripts/setup-test-env.sh installs them). Without them the tests are
// skipped, except under CI, where a missing tool is a failure.
package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

var (
	repoRoot string
	skipWhy  string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"podman", "runc", "docker-registry", "rpm", "debootstrap", "htpasswd"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		skipWhy = "e2e needs " + strings.Join(missing, ", ") + " (run scripts/setup-test-env.sh as root)"
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "FAIL:", skipWhy)
			os.Exit(1)
		}
	}
	// The vulnerability database of these runs lives in a temp cache.
	cache, err := os.MkdirTemp("", "bulkhead-e2e-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("BULKHEAD_CACHE_DIR", cache)
	code := kubetest.Main(m) // m.Run, then stops the API server if a test started one
	os.RemoveAll(cache)
	os.Exit(code)
}

func requireEnv(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

// run runs a command and returns its standard output; stderr goes into the
// error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// bulkhead runs the CLI in-process and returns stdout, stderr and the exit
// code.
func bulkhead(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := cli.Main(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// scanJSON scans a target and decodes the JSON inventory.
func scanJSON(t *testing.T, args ...string) *inventory.Inventory {
	t.Helper()
	out, errOut, code := bulkhead(append(args, "--format", "json", "--quiet")...)
	if code != 0 {
		t.Fatalf("bulkhead %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	var doc struct {
		inventory.Inventory
		Inv *inventory.Inventory `json:"inventory"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("decode JSON report: %v\n%.500s", err, out)
	}
	if doc.Inv != nil {
		return doc.Inv
	}
	return &doc.Inventory
}

var buildMu sync.Mutex

// imageExists reports whether podman has the image already (images are
// built once per machine and reused).
func imageExists(ref string) bool {
	_, err := runErr("podman", "image", "exists", ref)
	return err == nil
}

// build builds a Containerfile (offline) into ref.
func build(t *testing.T, ref, containerfile string, files map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644)
	for name, b := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "podman", "build", "--network=none", "-q", "-t", ref, dir)
}

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// registry is a real Debian docker-registry on loopback.
type registry struct {
	addr       string
	root       string
	user, pass string
}

func startRegistry(t *testing.T, auth bool) *registry { return startRegistryTLS(t, auth, false) }

func startRegistryTLS(t *testing.T, auth, useTLS bool) *registry {
	t.Helper()
	dir := t.TempDir()
	r := &registry{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), root: filepath.Join(dir, "storage")}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", r.root, r.addr)
	if useTLS {
		cert, key := selfSigned(t, dir)
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	if auth {
		r.user, r.pass = "e2e", "s3cret-pass"
		htp := run(t, "htpasswd", "-Bbn", r.user, r.pass)
		hp := filepath.Join(dir, "htpasswd")
		os.WriteFile(hp, []byte(htp), 0o600)
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: e2e\n    path: %s\n", hp)
	}
	cp := filepath.Join(dir, "config.yml")
	os.WriteFile(cp, []byte(cfg), 0o644)
	cmd := exec.Command("docker-registry", "serve", cp)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry log:\n%s", logs.String())
		}
	})
	waitPort(t, r.addr)
	return r
}

// selfSigned writes a self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bulkhead e2e registry"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}

// push copies a podman image into the registry and returns its reference.
func (r *registry) push(t *testing.T, local, repo string) string {
	t.Helper()
	ref := r.addr + "/" + repo
	args := []string{"push", "-q", "--tls-verify=false"}
	if r.user != "" {
		args = append(args, "--creds", r.user+":"+r.pass)
	}
	run(t, "podman", append(args, local, ref)...)
	return ref
}

// podmanSocket starts podman's Docker-compatible API on a private socket.
func podmanSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "podman.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "podman", "system", "service", "--time=0", "unix://"+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return "unix://" + sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("podman socket did not come up")
	return ""
}

// flatten exports a container of the image: the flattened filesystem.
func flatten(t *testing.T, ref string, paths ...string) string {
	t.Helper()
	dir := t.TempDir()
	cid := strings.TrimSpace(run(t, "podman", "create", "-q", ref, "/bin/true"))
	defer runErr("podman", "rm", "-f", cid)
	tarPath := filepath.Join(dir, "fs.tar")
	run(t, "podman", "export", "-o", tarPath, cid)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	run(t, "tar", append([]string{"-C", root, "-xf", tarPath}, paths...)...)
	return root
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// diffSets returns what is only in a and only in b.
func diffSets(a, b []string) (onlyA, onlyB []string) {
	ma, mb := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		ma[x] = true
	}
	for _, x := range b {
		mb[x] = true
	}
	for x := range ma {
		if !mb[x] {
			onlyA = append(onlyA, x)
		}
	}
	for x := range mb {
		if !ma[x] {
			onlyB = append(onlyB, x)
		}
	}
	return
}

func sharedCorpus() string {
	p := filepath.Join(repoRoot, "..", "shared", "corpus")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}
