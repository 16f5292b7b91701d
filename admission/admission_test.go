package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/sign/key"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// demoFacts answers from a real scan of the repository's demo image for
// every reference; references naming "down.example" fail like an
// unreachable registry.
type demoFacts struct{ scan *policy.Scan }

var (
	demoOnce sync.Once
	demoScan *policy.Scan
	demoErr  error
)

func newDemoFacts(t testing.TB) *demoFacts {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "admission-test-")
		if err != nil {
			demoErr = err
			return
		}
		dbPath := filepath.Join(dir, "db")
		if _, demoErr = vulndb.EnsureBundled(dbPath); demoErr != nil {
			return
		}
		db, err := vulndb.Open(dbPath)
		if err != nil {
			demoErr = err
			return
		}
		defer db.Close()
		img, err := image.Open(context.Background(), "oci-archive:../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: dir})
		if err != nil {
			demoErr = err
			return
		}
		defer img.Close()
		demoScan, demoErr = policy.ScanImage(context.Background(), img, db, nil, dir)
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return &demoFacts{scan: demoScan}
}

func (d *demoFacts) Resolve(_ context.Context, img *policy.Image) (string, error) {
	if strings.Contains(img.Ref, "down.example") {
		return "", errors.New("dial tcp: connection refused")
	}
	return d.scan.Digest, nil
}
func (d *demoFacts) Verify(context.Context, *policy.Image, *policy.SignatureRule) error { return nil }
func (d *demoFacts) Scan(context.Context, *policy.Image) (*policy.Scan, error)          { return d.scan, nil }

const testPolicy = `apiVersion: bulkhead.dev/v1
kind: Policy
admission:
  namespaces: [{match: dev-*, failurePolicy: open}]
rules:
  - name: pod-security
    podSecurity: {level: restricted}
  - name: no-critical
    match: {images: ["ghcr.io/acme/vulnerable"]}
    vulnerabilities: {maxSeverity: HIGH}
  - name: limits
    mode: warn
    workload: {checks: [BH-K8S-102]}
`

func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "bulkhead-policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// review wraps a manifest file (a fixture) in an AdmissionReview.
func review(t testing.TB, kind, ns, file, image string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if image != "" {
		raw = bytes.ReplaceAll(raw, []byte("registry.k8s.io/pause"), []byte(image))
	}
	obj, err := yamlToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	rev := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "kind": map[string]any{"group": "", "version": "v1", "kind": kind},
			"resource":  map[string]any{"group": "", "version": "v1", "resource": strings.ToLower(kind) + "s"},
			"namespace": ns, "operation": "CREATE", "userInfo": map[string]any{"username": "alice"},
			"object": json.RawMessage(obj),
		},
	}
	b, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fixture struct {
	srv    *Server
	ts     *httptest.Server
	client *http.Client
	dir    string
	logs   *bytes.Buffer
}

