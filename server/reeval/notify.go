package reeval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Multi tells every notifier, in order, and joins their errors (one
// failing does not stop the others).
type Multi []Notifier

// Notify tells each notifier.
func (ms Multi) Notify(ctx context.Context, r *Report) error {
	var errs []error
	for _, n := range ms {
		if n != nil {
			errs = append(errs, n.Notify(ctx, r))
		}
	}
	return errors.Join(errs...)
}

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// under the shared secret (as GitHub's X-Hub-Signature-256).
	SignatureHeader = "X-Bulkhead-Signature-256"
	// DeliveryHeader is a unique id per run, the same on every retry, so a
	// receiver can drop a delivery it already has.
	DeliveryHeader = "X-Bulkhead-Delivery"
	EventHeader    = "X-Bulkhead-Event"
	// EventName is the EventHeader value of a re-evaluation.
	EventName = "reevaluation"
)

// Webhook POSTs each run's Report as JSON to a URL, retrying with
// exponential backoff. The secret signs the body and is never logged or
// put in an error.
type Webhook struct {
	url    *url.URL
	secret redacted

	// Always sends runs with no change too (default: only runs with a
	// change or a failed image).
	Always bool
	// Attempts in all (default 5); Backoff is the first wait, doubled each
	// retry up to MaxBackoff (defaults 1 s and 30 s); a 429 or 503 with a
	// Retry-After in seconds waits that long instead, up to MaxBackoff.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Client sends the requests (default: a client that follows no
	// redirect, so the signed body goes only where it was configured to).
	Client *http.Client
	Log    *slog.Logger
}

// NewWebhook posts to rawURL (http or https), signing with secret when it
// is not empty.
func NewWebhook(rawURL string, secret []byte) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want an absolute http:// or https:// URL", redactURL(rawURL))
	}
	return &Webhook{url: u, secret: redacted(bytes.Clone(secret))}, nil
}

// redacted is the shared secret: printed, formatted or logged, it is
// "[redacted]".
type redacted []byte

func (redacted) String() string               { return "[redacted]" }
func (redacted) GoString() string             { return "[redacted]" }
func (redacted) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (redacted) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// String names the webhook without its secret, credentials or query.
func (w Webhook) String() string { return "webhook " + w.target() }

// GoString is String: %#v shows no secret either.
func (w Webhook) GoString() string { return w.String() }

func (w *Webhook) target() string {
	u := *w.url
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// Sign is the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a SignatureHeader value in constant time (for receivers).
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Payload is the webhook's JSON body.
type Payload struct {
	Delivery string `json:"delivery"`
	Event    string `json:"event"`
	*Report
}

// Notify posts r.
func (w *Webhook) Notify(ctx context.Context, r *Report) error {
	if !w.Always && len(r.Changes) == 0 && r.Summary.Failed == 0 {
		return nil
	}
	id := uuid.NewString()
	body, err := json.Marshal(Payload{Delivery: id, Event: EventName, Report: r})
	if err != nil {
		return fmt.Errorf("%s: encode: %w", w, err)
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attempts, wait, maxWait := w.Attempts, w.Backoff, w.MaxBackoff
	if attempts <= 0 {
		attempts = 5
	}
	if wait <= 0 {
		wait = time.Second
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	var last error
	for i := 1; i <= attempts; i++ {
		retry, after, err := w.post(ctx, id, body)
		if err == nil {
			log.Info("webhook delivered", "target", w.target(), "delivery", id, "attempt", i)
			return nil
		}
		last = err
		if !retry || i == attempts {
			break
		}
		d := wait
		if after > 0 {
			d = after
		}
		d = min(d, maxWait)
		log.Warn("webhook attempt failed, retrying", "target", w.target(), "delivery", id, "attempt", i, "wait", d, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last attempt: %v)", w, ctx.Err(), last)
		case <-time.After(d):
		}
		wait = min(wait*2, maxWait)
	}
	log.Error("webhook not delivered", "target", w.target(), "delivery", id, "err", last)
	return fmt.Errorf("%s: delivery %s failed: %w", w, id, last)
}

// post makes one attempt; retry says whether another may succeed, after
// what the server asked to wait.
func (w *Webhook) post(ctx context.Context, id string, body []byte) (retry bool, after time.Duration, err error) {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("build the request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bulkhead-server")
	req.Header.Set(DeliveryHeader, id)
	req.Header.Set(EventHeader, EventName)
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, body))
	}
	client := w.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The *url.Error names the URL with its query: say only what failed.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return true, 0, fmt.Errorf("no answer within %s", timeout)
		}
		return true, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	err = fmt.Errorf("status %s", resp.Status)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if s, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return true, after, err
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return true, 0, err
	}
	return false, 0, fmt.Errorf("%w (not retried: fix the receiver or the URL)", err)
}
