// Package harbortest is a test client of Harbor's Pluggable Scanner API
// that behaves as Harbor's scan job does and validates every request and
// response against the vendored spec (server/harbor/testdata), for the
// adapter's tests and the server's.
package harbortest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bulkhead-sec/bulkhead/server/harbor"
)

// SpecPath is the vendored spec (found from this source file, so any test
// package of the module can load it).
func SpecPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "scanner-adapter-openapi-v1.2.yaml")
}

func init() {
	// The vulnerability report's media type has no +json suffix; the spec
	// gives it a JSON schema, so it is decoded as JSON for validation.
	openapi3filter.RegisterBodyDecoder("application/vnd.security.vulnerability.report", openapi3filter.JSONBodyDecoder)
}

// LoadSpec loads the vendored spec with its server set to base (the test
// server's /api/v1), so that the router matches the test's URLs.
func LoadSpec(t testing.TB, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(SpecPath())
	if err != nil {
		t.Fatal(err)
	}
	// The spec's own examples of object fields (capabilities,
	// additional_attributes, parameters) are strings holding JSON, so
	// they are not checked; and additional_attributes spells its
	// description "descriptions". Everything else is checked.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation(), openapi3.AllowExtraSiblingFields("descriptions")); err != nil {
		t.Fatalf("the vendored spec does not validate: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, r
}

// Client talks to the adapter the way Harbor's scan job does
// (goharbor/harbor src/pkg/scan/rest/v1 and src/pkg/scan/job.go): a 5 s
// HTTP Timeout and redirects not followed; the scan request with
// Content-Type and Accept of the spec's media types; then, for each
// report media type concurrently, a first check after FirstCheck (2 s in
// Harbor, shorter here) and, on 302, another
// after Refresh-After seconds (parsed as an 8-bit integer, 5 when absent
// or unparsable), until 200 or an error, within Timeout. Every request and
// every response is validated against the vendored spec.
type Client struct {
	t          testing.TB
	base       string
	hc         *http.Client
	auth       string // the Authorization sent to the adapter
	router     routers.Router
	FirstCheck time.Duration
	Timeout    time.Duration
	MaxPolls   int

	mu       sync.Mutex
	requests int
}

// SetT makes t the test that failures are reported to (a subtest's).
func (c *Client) SetT(t testing.TB) { c.t = t }

// Requests is how many requests the client sent.
func (c *Client) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// NewClient is a client of the adapter at base (its /api/v1 URL) that
// sends auth as the Authorization header ("" for none).
func NewClient(t testing.TB, base, auth string) *Client {
	_, r := LoadSpec(t, base)
	return &Client{t: t, base: base, auth: auth, router: r, FirstCheck: 10 * time.Millisecond, Timeout: 60 * time.Second, MaxPolls: 60,
		hc: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// specAuth checks the Authorization header against the spec's security
// schemes (BasicAuth, BearerAuth).
func specAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	a := in.RequestValidationInput.Request.Header.Get("Authorization")
	switch in.SecurityScheme.Scheme {
	case "bearer":
		if strings.HasPrefix(a, "Bearer ") {
			return nil
		}
	case "basic":
		if _, _, ok := in.RequestValidationInput.Request.BasicAuth(); ok {
			return nil
		}
	}
	return fmt.Errorf("no %s credentials", in.SecurityScheme.Scheme)
}

// Exchange is one validated round trip. ReqErr is the spec's verdict on
// the request (nil: valid); the response must validate whatever it is,
// except a 401 (the spec's security schemes imply it, its responses do
// not list it).
type Exchange struct {
	Status int
	Header http.Header
	Body   []byte
	ReqErr error
}

func (c *Client) do(req *http.Request) Exchange {
	c.t.Helper()
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s: not an operation of the spec: %v", req.Method, req.URL, err)
	}
	rvi := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: specAuth}}
	var ex Exchange
	ex.ReqErr = openapi3filter.ValidateRequest(context.Background(), rvi)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	ex.Status, ex.Header = resp.StatusCode, resp.Header
	if ex.Body, err = io.ReadAll(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	if ex.Status != http.StatusUnauthorized {
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: rvi, Status: ex.Status, Header: ex.Header, Body: io.NopCloser(bytes.NewReader(ex.Body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}})
		if err != nil {
			c.t.Errorf("%s %s: response %d (%s) does not validate against the spec: %v\n%s", req.Method, req.URL, ex.Status, ex.Header.Get("Content-Type"), err, ex.Body)
		}
	}
	if ex.Status >= 400 && ex.Status != http.StatusNotFound {
		var er harbor.ErrorResponse
		if err := json.Unmarshal(ex.Body, &er); err != nil || er.Error.Message == "" {
			c.t.Errorf("%s %s: %d without an error message: %s", req.Method, req.URL, ex.Status, ex.Body)
		}
	}
	return ex
}

