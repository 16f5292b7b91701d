package html

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	stdhtml "html"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// hostile is what an image can put in any text a report shows.
const hostile = `</script><img src=x onerror=alert(1)><script>alert(2)</script>"'&`

// sample builds a scan result of nPkgs packages over three layers and
// nFindings vulnerabilities (every tenth suppressed by VEX), plus a
// secret and an image-audit finding. hostile puts the hostile string in
// every text that comes from the image.
func sample(nPkgs, nFindings int, evil bool) *report.Result {
	x := func(s string) string {
		if evil {
			return s + hostile
		}
		return s
	}
	layers := []inventory.Layer{
		{Index: 0, Digest: "sha256:" + strings.Repeat("a", 64), CreatedBy: x("/bin/sh -c #(nop) ADD file:debian-rootfs in /")},
		{Index: 1, Digest: "sha256:" + strings.Repeat("b", 64), CreatedBy: x("RUN apt-get install -y openssl")},
		{Index: 2, Digest: "sha256:" + strings.Repeat("c", 64), CreatedBy: x("COPY app /app")},
	}
	inv := &inventory.Inventory{
		Target: inventory.Target{Name: x("registry.test/app:1.0"), Source: "registry", Digest: "sha256:" + strings.Repeat("d", 64),
			Arch: "amd64", OSName: "linux", Layers: layers, Size: 48 << 20, User: x("app")},
		OS:       &inventory.OS{ID: "debian", VersionID: "12", PrettyName: x("Debian GNU/Linux 12 (bookworm)")},
		Warnings: []string{x("layer 2: 1 unreadable file")},
	}
	inv.Packages = make([]inventory.Package, nPkgs)
	for i := range inv.Packages {
		l := &layers[i%3]
		name := fmt.Sprintf("pkg%05d", i)
		if i == 0 {
			name = "openssl"
		}
		inv.Packages[i] = inventory.Package{Name: x(name), Version: x(fmt.Sprintf("1.%d.0-1", i)), Type: "deb",
			Licenses:  []string{x("MIT")},
			Locations: []inventory.Location{{Path: x("/var/lib/dpkg/status"), Layer: l}}}
	}
	res := &report.Result{Inventory: inv, Scanners: []string{"vuln", "secret", "misconfig"},
		DB: &report.DBInfo{Source: x("osv"), UpdatedAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Age: "3d", OldestEcosystem: "Debian:12"}}
	sevs := []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown}
	for i := 0; i < nFindings; i++ {
		p := &inv.Packages[i%max(nPkgs, 1)]
		f := finding.Finding{ID: fmt.Sprintf("CVE-2026-%05d", i), Kind: finding.KindVulnerability, Severity: sevs[i%5],
			Aliases: []string{x(fmt.Sprintf("DSA-%d", i))}, Title: x(fmt.Sprintf("overflow in %s", p.Name)), Target: inv.Target.Name,
			Package:       &finding.Package{Name: p.Name, Version: p.Version, Type: "deb", Layer: p.Locations[0].Layer},
			FixedVersions: []string{x("9.9.9-1")}, Status: finding.StatusFixed}
		if i%10 == 9 {
			f.Suppressed = &finding.Suppression{Kind: "vex", Status: "not_affected", Justification: x("vulnerable_code_not_in_execute_path"), Source: x("app.vex.json")}
		}
		res.Findings = append(res.Findings, f)
	}
	res.Findings = append(res.Findings,
		finding.Finding{ID: x("aws-access-key-id"), Kind: finding.KindSecret, Severity: finding.Critical, Title: x("AWS access key ID"),
			Target: inv.Target.Name, Location: &finding.Location{Path: x("/app/.env"), StartLine: 3, Layer: &layers[2]}},
		finding.Finding{ID: "BH-IMG-001", Kind: finding.KindMisconfiguration, Severity: finding.High, Title: x("image runs as root"),
			Target: inv.Target.Name, Fix: x("add USER to the Dockerfile")})
	return res
}

var fixedNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func render(t testing.TB, r *report.Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Result(&buf, r, Options{ToolVersion: "test", Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestResultContent(t *testing.T) {
	out := render(t, sample(30, 20, false))
	for _, want := range []string{
		"<h1>registry.test/app:1.0</h1>",
		"sha256:" + strings.Repeat("d", 64),
		"Debian GNU/Linux 12 (bookworm)",
		"data as of 2026-11-30 (3d old); oldest data: Debian:12",
		`<dd id="n-packages">30</dd>`,
		// 20 vulnerabilities, 2 suppressed; plus a secret and an audit finding.
		`<dd id="n-findings">20 active, 2 suppressed (VEX or ignore file)</dd>`,
		`<span class="sev sev-critical">CRITICAL</span> <strong>5</strong>`, // 4 active CVEs + the secret
		`<span class="sev sev-high">HIGH</span> <strong>5</strong>`,         // 4 + the audit finding
		"RUN apt-get install -y openssl",
		"<summary>10 packages</summary>",
		"<li>openssl 1.0.0-1</li>",
		"<tr><td>openssl</td><td>1.0.0-1</td><td>deb</td><td>0</td><td class=\"mono\">/var/lib/dpkg/status</td><td>MIT</td></tr>",
		"CVE-2026-00000",
		"<td>9.9.9-1</td>",
		`class="suppressed"`,
		"suppressed: vex not_affected",
		"vulnerable_code_not_in_execute_path",
		"aws-access-key-id",
		"/app/.env:3",
		"BH-IMG-001", "add USER to the Dockerfile",
		"layer 2: 1 unreadable file",
		"Written by bulkhead test on 2026-12-03 12:00 UTC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(out, `<tr data-rank=`); n != 22 {
		t.Errorf("%d finding rows, want 22", n)
	}
}

// TestResultStore: a result whose findings are in a Store writes the same
// report as one whose findings are in the slice.
func TestResultStore(t *testing.T) {
	a := sample(10, 12, false)
	b := sample(10, 12, false)
	b.Store = report.NewStore()
	b.Store.AddAll(b.Findings)
	b.Findings = nil
	if x, y := render(t, a), render(t, b); x != y {
		t.Errorf("store and slice reports differ:\n%s\n---\n%s", x, y)
	}
}

// TestHostileEscaped: every text from the image is escaped; the only
// elements are the report's own.
func TestHostileEscaped(t *testing.T) {
	r := sample(5, 5, true)
	out := render(t, r)
	if strings.Contains(out, "<img") || strings.Contains(out, "onerror=alert(1)>") {
		t.Fatalf("hostile markup is in the report unescaped")
	}
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("%d <script elements, want 1 (the report's own)", n)
	}
	if !strings.Contains(out, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("hostile text is not shown escaped")
	}
	var cb, gb bytes.Buffer
	d := &compare.Diff{A: hostile, B: hostile, PackagesAdded: []compare.Package{{Name: hostile, Version: hostile, Type: "deb"}},
		VulnsIntroduced: []compare.Vuln{{ID: hostile, Package: hostile, Title: hostile}},
		Config:          []compare.ConfigChange{{Field: "user", Before: hostile, After: hostile}}}
	if err := Compare(&cb, d, &report.DBInfo{Source: hostile, OldestEcosystem: hostile}, Options{}); err != nil {
		t.Fatal(err)
	}
	g := &Gate{Policy: hostile, Source: hostile, Targets: []GateTarget{{Name: hostile, File: hostile, Notes: []string{hostile}, Exempt: hostile,
		Results: []GateResult{{Rule: hostile, Kind: hostile, Mode: hostile, Outcome: "deny", Message: hostile, Exemption: hostile}}}}}
	if err := GateReport(&gb, g, Options{}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"compare": cb.String(), "gate": gb.String()} {
		if strings.Contains(s, "<img") || strings.Count(s, "<script") != 1 {
			t.Errorf("%s report: hostile markup unescaped", name)
		}
	}
}

var (
	cspRe    = regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]+)">`)
	styleRe  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	scriptRe = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	urlRe    = regexp.MustCompile(`(?i)\b(src|href|action|poster|data)\s*=\s*"([^"]*)"`)
)

// TestSelfContained: the policy allows exactly the inline style and
// script (by hash) and nothing else; no attribute points outside the
// file.
func TestSelfContained(t *testing.T) {
	out := render(t, sample(20, 10, false))
	m := cspRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no Content-Security-Policy meta tag")
	}
	csp := stdhtml.UnescapeString(m[1])
	for _, want := range []string{"default-src 'none'", "connect-src 'none'", "img-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, re := range []*regexp.Regexp{styleRe, scriptRe} {
		body := re.FindStringSubmatch(out)
		if body == nil {
			t.Fatalf("no %v", re)
		}
		sum := sha256.Sum256([]byte(body[1]))
		h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, h) {
			t.Errorf("CSP %q does not allow the inline block (%s)", csp, h)
		}
	}
	for _, m := range urlRe.FindAllStringSubmatch(out, -1) {
		if !strings.HasPrefix(m[2], "#") {
			t.Errorf("attribute %s=%q points outside the report", m[1], m[2])
		}
	}
}

