// Package client is a small Go client of bulkhead server's API, used by
// bulkhead image --server and the tests.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

// Client talks to one server with one token.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	retries int
	maxWait time.Duration
}

// Options configure a Client.
type Options struct {
	// Token is the API token (Authorization: Bearer).
	Token string
	// HTTPClient is used when set (tests, custom TLS roots).
	HTTPClient *http.Client
	// Insecure skips the server certificate's verification.
	Insecure bool
	// Timeout bounds each request (default 5 min: an upload of a large
	// inventory is matched before the answer).
	Timeout time.Duration
	// Retries is how many times a request answered 503 (the server's
	// database is busy, nothing was stored) is sent again, each after the
	// answer's Retry-After (default DefaultRetries; negative: none).
	Retries int
	// MaxRetryWait caps one Retry-After wait (default DefaultMaxRetryWait).
	MaxRetryWait time.Duration
}

// Retry defaults (Options).
const (
	DefaultRetries      = 4
	DefaultMaxRetryWait = 30 * time.Second
	// defaultRetryWait is the wait when a 503 names no Retry-After.
	defaultRetryWait = time.Second
)

// New makes a client of the server at base ("https://bulkhead:8443").
func New(base string, o Options) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: give http(s)://HOST[:PORT]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: o.Token, http: o.HTTPClient, retries: o.Retries, maxWait: o.MaxRetryWait}
	if c.retries == 0 {
		c.retries = DefaultRetries
	}
	c.retries = max(c.retries, 0)
	if c.maxWait <= 0 {
		c.maxWait = DefaultMaxRetryWait
	}
	if c.http == nil {
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Minute
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.Insecure {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		c.http = &http.Client{Transport: tr, Timeout: timeout}
	}
	return c, nil
}

// Error is an error answer of the server.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("bulkhead server: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (set BULKHEAD_TOKEN or --token)"
	case http.StatusForbidden:
		msg += " (ask the server's admin for a token of a higher role)"
	}
	return msg
}

// do sends a request and decodes a JSON answer into out (nil: discard).
// A 503 (the server's database is busy; nothing was stored) is sent again
// after its Retry-After, at most c.retries times.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, method, path, q, contentType, body, out)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || attempt >= c.retries {
			if e != nil && e.Status == http.StatusServiceUnavailable && attempt > 0 {
				e.Reason += fmt.Sprintf(" (%d attempts)", attempt+1)
			}
			return resp, err
		}
		wait := min(retryAfter(resp.Header.Get("Retry-After"), time.Now()), c.maxWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, err
		case <-t.C:
		}
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date
// (defaultRetryWait when absent or malformed).
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return defaultRetryWait
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(min(n, 24*3600)) * time.Second // a day at most: no overflow
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return defaultRetryWait
}

// once sends one request and decodes a JSON answer into out.
func (c *Client) once(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) (*http.Response, error) {
	resp, err := c.send(ctx, method, path, q, contentType, "application/json", body)
	if err != nil {
		return resp, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("bulkhead server: malformed answer to %s %s: %w", method, path, err)
		}
	}
	return resp, nil
}

// send sends one request with the client's token. An answer of 400 or
// more is an *Error with the server's reason (its body closed); otherwise
// the caller reads and closes the body.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, contentType, accept string, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bulkhead server %s: %w", c.base.Host, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return resp, &Error{Status: resp.StatusCode, Reason: e.Error}
	}
	return resp, nil
}

// Report is a report as the server answers it: a result the report
// writers take, and the stored scan's ID.
type Report struct {
	*report.Result
	ScanID int64
}

// reportDoc decodes bulkhead's JSON report.
type reportDoc struct {
	SchemaVersion int `json:"schemaVersion"`
	*inventory.Inventory
	Scanners []string          `json:"scanners"`
	DB       *report.DBInfo    `json:"vulnerabilityDB"`
	Findings []finding.Finding `json:"findings"`
}

