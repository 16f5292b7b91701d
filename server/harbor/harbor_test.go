package harbor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
	"github.com/bulkhead-sec/bulkhead/server/harbor/harbortest"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
)

const adapterToken = "adapter-token-for-harbor"

// adapter serves the handler over the backend with the bearer token and a
// 1 s Refresh-After, logging into logs.
func adapter(t *testing.T, b harbor.Backend, logs *servertest.Logs) string {
	t.Helper()
	m := sharedMatcher(t)
	h := harbor.New(b, harbor.Options{
		Scanner:      harbor.Scanner{Name: "Bulkhead", Vendor: "bulkhead-sec", Version: "1.2.3"},
		Properties:   map[string]string{"env.BULKHEAD_IGNORE_UNFIXED": "false"},
		DBUpdatedAt:  func(context.Context) (time.Time, error) { i, err := m.Info(nil); return i.UpdatedAt, err },
		RefreshAfter: time.Second,
		Auth:         harbor.BearerToken(adapterToken),
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v1"
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// The whole protocol as Harbor drives it, against the demo image in a
// registry with Harbor's token authentication: metadata, a scan request
// with the robot account's Basic credentials and both v1.2 capabilities,
// 302 + Refresh-After while the scan is held, then the vulnerability
// reports (both media types) and the SPDX and CycloneDX SBOM reports,
// fetched concurrently as Harbor's job does. The findings are those of a
// direct pipeline run on the same image; the registry credentials appear
// in no log line and no response.
func TestHarborScanFlow(t *testing.T) {
	reg := newTokenRegistry(t)
	digest := reg.pushDemo(t, "library/demo", "v1")
	b := newBackend(t)
	b.hold = make(chan struct{})
	logs := &servertest.Logs{}
	c := harbortest.NewClient(t, adapter(t, b, logs), "Bearer "+adapterToken)

	md, mex := c.Metadata()
	if ct := mex.Header.Get("Content-Type"); ct != harbor.MediaTypeMetadata10 {
		t.Errorf("metadata asked as %s came as %s", harbor.MediaTypeMetadata10, ct)
	}
	if md.Scanner.Name != "Bulkhead" || md.Scanner.Version != "1.2.3" || len(md.Capabilities) != 2 {
		t.Fatalf("metadata: %+v", md)
	}
	for _, cp := range md.Capabilities {
		if !slices.Contains(cp.ConsumesMimeTypes, harbor.MediaTypeOCIManifest) || !slices.Contains(cp.ConsumesMimeTypes, harbor.MediaTypeDockerManifest) {
			t.Errorf("%s consumes %v", cp.Type, cp.ConsumesMimeTypes)
		}
	}
	if !slices.Contains(md.Capabilities[0].ProducesMimeTypes, harbor.MediaTypeVulnReport) || md.Capabilities[1].ProducesMimeTypes[0] != harbor.MediaTypeSBOMReport {
		t.Errorf("capabilities %+v", md.Capabilities)
	}
	if got := fmt.Sprint(md.Capabilities[1].AdditionalAttributes["sbom_media_types"]); got != "[application/spdx+json application/vnd.cyclonedx+json]" {
		t.Errorf("sbom_media_types %s", got)
	}
	if md.Properties[harbor.PropScannerType] != "os-package-vulnerability" || md.Properties["env.BULKHEAD_IGNORE_UNFIXED"] != "false" {
		t.Errorf("properties %v", md.Properties)
	}
	if _, err := time.Parse(time.RFC3339, md.Properties[harbor.PropDBUpdatedAt]); err != nil {
		t.Errorf("database update time %q: %v", md.Properties[harbor.PropDBUpdatedAt], err)
	}

	robot := basic(reg.user, reg.pass)
	id := c.Submit(harbor.ScanRequest{
		Registry: harbor.Registry{URL: reg.url, Authorization: robot},
		Artifact: harbor.Artifact{Repository: "library/demo", Digest: digest.String(), Tag: "v1", MimeType: harbor.MediaTypeOCIManifest},
		EnabledCapabilities: []harbor.Capability{
			{Type: "vulnerability", ProducesMimeTypes: []string{harbor.MediaTypeVulnReport}},
			{Type: "sbom", ProducesMimeTypes: []string{harbor.MediaTypeSBOMReport}, Parameters: &harbor.SBOMParameters{SBOMMediaTypes: []string{harbor.SBOMSPDX}}},
		},
	})
	ex := c.GetReport(id, harbor.MediaTypeVulnReport, "")
	if ex.Status != http.StatusFound || ex.Header.Get("Refresh-After") != "1" {
		t.Fatalf("held scan: %d Refresh-After %q, want 302 and 1", ex.Status, ex.Header.Get("Refresh-After"))
	}
	// Harbor's job waits 2 s before the first check; here the scan is
	// released just after the first check, which gets 302 again.
	c.FirstCheck = 50 * time.Millisecond
	time.AfterFunc(100*time.Millisecond, func() { close(b.hold) })

	wants := []struct{ mt, query string }{
		{harbor.MediaTypeVulnReport, ""},
		{harbor.MediaTypeVulnReportHarb, ""},
		{harbor.MediaTypeSBOMReport, "sbom_media_type=application%2Fspdx%2Bjson"},
		{harbor.MediaTypeSBOMReport, "sbom_media_type=application%2Fvnd.cyclonedx%2Bjson"},
	}
	got := make([]harbortest.PollResult, len(wants))
	var wg sync.WaitGroup
	for i, w := range wants {
		wg.Go(func() { got[i] = c.WaitReport(id, w.mt, w.query) })
	}
	wg.Wait()
	for i, pr := range got {
		if pr.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", wants[i].mt, pr.Status, pr.Body)
		}
		if pr.Polls < 2 || !slices.Equal(pr.Waits, slices.Repeat([]int{1}, pr.Polls-1)) {
			t.Errorf("%s: %d polls, waits %v: want a 302 with Refresh-After 1 before the report", wants[i].mt, pr.Polls, pr.Waits)
		}
	}

	// The vulnerability report is the pipeline's findings on this image.
	var rep harbor.VulnerabilityReport
	if err := json.Unmarshal(got[0].Body, &rep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0].Body, got[1].Body) {
		t.Errorf("the two vulnerability media types carry different reports")
	}
	direct, err := pipeline.Run(t.Context(), "oci-archive:../../testdata/images/alpine-demo.oci.tar", pipeline.Options{TempDir: t.TempDir(), Matcher: sharedMatcher(t)})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	top := finding.Unknown
	for _, f := range direct.Findings {
		if f.Kind == finding.KindVulnerability && f.Suppressed == nil {
			want = append(want, f.ID+" "+f.Package.Name+" "+f.Package.Version+" "+harbor.Severity(f.Severity))
			top = max(top, f.Severity)
		}
	}
	var have []string
	var lodash *harbor.VulnerabilityItem
	for i, v := range rep.Vulnerabilities {
		have = append(have, v.ID+" "+v.Package+" "+v.Version+" "+v.Severity)
		if v.Package == "lodash" && v.FixVersion != "" && len(v.Links) > 0 && v.PreferredCVSS != nil {
			lodash = &rep.Vulnerabilities[i]
		}
	}
	if len(want) == 0 || !slices.Equal(have, want) {
		t.Errorf("report vulnerabilities\n%v\nwant (pipeline.Run on the archive)\n%v", have, want)
	}
	if rep.Severity != harbor.Severity(top) || rep.Artifact.Digest != digest.String() || rep.Artifact.Tag != "v1" || rep.Scanner.Version != "1.2.3" {
		t.Errorf("report header: severity %s (want %s), artifact %+v, scanner %+v", rep.Severity, harbor.Severity(top), rep.Artifact, rep.Scanner)
	}
	if lodash == nil {
		t.Fatalf("no lodash vulnerability with a fix version, links and a CVSS vector: %s", got[0].Body)
	}
	if !strings.HasPrefix(lodash.PreferredCVSS.VectorV3, "CVSS:3") || lodash.PreferredCVSS.ScoreV3 == nil || lodash.VendorAttributes["CVSS"] == nil || lodash.VendorAttributes["purl"] != "pkg:npm/lodash@4.17.15" {
		t.Errorf("lodash item: %+v", *lodash)
	}

	// The SBOM reports are bulkhead's SPDX and CycloneDX of the inventory.
	for i, format := range []string{harbor.SBOMSPDX, harbor.SBOMCycloneDX} {
		var sr struct {
			harbor.SBOMReport
			SBOM map[string]any `json:"sbom"`
		}
		if err := json.Unmarshal(got[2+i].Body, &sr); err != nil {
			t.Fatal(err)
		}
		if sr.MediaType != format || sr.Artifact.Digest != digest.String() {
			t.Errorf("%s report: media type %s artifact %+v", format, sr.MediaType, sr.Artifact)
		}
		n := len(direct.Inventory.Packages)
		switch format {
		case harbor.SBOMSPDX:
			if sr.SBOM["spdxVersion"] != "SPDX-2.3" || len(sr.SBOM["packages"].([]any)) < n {
				t.Errorf("SPDX: version %v, %d packages for %d", sr.SBOM["spdxVersion"], len(sr.SBOM["packages"].([]any)), n)
			}
		case harbor.SBOMCycloneDX:
			if sr.SBOM["bomFormat"] != "CycloneDX" || len(sr.SBOM["components"].([]any)) < n {
				t.Errorf("CycloneDX: format %v, %d components for %d", sr.SBOM["bomFormat"], len(sr.SBOM["components"].([]any)), n)
			}
		}
	}

	if reg.served.Load() == 0 {
		t.Error("the registry served nothing: the scan did not pull through it")
	}
	if _, ok := reg.seenAuth.Load(robot); !ok {
		t.Error("the registry never saw the robot account's Basic credentials (token exchange)")
	}
	secrets := []string{reg.pass, strings.TrimPrefix(robot, "Basic "), reg.token}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold a registry credential:\n%s", logs)
		}
		for _, pr := range got {
			if bytes.Contains(pr.Body, []byte(s)) {
				t.Errorf("a report holds a registry credential")
			}
		}
	}
	if !strings.Contains(logs.String(), `"authorization":true`) {
		t.Errorf("the accepted-scan log line does not say a credential was given:\n%s", logs)
	}
}

