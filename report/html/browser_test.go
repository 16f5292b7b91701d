package html

// The reports in a real headless Chromium (Debian's chromium package),
// driven through the DevTools protocol by chromedp: the data shows with
// JavaScript enabled and disabled, sorting and filtering work, the page
// makes no network request and passes axe-core with no serious or
// critical violation. Chromium is started once per test binary.

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/browsertest"
	"github.com/bulkhead-sec/bulkhead/report"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Close()
	os.Exit(code)
}

// tab is a browser tab (internal/browsertest, shared with the dashboard's
// tests).
type tab = browsertest.Tab

// open loads file in a new tab, with JavaScript enabled or not, and
// fails the test at its end if the page requested anything but the file,
// logged an error or opened a dialog.
func open(t *testing.T, file string, jsOn bool) *tab {
	t.Helper()
	u := fileURL(file)
	return browsertest.Open(t, u, jsOn, func(r string) bool { return r == u })
}

func fileURL(file string) string { return (&url.URL{Scheme: "file", Path: file}).String() }

// load loads file in a new tab and records its requests, logs and
// dialogs.
func load(t *testing.T, file string, jsOn bool) (*tab, string) {
	t.Helper()
	tb := browsertest.NewTab(t, jsOn)
	u := fileURL(file)
	tb.Navigate(t, u)
	return tb, u
}

func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	return browsertest.Eval[T](t, tb, js)
}