func newFixture(t *testing.T, pol string) *fixture {
	t.Helper()
	dir := t.TempDir()
	logs := &bytes.Buffer{}
	srv, err := New(Options{PolicyPath: writePolicy(t, dir, pol), Facts: newDemoFacts(t), Logger: jsonLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &fixture{srv: srv, ts: ts, client: ts.Client(), dir: dir, logs: logs}
}

func (f *fixture) post(t *testing.T, body []byte, contentType string) (*http.Response, *admissionv1.AdmissionReview) {
	t.Helper()
	resp, err := f.client.Post(f.ts.URL+"/validate", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp, nil
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &rev); err != nil {
		t.Fatalf("decode response: %v\n%s", err, b)
	}
	return resp, &rev
}

const (
	podsDir = "../policy/testdata/pods/"
)

func TestValidate(t *testing.T) {
	f := newFixture(t, testPolicy)
	for _, tc := range []struct {
		name, kind, ns, file, image string
		allowed                     bool
		want                        []string
		warnings                    int
	}{
		{"restricted pod", "Pod", "prod", podsDir + "restricted-pass.yaml", "ghcr.io/acme/app:1", true, nil, 1},
		{"privileged pod", "Pod", "prod", podsDir + "privileged.yaml", "ghcr.io/acme/app:1", false, []string{`rule "pod-security"`, "BH-K8S-003 Privileged container"}, 1},
		{"root pod", "Pod", "prod", podsDir + "root.yaml", "ghcr.io/acme/app:1", false, []string{`rule "pod-security"`, "BH-K8S-022"}, 1},
		{"critical vulnerability", "Pod", "prod", podsDir + "restricted-pass.yaml", "ghcr.io/acme/vulnerable:2", false, []string{`rule "no-critical"`, "GHSA-xvch-5gv4-984h"}, 1},
		{"exempt namespace", "Pod", "kube-system", podsDir + "privileged.yaml", "ghcr.io/acme/app:1", true, nil, 0},
		{"deployment template", "Deployment", "prod", "testdata/deployment.yaml", "", false, []string{`rule "pod-security"`, "Deployment redis-master violates Pod Security restricted", "BH-K8S-022"}, 1},
		{"not a workload", "Secret", "prod", "testdata/secret.yaml", "", true, nil, 0},
		{"pod kind with garbage object", "Pod", "prod", "testdata/secret.yaml", "", false, []string{"cannot read the Pod"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, rev := f.post(t, review(t, tc.kind, tc.ns, tc.file, tc.image), "application/json")
			if rev == nil {
				t.Fatalf("status %d", resp.StatusCode)
			}
			r := rev.Response
			if r == nil || r.UID != "0df28fbd-5f5f-11e8-bc74-36e6bb280816" || rev.APIVersion != "admission.k8s.io/v1" {
				t.Fatalf("response %+v", rev)
			}
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed %v: %+v", r.Allowed, r.Result)
			}
			for _, w := range tc.want {
				if r.Result == nil || !strings.Contains(r.Result.Message, w) || r.Result.Code != 403 {
					t.Errorf("missing %q in %+v", w, r.Result)
				}
			}
			if len(r.Warnings) != tc.warnings {
				t.Errorf("warnings %q", r.Warnings)
			}
		})
	}
	// Metrics count decisions by rule; logs are JSON lines.
	resp, err := f.client.Get(f.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`bulkhead_admission_rule_results_total{outcome="deny",rule="pod-security"} 3`,
		`bulkhead_admission_requests_total{decision="deny"} 5`, "bulkhead_admission_request_duration_seconds_bucket"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	line, _, _ := strings.Cut(f.logs.String(), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] != "admission decision" || rec["uid"] == nil {
		t.Errorf("log line %q: %v", line, err)
	}
}

// TestBadRequests: malformed reviews, wrong content types and huge bodies
// get 4xx answers, never an allow.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, testPolicy)
	good := review(t, "Pod", "prod", podsDir+"privileged.yaml", "")
	huge := append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","pad":"`), bytes.Repeat([]byte("a"), MaxBodySize)...)
	huge = append(huge, `"}}`...)
	for _, tc := range []struct {
		name, ct string
		body     []byte
		status   int
	}{
		{"text/plain", "text/plain", good, 415},
		{"no content type", "", good, 415},
		{"yaml", "application/yaml", good, 415},
		{"huge", "application/json", huge, 413},
		{"not json", "application/json", []byte("{not json"), 400},
		{"empty", "application/json", nil, 400},
		{"v1beta1", "application/json", bytes.Replace(good, []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1), 400},
		{"no request", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400},
		{"no uid", "application/json", bytes.Replace(good, []byte(`"uid":"0df28fbd-5f5f-11e8-bc74-36e6bb280816"`), []byte(`"uid":""`), 1), 400},
		{"with response", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a"},"response":{"uid":"a","allowed":true}}`), 400},
		{"wrong types", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}`), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, rev := f.post(t, tc.body, tc.ct)
			if resp.StatusCode != tc.status || rev != nil {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	resp, err := f.client.Get(f.ts.URL + "/validate")
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /validate: %v %v", resp.StatusCode, err)
	}
}

func TestFailMode(t *testing.T) {
	pub, _ := filepath.Abs("../policy/testdata/release.pub")
	f := newFixture(t, testPolicy+"  - name: signed\n    signatures: {keys: ["+pub+"]}\n")
	body := review(t, "Pod", "prod", podsDir+"restricted-pass.yaml", "down.example/app:1")
	_, rev := f.post(t, body, "application/json")
	if rev.Response.Allowed || !strings.Contains(rev.Response.Result.Message, "fail-closed") {
		t.Errorf("prod: %+v", rev.Response)
	}
	body = review(t, "Pod", "dev-alice", podsDir+"restricted-pass.yaml", "down.example/app:1")
	_, rev = f.post(t, body, "application/json")
	if !rev.Response.Allowed || !strings.Contains(strings.Join(rev.Response.Warnings, ";"), "fail-open") {
		t.Errorf("dev: %+v", rev.Response)
	}
}

func TestHealthAndReload(t *testing.T) {
	f := newFixture(t, testPolicy)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := f.client.Get(f.ts.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, resp.StatusCode, err)
		}
	}
	body := review(t, "Pod", "prod", podsDir+"root.yaml", "ghcr.io/acme/app:1")
	if _, rev := f.post(t, body, "application/json"); rev.Response.Allowed {
		t.Fatal("root pod allowed under restricted")
	}
	// A broken edit keeps the policy in force.
	p := filepath.Join(f.dir, "bulkhead-policy.yaml")
	os.WriteFile(p, []byte(strings.Replace(testPolicy, "level: restricted", "level: strict", 1)), 0o644)
	f.srv.Reload()
	if _, rev := f.post(t, body, "application/json"); rev.Response.Allowed {
		t.Fatal("a broken policy edit changed decisions")
	}
	if !strings.Contains(f.logs.String(), "policy reload failed") {
		t.Error("the failed reload was not logged")
	}
	// A good edit takes effect without a restart.
	os.WriteFile(p, []byte(strings.Replace(testPolicy, "level: restricted", "level: baseline", 1)), 0o644)
	f.srv.Reload()
	if _, rev := f.post(t, body, "application/json"); !rev.Response.Allowed {
		t.Fatalf("reloaded baseline policy still denies: %+v", rev.Response.Result)
	}
	// Watch picks changes up by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.srv.opts.ReloadInterval = 20 * time.Millisecond
	go f.srv.Watch(ctx)
	os.WriteFile(p, []byte(testPolicy), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, rev := f.post(t, body, "application/json"); !rev.Response.Allowed {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("Watch did not reload the policy")
}

// TestConcurrentReviews: one server judges many requests at once (the API
// server sends them in parallel) with the same answers as one at a time;
// run with -race.
func TestConcurrentReviews(t *testing.T) {
	f := newFixture(t, testPolicy)
	bodies := map[string]bool{
		string(review(t, "Pod", "prod", podsDir+"restricted-pass.yaml", "ghcr.io/acme/app:1")):        true,
		string(review(t, "Pod", "prod", podsDir+"privileged.yaml", "ghcr.io/acme/app:1")):             false,
		string(review(t, "Pod", "prod", podsDir+"restricted-pass.yaml", "ghcr.io/acme/vulnerable:1")): false,
		string(review(t, "Deployment", "prod", "testdata/deployment.yaml", "")):                       false,
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				for body, want := range bodies {
					rev, err := DecodeReview([]byte(body))
					if err != nil {
						errs <- err.Error()
						return
					}
					if got := f.srv.Review(context.Background(), rev.Request).Allowed; got != want {
						errs <- fmt.Sprintf("allowed %v, want %v", got, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestKeyRotationReloads: a changed key file reloads the policy even
// though the policy file itself did not change; an unchanged one does not.
func TestKeyRotationReloads(t *testing.T) {
	dir := t.TempDir()
	pub, err := os.ReadFile("../policy/testdata/release.pub")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644)
	p := writePolicy(t, dir, testPolicy+"  - name: signed\n    signatures: {keys: [release.pub]}\n")
	srv, err := New(Options{PolicyPath: p, Facts: newDemoFacts(t)})
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Policy()
	srv.Reload()
	if srv.Policy() != before {
		t.Fatal("reloaded with nothing changed")
	}
	_, newPub, err := key.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "release.pub"), newPub, 0o644)
	srv.Reload()
	if srv.Policy() == before {
		t.Fatal("a rotated key file did not reload the policy")
	}
}

func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, cert, key, 1)
	srv, err := New(Options{PolicyPath: writePolicy(t, dir, testPolicy), Facts: newDemoFacts(t), CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	defer hs.Close()
	serial := func() int64 {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	time.Sleep(10 * time.Millisecond)
	writeCert(t, cert, key, 2)
	srv.Reload()
	if s := serial(); s != 2 {
		t.Fatalf("after reload: serial %d", s)
	}
}

func writeCert(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "bulkhead-admission"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func FuzzDecodeReview(f *testing.F) {
	for _, file := range []string{podsDir + "privileged.yaml", podsDir + "restricted-pass.yaml", "testdata/deployment.yaml"} {
		f.Add(review(f, "Pod", "prod", file, ""))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","kind":{"kind":"Pod"},"operation":"CREATE","object":{"kind":"Pod","spec":null}}}`))
	// The decoder and the judging are under test here, not the scan: an
	// image without findings keeps every exec cheap.
	p := filepath.Join(f.TempDir(), "bulkhead-policy.yaml")
	os.WriteFile(p, []byte(testPolicy), 0o644)
	srv, err := New(Options{PolicyPath: p, Facts: &demoFacts{scan: &policy.Scan{Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rev, err := DecodeReview(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Status < 400 || re.Status > 499 {
				t.Fatalf("error %v is not a 4xx RequestError", err)
			}
			return
		}
		if rev.Request == nil || rev.Request.UID == "" {
			t.Fatal("accepted a review without request uid")
		}
		// Whatever decodes gets judged without a panic, and a pod kind
		// whose object is unreadable is never allowed.
		resp := srv.Review(context.Background(), rev.Request)
		if resp.UID != rev.Request.UID {
			t.Fatal("response uid differs")
		}
	})
}

func BenchmarkReview(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "bulkhead-policy.yaml")
	os.WriteFile(p, []byte(testPolicy), 0o644)
	srv, err := New(Options{PolicyPath: p, Facts: newDemoFacts(b)})
	if err != nil {
		b.Fatal(err)
	}
	rev, err := DecodeReview(review(b, "Pod", "prod", podsDir+"restricted-pass.yaml", "ghcr.io/acme/app:1"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		srv.Review(context.Background(), rev.Request)
	}
}