// Harbor versions that send the registry's own bearer token: the scan
// pulls with it as is, with no token exchange.
func TestHarborBearerRegistryToken(t *testing.T) {
	reg := newTokenRegistry(t)
	digest := reg.pushDemo(t, "proj/app", "latest")
	logs := &servertest.Logs{}
	c := harbortest.NewClient(t, adapter(t, newBackend(t), logs), "Bearer "+adapterToken)
	id := c.Submit(harbor.ScanRequest{
		Registry: harbor.Registry{URL: reg.url, Authorization: "Bearer " + reg.token},
		Artifact: harbor.Artifact{Repository: "proj/app", Digest: digest.String(), MimeType: harbor.MediaTypeDockerManifest},
	})
	pr := c.WaitReport(id, harbor.MediaTypeVulnReport, "")
	if pr.Status != http.StatusOK {
		t.Fatalf("%d %s", pr.Status, pr.Body)
	}
	var rep harbor.VulnerabilityReport
	if err := json.Unmarshal(pr.Body, &rep); err != nil || len(rep.Vulnerabilities) == 0 {
		t.Fatalf("report %v: %s", err, pr.Body)
	}
	if strings.Contains(logs.String(), reg.token) {
		t.Errorf("the logs hold the registry token")
	}
}

// A robot account the registry refuses: the report is a 500 with the
// spec's ErrorResponse saying access was denied, without the password.
func TestHarborScanFailure(t *testing.T) {
	reg := newTokenRegistry(t)
	digest := reg.pushDemo(t, "library/demo", "v1")
	logs := &servertest.Logs{}
	c := harbortest.NewClient(t, adapter(t, newBackend(t), logs), "Bearer "+adapterToken)
	wrong := "not-the-robot-password-" + reg.pass[len(reg.pass)-8:]
	id := c.Submit(harbor.ScanRequest{
		Registry: harbor.Registry{URL: reg.url, Authorization: basic(reg.user, wrong)},
		Artifact: harbor.Artifact{Repository: "library/demo", Digest: digest.String()},
	})
	pr := c.WaitReport(id, harbor.MediaTypeVulnReport, "")
	var er harbor.ErrorResponse
	if pr.Status != http.StatusInternalServerError || json.Unmarshal(pr.Body, &er) != nil || !strings.Contains(er.Error.Message, "access denied") {
		t.Fatalf("refused pull: %d %s", pr.Status, pr.Body)
	}
	if reg.refused.Load() == 0 {
		t.Error("the registry refused nothing")
	}
	for _, s := range []string{wrong, base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + wrong))} {
		if strings.Contains(er.Error.Message, s) || strings.Contains(logs.String(), s) {
			t.Errorf("the credential is in the error or the logs:\n%s\n%s", er.Error.Message, logs)
		}
	}
}

