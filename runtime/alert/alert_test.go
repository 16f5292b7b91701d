package alert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// trace opens the recorded event stream: 14 events, 8 of them attacks the
// bundled stable rules catch.
func trace(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "recording.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type jsonAlert struct {
	Rule         string         `json:"rule"`
	Priority     string         `json:"priority"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
}

func decode(t *testing.T, b []byte) []jsonAlert {
	t.Helper()
	var as []jsonAlert
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a jsonAlert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("alert line %q: %v", sc.Text(), err)
		}
		as = append(as, a)
	}
	return as
}

func TestRunTrace(t *testing.T) {
	var out, stderr bytes.Buffer
	st, err := Run(context.Background(), Options{
		Output: To(&out), Format: "json",
		Trace: trace(t), TraceName: "recording.jsonl",
		Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 14 || st.Alerts != 8 {
		t.Fatalf("stats %+v, want 14 events and 8 alerts", st)
	}
	as := decode(t, out.Bytes())
	want := []string{
		"Terminal shell in container", "Read sensitive file untrusted",
		"Netcat Remote Code Execution in Container", "Packet socket created in container",
		"Debugfs Launched in Privileged Container", "Linux Kernel Module Injection Detected",
		"PTRACE attached to process", "Disallowed SSH Connection Non Standard Port",
	}
	if len(as) != len(want) {
		t.Fatalf("%d alerts written, want %d:\n%s", len(as), len(want), out.Bytes())
	}
	for i, a := range as {
		if a.Rule != want[i] {
			t.Errorf("alert %d: rule %q, want %q", i, a.Rule, want[i])
		}
		// Every alert says where it happened (the container fields Falco appends).
		if _, ok := a.OutputFields["container.id"]; !ok || !strings.Contains(a.Output, " container_id=") {
			t.Errorf("alert %d (%s) lacks the container fields: %s", i, a.Rule, a.Output)
		}
	}
	if as[0].OutputFields["container.id"] != "0f3b6a1c2d4e" || !strings.Contains(as[0].Output, "container_name=web") {
		t.Errorf("the shell alert names the wrong container: %s", as[0].Output)
	}
	if !strings.Contains(stderr.String(), "bulkhead: 14 events, 8 alerts") {
		t.Errorf("stderr lacks the summary:\n%s", stderr.String())
	}
}

func TestRunTraceOptions(t *testing.T) {
	count := func(o Options) Stats {
		t.Helper()
		o.Trace = trace(t)
		st, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := count(Options{})
	all := count(Options{Matching: "all"})
	crit := count(Options{MinPriority: "critical"})
	if all.Alerts < first.Alerts {
		t.Errorf("matching all: %d alerts, fewer than first's %d", all.Alerts, first.Alerts)
	}
	if crit.Alerts >= first.Alerts {
		t.Errorf("min priority critical: %d alerts, want fewer than debug's %d", crit.Alerts, first.Alerts)
	}
	var txt bytes.Buffer
	count(Options{Output: To(&txt), Format: "text"})
	if n := strings.Count(txt.String(), "\n"); uint64(n) != first.Alerts {
		t.Errorf("text output: %d lines, want %d", n, first.Alerts)
	}
}

// The webhook gets every alert, delivered before Run returns.
func TestRunTraceWebhook(t *testing.T) {
	var mu sync.Mutex
	var rules []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a jsonAlert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		rules = append(rules, a.Rule)
		mu.Unlock()
	}))
	defer srv.Close()
	st, err := Run(context.Background(), Options{Trace: trace(t), Webhook: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(rules)) != st.Alerts || st.Alerts == 0 {
		t.Fatalf("webhook got %d alerts, Run counted %d", len(rules), st.Alerts)
	}
}

func TestRunErrors(t *testing.T) {
	opened := false
	open := func() (io.Writer, func() error, error) {
		opened = true
		return io.Discard, func() error { return nil }, nil
	}
	for _, tc := range []struct {
		o      Options
		option string
	}{
		{Options{Matching: "some"}, "Matching"},
		{Options{MinPriority: "loud"}, "MinPriority"},
		{Options{Webhook: "ftp://example.com/"}, "Webhook"},
	} {
		tc.o.Trace, tc.o.Output = trace(t), open
		_, err := Run(context.Background(), tc.o)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || oe.Want == "" {
			t.Errorf("%+v: error %v, want an OptionError on %s", tc.o, err, tc.option)
		}
	}
	// Rules that do not load: an error, and the output is never opened.
	_, err := Run(context.Background(), Options{Rules: []string{filepath.Join(t.TempDir(), "missing.yaml")}, Trace: trace(t), Output: open})
	if err == nil || !strings.Contains(err.Error(), "load rules") {
		t.Errorf("missing rules file: error %v", err)
	}
	if opened {
		t.Error("the output was opened although the options or rules were bad")
	}
	// A malformed trace line is an error naming the trace.
	bad := strings.NewReader("{\"num\":1,\"type\":\"execve\"}\nnot json\n")
	_, err = Run(context.Background(), Options{Trace: bad, TraceName: "bad.jsonl"})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl") {
		t.Errorf("malformed trace: error %v, want one naming bad.jsonl", err)
	}
}

// TestAppendContainerDigest: every alert from a container carries the
// image digest and id in output_fields (bulkhead server links alerts to
// images by container.image.digest), whatever the rule's own output says;
// a host event carries neither.
func TestAppendContainerDigest(t *testing.T) {
	const dig = "sha256:4c8f8d1b3a4f0e0f1b7e2d3c4b5a69788796a5b4c3d2e1f00112233445566778"
	ev := &event.Event{Container: &event.Container{ID: "4f1c", Name: "web", ImageRepository: "registry.example/app",
		ImageTag: "1", ImageDigest: dig, ImageID: "sha256:0a1b"}}
	a := rules.Alert{Output: "Shell spawned", OutputFields: map[string]any{"proc.pid": 7}}
	AppendContainer(&a, ev)
	if a.OutputFields["container.image.digest"] != dig || a.OutputFields["container.image.id"] != "sha256:0a1b" {
		t.Fatalf("output_fields = %v, want the image digest and id", a.OutputFields)
	}
	if strings.Contains(a.Output, dig) {
		t.Errorf("output text %q: the digest belongs in output_fields only, as Falco's suggested output", a.Output)
	}
	h := rules.Alert{Output: "x"}
	AppendContainer(&h, &event.Event{})
	if _, ok := h.OutputFields["container.image.digest"]; ok {
		t.Errorf("host alert has an image digest: %v", h.OutputFields)
	}
}
