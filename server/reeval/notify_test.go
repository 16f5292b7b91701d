package reeval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func testReport() *Report {
	f := finding.Finding{ID: "CVE-2026-0001", Kind: finding.KindVulnerability, Severity: finding.High,
		Package: &finding.Package{Name: "openssl", Version: "3.1.0-r0", Type: "apk"}}
	return &Report{
		Summary: Summary{DBVersion: "v1", At: time.Unix(1700000000, 0).UTC(), Images: 3, Changed: 1, Appeared: 1},
		Changes: []store.Change{{ScanID: 7, Digest: "sha256:abc", Kind: Appeared, Finding: f, At: time.Unix(1700000000, 0).UTC(), DBVersion: "v1"}},
	}
}

// The webhook retries a failing receiver with backoff (same delivery id,
// same signed body), then succeeds; the receiver verifies the signature
// with the shared secret, and the secret is in no log line.
func TestWebhookRetriesAndSigns(t *testing.T) {
	secret := []byte("s3cr3t-shared-with-the-receiver")
	var calls atomic.Int32
	var mu sync.Mutex
	var deliveries []string
	var got Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify(secret, body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get(EventHeader) != EventName {
			t.Errorf("request %s %v", r.Method, r.Header)
		}
		mu.Lock()
		deliveries = append(deliveries, r.Header.Get(DeliveryHeader))
		mu.Unlock()
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			if err := json.Unmarshal(body, &got); err != nil {
				t.Error(err)
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()

	var logs bytes.Buffer
	w, err := NewWebhook(srv.URL+"/hook?token=in-the-query", secret)
	if err != nil {
		t.Fatal(err)
	}
	w.Backoff, w.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	w.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start := time.Now()
	if err := w.Notify(t.Context(), testReport()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d attempts, want 3", calls.Load())
	}
	// Retry-After (1 s) is capped by MaxBackoff.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: Retry-After not capped", d)
	}
	if deliveries[0] == "" || deliveries[0] != deliveries[1] || deliveries[1] != deliveries[2] {
		t.Errorf("delivery ids %q", deliveries)
	}
	if got.Delivery != deliveries[0] || got.Report == nil || len(got.Changes) != 1 || got.Changes[0].Finding.ID != "CVE-2026-0001" || got.Summary.Images != 3 {
		t.Errorf("payload %+v", got)
	}
	w.Log.Info("configured", "webhook", *w, "ptr", w)
	dumps := fmt.Sprintf("%v %+v %#v %s", *w, *w, *w, w)
	for _, leak := range []string{string(secret), "in-the-query", fmt.Sprint(secret), fmt.Sprintf("%x", secret)} {
		if strings.Contains(logs.String(), leak) || strings.Contains(w.String(), leak) || strings.Contains(dumps, leak) {
			t.Errorf("%q in the logs or name:\n%s", leak, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", logs.String())
	}
}

// A receiver that never answers in time: each attempt is cut at the
// timeout, the webhook gives up after its attempts with an error that
// names neither the secret nor the query; a 4xx is not retried.
func TestWebhookTimeoutAndPermanentFailure(t *testing.T) {
	secret := []byte("another-secret")
	block := make(chan struct{})
	var calls atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	var logs bytes.Buffer
	w, err := NewWebhook(slow.URL+"?key=qs-secret", secret)
	if err != nil {
		t.Fatal(err)
	}
	w.Attempts, w.Backoff, w.Timeout = 3, time.Millisecond, 50*time.Millisecond
	w.Log = slog.New(slog.NewTextHandler(&logs, nil))
	err = w.Notify(t.Context(), testReport())
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("error %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d attempts, want 3", calls.Load())
	}
	for _, leak := range []string{string(secret), "qs-secret"} {
		if strings.Contains(err.Error(), leak) || strings.Contains(logs.String(), leak) {
			t.Errorf("%q leaked: %v\n%s", leak, err, logs.String())
		}
	}

	var bad atomic.Int32
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad.Add(1)
		w.WriteHeader(http.StatusGone)
	}))
	defer gone.Close()
	w2, _ := NewWebhook(gone.URL, nil)
	w2.Backoff = time.Millisecond
	if err := w2.Notify(t.Context(), testReport()); err == nil || !strings.Contains(err.Error(), "not retried") || bad.Load() != 1 {
		t.Errorf("410: %v after %d attempts", err, bad.Load())
	}

	// A run with nothing to say is not posted unless Always.
	w2.Always = false
	before := bad.Load()
	if err := w2.Notify(t.Context(), &Report{}); err != nil || bad.Load() != before {
		t.Errorf("empty report posted: %v", err)
	}

	if _, err := NewWebhook("ftp://user:pw@example.com/x", nil); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("bad URL: %v", err)
	}
	var ne *NotifyError
	if !errors.As(error(&NotifyError{Err: errors.New("x")}), &ne) {
		t.Error("NotifyError does not unwrap")
	}
}
