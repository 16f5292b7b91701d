package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// inv is an inventory of Django and json-bigint of one image.
func inv(digest, name, django, bigint string) *inventory.Inventory {
	return &inventory.Inventory{
		Target: inventory.Target{Name: name, Source: "registry", Digest: digest},
		OS:     &inventory.OS{ID: "debian", VersionID: "12"},
		Packages: []inventory.Package{
			{Name: "Django", Version: django, Type: inventory.TypePyPI, PURL: "pkg:pypi/django@" + django, FoundBy: "python",
				Locations: []inventory.Location{{Path: "/usr/lib/python3/dist-packages/Django-" + django + ".dist-info/METADATA"}}},
			{Name: "json-bigint", Version: bigint, Type: inventory.TypeNPM, PURL: "pkg:npm/json-bigint@" + bigint, FoundBy: "npm",
				Locations: []inventory.Location{{Path: "/usr/lib/node_modules/json-bigint/package.json"}}},
		},
	}
}

// bulkheadDoc is an inventory as bulkhead's JSON report, with a secret
// finding.
func bulkheadDoc(t testing.TB, i *inventory.Inventory) []byte {
	var b bytes.Buffer
	res := &report.Result{Inventory: i, Findings: []finding.Finding{{ID: "aws-access-key-id", Kind: finding.KindSecret, Severity: finding.Critical, Title: "AWS access key", Target: i.Target.Name}}}
	if err := report.ResultJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// vulnIDs are the IDs of a report's vulnerability findings.
func vulnIDs(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Kind == finding.KindVulnerability {
			out = append(out, f.ID)
		}
	}
	return out
}

func forBackends(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// TestUpload: each upload format is matched by the server with its shared
// matcher, exactly as pipeline.Inventory does locally, stored in one piece
// (GET /api/v1/scans/{id} is the same report), and listed.
func TestUpload(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, nil)
		ctx := t.Context()
		i := inv(digestA, "registry.example/app:1", "1.0.1", "0.3.0")
		want, err := pipeline.Inventory(ctx, i, pipeline.Options{Matcher: e.matcher})
		if err != nil {
			t.Fatal(err)
		}
		if len(vulnIDs(want.Findings)) < 4 {
			t.Fatalf("the fixture matches %v: too few to test", vulnIDs(want.Findings))
		}
		var cdx, sp bytes.Buffer
		cyclonedx.Encode(&cdx, i, cyclonedx.Options{})
		spdx.Encode(&sp, i, spdx.Options{})
		c := e.client(server.RoleScan)
		for _, u := range []struct {
			media string
			doc   []byte
		}{{server.MediaBulkhead, bulkheadDoc(t, i)}, {server.MediaCycloneDX, cdx.Bytes()}, {server.MediaSPDX, sp.Bytes()}, {server.MediaJSON, cdx.Bytes()}} {
			got, err := c.Upload(ctx, u.media, u.doc, client.UploadOptions{Digest: digestA, CIRun: "run-1"})
			if err != nil {
				t.Fatalf("%s: %v", u.media, err)
			}
			if !reflect.DeepEqual(vulnIDs(got.Findings), vulnIDs(want.Findings)) {
				t.Errorf("%s: server found %v, local match %v", u.media, vulnIDs(got.Findings), vulnIDs(want.Findings))
			}
			secrets := len(got.Findings) - len(vulnIDs(got.Findings))
			if wantSecrets := map[bool]int{true: 1, false: 0}[u.media == server.MediaBulkhead]; secrets != wantSecrets {
				t.Errorf("%s: %d non-vulnerability findings, want %d", u.media, secrets, wantSecrets)
			}
			if got.DB == nil || got.ScanID == 0 {
				t.Errorf("%s: no database info or scan ID: %+v", u.media, got)
			}
			stored, err := e.client(server.RoleRead).Scan(ctx, got.ScanID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored.Findings, got.Findings) || len(stored.Inventory.Packages) != 2 {
				t.Errorf("%s: the stored scan differs from the answer", u.media)
			}
		}
		var imgs []store.ImageSummary
		if err := e.client(server.RoleRead).Get(ctx, "/api/v1/images", nil, &imgs); err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 || imgs[0].Digest != digestA || imgs[0].Repository != "registry.example/app" {
			t.Errorf("images = %+v", imgs)
		}
	})
}

