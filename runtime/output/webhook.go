package output

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// Webhook posts each alert as Falco's JSON alert to an HTTP endpoint, the
// payload falcosidekick accepts on "/" and bulkhead server on
// /api/v1/events/falco (with a bearer token of the scan role). Alerts wait
// in a bounded queue served by one goroutine: when the endpoint is slow or
// down, the queue fills and further alerts are dropped (and counted)
// rather than slowing the sensor. Failed posts are retried with
// exponential backoff; a 4xx other than 408 and 429 (a refused token, a
// rejected alert) is final.
type Webhook struct {
	url     string
	token   string // never logged, never in an error
	client  *http.Client
	queue   chan []byte
	retries int
	backoff time.Duration
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc

	sent, dropped, failed atomic.Uint64
}

// WebhookOptions tune a Webhook; zero values pick the defaults.
type WebhookOptions struct {
	QueueSize int           // default 1024
	Retries   int           // attempts after the first, default 3
	Backoff   time.Duration // first retry delay, doubled each time; default 200ms
	Timeout   time.Duration // per request, default 5s
	// Token, when set, is sent as "Authorization: Bearer TOKEN" (bulkhead
	// server's API token; ReadToken reads it from a file).
	Token string
}

// TokenEnv is the environment variable the sensor reads its webhook token
// from when no token file is given.
const TokenEnv = "BULKHEAD_WEBHOOK_TOKEN"

// ReadToken reads the webhook's bearer token from file, or, with file "",
// from $BULKHEAD_WEBHOOK_TOKEN ("" and no error when neither is set).
// Surrounding white space (a trailing newline) is dropped. Errors name
// the file, never its content.
func ReadToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(TokenEnv)), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("webhook token file: %w (give the file a Secret is mounted as, or set $%s)", err, TokenEnv)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxToken+1))
	if err != nil {
		return "", fmt.Errorf("webhook token file %s: %w", file, err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(b) > maxToken:
		return "", fmt.Errorf("webhook token file %s: larger than %d bytes; it must hold the token alone", file, maxToken)
	case tok == "":
		return "", fmt.Errorf("webhook token file %s is empty: put the API token in it (bulkhead server token create --role scan)", file)
	case strings.ContainsAny(tok, "\r\n\x00"):
		return "", fmt.Errorf("webhook token file %s: more than one line; it must hold the token alone", file)
	}
	return tok, nil
}

// maxToken bounds a token file (a token is tens of bytes).
const maxToken = 4096

// NewWebhook starts the webhook's sender.
func NewWebhook(url string, o WebhookOptions) *Webhook {
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{url: url, token: o.Token, client: &http.Client{Timeout: o.Timeout}, queue: make(chan []byte, o.QueueSize),
		retries: o.Retries, backoff: o.Backoff, ctx: ctx, cancel: cancel}
	w.wg.Add(1)
	go w.run()
	return w
}

// Alert queues the alert; it never blocks.
func (w *Webhook) Alert(a *rules.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	select {
	case w.queue <- b:
	default:
		w.dropped.Add(1)
	}
	return nil
}

func (w *Webhook) run() {
	defer w.wg.Done()
	for b := range w.queue {
		if w.post(b) {
			w.sent.Add(1)
		} else {
			w.failed.Add(1)
		}
	}
}

// post sends one alert with retries; a 4xx other than 429 is final.
func (w *Webhook) post(b []byte) bool {
	delay := w.backoff
	for attempt := 0; attempt <= w.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(delay):
			case <-w.ctx.Done():
				return false
			}
			delay *= 2
		}
		req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(b))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "bulkhead-runtime")
		if w.token != "" {
			req.Header.Set("Authorization", "Bearer "+w.token)
		}
		resp, err := w.client.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return true
		case resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
			return false
		}
	}
	return false
}

// Queued is the number of alerts waiting in the queue.
func (w *Webhook) Queued() int { return len(w.queue) }

// Stats returns how many alerts were sent, dropped on a full queue, and
// given up on after the retries.
func (w *Webhook) Stats() (sent, dropped, failed uint64) {
	return w.sent.Load(), w.dropped.Load(), w.failed.Load()
}

// Close sends what is queued, waiting at most timeout, then stops.
func (w *Webhook) Close(timeout time.Duration) {
	close(w.queue)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		w.cancel()
		<-done
	}
	w.cancel()
}