func writeFile(t *testing.T, name string, fn func(w *bytes.Buffer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func imageReport(t *testing.T, r *report.Result) string {
	return writeFile(t, "report.html", func(w *bytes.Buffer) error { return Result(w, r, Options{ToolVersion: "test"}) })
}

// TestBrowserNoScript: with JavaScript disabled every row is there, the
// controls stay hidden and the sort buttons inert.
func TestBrowserNoScript(t *testing.T) {
	file := imageReport(t, sample(30, 20, false))
	tb := open(t, file, false)
	if got := tb.Outer(t, "#n-packages"); !strings.Contains(got, ">30<") {
		t.Errorf("package count: %s", got)
	}
	if got := tb.Outer(t, "#n-findings"); !strings.Contains(got, "20 active, 2 suppressed") {
		t.Errorf("finding count: %s", got)
	}
	pk := tb.Outer(t, "#t-packages tbody")
	if !strings.Contains(pk, "<td>openssl</td><td>1.0.0-1</td>") || strings.Count(pk, "<tr") != 30 {
		t.Errorf("packages table without JavaScript: %d rows", strings.Count(pk, "<tr"))
	}
	vt := tb.Outer(t, "#t-vulns tbody")
	if !strings.Contains(vt, "CVE-2026-00000") || strings.Count(vt, "<tr") != 20 {
		t.Errorf("vulnerability table without JavaScript: %d rows", strings.Count(vt, "<tr"))
	}
	if c := tb.Outer(t, "#controls-form"); !strings.Contains(c, " hidden") {
		t.Errorf("the JavaScript-only controls show without JavaScript: %s", c[:min(len(c), 120)])
	}
	tb.Screenshot(t, "/tmp/html", "image-nojs.png")
}

// TestBrowserScript: sorting (mouse and keyboard) and filtering work.
func TestBrowserScript(t *testing.T) {
	file := imageReport(t, sample(30, 20, false))
	tb := open(t, file, true)
	if eval[bool](t, tb, `document.getElementById("controls-form").hidden`) {
		t.Fatal("the script did not run (the controls are still hidden): is it allowed by the Content-Security-Policy?")
	}
	firstRank := func() string {
		return eval[string](t, tb, `document.querySelector("#t-vulns tbody tr").dataset.rank`)
	}
	sevBtn := chromedp.CSS("#t-vulns thead th:nth-child(2) button")
	tb.Do(t, chromedp.Click(sevBtn))
	if r := firstRank(); r != "0" {
		t.Errorf("severity ascending: first row rank %s, want 0", r)
	}
	// The same button again, by keyboard.
	tb.Do(t, chromedp.Focus(sevBtn), chromedp.KeyEvent(kb.Enter))
	if r := firstRank(); r != "4" {
		t.Errorf("severity descending: first row rank %s, want 4", r)
	}
	if a := eval[string](t, tb, `document.querySelector("#t-vulns thead th:nth-child(2)").getAttribute("aria-sort")`); a != "descending" {
		t.Errorf("aria-sort %q, want descending", a)
	}
	// Sort the packages by name, descending: pkg00029 first.
	nameBtn := chromedp.CSS("#t-packages thead th:nth-child(1) button")
	tb.Do(t, chromedp.Click(nameBtn), chromedp.Click(nameBtn))
	if n := eval[string](t, tb, `document.querySelector("#t-packages tbody td").textContent`); n != "pkg00029" {
		t.Errorf("packages by name descending: first %q, want pkg00029", n)
	}
	type shown struct {
		Packages, Vulns int
		Count           string
	}
	visible := `({packages: [...document.querySelectorAll("#t-packages tbody tr")].filter(r => !r.hidden).length,
		vulns: [...document.querySelectorAll("#t-vulns tbody tr")].filter(r => !r.hidden).length,
		count: document.querySelector('[data-count-for="t-packages"]').textContent})`
	// Search, typed: openssl is package 0, of CVE 0 (findings go round
	// the 30 packages, so only the first of the 20 is its).
	tb.Do(t, chromedp.SendKeys(chromedp.CSS("#q"), "openssl"), chromedp.Sleep(400*time.Millisecond))
	if got := eval[shown](t, tb, visible); got.Packages != 1 || got.Count != "1 of 30 shown" || got.Vulns != 1 {
		t.Errorf("search openssl: %+v, want 1 package and 1 vulnerability", got)
	}
	// CRITICAL only, search cleared: 4 CRITICAL vulnerabilities (every
	// fifth of 20), the packages untouched.
	setSev := func(v string) {
		eval[int](t, tb, `document.getElementById("sev").value = "`+v+`", document.getElementById("sev").dispatchEvent(new Event("change")), 0`)
	}
	eval[int](t, tb, `document.getElementById("q").value = "", 0`)
	setSev("4")
	if got := eval[shown](t, tb, visible); got.Vulns != 4 || got.Packages != 30 {
		t.Errorf("CRITICAL filter: %+v, want 4 vulnerabilities and every package", got)
	}
	// All severities, suppressed hidden: 18 of 20.
	setSev("0")
	tb.Do(t, chromedp.Click(chromedp.CSS("#supp")))
	if got := eval[shown](t, tb, visible); got.Vulns != 18 {
		t.Errorf("suppressed hidden: %d rows, want 18", got.Vulns)
	}
	tb.Do(t, chromedp.Click(chromedp.CSS("#supp")))
	tb.Screenshot(t, "/tmp/html", "image.png")
	tb.Axe(t)

	// The dark theme: readable too.
	tb.Dark(t, true)
	if bg := eval[string](t, tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 18, 18)" {
		t.Errorf("dark theme: body background %s", bg)
	}
	tb.Screenshot(t, "/tmp/html", "image-dark.png")
	tb.Axe(t)

	// A phone: the page does not scroll sideways (wide tables scroll in
	// their own box).
	tb.Do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if w := eval[[]int](t, tb, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a phone the page is %dpx wide in a %dpx window", w[0], w[1])
	}
	tb.Screenshot(t, "/tmp/html", "image-phone.png")
}

// TestBrowserChecksCatch: the checks can fail: a page that loads an
// image from the network and has an unlabelled field is caught by the
// request listener and by axe-core.
func TestBrowserChecksCatch(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.html")
	page := `<!DOCTYPE html><html lang="en"><head><title>bad</title></head><body><main><img src="http://127.0.0.1:9/x.png"><input type="text"></main></body></html>`
	if err := os.WriteFile(bad, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, _ := load(t, bad, true)
	serious := 0
	for _, v := range tb.Violations(t) {
		if v.Impact == "serious" || v.Impact == "critical" {
			serious++
		}
	}
	if serious == 0 {
		t.Error("axe-core found no serious violation on a page with an unlabelled field and an image without alt")
	}
	reqs, _, _ := tb.Seen()
	if !slices.Contains(reqs, "http://127.0.0.1:9/x.png") {
		t.Errorf("the request listener missed the image request: %v", reqs)
	}
}

// TestBrowserHostile: hostile strings show as text, run nothing and add
// no element, with JavaScript on.
func TestBrowserHostile(t *testing.T) {
	tb := open(t, imageReport(t, sample(5, 5, true)), true)
	type elems struct{ Imgs, Scripts int }
	if n := eval[elems](t, tb, `({imgs: document.querySelectorAll("img").length, scripts: document.querySelectorAll("script").length})`); n.Imgs != 0 || n.Scripts != 1 {
		t.Errorf("hostile input made elements: %+v", n)
	}
	if text := eval[string](t, tb, `document.querySelector("#t-packages tbody td").textContent`); !strings.HasSuffix(text, hostile) {
		t.Errorf("package name shows as %q, want it to end in the hostile text", text)
	}
	tb.Screenshot(t, "/tmp/html", "image-hostile.png")
}

// TestBrowserCompareGate: the compare and gate reports show their data
// with and without JavaScript and pass axe-core.
func TestBrowserCompareGate(t *testing.T) {
	d := &compare.Diff{A: "app:1", B: "app:2", OSA: "Debian 11", OSB: "Debian 12", SizeA: 10 << 20, SizeB: 12 << 20, SizeDelta: 2 << 20,
		PackagesAdded:   []compare.Package{{Name: "curl", Version: "8.0", Type: "deb"}},
		PackagesChanged: []compare.Change{{Name: "openssl", Type: "deb", Before: []string{"3.0.1"}, After: []string{"3.0.9"}}},
		VulnsIntroduced: []compare.Vuln{{ID: "CVE-2026-1", Severity: finding.High, Package: "curl", Version: "8.0", Fixed: []string{"8.1"}}},
		VulnsFixed:      []compare.Vuln{{ID: "CVE-2025-9", Severity: finding.Critical, Package: "openssl", Version: "3.0.1"}},
		Config:          []compare.ConfigChange{{Field: "user", Before: "", After: "app"}}}
	cmpFile := writeFile(t, "compare.html", func(w *bytes.Buffer) error { return Compare(w, d, nil, Options{ToolVersion: "test"}) })
	g := &Gate{Policy: "prod", Source: "bulkhead-policy.yaml", Rules: 2, Targets: []GateTarget{
		{Name: "Deployment/web", File: "deploy.yaml", Line: 7, Results: []GateResult{
			{Rule: "no-critical", Kind: "vulnerabilities", Mode: "enforce", Outcome: "deny", Message: "2 CRITICAL vulnerabilities"},
			{Rule: "signed", Kind: "signature", Mode: "warn", Outcome: "warn", Message: "not signed"}}},
		{Name: "alpine:3.20", Allowed: true, Results: []GateResult{{Rule: "no-critical", Kind: "vulnerabilities", Mode: "enforce", Outcome: "allow", Message: "passed"}}},
	}}
	gateFile := writeFile(t, "gate.html", func(w *bytes.Buffer) error { return GateReport(w, g, Options{ToolVersion: "test"}) })
	for _, c := range []struct{ name, file, sel, want string }{
		{"compare", cmpFile, "#n-vulns", "1 introduced, 1 fixed"},
		{"gate", gateFile, "#n-targets", "2 (1 denied)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, jsOn := range []bool{false, true} {
				tb := open(t, c.file, jsOn)
				if got := tb.Outer(t, c.sel); !strings.Contains(got, c.want) {
					t.Errorf("js %v: %s is %s, want %q", jsOn, c.sel, got, c.want)
				}
				if jsOn {
					tb.Screenshot(t, "/tmp/html", c.name+".png")
					tb.Axe(t)
				}
			}
		})
	}
}