// TestUploadRefused: oversized, malformed and unknown uploads get a 4xx
// with a reason, and nothing is written.
func TestUploadRefused(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *server.Config) { c.MaxUpload = 4 << 10 })
		big := inv(digestA, "registry.example/app:1", "1.0.1", "0.3.0")
		for i := range 100 {
			big.Packages = append(big.Packages, inventory.Package{Name: fmt.Sprintf("pad-%d", i), Version: "1", Type: inventory.TypeNPM, FoundBy: "npm"})
		}
		good := bulkheadDoc(t, inv(digestA, "registry.example/app:1", "1.0.1", "0.3.0"))
		for _, c := range []struct {
			name, media, query string
			body               []byte
			status             int
			reason             string
		}{
			{"oversized", server.MediaBulkhead, "", bulkheadDoc(t, big), http.StatusRequestEntityTooLarge, "limit of 4096 bytes"},
			{"unknown media type", "text/csv", "", good, http.StatusUnsupportedMediaType, "not an inventory"},
			{"malformed", server.MediaCycloneDX, "", good[:len(good)/2], http.StatusBadRequest, "malformed cyclonedx"},
			{"not a report", server.MediaJSON, "", []byte(`{"a":1}`), http.StatusBadRequest, "neither CycloneDX"},
			{"bad digest", server.MediaBulkhead, "?digest=sha256:zz", good, http.StatusBadRequest, "not sha256"},
		} {
			resp, body := e.do(server.RoleScan, http.MethodPut, "/api/v1/inventory"+c.query, c.media, c.body)
			var eb server.ErrorBody
			json.Unmarshal(body, &eb)
			if resp.StatusCode != c.status || !strings.Contains(eb.Error, c.reason) {
				t.Errorf("%s: %d %q, want %d with %q", c.name, resp.StatusCode, eb.Error, c.status, c.reason)
			}
		}
		imgs, err := e.st.Images(t.Context(), store.ImageFilter{})
		if err != nil || len(imgs) != 0 {
			t.Errorf("refused uploads wrote %d images (%v)", len(imgs), err)
		}
	})
}

