// Package helm tests the Helm charts under deploy/helm with the real helm
// binary (installed from the Go module proxy at a pinned version and cached;
// set HELM to use another).
package helm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/bulkhead-sec/bulkhead/admission"
	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/policy"
)

// HelmVersion is the helm the tests run: v3.21.4 builds with Go 1.26.
const HelmVersion = "v3.21.4"

const chart = "bulkhead-admission"

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm returns the helm binary, building it once per machine into the
// user cache (several minutes on 2 cores the first time).
func helm(t testing.TB) string {
	t.Helper()
	helmOnce.Do(func() {
		if h := os.Getenv("HELM"); h != "" {
			helmBin = h
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			helmErr = err
			return
		}
		dir := filepath.Join(cache, "bulkhead-tools", "helm-"+HelmVersion)
		helmBin = filepath.Join(dir, "helm")
		if _, err := os.Stat(helmBin); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "helm.sh/helm/v3/cmd/helm@"+HelmVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("go install helm %s: %v\n%s", HelmVersion, err, out)
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmBin
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func TestLint(t *testing.T) {
	out, err := runHelm(t, "lint", "--strict", chart)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("lint:\n%s", out)
	}
}

// rendered is a helm template output, by kind.
type rendered struct {
	raw  string
	objs map[string][]map[string]any
}

func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "rel", chart, "--namespace", "bulkhead"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{raw: out, objs: map[string][]map[string]any{}}
	for _, doc := range strings.Split(out, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if k, ok := m["kind"].(string); ok {
			r.objs[k] = append(r.objs[k], m)
		}
	}
	return r
}

// get walks a decoded object: get(o, "spec", "template", 0, "name").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func TestTemplate(t *testing.T) {
	r := render(t)
	for _, kind := range []string{"ValidatingWebhookConfiguration", "Deployment", "Service", "ServiceAccount", "ConfigMap", "Secret", "PodDisruptionBudget"} {
		if len(r.objs[kind]) != 1 {
			t.Errorf("%d %s objects", len(r.objs[kind]), kind)
		}
	}
	if len(r.objs["ClusterRoleBinding"])+len(r.objs["RoleBinding"]) != 0 {
		t.Error("the webhook calls no API and must be granted no role")
	}
	vwc := r.objs["ValidatingWebhookConfiguration"][0]
	wh := get(vwc, "webhooks", 0)
	if str(wh, "clientConfig", "service", "name") != "rel" || str(wh, "clientConfig", "service", "namespace") != "bulkhead" ||
		str(wh, "clientConfig", "service", "path") != "/validate" || str(wh, "sideEffects") != "None" || str(wh, "failurePolicy") != "Fail" {
		t.Errorf("webhook %v", wh)
	}
	if v := get(wh, "admissionReviewVersions"); fmt.Sprint(v) != "[v1]" {
		t.Errorf("admissionReviewVersions %v", v)
	}
	var resources []string
	for i := 0; get(wh, "rules", i) != nil; i++ {
		for _, res := range get(wh, "rules", i, "resources").([]any) {
			resources = append(resources, res.(string))
		}
	}
	// Every workload kind the webhook judges is sent to it.
	for _, want := range []string{"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs", "replicationcontrollers"} {
		if !strings.Contains(" "+strings.Join(resources, " ")+" ", " "+want+" ") {
			t.Errorf("rules miss %s: %v", want, resources)
		}
	}
	excluded := fmt.Sprint(get(wh, "namespaceSelector", "matchExpressions", 0, "values"))
	if !strings.Contains(excluded, "kube-system") || !strings.Contains(excluded, "bulkhead") {
		t.Errorf("namespaceSelector excludes %s; kube-system and the release namespace must be", excluded)
	}

	// The caBundle is the CA of the serving certificate, valid for the
	// service name the API server calls.
	caPEM, err := base64.StdEncoding.DecodeString(str(wh, "clientConfig", "caBundle"))
	if err != nil {
		t.Fatal(err)
	}
	sec := r.objs["Secret"][0]
	crt, _ := base64.StdEncoding.DecodeString(str(sec, "data", "tls.crt"))
	key, _ := base64.StdEncoding.DecodeString(str(sec, "data", "tls.key"))
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		t.Fatalf("tls.crt/tls.key: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("caBundle holds no certificate")
	}
	blk, _ := pem.Decode(crt)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "rel.bulkhead.svc"}); err != nil {
		t.Errorf("certificate does not verify for rel.bulkhead.svc: %v", err)
	}

	// The policy in the ConfigMap is valid and mounted where --policy says.
	cm := r.objs["ConfigMap"][0]
	pol := str(cm, "data", "bulkhead-policy.yaml")
	if _, err := policy.Parse("configmap", []byte(pol), ""); err != nil {
		t.Errorf("default policy: %v", err)
	}
	dep := r.objs["Deployment"][0]
	c := get(dep, "spec", "template", "spec", "containers", 0)
	args := fmt.Sprint(get(c, "args"))
	for _, want := range []string{"admission", "--policy=/etc/bulkhead/policy/bulkhead-policy.yaml", "--tls-cert=/etc/bulkhead/tls/tls.crt", "--addr=:8443"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	if str(c, "image") != "ghcr.io/bulkhead-sec/bulkhead:0.1.0" {
		t.Errorf("image %s", str(c, "image"))
	}
	if str(c, "readinessProbe", "httpGet", "path") != "/readyz" || str(c, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Error("probes")
	}

	// The chart's own workload passes Pod Security restricted, by
	// bulkhead's checks.
	objs, err := kubernetes.ParseBytes("rendered.yaml", []byte(r.raw))
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := kubernetes.New(kubernetes.Options{Level: kubernetes.LevelRestricted})
	fs, err := sc.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if c := kubernetes.CheckByID(f.ID); c != nil && c.Level != kubernetes.LevelNone {
			t.Errorf("chart workload fails %s %s: %s", f.ID, f.Title, f.Description)
		}
	}
}