// Bad requests get the spec's status and an ErrorResponse, and the spec
// itself rejects the ones its schema can tell; the adapter's token is
// required.
func TestHarborBadRequests(t *testing.T) {
	logs := &servertest.Logs{}
	base := adapter(t, newBackend(t), logs)
	c := harbortest.NewClient(t, base, "Bearer "+adapterToken)
	good := func() map[string]any {
		return map[string]any{
			"registry": map[string]any{"url": "https://core.harbor.domain", "authorization": basic("robot$x", "pw")},
			"artifact": map[string]any{"repository": "library/mongo", "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", "mime_type": harbor.MediaTypeOCIManifest},
		}
	}
	with := func(f func(m map[string]any)) []byte {
		m := good()
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	art := func(m map[string]any) map[string]any { return m["artifact"].(map[string]any) }
	regm := func(m map[string]any) map[string]any { return m["registry"].(map[string]any) }
	cases := []struct {
		name        string
		body        []byte
		ctype       string
		status      int
		specRejects bool // the schema alone tells it is bad
		msg         string
	}{
		{"not JSON", []byte(`{"registry":`), harbor.MediaTypeScanRequest10, 400, true, "not valid JSON"},
		{"wrong type", with(func(m map[string]any) { m["artifact"] = "library/mongo" }), harbor.MediaTypeScanRequest10, 400, true, `"artifact" must be a JSON object`},
		{"trailing data", append(with(func(map[string]any) {}), []byte(`{}`)...), harbor.MediaTypeScanRequest10, 400, false, "after the JSON object"},
		{"form content type", with(func(map[string]any) {}), "application/x-www-form-urlencoded", 400, true, "Content-Type"},
		{"no registry url", with(func(m map[string]any) { delete(regm(m), "url") }), harbor.MediaTypeScanRequest11, 422, false, "registry.url is required"},
		{"ftp registry", with(func(m map[string]any) { regm(m)["url"] = "ftp://core.harbor.domain" }), harbor.MediaTypeScanRequest11, 422, false, "scheme must be http or https"},
		{"credentials in url", with(func(m map[string]any) { regm(m)["url"] = "https://robot:pw@core.harbor.domain" }), harbor.MediaTypeScanRequest11, 422, false, "must not hold credentials"},
		{"no digest", with(func(m map[string]any) { delete(art(m), "digest") }), harbor.MediaTypeScanRequest10, 422, false, "artifact.digest is required"},
		{"bad digest", with(func(m map[string]any) { art(m)["digest"] = "sha256:xyz" }), harbor.MediaTypeScanRequest10, 422, false, "artifact.digest"},
		{"bad repository", with(func(m map[string]any) { art(m)["repository"] = "Library/Mongo!" }), harbor.MediaTypeScanRequest10, 422, false, "artifact.repository"},
		{"unknown auth scheme", with(func(m map[string]any) { regm(m)["authorization"] = "Digest abcdef" }), harbor.MediaTypeScanRequest10, 422, false, "not Basic or Bearer"},
		{"helm chart", with(func(m map[string]any) { art(m)["mime_type"] = "application/vnd.cncf.helm.config.v1+json" }), harbor.MediaTypeScanRequest10, 501, false, "cannot be scanned"},
		{"unknown capability", with(func(m map[string]any) { m["enabled_capabilities"] = []any{map[string]any{"type": "license"}} }), harbor.MediaTypeScanRequest10, 422, true, "not vulnerability or sbom"},
		{"unknown report type", with(func(m map[string]any) {
			m["enabled_capabilities"] = []any{map[string]any{"type": "vulnerability", "produces_mime_types": []string{"application/vnd.scanner.adapter.vuln.report.raw"}}}
		}), harbor.MediaTypeScanRequest10, 501, false, "does not produce"},
		{"unknown sbom format", with(func(m map[string]any) {
			m["enabled_capabilities"] = []any{map[string]any{"type": "sbom", "parameters": map[string]any{"sbom_media_types": []string{"text/spdx"}}}}
		}), harbor.MediaTypeScanRequest10, 422, true, "sbom_media_types"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.SetT(t)
			ex := c.SubmitRaw(tc.body, tc.ctype)
			var er harbor.ErrorResponse
			json.Unmarshal(ex.Body, &er)
			if ex.Status != tc.status || !strings.Contains(er.Error.Message, tc.msg) {
				t.Errorf("%d %q, want %d with %q", ex.Status, er.Error.Message, tc.status, tc.msg)
			}
			if tc.specRejects && ex.ReqErr == nil {
				t.Errorf("the spec accepts this request")
			}
			if !tc.specRejects && ex.ReqErr != nil {
				t.Errorf("the spec rejects it, the case says it cannot: %v", ex.ReqErr)
			}
			if strings.Contains(er.Error.Message, "cHc") || strings.Contains(er.Error.Message, ":pw") {
				t.Errorf("the error quotes the credential: %s", er.Error.Message)
			}
		})
	}
	c.SetT(t)

	// A valid request is accepted (the scan itself fails later: the
	// registry does not exist), so the report cases have an id.
	id := c.Submit(harbor.ScanRequest{Registry: harbor.Registry{URL: "http://127.0.0.1:1"},
		Artifact: harbor.Artifact{Repository: "library/mongo", Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}})
	reports := []struct {
		name, id, accept, query string
		status                  int
		msg                     string
	}{
		{"unknown id", "3fa85f64-5717-4562-b3fc-2c963f66afa6", harbor.MediaTypeVulnReport, "", 404, ""},
		{"raw report", id, "application/vnd.scanner.adapter.vuln.report.raw", "", 501, "cannot produce"},
		{"sbom without format", id, harbor.MediaTypeSBOMReport, "", 400, "sbom_media_type"},
		{"sbom unknown format", id, harbor.MediaTypeSBOMReport, "sbom_media_type=text%2Fxml", 400, "sbom_media_type"},
	}
	for _, tc := range reports {
		t.Run(tc.name, func(t *testing.T) {
			c.SetT(t)
			ex := c.GetReport(tc.id, tc.accept, tc.query)
			var er harbor.ErrorResponse
			json.Unmarshal(ex.Body, &er)
			if ex.Status != tc.status || !strings.Contains(er.Error.Message, tc.msg) {
				t.Errorf("%d %q, want %d with %q", ex.Status, er.Error.Message, tc.status, tc.msg)
			}
		})
	}
	c.SetT(t)
	if pr := c.WaitReport(id, "", ""); pr.Status != http.StatusInternalServerError {
		t.Errorf("scan of an unreachable registry: %d %s", pr.Status, pr.Body)
	}

	// Without the adapter's token: 401 everywhere.
	for _, auth := range []string{"", "Bearer wrong", basic("admin", adapterToken)} {
		nc := harbortest.NewClient(t, base, auth)
		if _, ex := nc.Metadata(); ex.Status != http.StatusUnauthorized || ex.ReqErr == nil && auth == "" {
			t.Errorf("metadata with %q: %d (spec verdict on the request: %v)", auth, ex.Status, ex.ReqErr)
		}
		if ex := nc.SubmitRaw(with(func(map[string]any) {}), harbor.MediaTypeScanRequest10); ex.Status != http.StatusUnauthorized {
			t.Errorf("scan with %q: %d", auth, ex.Status)
		}
	}
}