// TestQueries: images by severity, fixed and package; which images a
// vulnerability hits (and where they run); findings changed since a time;
// the diff of two scans of one repository.
func TestQueries(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, nil)
		ctx := t.Context()
		scan := e.client(server.RoleScan)
		// app:1 has Django 1.0.1 (fixed in 1.1) and json-bigint 0.3.0;
		// app:2 upgrades Django.
		r1, err := scan.Upload(ctx, server.MediaBulkhead, bulkheadDoc(t, inv(digestA, "registry.example/app:1", "1.0.1", "0.3.0")), client.UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := scan.Upload(ctx, server.MediaBulkhead, bulkheadDoc(t, inv(digestB, "registry.example/app:2", "1.1", "0.3.0")), client.UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		read := e.client(server.RoleRead)
		images := func(q url.Values) []string {
			var imgs []store.ImageSummary
			if err := read.Get(ctx, "/api/v1/images", q, &imgs); err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, i := range imgs {
				out = append(out, i.Digest)
			}
			return out
		}
		if got := images(url.Values{"package": {"Django"}}); len(got) != 2 {
			t.Errorf("package=Django: %v", got)
		}
		if got := images(url.Values{"package": {"nothing-here"}}); len(got) != 0 {
			t.Errorf("package=nothing-here: %v", got)
		}
		if got := images(url.Values{"package": {"Django"}, "fixed": {"true"}}); !reflect.DeepEqual(got, []string{digestA}) {
			t.Errorf("Django with a fixed finding: %v, want only %s", got, digestA)
		}
		if got := images(url.Values{"package": {"Django"}, "fixed": {"false"}}); len(got) != 0 {
			t.Errorf("Django with an unfixed finding: %v, want none", got)
		}
		if got := images(url.Values{"severity": {"UNKNOWN"}}); !reflect.DeepEqual(got, []string{digestA, digestB}) {
			t.Errorf("severity=UNKNOWN: %v (json-bigint's finding is in both)", got)
		}
		if resp, _ := e.do(server.RoleRead, http.MethodGet, "/api/v1/images?severity=SEVERE", "", nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("severity=SEVERE: %d", resp.StatusCode)
		}

		// A workload runs app:1 (an admission decision says so).
		dec := server.Decision{Kind: "admission", Image: "registry.example/app:1", Digest: digestA, Allowed: true, Cluster: "prod", Namespace: "shop", Workload: "Deployment/web"}
		if err := scan.Post(ctx, "/api/v1/events/decisions", dec, nil); err != nil {
			t.Fatal(err)
		}
		django := ""
		for _, f := range r1.Findings {
			if f.Package != nil && f.Package.Name == "Django" {
				django = f.ID
			}
		}
		var aff []store.Affected
		if err := read.Get(ctx, "/api/v1/vulnerabilities/"+django+"/affected", nil, &aff); err != nil {
			t.Fatal(err)
		}
		if len(aff) != 1 || aff[0].Digest != digestA || aff[0].Package != "Django" {
			t.Fatalf("affected by %s: %+v", django, aff)
		}
		found := false
		for _, s := range aff[0].Sightings {
			found = found || (s.Namespace == "shop" && s.Workload == "Deployment/web" && s.Cluster == "prod")
		}
		if !found {
			t.Errorf("the workload running %s is not among its sightings: %+v", digestA, aff[0].Sightings)
		}

		// Changes come from re-evaluation; record one as it would.
		since := time.Now().UTC().Add(-time.Second)
		sc, err := e.st.Scan(ctx, r2.ScanID)
		if err != nil {
			t.Fatal(err)
		}
		gone := sc.Findings[0]
		if err := e.st.Reevaluated(ctx, r2.ScanID, sc.DB, sc.Findings[1:], []store.Change{{ScanID: r2.ScanID, Digest: digestB, Kind: "disappeared", Finding: gone, At: time.Now().UTC()}}); err != nil {
			t.Fatal(err)
		}
		var ch []store.Change
		if err := read.Get(ctx, "/api/v1/changes", url.Values{"since": {since.Format(time.RFC3339)}}, &ch); err != nil {
			t.Fatal(err)
		}
		if len(ch) != 1 || ch[0].Finding.ID != gone.ID || ch[0].Kind != "disappeared" {
			t.Errorf("changes = %+v", ch)
		}
		if resp, _ := e.do(server.RoleRead, http.MethodGet, "/api/v1/changes", "", nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("changes without since: %d", resp.StatusCode)
		}

		var d server.Diff
		if err := read.Get(ctx, "/api/v1/diff", url.Values{"repository": {"registry.example/app"}}, &d); err != nil {
			t.Fatal(err)
		}
		var fixed []string
		for _, v := range d.VulnsFixed {
			fixed = append(fixed, v.ID)
		}
		if d.From != r1.ScanID || d.To != r2.ScanID || len(fixed) == 0 || len(d.PackagesChanged) != 1 {
			t.Errorf("diff: from %d to %d, fixed %v, changed %+v", d.From, d.To, fixed, d.PackagesChanged)
		}
		for _, id := range fixed {
			if !strings.HasPrefix(id, "PYSEC-") {
				t.Errorf("diff says %s was fixed; only Django changed", id)
			}
		}
		if err := read.Get(ctx, "/api/v1/diff", url.Values{"repository": {"registry.example/other"}}, &d); !client.IsStatus(err, http.StatusNotFound) {
			t.Errorf("diff of an unknown repository: %v", err)
		}
	})
}

