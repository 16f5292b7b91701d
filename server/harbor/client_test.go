package harbor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

const specPath = "testdata/scanner-adapter-openapi-v1.2.yaml"

func init() {
	// The vulnerability report's media type has no +json suffix; the spec
	// gives it a JSON schema, so it is decoded as JSON for validation.
	openapi3filter.RegisterBodyDecoder("application/vnd.security.vulnerability.report", openapi3filter.JSONBodyDecoder)
}

// loadSpec loads the vendored spec with its server set to base (the test
// server's /api/v1), so that the router matches the test's URLs.
func loadSpec(t testing.TB, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
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

// harborClient talks to the adapter the way Harbor's scan job does
// (goharbor/harbor src/pkg/scan/rest/v1 and src/pkg/scan/job.go): a 5 s
// HTTP timeout and redirects not followed; the scan request with
// Content-Type and Accept of the spec's media types; then, for each
// report media type concurrently, a first check after firstCheck (2 s in
// Harbor, shorter here) and, on 302, another
// after Refresh-After seconds (parsed as an 8-bit integer, 5 when absent
// or unparsable), until 200 or an error, within timeout. Every request and
// every response is validated against the vendored spec.
type harborClient struct {
	t          testing.TB
	base       string
	hc         *http.Client
	auth       string // the Authorization sent to the adapter
	router     routers.Router
	firstCheck time.Duration
	timeout    time.Duration
	maxPolls   int

	mu       sync.Mutex
	requests int
}

func newHarborClient(t testing.TB, base, auth string) *harborClient {
	_, r := loadSpec(t, base)
	return &harborClient{t: t, base: base, auth: auth, router: r, firstCheck: 10 * time.Millisecond, timeout: 60 * time.Second, maxPolls: 60,
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

// exchange is one validated round trip. reqErr is the spec's verdict on
// the request (nil: valid); the response must validate whatever it is,
// except a 401 (the spec's security schemes imply it, its responses do
// not list it).
type exchange struct {
	status int
	header http.Header
	body   []byte
	reqErr error
}

func (c *harborClient) do(req *http.Request) exchange {
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
	var ex exchange
	ex.reqErr = openapi3filter.ValidateRequest(context.Background(), rvi)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	ex.status, ex.header = resp.StatusCode, resp.Header
	if ex.body, err = io.ReadAll(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	if ex.status != http.StatusUnauthorized {
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: rvi, Status: ex.status, Header: ex.header, Body: io.NopCloser(bytes.NewReader(ex.body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}})
		if err != nil {
			c.t.Errorf("%s %s: response %d (%s) does not validate against the spec: %v\n%s", req.Method, req.URL, ex.status, ex.header.Get("Content-Type"), err, ex.body)
		}
	}
	if ex.status >= 400 && ex.status != http.StatusNotFound {
		var er harbor.ErrorResponse
		if err := json.Unmarshal(ex.body, &er); err != nil || er.Error.Message == "" {
			c.t.Errorf("%s %s: %d without an error message: %s", req.Method, req.URL, ex.status, ex.body)
		}
	}
	return ex
}

func (c *harborClient) metadata() (harbor.Metadata, exchange) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+"/metadata", nil)
	req.Header.Set("Accept", harbor.MediaTypeMetadata10)
	ex := c.do(req)
	var md harbor.Metadata
	if ex.status == http.StatusOK {
		if err := json.Unmarshal(ex.body, &md); err != nil {
			c.t.Fatal(err)
		}
	}
	return md, ex
}

func (c *harborClient) submitRaw(body []byte, contentType string) exchange {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+"/scan", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", harbor.MediaTypeScanResponse)
	return c.do(req)
}

// submit posts a scan request as Harbor does and returns its id.
func (c *harborClient) submit(sr harbor.ScanRequest) string {
	c.t.Helper()
	b, err := json.Marshal(sr)
	if err != nil {
		c.t.Fatal(err)
	}
	ex := c.submitRaw(b, harbor.MediaTypeScanRequest10)
	if ex.reqErr != nil {
		c.t.Errorf("the scan request does not validate against the spec: %v", ex.reqErr)
	}
	if ex.status != http.StatusAccepted {
		c.t.Fatalf("submit: %d %s", ex.status, ex.body)
	}
	var resp harbor.ScanResponse
	if err := json.Unmarshal(ex.body, &resp); err != nil || resp.ID == "" {
		c.t.Fatalf("scan response %s: %v", ex.body, err)
	}
	return resp.ID
}

func (c *harborClient) getReport(id, mimeType, query string) exchange {
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

// pollResult is how a Harbor-style wait for one report ended.
type pollResult struct {
	body   []byte
	status int
	polls  int
	// waits are the Refresh-After values honoured.
	waits []int
}

// waitReport polls for one report the way Harbor's scan job does.
func (c *harborClient) waitReport(id, mimeType, query string) pollResult {
	c.t.Helper()
	var pr pollResult
	tm := time.NewTimer(c.firstCheck)
	defer tm.Stop()
	deadline := time.After(c.timeout)
	for {
		select {
		case <-tm.C:
		case <-deadline:
			c.t.Fatalf("report %s (%s) not ready in %v after %d polls", id, mimeType, c.timeout, pr.polls)
		}
		pr.polls++
		ex := c.getReport(id, mimeType, query)
		if ex.reqErr != nil {
			c.t.Errorf("report request does not validate against the spec: %v", ex.reqErr)
		}
		if ex.status != http.StatusFound {
			pr.body, pr.status = ex.body, ex.status
			return pr
		}
		retry := 5 // Harbor's default refresh interval
		if v := ex.header.Get("Refresh-After"); v != "" {
			i, err := strconv.ParseInt(v, 10, 8)
			if err != nil {
				c.t.Errorf("Refresh-After %q: Harbor cannot parse it (%v)", v, err)
			} else {
				retry = int(i)
			}
		} else {
			c.t.Errorf("302 without Refresh-After")
		}
		pr.waits = append(pr.waits, retry)
		if pr.polls >= c.maxPolls {
			c.t.Fatalf("report %s (%s) still pending after %d polls", id, mimeType, pr.polls)
		}
		tm.Reset(time.Duration(retry) * time.Second)
	}
}