// A request printed or logged by any verb shows no credential.
func TestScanRequestRedacted(t *testing.T) {
	req := harbor.ScanRequest{Registry: harbor.Registry{URL: "https://core.harbor.domain", Authorization: basic("robot$x", "hunter2-hunter2")}}
	secret := strings.TrimPrefix(req.Registry.Authorization, "Basic ")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "req", req, "registry", req.Registry)
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req), fmt.Sprintf("%q", req.Registry), fmt.Sprintf("%v", &req), buf.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, "hunter2") {
			t.Errorf("credential shown: %s", s)
		}
	}
}

// Refresh-After is whole seconds Harbor can parse (an 8-bit integer): a
// longer setting is capped at 127, a shorter one is at least 1.
func TestRefreshAfterFitsHarbor(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Hour, "127"}, {time.Millisecond, "1"}, {0, "5"}, {1500 * time.Millisecond, "2"}} {
		b := newBackend(t)
		b.hold = make(chan struct{})
		t.Cleanup(func() { close(b.hold) })
		srv := httptest.NewServer(harbor.New(b, harbor.Options{RefreshAfter: tc.d, Auth: harbor.BearerToken(adapterToken), Logger: slog.New(slog.DiscardHandler)}))
		t.Cleanup(srv.Close)
		c := harbortest.NewClient(t, srv.URL+"/api/v1", "Bearer "+adapterToken)
		id := c.Submit(harbor.ScanRequest{Registry: harbor.Registry{URL: "http://127.0.0.1:1"},
			Artifact: harbor.Artifact{Repository: "a/b", Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}})
		ex := c.GetReport(id, harbor.MediaTypeVulnReport, "")
		if ex.Status != http.StatusFound || ex.Header.Get("Refresh-After") != tc.want {
			t.Errorf("RefreshAfter %v: %d Refresh-After %q, want 302 %s", tc.d, ex.Status, ex.Header.Get("Refresh-After"), tc.want)
		}
	}
}