// TestIngest: a Falco alert as falcosidekick posts it and gate decisions
// are stored, linked to the digest they carry.
func TestIngest(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, nil)
		ctx := t.Context()
		// The alert's own time is an hour from now, so it sorts after the
		// gate decision stored now, whenever the test runs.
		later := time.Now().UTC().Add(time.Hour).Format(time.RFC3339Nano)
		alert := `{"output":"14:07:43.000000000: Warning Shell spawned in a container (user=root container_id=4f1c image=registry.example/app)","priority":"Warning","rule":"Terminal shell in container","time":"` + later + `","output_fields":{"container.id":"4f1c","container.image.repository":"registry.example/app","container.image.tag":"1","container.image.digest":"` + digestA + `","k8s.ns.name":"shop","k8s.pod.name":"web-5d8c","proc.pid":4242,"user.name":null},"source":"syscall","tags":["container","shell"],"hostname":"node-1"}`
		resp, body := e.do(server.RoleScan, http.MethodPost, "/api/v1/events/falco", "application/json", []byte(alert))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("falco: %d %s", resp.StatusCode, body)
		}
		var created server.EventCreated
		json.Unmarshal(body, &created)
		if created.Digest != digestA {
			t.Errorf("the alert was not linked to its digest: %+v", created)
		}
		noDigest := `{"output":"x","priority":"Notice","rule":"r","time":"2026-12-03T14:07:43Z","output_fields":{"container.image.repository":"alpine"}}`
		if resp, body := e.do(server.RoleScan, http.MethodPost, "/api/v1/events/falco", "application/json", []byte(noDigest)); resp.StatusCode != http.StatusCreated || strings.Contains(string(body), "digest") {
			t.Errorf("alert without a digest: %d %s", resp.StatusCode, body)
		}
		gate := server.Decision{Kind: "gate", Image: "registry.example/app:1", Digest: digestA, Allowed: false, Reasons: []string{"CVE-X is CRITICAL"}, Decision: json.RawMessage(`{"allowed":false}`)}
		if err := e.client(server.RoleScan).Post(ctx, "/api/v1/events/decisions", gate, nil); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct{ media, body string }{
			{"application/json", `{"kind":"vote","allowed":true}`},
			{"application/json", `{"output":"x"}`},
			{"text/plain", alert},
			{"application/json", `{`},
		} {
			path := "/api/v1/events/decisions"
			if strings.Contains(bad.body, "output") {
				path = "/api/v1/events/falco"
			}
			if resp, _ := e.do(server.RoleScan, http.MethodPost, path, bad.media, []byte(bad.body)); resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("%s %s: %d, want 4xx", bad.media, bad.body, resp.StatusCode)
			}
		}
		var evs []server.EventView
		if err := e.client(server.RoleRead).Get(ctx, "/api/v1/events", url.Values{"digest": {digestA}}, &evs); err != nil {
			t.Fatal(err)
		}
		// Oldest first: the gate decision (now) before the alert (its own time, an hour later).
		if len(evs) != 2 || evs[1].Kind != "runtime" || evs[1].Rule != "Terminal shell in container" || evs[0].Kind != "gate" || evs[0].Priority != "denied" {
			t.Fatalf("events = %+v", evs)
		}
		evs[0] = evs[1]
		var body0 map[string]any
		if err := json.Unmarshal(evs[0].Body, &body0); err != nil || body0["hostname"] != "node-1" {
			t.Errorf("the alert's body is not kept as sent: %s", evs[0].Body)
		}
	})
}

// route is one operation of the API and the least role it needs.
type route struct {
	method, path, media, body string
	need                      server.Role
}

var routes = []route{
	{"GET", "/healthz", "", "", server.RoleNone},
	{"GET", "/readyz", "", "", server.RoleNone},
	{"GET", "/metrics", "", "", server.RoleRead},
	{"GET", "/openapi.json", "", "", server.RoleRead},
	{"POST", "/api/v1/scans", "application/json", `{"reference":"127.0.0.1:1/none:1"}`, server.RoleScan},
	{"GET", "/api/v1/jobs/{id}", "", "", server.RoleRead},
	{"GET", "/api/v1/scans/{id}", "", "", server.RoleRead},
	{"GET", "/api/v1/scans/{id}/provenance", "", "", server.RoleRead},
	{"PUT", "/api/v1/inventory", server.MediaJSON, `{"a":1}`, server.RoleScan},
	{"POST", "/api/v1/inventory", server.MediaJSON, `{"a":1}`, server.RoleScan},
	{"GET", "/api/v1/images", "", "", server.RoleRead},
	{"GET", "/api/v1/vulnerabilities/{id}/affected", "", "", server.RoleRead},
	{"GET", "/api/v1/changes", "", "", server.RoleRead},
	{"GET", "/api/v1/diff", "", "", server.RoleRead},
	{"POST", "/api/v1/events/falco", "application/json", `{}`, server.RoleScan},
	{"POST", "/api/v1/events/decisions", "application/json", `{}`, server.RoleScan},
	{"GET", "/api/v1/events", "", "", server.RoleRead},
	{"POST", "/api/v1/tokens", "application/json", `{"name":"x","role":"nope"}`, server.RoleAdmin},
	{"DELETE", "/api/v1/tokens/{name}", "", "", server.RoleAdmin},
	{"GET", "/api/v1/runtime/profiles", "", "", server.RoleRead},
	{"GET", "/api/v1/runtime/profiles/{imageID}", "", "", server.RoleRead},
	{"PUT", "/api/v1/runtime/profiles/{imageID}", server.MediaYAML, "x: 1", server.RoleScan},
	{"GET", "/api/v1/runtime/filelists/{imageID}", "", "", server.RoleRead},
	{"PUT", "/api/v1/runtime/filelists/{imageID}", server.MediaGzip, "x", server.RoleScan},
}