func TestCompareContent(t *testing.T) {
	d := &compare.Diff{A: "app:1", B: "app:2", OSA: "Debian 11", OSB: "Debian 12", SizeA: 10 << 20, SizeB: 12 << 20, SizeDelta: 2 << 20,
		PackagesAdded:   []compare.Package{{Name: "curl", Version: "8.0", Type: "deb"}},
		PackagesRemoved: []compare.Package{{Name: "wget", Version: "1.21", Type: "deb"}},
		PackagesChanged: []compare.Change{{Name: "openssl", Type: "deb", Before: []string{"3.0.1"}, After: []string{"3.0.9"}}},
		VulnsIntroduced: []compare.Vuln{{ID: "CVE-2026-1", Severity: finding.High, Package: "curl", Version: "8.0", Fixed: []string{"8.1"}}},
		VulnsFixed:      []compare.Vuln{{ID: "CVE-2025-9", Severity: finding.Critical, Package: "openssl", Version: "3.0.1"}},
		Config:          []compare.ConfigChange{{Field: "user", Before: "", After: "app"}}}
	var buf bytes.Buffer
	if err := Compare(&buf, d, &report.DBInfo{Source: "osv", UpdatedAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Age: "3d"}, Options{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<dd id="n-packages">1 added, 1 removed, 1 changed</dd>`,
		`<dd id="n-vulns">1 introduced, 1 fixed</dd>`,
		"10.0 MiB → 12.0 MiB (&#43;2.0 MiB)", // html/template writes + as &#43;
		`<td><span class="tag">introduced</span></td><td class="id">CVE-2026-1</td>`,
		`<td><span class="tag">fixed</span></td><td class="id">CVE-2025-9</td>`,
		`<td>openssl</td><td>deb</td><td>3.0.1</td><td>3.0.9</td>`,
		`<td>user</td><td class="mono">–</td><td class="mono">app</td>`,
		`<span class="sev sev-high">HIGH</span> <strong>1</strong>`,
		"osv, data as of 2026-11-30 (3d old)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare report lacks %q", want)
		}
	}
}

func TestGateContent(t *testing.T) {
	g := &Gate{Policy: "prod", Source: "bulkhead-policy.yaml", Rules: 2, Targets: []GateTarget{
		{Name: "Deployment/web", File: "deploy.yaml", Line: 7, Results: []GateResult{
			{Rule: "no-critical", Kind: "vulnerabilities", Mode: "enforce", Outcome: "deny", Message: "2 CRITICAL vulnerabilities"},
			{Rule: "signed", Kind: "signature", Mode: "warn", Outcome: "warn", Message: "not signed"}}},
		{Name: "alpine:3.20", Allowed: true, Results: []GateResult{{Rule: "no-critical", Kind: "vulnerabilities", Mode: "enforce", Outcome: "allow", Message: "passed"}}},
	}}
	var buf bytes.Buffer
	if err := GateReport(&buf, g, Options{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<dd id="n-targets">2 (1 denied)</dd>`,
		`<dd id="n-results">1 denials, 1 warnings, 1 passed</dd>`,
		`<span class="sev deny">DENIED</span></td><td>Deployment/web</td><td class="mono">deploy.yaml:7</td>`,
		`<span class="sev ok">ALLOWED</span></td><td>alpine:3.20</td>`,
		`<td>no-critical</td><td>vulnerabilities</td><td>enforce</td><td>2 CRITICAL vulnerabilities</td>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gate report lacks %q", want)
		}
	}
}

// failWriter fails after n bytes: a report that cannot be written is an
// error, not a truncated file.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	if err := Result(&failWriter{n: 1000}, sample(2000, 10, false), Options{}); err == nil {
		t.Fatal("a failing writer gave no error")
	}
}

// BenchmarkResult: the report of 10,000 packages and 5,000 findings.
func BenchmarkResult(b *testing.B) {
	r := sample(10000, 5000, false)
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		cw := &countWriter{}
		if err := Result(cw, r, Options{}); err != nil {
			b.Fatal(err)
		}
		n = cw.n
	}
	b.ReportMetric(float64(n)/1e6, "MB/report")
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestMemory: while the report of 20,000 padded packages and as many
// stored findings is written, the live heap grows by far less than the
// report: rows are written as they are read, never collected.
func TestMemory(t *testing.T) {
	inv := sbomtest.Padded(20_000)
	inv.Target.Layers = []inventory.Layer{*inv.Packages[0].Locations[0].Layer}
	r := &report.Result{Inventory: inv, Scanners: []string{"vuln"}, Store: report.NewStore()}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		r.Store.Add(finding.Finding{ID: fmt.Sprintf("CVE-2026-%d", i), Kind: finding.KindVulnerability, Severity: finding.High,
			Title: "overflow", Package: &finding.Package{Name: p.Name, Version: p.Version, Type: p.Type}})
	}
	n, grew, err := sbomtest.HeapGrowth(func(w io.Writer) error { return Result(w, r, Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MiB written, live heap grew by %d KiB", n>>20, grew>>10)
	if n < 16<<20 {
		t.Fatalf("only %d bytes written", n)
	}
	if grew > n/8 {
		t.Errorf("live heap grew by %d MiB while writing %d MiB: the report is held in memory", grew>>20, n>>20)
	}
}

// TestCollapse: a table of more rows than CollapseRows starts closed
// (a native <details>: its heading opens it without JavaScript); the
// smaller ones start open.
func TestCollapse(t *testing.T) {
	var buf bytes.Buffer
	if err := Result(&buf, sample(30, 20, false), Options{CollapseRows: 25}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<details><summary><h2 id="packages">`,
		`<details open><summary><h2 id="vulnerabilities">`,
		`<details open><summary><h2 id="secrets">`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(out, "<tr><td>pkg"); n != 29 {
		t.Errorf("%d package rows in the closed table, want all 29 besides openssl", n)
	}
}
