package e2e

// Acceptance of the admission webhook: the real `bulkhead admission`
// process over HTTPS, a real registry on loopback holding images signed
// (or not) with bulkhead's cosign-compatible signing, and real
// AdmissionReview requests; the gate must decide every case the same way.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// admissionEnv is a registry with the test images, keys, a policy and a
// running webhook.
type admissionEnv struct {
	reg    *registry
	dir    string
	policy string
	url    string
	client *http.Client
	caPEM  []byte            // the webhook's serving certificate (self-signed, for 127.0.0.1)
	images map[string]string // case -> reference in the registry
}

const admissionPolicy = `apiVersion: bulkhead.dev/v1
kind: Policy
metadata:
  name: e2e
admission:
  scanBudget: 90s
  namespaces:
    - match: dev-*
      failurePolicy: open
rules:
  - name: trusted-signature
    match:
      images: ["127.0.0.1:*/adm/**"]
    signatures:
      keys: [trusted.pub]
      attestations: [cyclonedx]
      transparencyLog: ignore # signed offline (--tlog-upload=false)
  - name: no-critical
    vulnerabilities:
      maxSeverity: HIGH
  - name: pod-security
    podSecurity:
      level: restricted
  - name: resource-limits
    mode: warn
    workload:
      checks: [BH-K8S-102, BH-K8S-103]
`

// podManifest is a pod that passes restricted (pod-security-admission's own
// restricted/pass/base.yaml fixture) running image, with edits.
func podManifest(name, ns, image string, privileged, root bool) []byte {
	sc := "      allowPrivilegeEscalation: false\n      capabilities:\n        drop: [ALL]\n"
	if privileged {
		sc = "      privileged: true\n"
	}
	podSC := "    runAsNonRoot: true\n    seccompProfile:\n      type: RuntimeDefault\n"
	if root {
		podSC = "    runAsUser: 0\n    seccompProfile:\n      type: RuntimeDefault\n"
	}
	return []byte(fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  containers:\n  - name: app\n    image: %s\n    securityContext:\n%s  securityContext:\n%s", name, ns, image, sc, podSC))
}

func admissionReview(t *testing.T, uid string, manifest []byte) []byte {
	t.Helper()
	obj, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name, Namespace string
		} `json:"metadata"`
	}
	json.Unmarshal(obj, &meta)
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": uid, "kind": map[string]string{"group": "", "version": "v1", "kind": meta.Kind},
			"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"name":     meta.Metadata.Name, "namespace": meta.Metadata.Namespace, "operation": "CREATE",
			"userInfo": map[string]any{"username": "e2e"}, "object": json.RawMessage(obj),
		},
	})
	return b
}

type reviewAnswer struct {
	Allowed  bool
	Message  string
	Warnings []string
}