// TestAuth: every operation of openapi.json is in routes; each refuses no
// token and a bad one with 401, a lower role with 403, and lets its role
// (and higher) through. A deleted token stops working.
func TestAuth(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(server.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range routes {
		listed[r.method+" "+r.path] = true
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !listed[method+" "+path] {
				t.Errorf("%s %s is in openapi.json but not tested here", method, path)
			}
		}
	}
	e := newEnv(t, backends[0], nil)
	e.tokens[server.RoleNone] = ""
	bogus := "bkh_" + strings.Repeat("x", 43)
	for _, r := range routes {
		path := strings.NewReplacer("{id}", "1", "{name}", "nobody", "{imageID}", "sha256:"+strings.Repeat("0", 64)).Replace(r.path)
		try := func(tok string) int {
			req, _ := http.NewRequest(r.method, e.ts.URL+path, strings.NewReader(r.body))
			if r.media != "" {
				req.Header.Set("Content-Type", r.media)
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
		if r.need == server.RoleNone {
			if got := try(""); got != http.StatusOK {
				t.Errorf("%s %s without a token: %d", r.method, r.path, got)
			}
			continue
		}
		for _, tok := range []string{"", bogus} {
			if got := try(tok); got != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401", r.method, r.path, tok, got)
			}
		}
		for _, role := range []server.Role{server.RoleRead, server.RoleScan, server.RoleAdmin} {
			got := try(e.tokens[role])
			switch {
			case role < r.need && got != http.StatusForbidden:
				t.Errorf("%s %s with role %s: %d, want 403", r.method, r.path, role, got)
			case role >= r.need && (got == http.StatusUnauthorized || got == http.StatusForbidden):
				t.Errorf("%s %s with role %s: %d, want through", r.method, r.path, role, got)
			}
		}
	}
	// Revoke the read token.
	resp, _ := e.do(server.RoleAdmin, http.MethodDelete, "/api/v1/tokens/test-read", "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete token: %d", resp.StatusCode)
	}
	if resp, _ := e.do(server.RoleRead, http.MethodGet, "/api/v1/images", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", resp.StatusCode)
	}
	// Stored hashed: the database holds no token.
	for _, tok := range []string{e.tokens[server.RoleScan]} {
		h := server.HashToken(tok)
		got, err := e.st.TokenByHash(context.Background(), h)
		if err != nil || got.Name != "test-scan" {
			t.Errorf("token by hash: %+v %v", got, err)
		}
	}
}

// TestHealth: /readyz answers 503 once the database is gone; /healthz
// stays 200.
func TestHealth(t *testing.T) {
	e := newEnv(t, backends[0], nil)
	if resp, _ := e.do(server.RoleNone, http.MethodGet, "/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	resp, body := e.do(server.RoleRead, http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "bulkhead_http_requests_total") {
		t.Errorf("metrics: %d", resp.StatusCode)
	}
	// The store's group commit: transactions and the writes they held
	// (the server's own start wrote at least its bootstrap state).
	for _, m := range []string{"bulkhead_store_transactions_total ", "bulkhead_store_writes_total "} {
		if !strings.Contains(string(body), "\n"+m) {
			t.Errorf("metrics: no %s", m)
		}
	}
	e.s.DBClosed = true
	e.st.DB().Close()
	if resp, _ := e.do(server.RoleNone, http.MethodGet, "/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database closed: %d", resp.StatusCode)
	}
	if resp, _ := e.do(server.RoleNone, http.MethodGet, "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

// extension adds one admin route, as the Harbor adapter or re-evaluation
// do, documented by doc (nil: undocumented).
type extension struct {
	registered bool
	doc        []byte
	pattern    string
}

const extensionDoc = `{"paths": {"/api/v1/test-extension": {"post": {
	"operationId": "testExtension", "summary": "a test route", "description": "Needs a token of role admin.",
	"security": [{"bearer": []}],
	"responses": {
		"418": {"description": "brewed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TestBrew"}}}},
		"401": {"$ref": "#/components/responses/Unauthorized"},
		"403": {"$ref": "#/components/responses/Forbidden"}}}}},
	"components": {"schemas": {"TestBrew": {"type": "object", "required": ["tea"], "properties": {"tea": {"type": "string"}}}}}}`

func (x *extension) Register(r *server.Registrar) error {
	x.registered = r.Workers != nil && r.Metrics != nil && r.Server != nil
	if x.doc != nil {
		if err := r.Document(x.doc); err != nil {
			return err
		}
	}
	if x.pattern == "" {
		x.pattern = "POST /api/v1/test-extension"
	}
	r.Handle(x.pattern, server.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(`{"tea":"green"}`))
	}))
	return nil
}

