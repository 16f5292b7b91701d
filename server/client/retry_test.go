package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetry503: a 503 is sent again after its Retry-After (seconds or an
// HTTP date), at most Retries times, with the same body; other errors are
// not retried.
func TestRetry503(t *testing.T) {
	var calls atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b := make([]byte, 4)
		if k, _ := r.Body.Read(b); string(b[:k]) != "body" {
			t.Errorf("attempt %d: body %q", n, b[:k])
		}
		if n%2 == 1 {
			w.Header().Set("Retry-After", "0")
		} else {
			w.Header().Set("Retry-After", time.Now().Add(-time.Second).UTC().Format(http.TimeFormat))
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(`{"error":"busy"}`))
	}))
	defer ts.Close()
	for _, c := range []struct {
		retries int
		status  int
		calls   int32
	}{{0, 503, 1 + DefaultRetries}, {2, 503, 3}, {-1, 503, 1}, {3, 500, 1}, {3, 400, 1}} {
		calls.Store(0)
		status.Store(int32(c.status))
		cl, err := New(ts.URL, Options{Retries: c.retries})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.do(context.Background(), http.MethodPut, "/x", nil, "text/plain", []byte("body"), nil)
		if !IsStatus(err, c.status) || calls.Load() != c.calls {
			t.Errorf("retries %d, status %d: %d calls, err %v; want %d calls", c.retries, c.status, calls.Load(), err, c.calls)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              defaultRetryWait,
		"3":                             3 * time.Second,
		"-1":                            defaultRetryWait,
		"soon":                          defaultRetryWait,
		"99999999999999":                24 * time.Hour,
		"Thu, 01 Jan 2026 00:00:07 GMT": 7 * time.Second,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}

// FuzzRetryAfter: any Retry-After header gives a wait that is not
// negative (the client caps it at MaxRetryWait).
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", "120", "-5", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Monday, 02-Jan-06 15:04:05 MST", "1.5", " 3"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, h string) {
		if d := retryAfter(h, now); d < 0 {
			t.Fatalf("retryAfter(%q) = %s", h, d)
		}
	})
}