func (e *admissionEnv) review(t *testing.T, manifest []byte) reviewAnswer {
	t.Helper()
	resp, err := e.client.Post(e.url+"/validate", "application/json", bytes.NewReader(admissionReview(t, "e2e-uid", manifest)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var rev struct {
		Response struct {
			UID      string   `json:"uid"`
			Allowed  bool     `json:"allowed"`
			Warnings []string `json:"warnings"`
			Status   *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &rev); err != nil || rev.Response.UID != "e2e-uid" {
		t.Fatalf("response %s: %v", b, err)
	}
	a := reviewAnswer{Allowed: rev.Response.Allowed, Warnings: rev.Response.Warnings}
	if rev.Response.Status != nil {
		a.Message = rev.Response.Status.Message
		if !a.Allowed && rev.Response.Status.Code != 403 {
			t.Errorf("deny with code %d", rev.Response.Status.Code)
		}
	}
	return a
}

var ruleName = regexp.MustCompile(`rule "([^"]+)"`)

// rulesIn lists the rules a message names.
func rulesIn(msgs ...string) []string {
	set := map[string]bool{}
	for _, m := range msgs {
		for _, s := range ruleName.FindAllStringSubmatch(m, -1) {
			set[s[1]] = true
		}
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// newAdmissionEnv pushes, signs and attests the test images in a registry
// of the test's own; each test starts its own webhook.
func newAdmissionEnv(t *testing.T) *admissionEnv {
	t.Helper()
	requireEnv(t)
	t.Setenv("COSIGN_PASSWORD", signPassword)
	e := &admissionEnv{reg: startRegistry(t, false), dir: t.TempDir(), images: map[string]string{}}
	must := func(args ...string) {
		t.Helper()
		if out, errOut, code := bulkhead(args...); code != 0 {
			t.Fatalf("bulkhead %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	trusted, other := filepath.Join(e.dir, "trusted"), filepath.Join(e.dir, "other")
	must("generate-key-pair", "--output-key-prefix", trusted)
	must("generate-key-pair", "--output-key-prefix", other)

	clean := signImage(t, 1)
	moved := signImage(t, 2)
	demo := loadDemo(t)
	sbom := filepath.Join(e.dir, "sbom.cdx.json")
	signAttest := func(ref, key string) {
		must("sign", "--key", key+".key", "--tlog-upload=false", ref)
		must("attest", "--key", key+".key", "--tlog-upload=false", "--type", "cyclonedx", "--predicate", sbom, ref)
	}
	e.images["clean"] = e.reg.push(t, clean, "adm/clean:1")
	must("image", "--quiet", "--scanners", "none", "-f", "cyclonedx", "-o", sbom, e.images["clean"])
	signAttest(e.images["clean"], trusted)
	e.images["unsigned"] = e.reg.push(t, clean, "adm/unsigned:1")
	e.images["other-key"] = e.reg.push(t, clean, "adm/other-key:1")
	signAttest(e.images["other-key"], other)
	e.images["signed-no-sbom"] = e.reg.push(t, clean, "adm/no-sbom:1")
	must("sign", "--key", trusted+".key", "--tlog-upload=false", e.images["signed-no-sbom"])
	e.images["retagged"] = e.reg.push(t, clean, "adm/retagged:1")
	signAttest(e.images["retagged"], trusted)
	e.reg.push(t, moved, "adm/retagged:1") // the tag now names an image nobody signed
	e.images["vulnerable"] = e.reg.push(t, demo, "adm/demo:1")
	signAttest(e.images["vulnerable"], trusted)

	e.policy = filepath.Join(e.dir, "bulkhead-policy.yaml")
	os.WriteFile(e.policy, []byte(admissionPolicy), 0o644)
	return e
}

// loadDemo loads the repository's demo image (it has a CRITICAL
// vulnerability: minimist 1.2.5, GHSA-xvch-5gv4-984h) into podman.
func loadDemo(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := run(t, "podman", "load", "-i", filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"))
	for _, l := range lines(out) {
		if name, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			return strings.TrimSpace(strings.Split(name, ",")[0])
		}
	}
	t.Fatalf("podman load named no image:\n%s", out)
	return ""
}

// startWebhook runs `bulkhead admission` over TLS and waits until ready.
func (e *admissionEnv) startWebhook(t *testing.T, extra ...string) {
	t.Helper()
	bin := buildBulkhead(t)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"admission", "--policy", e.policy, "--tls-cert", cert, "--tls-key", key, "--addr", addr,
		"--cache-dir", filepath.Join(dir, "cache")}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("webhook log (last 4 KB):\n%s", tail(logs.String(), 4096))
		}
	})
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	e.caPEM = pem
	e.client = &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}}
	e.url = "https://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := e.client.Get(e.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("webhook not ready:\n%s", logs.String())
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// gateDecision runs `bulkhead gate` on the same manifest and returns
// whether it allowed and the rules it denied with.
func (e *admissionEnv) gateDecision(t *testing.T, manifest []byte) (bool, []string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(p, manifest, 0o644)
	out, errOut, code := bulkhead("gate", "--policy", e.policy, "--insecure", "--json", "-", p)
	if code != 0 && code != 1 {
		t.Fatalf("gate: exit %d: %s", code, errOut)
	}
	i := strings.Index(out, "\n{")
	if i < 0 {
		t.Fatalf("gate printed no JSON:\n%s", out)
	}
	var rep struct {
		Targets []struct {
			Decision struct {
				Allowed bool `json:"allowed"`
				Results []struct {
					Rule    string `json:"rule"`
					Outcome string `json:"outcome"`
				} `json:"results"`
			} `json:"decision"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out[i+1:]), &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("gate JSON: %v\n%s", err, out)
	}
	var denied []string
	for _, r := range rep.Targets[0].Decision.Results {
		if r.Outcome == "deny" {
			denied = append(denied, r.Rule)
		}
	}
	sort.Strings(denied)
	if (code == 0) != rep.Targets[0].Decision.Allowed {
		t.Errorf("gate exit %d but allowed=%v", code, rep.Targets[0].Decision.Allowed)
	}
	return rep.Targets[0].Decision.Allowed, denied
}

// admissionCase is one pod the admission policy judges, with the verdict it
// must get: the table TestAdmissionDecisions sends as AdmissionReviews and
// TestAdmissionThroughAPIServer creates through a real API server.
type admissionCase struct {
	name       string
	image      string // a key of admissionEnv.images
	privileged bool
	root       bool
	allowed    bool
	deniedBy   []string // the rules the denial names
	want       string   // in the denial message
}

var admissionCases = []admissionCase{
	{name: "signed and clean", image: "clean", allowed: true},
	{name: "unsigned", image: "unsigned", deniedBy: []string{"trusted-signature"}, want: "no valid signature by a trusted key"},
	{name: "signed by another key", image: "other-key", deniedBy: []string{"trusted-signature"}, want: "no valid signature by a trusted key"},
	{name: "signed without SBOM attestation", image: "signed-no-sbom", deniedBy: []string{"trusted-signature"}, want: "no cyclonedx attestation"},
	{name: "re-tagged after signing", image: "retagged", deniedBy: []string{"trusted-signature"}, want: "no valid signature"},
	{name: "critical vulnerability", image: "vulnerable", deniedBy: []string{"no-critical"}, want: "CRITICAL GHSA-xvch-5gv4-984h in minimist 1.2.5"},
	{name: "privileged", image: "clean", privileged: true, deniedBy: []string{"pod-security"}, want: "BH-K8S-003 Privileged container"},
	{name: "root under restricted", image: "clean", root: true, deniedBy: []string{"pod-security"}, want: "BH-K8S-023 Runs as UID 0"},
}

// pod is the case's pod manifest in namespace ns.
func (tc admissionCase) pod(e *admissionEnv, ns string) []byte {
	name := "p-" + strings.ReplaceAll(tc.image, "-", "")
	if tc.privileged {
		name += "-priv"
	}
	if tc.root {
		name += "-root"
	}
	return podManifest(name, ns, e.images[tc.image], tc.privileged, tc.root)
}

// check compares a verdict (allowed, the message, the warnings) with the
// case's.
func (tc admissionCase) check(t *testing.T, allowed bool, msg string, warnings []string) {
	t.Helper()
	if allowed != tc.allowed {
		t.Fatalf("allowed=%v: %s", allowed, msg)
	}
	if got := rulesIn(msg); strings.Join(got, ",") != strings.Join(tc.deniedBy, ",") {
		t.Errorf("denied by %v, want %v: %s", got, tc.deniedBy, msg)
	}
	if !strings.Contains(msg, tc.want) {
		t.Errorf("message lacks %q: %s", tc.want, msg)
	}
	// The warn rule (no limits in these pods) allows with a warning; so
	// does the signature rule where it passes, since it says
	// transparencyLog: ignore.
	wantWarn := "resource-limits,trusted-signature"
	if slices.Contains(tc.deniedBy, "trusted-signature") {
		wantWarn = "resource-limits"
	}
	if got := rulesIn(warnings...); strings.Join(got, ",") != wantWarn {
		t.Errorf("warnings %q, want rules %s", warnings, wantWarn)
	}
}

func TestAdmissionDecisions(t *testing.T) {
	e := newAdmissionEnv(t)
	e.startWebhook(t, "--tag-ttl", "0")
	for _, tc := range admissionCases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.pod(e, "prod")
			a := e.review(t, m)
			t.Logf("webhook: allowed=%v %s; warnings %q", a.Allowed, a.Message, a.Warnings)
			tc.check(t, a.Allowed, a.Message, a.Warnings)
			// The gate decides the same.
			allowed, denied := e.gateDecision(t, m)
			if allowed != a.Allowed || strings.Join(denied, ",") != strings.Join(tc.deniedBy, ",") {
				t.Errorf("gate: allowed=%v denied by %v; webhook: allowed=%v denied by %v", allowed, denied, a.Allowed, tc.deniedBy)
			}
		})
	}
	// Metrics count decisions by rule.
	resp, err := e.client.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `bulkhead_admission_rule_results_total{outcome="deny",rule="trusted-signature"} 4`) {
		t.Errorf("metrics:\n%s", grepLines(string(m), "bulkhead_admission_rule_results_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAdmissionRegistryOutage: with the registry gone, fail-closed
// namespaces deny and fail-open ones admit with a warning.
func TestAdmissionRegistryOutage(t *testing.T) {
	e := newAdmissionEnv(t)
	// A registry of its own, stopped after the push: the outage.
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "s"), addr)), 0o644)
	reg := exec.Command("docker-registry", "serve", cfg)
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { reg.Process.Kill(); reg.Wait() }()
	waitPort(t, addr)
	r2 := &registry{addr: addr}
	ref := r2.push(t, signImage(t, 1), "adm/outage:1")
	mustOK := func(args ...string) {
		if _, errOut, code := bulkhead(args...); code != 0 {
			t.Fatalf("bulkhead %v: %s", args, errOut)
		}
	}
	key := filepath.Join(e.dir, "trusted.key")
	mustOK("sign", "--key", key, "--tlog-upload=false", ref)
	sbom := filepath.Join(e.dir, "sbom.cdx.json")
	mustOK("attest", "--key", key, "--tlog-upload=false", "--type", "cyclonedx", "--predicate", sbom, ref)

	e.startWebhook(t, "--tag-ttl", "0")
	if a := e.review(t, podManifest("before", "prod", ref, false, false)); !a.Allowed {
		t.Fatalf("before the outage: denied: %s", a.Message)
	}
	reg.Process.Kill()
	reg.Wait()
	a := e.review(t, podManifest("closed", "prod", ref, false, false))
	if a.Allowed || !strings.Contains(a.Message, "could not be checked") || !strings.Contains(a.Message, "fail-closed") {
		t.Errorf("prod during the outage: allowed=%v %s", a.Allowed, a.Message)
	}
	a = e.review(t, podManifest("open", "dev-team", ref, false, false))
	if !a.Allowed || !strings.Contains(strings.Join(a.Warnings, "\n"), "fail-open") {
		t.Errorf("dev-team during the outage: allowed=%v %s %q", a.Allowed, a.Message, a.Warnings)
	}
	// Namespaces the policy exempts are never judged.
	if a := e.review(t, podManifest("sys", "kube-system", ref, true, true)); !a.Allowed {
		t.Errorf("kube-system denied: %s", a.Message)
	}
}

// TestAdmissionLoad: a warm cache answers a sustained request rate on
// loopback with a low p99 and no errors. The default bound is small;
// bench/admission.sh runs it at 200 requests/s (BULKHEAD_LOAD_RPS,
// BULKHEAD_LOAD_SECONDS, BULKHEAD_LOAD_P99_MS).
func TestAdmissionLoad(t *testing.T) {
	e := newAdmissionEnv(t)
	e.startWebhook(t)
	rps, secs, p99ms := envInt("BULKHEAD_LOAD_RPS", 100), envInt("BULKHEAD_LOAD_SECONDS", 5), envInt("BULKHEAD_LOAD_P99_MS", 100)
	allowed := admissionReview(t, "load-allow", podManifest("load", "prod", e.images["clean"], false, false))
	denied := admissionReview(t, "load-deny", podManifest("load", "prod", e.images["vulnerable"], false, false))
	// Warm the cache: first scans and verifications happen here.
	for _, body := range [][]byte{allowed, denied} {
		resp, err := e.client.Post(e.url+"/validate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	res := loadGenerate(e.client, e.url+"/validate", [][]byte{allowed, denied}, rps, time.Duration(secs)*time.Second)
	t.Logf("%d requests in %v (%.0f/s): p50 %v p90 %v p99 %v max %v, %d errors, %d wrong answers",
		res.n, res.elapsed.Round(time.Millisecond), float64(res.n)/res.elapsed.Seconds(), res.p(50), res.p(90), res.p(99), res.p(100), res.errors, res.wrong)
	if res.errors > 0 || res.wrong > 0 {
		t.Errorf("%d errors, %d wrong answers (first error: %v)", res.errors, res.wrong, res.firstErr)
	}
	if float64(res.n)/res.elapsed.Seconds() < 0.95*float64(rps) {
		t.Errorf("sustained only %.0f requests/s of %d", float64(res.n)/res.elapsed.Seconds(), rps)
	}
	if res.p(99) > time.Duration(p99ms)*time.Millisecond {
		t.Errorf("p99 %v over %d ms", res.p(99), p99ms)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type loadResult struct {
	n, errors, wrong int
	firstErr         error
	elapsed          time.Duration
	lat              []time.Duration
}

func (r *loadResult) p(q int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := (len(r.lat)*q + 99) / 100
	if i >= len(r.lat) {
		i = len(r.lat) - 1
	}
	if i > 0 && q < 100 {
		i--
	}
	return r.lat[i]
}

// loadGenerate sends requests at a fixed rate (open loop: a slow answer
// does not slow the sender, so latency is measured honestly), alternating
// bodies whose answers it checks: even bodies must be allowed, odd denied.
func loadGenerate(c *http.Client, url string, bodies [][]byte, rps int, d time.Duration) *loadResult {
	res := &loadResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rps)
	total := int(d / interval)
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	start := time.Now()
	for i := 0; i < total; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := bodies[i%len(bodies)]
			req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := c.Do(req)
			var out []byte
			if err == nil {
				out, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			res.n++
			res.lat = append(res.lat, lat)
			if err != nil {
				res.errors++
				if res.firstErr == nil {
					res.firstErr = err
				}
				return
			}
			wantAllowed := i%2 == 0
			if bytes.Contains(out, []byte(`"allowed":true`)) != wantAllowed {
				res.wrong++
			}
		}(i)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	return res
}