// TestExtension: an extension's routes get the server's authentication,
// and its documentation is in /openapi.json (the exchanges validate
// against it: the env's server checks each one).
func TestExtension(t *testing.T) {
	x := &extension{doc: []byte(extensionDoc)}
	e := newEnv(t, backends[0], func(c *server.Config) { c.Extensions = []server.Extension{x} })
	if !x.registered {
		t.Fatal("the extension was not given the queue's workers, the metrics and the server")
	}
	for role, want := range map[server.Role]int{server.RoleNone: http.StatusUnauthorized, server.RoleScan: http.StatusForbidden, server.RoleAdmin: http.StatusTeapot} {
		if resp, _ := e.do(role, http.MethodPost, "/api/v1/test-extension", "", nil); resp.StatusCode != want {
			t.Errorf("role %s: %d, want %d", role, resp.StatusCode, want)
		}
	}
	_, served := e.do(server.RoleRead, http.MethodGet, "/openapi.json", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	if op := doc.Paths.Find("/api/v1/test-extension"); op == nil || op.Post == nil || doc.Components.Schemas["TestBrew"] == nil {
		t.Errorf("/openapi.json lacks the extension's operation or schema")
	}
	if doc.Paths.Find("/api/v1/images") == nil {
		t.Errorf("/openapi.json lacks the server's own operations")
	}
	if n := servertest.CheckAuth(t, e.srv, e.ts.URL, e.tokens); n != len(routes)+1 {
		t.Errorf("CheckAuth checked %d operations, want %d", n, len(routes)+1)
	}
}

// TestDocumentRefused: a server does not start with a route its document
// does not describe, with a fragment that does not validate or clashes
// with another, or with an operation documented but not served; the error
// says which.
func TestDocumentRefused(t *testing.T) {
	st := openStore(t, backends[0])
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	badRef := strings.Replace(extensionDoc, "#/components/schemas/TestBrew", "#/components/schemas/Nothing", 1)
	noResponses := `{"paths": {"/api/v1/test-extension": {"post": {"summary": "x"}}}}`
	other := strings.Replace(extensionDoc, `"required": ["tea"]`, `"required": []`, 1)
	for _, c := range []struct {
		name string
		exts []server.Extension
		want string
	}{
		{"undocumented", []server.Extension{&extension{}}, "POST /api/v1/test-extension is served but not documented"},
		{"documented elsewhere", []server.Extension{&extension{doc: []byte(extensionDoc), pattern: "PUT /api/v1/test-extension"}}, "PUT /api/v1/test-extension is served but not documented"},
		{"documented, not served", []server.Extension{docOnly(extensionDoc)}, "documented but not served: POST /api/v1/test-extension"},
		{"documented twice", []server.Extension{&extension{doc: []byte(extensionDoc)}, docOnly(extensionDoc)}, "POST /api/v1/test-extension is documented twice"},
		{"dangling $ref", []server.Extension{&extension{doc: []byte(badRef)}}, "Nothing"},
		{"no responses", []server.Extension{&extension{doc: []byte(noResponses)}}, "does not validate"},
		{"not a fragment", []server.Extension{&extension{doc: []byte(`{"openapi": "3.0.3", "paths": {}}`)}}, "not {\"paths\""},
		{"a server's operation again", []server.Extension{docOnly(strings.Replace(strings.Replace(extensionDoc, "/api/v1/test-extension", "/api/v1/images", 1), `"post"`, `"get"`, 1))}, "GET /api/v1/images is documented twice"},
		{"schema clash", []server.Extension{&extension{doc: []byte(extensionDoc)}, docOnly(strings.Replace(other, "/api/v1/test-extension", "/api/v1/other", 1))}, "TestBrew is defined twice"},
		{"pattern with a host", []server.Extension{&extension{doc: []byte(extensionDoc), pattern: "example.com/api/v1/test-extension"}}, "METHOD /path"},
	} {
		_, err := server.New(t.Context(), server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, Logger: discardLogger(), Extensions: c.exts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// docOnly documents a path and serves nothing.
type docOnly string

func (d docOnly) Register(r *server.Registrar) error { return r.Document([]byte(d)) }