// UploadOptions are an upload's query parameters.
type UploadOptions struct {
	Digest, Reference, CIRun string
}

// Upload sends an inventory document of media type contentType and
// returns the server's findings.
func (c *Client) Upload(ctx context.Context, contentType string, doc []byte, o UploadOptions) (*Report, error) {
	q := url.Values{}
	for k, v := range map[string]string{"digest": o.Digest, "reference": o.Reference, "ciRun": o.CIRun} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var d reportDoc
	d.Inventory = &inventory.Inventory{}
	resp, err := c.do(ctx, http.MethodPut, "/api/v1/inventory", q, contentType, doc, &d)
	if err != nil {
		return nil, err
	}
	id, _ := strconv.ParseInt(resp.Header.Get("X-Bulkhead-Scan-Id"), 10, 64)
	return d.report(id), nil
}

func (d *reportDoc) report(id int64) *Report {
	// ResultJSON merged the result's warnings into the inventory's.
	return &Report{Result: &report.Result{Inventory: d.Inventory, Findings: d.Findings, Scanners: d.Scanners, DB: d.DB}, ScanID: id}
}

// UploadResult uploads a local result (inventory and findings) as
// bulkhead's JSON report.
func (c *Client) UploadResult(ctx context.Context, res *report.Result, o UploadOptions) (*Report, error) {
	var buf bytes.Buffer
	if err := report.ResultJSON(&buf, res); err != nil {
		return nil, err
	}
	return c.Upload(ctx, "application/vnd.bulkhead.report+json", buf.Bytes(), o)
}

// Scan returns a stored scan.
func (c *Client) Scan(ctx context.Context, id int64) (*Report, error) {
	var d reportDoc
	d.Inventory = &inventory.Inventory{}
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/scans/"+strconv.FormatInt(id, 10), nil, "", nil, &d); err != nil {
		return nil, err
	}
	return d.report(id), nil
}

// Job is a scan job's state (server.Job).
type Job struct {
	ID          int64     `json:"id"`
	State       string    `json:"state"`
	Reference   string    `json:"reference"`
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"maxAttempts"`
	Duplicate   bool      `json:"duplicate"`
	Errors      []string  `json:"errors"`
	CreatedAt   time.Time `json:"createdAt"`
	ScanID      int64     `json:"scanID"`
	Digest      string    `json:"digest"`
}

// Done says whether the job will not change any more.
func (j *Job) Done() bool {
	return j.State == "completed" || j.State == "cancelled" || j.State == "discarded"
}

// Submit queues a scan of ref.
func (c *Client) Submit(ctx context.Context, ref, platform string) (*Job, error) {
	body, _ := json.Marshal(map[string]string{"reference": ref, "platform": platform})
	var j Job
	_, err := c.do(ctx, http.MethodPost, "/api/v1/scans", nil, "application/json", body, &j)
	return &j, err
}

// Job returns a job's state.
func (c *Client) Job(ctx context.Context, id int64) (*Job, error) {
	var j Job
	_, err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+strconv.FormatInt(id, 10), nil, "", nil, &j)
	return &j, err
}

// Wait polls a job every interval until it is done; a job that ended
// without a scan is an error naming its last error.
func (c *Client) Wait(ctx context.Context, id int64, interval time.Duration) (*Job, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.Done() {
			if j.State != "completed" {
				last := "no error recorded"
				if len(j.Errors) > 0 {
					last = j.Errors[len(j.Errors)-1]
				}
				return j, fmt.Errorf("scan of %s %s after %d attempt(s): %s", j.Reference, j.State, j.Attempt, last)
			}
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-t.C:
		}
	}
}

// Get sends a GET and decodes the JSON answer into out (queries).
func (c *Client) Get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, q, "", nil, out)
	return err
}

// Post sends v as JSON and decodes the JSON answer into out.
func (c *Client) Post(ctx context.Context, path string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, path, nil, "application/json", body, out)
	return err
}

// IsStatus says whether err is the server's answer with status code.
func IsStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == code
}