func (c *Client) Metadata() (harbor.Metadata, Exchange) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+"/metadata", nil)
	req.Header.Set("Accept", harbor.MediaTypeMetadata10)
	ex := c.do(req)
	var md harbor.Metadata
	if ex.Status == http.StatusOK {
		if err := json.Unmarshal(ex.Body, &md); err != nil {
			c.t.Fatal(err)
		}
	}
	return md, ex
}

func (c *Client) SubmitRaw(body []byte, contentType string) Exchange {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+"/scan", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", harbor.MediaTypeScanResponse)
	return c.do(req)
}

// submit posts a scan request as Harbor does and returns its id.
func (c *Client) Submit(sr harbor.ScanRequest) string {
	c.t.Helper()
	b, err := json.Marshal(sr)
	if err != nil {
		c.t.Fatal(err)
	}
	ex := c.SubmitRaw(b, harbor.MediaTypeScanRequest10)
	if ex.ReqErr != nil {
		c.t.Errorf("the scan request does not validate against the spec: %v", ex.ReqErr)
	}
	if ex.Status != http.StatusAccepted {
		c.t.Fatalf("submit: %d %s", ex.Status, ex.Body)
	}
	var resp harbor.ScanResponse
	if err := json.Unmarshal(ex.Body, &resp); err != nil || resp.ID == "" {
		c.t.Fatalf("scan response %s: %v", ex.Body, err)
	}
	return resp.ID
}

func (c *Client) GetReport(id, mimeType, query string) Exchange {
	c.t.Helper()
	u := c.base + "/scan/" + id + "/report"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if mimeType != "" {
		req.Header.Set("Accept", mimeType)
	}
	return c.do(req)
}

// PollResult is how a Harbor-style wait for one report ended.
type PollResult struct {
	Body   []byte
	Status int
	Polls  int
	// Waits are the Refresh-After values honoured.
	Waits []int
}

// waitReport Polls for one report the way Harbor's scan job does.
func (c *Client) WaitReport(id, mimeType, query string) PollResult {
	c.t.Helper()
	var pr PollResult
	tm := time.NewTimer(c.FirstCheck)
	defer tm.Stop()
	deadline := time.After(c.Timeout)
	for {
		select {
		case <-tm.C:
		case <-deadline:
			c.t.Fatalf("report %s (%s) not ready in %v after %d Polls", id, mimeType, c.Timeout, pr.Polls)
		}
		pr.Polls++
		ex := c.GetReport(id, mimeType, query)
		if ex.ReqErr != nil {
			c.t.Errorf("report request does not validate against the spec: %v", ex.ReqErr)
		}
		if ex.Status != http.StatusFound {
			pr.Body, pr.Status = ex.Body, ex.Status
			return pr
		}
		retry := 5 // Harbor's default refresh interval
		if v := ex.Header.Get("Refresh-After"); v != "" {
			i, err := strconv.ParseInt(v, 10, 8)
			if err != nil {
				c.t.Errorf("Refresh-After %q: Harbor cannot parse it (%v)", v, err)
			} else {
				retry = int(i)
			}
		} else {
			c.t.Errorf("302 without Refresh-After")
		}
		pr.Waits = append(pr.Waits, retry)
		if pr.Polls >= c.MaxPolls {
			c.t.Fatalf("report %s (%s) still pending after %d Polls", id, mimeType, pr.Polls)
		}
		tm.Reset(time.Duration(retry) * time.Second)
	}
}
