// Package servertest checks a bulkhead server against the OpenAPI document
// it serves (Server.OpenAPI: its own routes and its extensions'), for the
// tests of the server and of its extensions: every exchange validates,
// and every documented operation refuses missing tokens and lower roles.
package servertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/dashboard"
)

func init() {
	for _, mt := range []string{server.MediaBulkhead, server.MediaCycloneDX, server.MediaSPDX} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.JSONBodyDecoder)
	}
	// Zip uploads (OSV archives) are opaque bytes to the document.
	openapi3filter.RegisterBodyDecoder("application/zip", openapi3filter.FileBodyDecoder)
	// So are gzip file lists (runtime drift).
	openapi3filter.RegisterBodyDecoder("application/gzip", openapi3filter.FileBodyDecoder)
}

// Spec loads and validates the document srv serves.
func Spec(t testing.TB, srv *server.Server) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(srv.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc, r
}

// Validating is srv's handler checking every exchange against the document
// srv serves: each response must be one the document describes, a request
// the document refuses must not be answered with success, and a path the
// document does not have must not be answered with success unless it is a
// route of a foreign protocol (Harbor's, validated against its own spec).
// The dashboard's HTML pages (and the redirect to them) are not API
// operations and are passed through.
func Validating(t testing.TB, srv *server.Server) http.Handler {
	_, router := Spec(t, srv)
	var foreign []server.Route
	for _, r := range srv.Routes() {
		if r.Foreign != "" {
			foreign = append(foreign, r)
		}
	}
	h := srv.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, dashboard.Prefix) {
			h.ServeHTTP(w, r) // the dashboard: HTML pages for browsers, not the API
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)

		vr := r.Clone(context.Background())
		vr.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := router.FindRoute(vr)
		switch {
		case err != nil && matches(foreign, r):
		case err != nil:
			if rec.Code < 400 {
				t.Errorf("%s %s answered %d but is not in openapi.json: %v", r.Method, r.URL.Path, rec.Code, err)
			}
		default:
			opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
			in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && rec.Code < 400 {
				t.Errorf("%s %s: the request does not validate but was answered %d: %v", r.Method, r.URL.Path, rec.Code, err)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Options: opts}
			out.SetBodyBytes(rec.Body.Bytes())
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("%s %s: response %d does not validate: %v\n%.400s", r.Method, r.URL.Path, rec.Code, err, rec.Body.String())
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// matches reports whether r is for one of routes (path templates matched
// segment by segment).
func matches(routes []server.Route, r *http.Request) bool {
	got := strings.Split(r.URL.Path, "/")
	for _, rt := range routes {
		if rt.Method != r.Method && !(rt.Method == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		want := strings.Split(rt.Path, "/")
		if len(want) != len(got) {
			continue
		}
		ok := true
		for i := range want {
			if strings.HasPrefix(want[i], "{") && strings.HasSuffix(want[i], "}") {
				ok = ok && got[i] != ""
			} else {
				ok = ok && got[i] == want[i]
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// CheckAuth sends every operation of the document srv serves (at base,
// through Validating) without a token and with an unknown one, wanting
// 401, and with the token of each role below the route's, wanting 403.
// tokens holds a token of each of read, scan and admin. It returns how
// many operations it checked.
func CheckAuth(t testing.TB, srv *server.Server, base string, tokens map[server.Role]string) int {
	t.Helper()
	doc, _ := Spec(t, srv)
	role := map[string]server.Role{}
	for _, r := range srv.Routes() {
		if r.Foreign == "" {
			role[r.Method+" "+r.Path] = r.Role
		}
	}
	bogus := "bkh_" + strings.Repeat("x", 43)
	n := 0
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			need, ok := role[method+" "+path]
			if !ok {
				t.Errorf("%s %s is documented but the server has no route for it", method, path)
				continue
			}
			n++
			if need == server.RoleNone {
				continue
			}
			url := base + fill(path)
			try := func(tok string) int {
				req, err := http.NewRequest(method, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for _, tok := range []string{"", bogus} {
				if got := try(tok); got != http.StatusUnauthorized {
					t.Errorf("%s %s with token %q: %d, want 401", method, path, tok, got)
				}
			}
			for r := server.RoleRead; r < need; r++ {
				if tokens[r] == "" {
					t.Fatalf("no token of role %s", r)
				}
				if got := try(tokens[r]); got != http.StatusForbidden {
					t.Errorf("%s %s with role %s: %d, want 403 (it needs %s)", method, path, r, got, need)
				}
			}
		}
	}
	return n
}

// fill puts "1" in each parameter of a path template.
func fill(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = "1"
		}
	}
	return strings.Join(parts, "/")
}
