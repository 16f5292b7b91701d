package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// TestDashboardMounted: the server serves the dashboard under /ui/ with
// the API's tokens and roles: a read token sees the pages, its re-scan is
// refused; a scan token's re-scan queues a scan job of the image by
// digest; without a token the browser goes to the login page. Falco
// alerts keep their container and namespace for the dashboard's filters.
func TestDashboardMounted(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	ctx := t.Context()
	if _, err := e.st.PutScan(ctx, &store.Scan{Digest: digestA, Repository: "registry.example/app", Source: "upload",
		Inventory: &inventory.Inventory{Target: inventory.Target{Name: "registry.example/app:1", Digest: digestA}}}, nil); err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("/", ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get("/ui/", ""); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Errorf("GET /ui/ without a token = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/images", "/ui/images/" + digestA, "/ui/alerts"} {
		if resp := get(p, e.tokens[server.RoleRead]); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s with a read token = %d", p, resp.StatusCode)
		}
	}
	if resp, body := e.do(server.RoleRead, "POST", "/ui/images/"+digestA+"/rescan", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("re-scan with a read token = %d %s", resp.StatusCode, body)
	}
	resp, body := e.do(server.RoleScan, "POST", "/ui/images/"+digestA+"/rescan", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "A new scan of this image is queued") {
		t.Errorf("re-scan with a scan token = %d %.300s", resp.StatusCode, body)
	}
	var args string
	if err := e.st.DB().QueryRowContext(ctx, "SELECT CAST(args AS TEXT) FROM river_job WHERE kind = 'bulkhead_scan' ORDER BY id DESC LIMIT 1").Scan(&args); err != nil || !strings.Contains(args, "registry.example/app@"+digestA) {
		t.Errorf("the queued re-scan job: %q, %v", args, err)
	}

	alert := `{"output":"shell","priority":"Warning","rule":"Terminal shell in container","time":"2026-12-03T14:07:43Z","output_fields":{"container.name":"web","container.image.digest":"` + digestA + `","k8s.ns.name":"shop","k8s.pod.name":"web-5d8c"}}`
	if resp, body := e.do(server.RoleScan, http.MethodPost, "/api/v1/events/falco", "application/json", []byte(alert)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("falco: %d %s", resp.StatusCode, body)
	}
	evs, err := e.st.EventsPage(ctx, store.EventFilter{Container: "web", Namespace: "shop"})
	if err != nil || len(evs) != 1 {
		t.Errorf("the alert by container and namespace: %+v, %v", evs, err)
	}
	gate := server.Decision{Kind: "gate", Digest: digestA, Allowed: false, Rule: "no-critical", Reasons: []string{"CVE-X is CRITICAL"}}
	if err := e.client(server.RoleScan).Post(ctx, "/api/v1/events/decisions", gate, nil); err != nil {
		t.Fatal(err)
	}
	if evs, _ := e.st.EventsPage(ctx, store.EventFilter{Kinds: []string{"gate"}}); len(evs) != 1 || evs[0].Rule != "no-critical" {
		t.Errorf("the gate decision's rule: %+v", evs)
	}
}
