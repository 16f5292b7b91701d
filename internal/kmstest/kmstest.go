// Package kmstest runs a real AWS-KMS-compatible server on loopback for the
// tests of one test binary: nsmithuk/local-kms, built from the Go module
// proxy by scripts/local-kms.sh and cached outside the clone
// (/var/cache/bulkhead-kms/<version>/local-kms, or $BULKHEAD_KMS_CACHE/...;
// $BULKHEAD_LOCAL_KMS names another binary). Without the binary the tests
// are skipped, except under CI, where that is a failure that says to run
// the script.
//
// The package's TestMain calls Main, which points the AWS SDK of this
// process at the server's dummy credentials and region and makes the TLS
// front's certificate the SDK's trusted root (AWS_CA_BUNDLE);
// the first test that needs the server calls Start, later calls share it,
// and Main stops it when the tests are done.
//
// sigstore's AWS provider talks https to an endpoint named in the
// reference (awskms://HOST:PORT/alias/NAME, the form cosign documents), so
// the server is reached through a TLS reverse proxy on loopback; the plain
// endpoint (AWS_ENDPOINT_URL) is there too.
package kmstest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the local-kms module version scripts/local-kms.sh builds.
const Version = "v0.0.0-20260228092603-2a5e92d09ab6"

// DefaultCacheRoot is where scripts/local-kms.sh caches the binary.
const DefaultCacheRoot = "/var/cache/bulkhead-kms"

// Dummy credentials and region the tests' AWS SDK and cosign use; local-kms
// checks no signature. The secret is distinctive so tests can grep logs
// and errors for it.
const (
	AccessKeyID     = "AKIABULKHEADKMSTEST0"
	SecretAccessKey = "bulkhead-kmstest-secret-9f2c1d7e4b"
	Region          = "eu-west-2"
)

// ErrNoBinary is wrapped by Binary's error when local-kms is missing.
var ErrNoBinary = errors.New("the local-kms binary is missing")

// Binary returns the local-kms executable: $BULKHEAD_LOCAL_KMS, or the
// cache's. The error wraps ErrNoBinary and says how to build it.
func Binary() (string, error) {
	if p := os.Getenv("BULKHEAD_LOCAL_KMS"); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return p, fmt.Errorf("%w: BULKHEAD_LOCAL_KMS=%s is not an executable", ErrNoBinary, p)
		}
		return p, nil
	}
	root := os.Getenv("BULKHEAD_KMS_CACHE")
	if root == "" {
		root = DefaultCacheRoot
	}
	p := filepath.Join(root, Version, "local-kms")
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return p, fmt.Errorf("%w: no %s; build it with scripts/local-kms.sh (scripts/setup-test-env.sh runs it)", ErrNoBinary, p)
	}
	return p, nil
}

// Server is the running local-kms.
type Server struct {
	// Endpoint is its plain endpoint (http://127.0.0.1:PORT), for
	// AWS_ENDPOINT_URL with awskms:///... references.
	Endpoint string
	// TLSHost is localhost:PORT of the TLS front, for
	// awskms://localhost:PORT/... references.
	TLSHost string
	// CertFile holds the TLS front's certificate (PEM); AWS_CA_BUNDLE
	// names it.
	CertFile string
	// LogFile holds local-kms's output.
	LogFile string

	cmd   *exec.Cmd
	front *httptest.Server
	dir   string
}

// Ref is the awskms reference of an alias through the TLS front, as cosign
// and bulkhead take it.
func (s *Server) Ref(alias string) string { return "awskms://" + s.TLSHost + "/alias/" + alias }

// Env is the environment a child process (cosign, a built bulkhead) needs
// to use the server: os.Environ with the credentials, the region and the
// trusted certificate.
func (s *Server) Env() []string {
	return append(os.Environ(), "AWS_ACCESS_KEY_ID="+AccessKeyID, "AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
		"AWS_REGION="+Region, "AWS_EC2_METADATA_DISABLED=true", "AWS_CA_BUNDLE="+s.CertFile)
}

var (
	mu       sync.Mutex
	inMain   bool
	shared   *Server
	startErr error
	certPEM  []byte
	certKey  *ecdsa.PrivateKey
	certFile string
)

// Main sets this process's AWS environment and trusted root, runs the
// tests and stops the server if a test started one. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kmstest.Main(m)) }
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	dir, err := os.MkdirTemp("", "bulkhead-kmstest-")
	if err == nil {
		err = makeCert(dir)
	}
	if err != nil {
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "kmstest: %v\n", err)
		return 1
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": AccessKeyID, "AWS_SECRET_ACCESS_KEY": SecretAccessKey, "AWS_REGION": Region,
		// Never ask an instance metadata service off the machine.
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"), "AWS_CA_BUNDLE": certFile,
	} {
		os.Setenv(k, v)
	}
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
	os.RemoveAll(dir)
	return code
}

// makeCert makes the TLS front's self-signed certificate for localhost and
// 127.0.0.1 and writes it to dir/ca.pem.
func makeCert(dir string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulkhead kmstest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certKey = k
	certFile = filepath.Join(dir, "ca.pem")
	return os.WriteFile(certFile, certPEM, 0o644)
}

// ciStrict reports whether a missing binary is a failure (CI set, and not
// to "false" or "0").
func ciStrict() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Start returns the test binary's local-kms, starting it on the first call.
// Without the binary it skips the test (under CI it fails it).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if ciStrict() {
			t.Fatalf("kmstest: %v", err)
		}
		t.Skipf("kmstest: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("kmstest: call kmstest.Main from the package's TestMain")
	}
	if shared == nil && startErr == nil {
		began := time.Now()
		shared, startErr = start(bin)
		if startErr == nil {
			t.Logf("kmstest: local-kms %s on %s (TLS %s) ready in %v", Version, shared.Endpoint, shared.TLSHost, time.Since(began).Round(time.Millisecond))
		}
	}
	if startErr != nil {
		t.Fatalf("kmstest: %v", startErr)
	}
	return shared
}

var startedRE = regexp.MustCompile(`Local KMS started on [^:\s]*:(\d+)`)

func start(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "bulkhead-local-kms-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, LogFile: filepath.Join(dir, "local-kms.log"), CertFile: certFile}
	logf, err := os.Create(s.LogFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	// PORT=0: any free port, which local-kms logs.
	cmd.Env = append(os.Environ(), "PORT=0", "KMS_DATA_PATH="+filepath.Join(dir, "data"),
		"KMS_SEED_PATH="+filepath.Join(dir, "no-seed.yaml"), "KMS_REGION="+Region, "KMS_ACCOUNT_ID=111122223333")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd = cmd
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				port <- m[1]
				sent = true
			}
		}
		logf.Close()
	}()
	go func() { cmd.Wait(); pw.Close() }()
	select {
	case p := <-port:
		s.Endpoint = "http://127.0.0.1:" + p
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("local-kms did not say it had started within 60 s (log %s)", s.LogFile)
	}
	u, _ := url.Parse(s.Endpoint)
	cert, err := tls.X509KeyPair(certPEM, keyPEM())
	if err != nil {
		s.stop()
		return nil, err
	}
	s.front = httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	s.front.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.front.StartTLS()
	s.TLSHost = "localhost:" + s.front.URL[strings.LastIndex(s.front.URL, ":")+1:]
	return s, nil
}

func keyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(certKey)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func (s *Server) stop() {
	if s.front != nil {
		s.front.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	os.RemoveAll(s.dir)
}
