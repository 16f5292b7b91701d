package output_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/runtime/alert"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/output"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

const adminToken = "bkh_output-test-bootstrap-admin-0123456789"

// startServer runs the real bulkhead server (SQLite store, its matcher)
// on loopback and gives its URL, a scan-role and a read-role token, and
// its log.
func startServer(t *testing.T) (string, string, string, *servertest.Logs) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "osv.db")
	if _, err := vulndb.Import(context.Background(), db, []string{filepath.Join("..", "..", "vulndb", "testdata", "osv")}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s := servertest.Start(t, servertest.Options{Matcher: m, Token: adminToken, Roles: []server.Role{server.RoleScan, server.RoleRead}})
	return s.URL, s.Tokens[server.RoleScan], s.Tokens[server.RoleRead], s.Logs
}

// digestRules are the stable Falco rules with "Terminal shell in
// container" given the container's image fields, as a user's local rules
// file appends them (Falco's override: output: append).
func digestRules(t *testing.T) []string {
	t.Helper()
	local := filepath.Join(t.TempDir(), "local.yaml")
	err := os.WriteFile(local, []byte(`- rule: Terminal shell in container
  output: image=%container.image.repository digest=%container.image.digest ns=%k8s.ns.name
  override:
    output: append
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return []string{filepath.Join("testdata", "falco_rules.yaml"), local}
}

// TestWebhookToServer: alerts of the real rules engine, sent by the webhook
// with a scan token to bulkhead server's falcosidekick-compatible endpoint,
// are stored linked to the image digest and read back from the server's
// API; a refused token is final (no retries) and counted; neither token
// reaches the server's log, the sensor's output or any error.
func TestWebhookToServer(t *testing.T) {
	base, scanTok, readTok, logs := startServer(t)
	const digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	rs, err := rules.LoadFiles(digestRules(t), rules.WithHostname("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := event.ReadAll(f, "events.jsonl")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The shell's container, as the sensor sees one run by digest in a
	// Kubernetes pod.
	ct := *evs[0].Container
	ct.ImageDigest, ct.Labels = digest, map[string]string{"io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.name": "web-5d8c"}
	evs[0].Container = &ct
	m := rs.Matcher()
	var as []rules.Alert
	for i := range evs {
		for _, r := range m.Match(&evs[i]) {
			as = append(as, m.Alert(r, &evs[i]))
		}
	}
	var shell *rules.Alert
	for i := range as {
		if as[i].Rule == "Terminal shell in container" {
			shell = &as[i]
		}
	}
	if shell == nil || shell.OutputFields["container.image.digest"] != digest {
		t.Fatalf("no shell alert with the digest: %+v", as)
	}

	w := output.NewWebhook(base+"/api/v1/events/falco", output.WebhookOptions{Token: scanTok, Backoff: 10 * time.Millisecond})
	for i := range as {
		if err := w.Alert(&as[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(10 * time.Second)
	if sent, dropped, failed := w.Stats(); int(sent) != len(as) || dropped != 0 || failed != 0 {
		t.Fatalf("webhook: sent %d dropped %d failed %d of %d", sent, dropped, failed, len(as))
	}

	// The server's API: the alerts linked to the digest.
	rc, err := client.New(base, client.Options{Token: readTok})
	if err != nil {
		t.Fatal(err)
	}
	var linked []server.EventView
	if err := rc.Get(context.Background(), "/api/v1/events", url.Values{"digest": {digest}}, &linked); err != nil {
		t.Fatal(err)
	}
	if len(linked) != 1 || linked[0].Rule != "Terminal shell in container" || linked[0].Kind != "runtime" || !strings.Contains(linked[0].Output, digest) {
		t.Errorf("events of %s: %+v", digest, linked)
	}
	var all []server.EventView
	if err := rc.Get(context.Background(), "/api/v1/events", nil, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != len(as) {
		t.Errorf("the server holds %d events, the webhook sent %d", len(all), len(as))
	}

	// A wrong token: 401 is final, counted as failed, not retried.
	var posts int
	var mu sync.Mutex
	count := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		u, _ := url.Parse(base + r.URL.Path)
		req, _ := http.NewRequest(r.Method, u.String(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			rw.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}))
	defer count.Close()
	const wrong = "bkh_wrong-token-never-to-be-printed-0123456789"
	w = output.NewWebhook(count.URL+"/api/v1/events/falco", output.WebhookOptions{Token: wrong, Backoff: 10 * time.Millisecond})
	w.Alert(shell)
	w.Close(5 * time.Second)
	if sent, _, failed := w.Stats(); sent != 0 || failed != 1 || posts != 1 {
		t.Errorf("wrong token: sent %d failed %d after %d posts, want 0, 1, 1", sent, failed, posts)
	}

	// The whole alert pipeline (as bulkhead runtime replay runs it), with
	// the token from a file, to an unreachable endpoint and to a refusing
	// one: what it prints names no token.
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(wrong+"\n"), 0o600)
	tok, err := output.ReadToken(tokFile)
	if err != nil || tok != wrong {
		t.Fatalf("ReadToken: %q %v", tok, err)
	}
	for _, target := range []string{count.URL + "/api/v1/events/falco", "http://127.0.0.1:1/api/v1/events/falco"} {
		var stdout, stderr bytes.Buffer
		trace, _ := os.Open(filepath.Join("testdata", "events.jsonl"))
		_, err := alert.Run(context.Background(), alert.Options{Rules: digestRules(t), Trace: trace, TraceName: "events.jsonl",
			Output: func() (io.Writer, func() error, error) { return &stdout, func() error { return nil }, nil }, Format: "json",
			Webhook: target, WebhookToken: tok, Stderr: &stderr})
		trace.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr.String(), "failed") {
			t.Errorf("no failure counted: %s", stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), wrong) {
			t.Errorf("the token is in the sensor's output")
		}
	}
	// Errors reading a token file name the file, not its content.
	two := filepath.Join(t.TempDir(), "two")
	os.WriteFile(two, []byte(wrong+"\nsecond-line\n"), 0o600)
	if _, err := output.ReadToken(two); err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), two) {
		t.Errorf("two-line token file: %v", err)
	}
	for _, tk := range []string{scanTok, readTok, adminToken, wrong} {
		if strings.Contains(logs.String(), tk) {
			t.Errorf("a token is in the server's log")
		}
	}
}