func TestTemplateValues(t *testing.T) {
	r := render(t, "--set", "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"--set", "webhook.failurePolicy=Ignore", "--set", "replicaCount=1", "--set", "registryCredentialsSecret=regcred")
	c := get(r.objs["Deployment"][0], "spec", "template", "spec", "containers", 0)
	if !strings.HasSuffix(str(c, "image"), "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
		t.Errorf("image %s", str(c, "image"))
	}
	if str(r.objs["ValidatingWebhookConfiguration"][0], "webhooks", 0, "failurePolicy") != "Ignore" {
		t.Error("failurePolicy not set")
	}
	if len(r.objs["PodDisruptionBudget"]) != 0 {
		t.Error("a PodDisruptionBudget for one replica blocks node drains")
	}
	if !strings.Contains(r.raw, "DOCKER_CONFIG") || !strings.Contains(r.raw, "secretName: regcred") {
		t.Error("registry credentials not mounted")
	}
	// An existing certificate needs its CA.
	if _, err := runHelm(t, "template", "rel", chart, "--set", "tls.existingSecret=mine"); err == nil || !strings.Contains(err.Error(), "needs tls.caBundle") {
		t.Errorf("existingSecret without caBundle: %v", err)
	}
	r = render(t, "--set", "tls.existingSecret=mine", "--set", "tls.caBundle=Q0E=")
	if len(r.objs["Secret"]) != 0 || str(r.objs["ValidatingWebhookConfiguration"][0], "webhooks", 0, "clientConfig", "caBundle") != "Q0E=" {
		t.Error("existing secret: a Secret was generated or the caBundle lost")
	}
	vol := fmt.Sprint(get(r.objs["Deployment"][0], "spec", "template", "spec", "volumes"))
	if !strings.Contains(vol, "secretName:mine") {
		t.Errorf("volumes %s", vol)
	}
}

// TestRenderedServes: the webhook serves the chart's policy with the
// chart's certificate, and an API-server-like client that trusts only the
// caBundle and calls the service name gets decisions.
func TestRenderedServes(t *testing.T) {
	r := render(t)
	dir := t.TempDir()
	sec := r.objs["Secret"][0]
	for _, k := range []string{"tls.crt", "tls.key"} {
		b, _ := base64.StdEncoding.DecodeString(str(sec, "data", k))
		os.WriteFile(filepath.Join(dir, k), b, 0o600)
	}
	polPath := filepath.Join(dir, "bulkhead-policy.yaml")
	os.WriteFile(polPath, []byte(str(r.objs["ConfigMap"][0], "data", "bulkhead-policy.yaml")), 0o644)
	facts := &policy.Registry{TempDir: dir, DBPath: filepath.Join(dir, "db")}
	defer facts.Close()
	srv, err := admission.New(admission.Options{PolicyPath: polPath, Facts: facts, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")})
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

	caPEM, _ := base64.StdEncoding.DecodeString(str(r.objs["ValidatingWebhookConfiguration"][0], "webhooks", 0, "clientConfig", "caBundle"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addr := l.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "rel.bulkhead.svc"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	// A privileged pod whose image is on a registry that is down: the
	// baseline rule denies; the vulnerability rule (warn) cannot check and
	// warns.
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "127.0.0.1:1/app:1",
			"securityContext": map[string]any{"privileged": true}}}}}
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "u1", "kind": map[string]string{"kind": "Pod", "version": "v1"}, "namespace": "apps", "operation": "CREATE", "object": pod}})
	resp, err := client.Post("https://rel.bulkhead.svc:443/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rev struct {
		Response struct {
			Allowed  bool
			Warnings []string
			Status   struct{ Message string }
		}
	}
	json.Unmarshal(b, &rev)
	if rev.Response.Allowed || !strings.Contains(rev.Response.Status.Message, `rule "pod-security"`) ||
		!strings.Contains(strings.Join(rev.Response.Warnings, ";"), `rule "no-critical-vulnerabilities"`) {
		t.Errorf("response %s", b)
	}
}

func BenchmarkTemplate(b *testing.B) {
	h := helm(b)
	for b.Loop() {
		if out, err := exec.Command(h, "template", "rel", chart).CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}
