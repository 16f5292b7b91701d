package output

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// alerts evaluates the stable rules over the fixture events.
func alerts(t testing.TB) []rules.Alert {
	rs, err := rules.LoadFiles([]string{filepath.Join("testdata", "falco_rules.yaml")}, rules.WithHostname("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := event.ReadAll(f, "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	m := rs.Matcher()
	var out []rules.Alert
	for i := range evs {
		for _, r := range m.Match(&evs[i]) {
			out = append(out, m.Alert(r, &evs[i]))
		}
	}
	if len(out) < 3 {
		t.Fatalf("%d alerts from the fixtures, want 3", len(out))
	}
	return out
}

func TestWriter(t *testing.T) {
	as := alerts(t)
	var js, txt bytes.Buffer
	jw, _ := NewWriter(&js, "json")
	tw, _ := NewWriter(&txt, "text")
	for i := range as {
		jw.Alert(&as[i])
		tw.Alert(&as[i])
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != len(as) {
		t.Fatalf("%d JSON lines for %d alerts", len(lines), len(as))
	}
	var a struct {
		Time, Rule, Priority, Source, Hostname, Output string
		Tags                                           []string
		OutputFields                                   map[string]any `json:"output_fields"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &a); err != nil {
		t.Fatal(err)
	}
	if a.Rule != "Terminal shell in container" || a.Priority != "Notice" || a.Source != "syscall" || a.Hostname != "node-1" ||
		a.OutputFields["proc.name"] != "bash" || !strings.HasPrefix(a.Time, "2025-06-01T12:00:00.000000000Z") {
		t.Errorf("JSON alert: %+v", a)
	}
	if !strings.HasPrefix(txt.String(), "2025-06-01T12:00:00.000000000+0000: Notice A shell was spawned") {
		t.Errorf("text alert: %.120s", txt.String())
	}
	if _, err := NewWriter(io.Discard, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestWebhook(t *testing.T) {
	as := alerts(t)
	var mu sync.Mutex
	var got []map[string]any
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The first attempt fails: the retry must deliver it.
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
		}
		var a map[string]any
		json.NewDecoder(r.Body).Decode(&a)
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer srv.Close()
	w := NewWebhook(srv.URL, WebhookOptions{Backoff: 10 * time.Millisecond})
	for i := range as {
		w.Alert(&as[i])
	}
	w.Close(5 * time.Second)
	sent, dropped, failed := w.Stats()
	if int(sent) != len(as) || dropped != 0 || failed != 0 || len(got) != len(as) {
		t.Fatalf("sent %d dropped %d failed %d, received %d of %d", sent, dropped, failed, len(got), len(as))
	}
	if got[0]["rule"] != as[0].Rule || got[0]["output_fields"] == nil {
		t.Errorf("posted %v", got[0])
	}
}

// A stuck endpoint must not block Alert: the queue fills and drops.
func TestWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	as := alerts(t)
	w := NewWebhook(srv.URL, WebhookOptions{QueueSize: 4, Retries: -1, Timeout: 10 * time.Second})
	start := time.Now()
	for i := 0; i < 100; i++ {
		w.Alert(&as[i%len(as)])
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("100 alerts took %v with a stuck endpoint", el)
	}
	_, dropped, _ := w.Stats()
	if dropped < 90 {
		t.Errorf("dropped %d, want at least 90 (queue of 4)", dropped)
	}
	// The drops are a metric.
	m := NewMetrics(nil)
	m.Webhook(w)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := "bulkhead_runtime_webhook_dropped_total " + strconv.FormatUint(dropped, 10) + "\n"; !strings.Contains(rec.Body.String(), want) ||
		!strings.Contains(rec.Body.String(), "bulkhead_runtime_webhook_queued ") {
		t.Errorf("metrics lack %q:\n%s", want, rec.Body.String())
	}
	w.Close(100 * time.Millisecond)
}

func TestMetrics(t *testing.T) {
	as := alerts(t)
	m := NewMetrics(func() Counters { return Counters{Events: 1234, RingDrops: 5, StashDrops: 1} })
	for i := range as {
		m.Alert(&as[i])
	}
	if err := m.Serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"bulkhead_runtime_events_total 1234",
		"bulkhead_runtime_ring_drops_total 5",
		"bulkhead_runtime_stash_drops_total 1",
		`bulkhead_runtime_alerts_total{priority="Notice",rule="Terminal shell in container"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func BenchmarkWriterJSON(b *testing.B) {
	as := alerts(b)
	w, _ := NewWriter(io.Discard, "json")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Alert(&as[i%len(as)])
	}
}
