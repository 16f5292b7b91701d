package html

// The reports in a real headless Chromium (Debian's chromium package),
// driven through the DevTools protocol by chromedp: the data shows with
// JavaScript enabled and disabled, sorting and filtering work, the page
// makes no network request and passes axe-core with no serious or
// critical violation. Chromium is started once per test binary.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
)

// axe-core 4.14.1 from npm (testdata/axe-core/PROVENANCE).
//
//go:embed testdata/axe-core/axe.min.js
var axeJS string

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	browserCancel = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// browser is the one Chromium of this test binary; the test is skipped
// when chromium is not installed, and fails then under CI=true.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed: apt-get install chromium (Debian's package; scripts/setup-test-env.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(alloc)
		browserCtx, browserCancel = ctx, func() { cancel(); cancelAlloc() }
		browserErr = chromedp.Do(ctx) // starts the browser
	})
	if browserErr != nil {
		t.Fatalf("start chromium %s: %v", path, browserErr)
	}
	return browserCtx
}

// tab is one page of the browser, with everything it asked the network
// for and every error it logged.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	logs     []string
	dialogs  []string
}

func (tb *tab) seen() (reqs, logs, dialogs []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string{}, tb.requests...), append([]string{}, tb.logs...), append([]string{}, tb.dialogs...)
}

// open loads file in a new tab, with JavaScript enabled or not, and
// fails the test at its end if the page requested anything but the file,
// logged an error or opened a dialog.
func open(t *testing.T, file string, jsOn bool) *tab {
	t.Helper()
	tb, u := load(t, file, jsOn)
	t.Cleanup(func() {
		reqs, logs, dialogs := tb.seen()
		self := false
		for _, r := range reqs {
			if r != u {
				t.Errorf("the page requested %s (only the report itself, %s, may be loaded)", r, u)
			}
			self = self || r == u
		}
		if !self {
			t.Errorf("no network event for the report itself: the request listener sees nothing")
		}
		for _, l := range logs {
			t.Errorf("the page logged %s", l)
		}
		for _, d := range dialogs {
			t.Errorf("the page opened a dialog: %q (script injection)", d)
		}
	})
	return tb
}

// load loads file in a new tab and records its requests, logs and
// dialogs.
func load(t *testing.T, file string, jsOn bool) (*tab, string) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t))
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel() })
	tb := &tab{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			tb.requests = append(tb.requests, e.Request.URL)
		case *cdplog.EventEntryAdded:
			tb.logs = append(tb.logs, string(e.Entry.Level)+": "+e.Entry.Text)
		case *runtime.EventExceptionThrown:
			tb.logs = append(tb.logs, "exception: "+e.ExceptionDetails.Text)
		case *cdppage.EventJavascriptDialogOpening:
			tb.dialogs = append(tb.dialogs, e.Message)
			go chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: file}).String()
	// (chromedp enables the Network, Log and Runtime domains of each tab.)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !jsOn}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return tb, u
}

// outer is an element's HTML through the DOM domain (works with
// JavaScript disabled).
func (tb *tab) outer(t *testing.T, sel string) string {
	t.Helper()
	ids, err := chromedp.Run(tb.ctx, chromedp.QueryNodeIDs(chromedp.CSS(sel)))
	if err != nil || len(ids) == 0 {
		t.Fatalf("%s: not found (%v)", sel, err)
	}
	res, err := chromedp.Call(tb.ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: ids[0]})
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return res.OuterHTML
}

// eval runs a JavaScript expression in the page and decodes its value.
func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// do runs actions in the tab.
func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// screenshot saves the whole page under the test's temp dir, and a copy
// under /tmp/html/ to look at.
func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG")
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.MkdirAll("/tmp/html", 0o755) == nil {
		os.WriteFile(filepath.Join("/tmp/html", name), png, 0o644)
	}
}

type violation struct {
	ID, Impact, Help string
	Nodes            []string
}

// axe runs axe-core on the page and fails on serious or critical
// violations.
func (tb *tab) axe(t *testing.T) {
	t.Helper()
	for _, v := range tb.violations(t) {
		msg := fmt.Sprintf("axe %s (%s): %s: %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// violations are axe-core's findings on the page.
func (tb *tab) violations(t *testing.T) []violation {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[*runtime.RemoteObject](axeJS)); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	vs, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]violation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " " + (n.failureSummary || ""))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	return vs
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
	if got := tb.outer(t, "#n-packages"); !strings.Contains(got, ">30<") {
		t.Errorf("package count: %s", got)
	}
	if got := tb.outer(t, "#n-findings"); !strings.Contains(got, "20 active, 2 suppressed") {
		t.Errorf("finding count: %s", got)
	}
	pk := tb.outer(t, "#t-packages tbody")
	if !strings.Contains(pk, "<td>openssl</td><td>1.0.0-1</td>") || strings.Count(pk, "<tr") != 30 {
		t.Errorf("packages table without JavaScript: %d rows", strings.Count(pk, "<tr"))
	}
	vt := tb.outer(t, "#t-vulns tbody")
	if !strings.Contains(vt, "CVE-2026-00000") || strings.Count(vt, "<tr") != 20 {
		t.Errorf("vulnerability table without JavaScript: %d rows", strings.Count(vt, "<tr"))
	}
	if c := tb.outer(t, "#controls-form"); !strings.Contains(c, " hidden") {
		t.Errorf("the JavaScript-only controls show without JavaScript: %s", c[:min(len(c), 120)])
	}
	tb.screenshot(t, "image-nojs.png")
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
	tb.do(t, chromedp.Click(sevBtn))
	if r := firstRank(); r != "0" {
		t.Errorf("severity ascending: first row rank %s, want 0", r)
	}
	// The same button again, by keyboard.
	tb.do(t, chromedp.Focus(sevBtn), chromedp.KeyEvent(kb.Enter))
	if r := firstRank(); r != "4" {
		t.Errorf("severity descending: first row rank %s, want 4", r)
	}
	if a := eval[string](t, tb, `document.querySelector("#t-vulns thead th:nth-child(2)").getAttribute("aria-sort")`); a != "descending" {
		t.Errorf("aria-sort %q, want descending", a)
	}
	// Sort the packages by name, descending: pkg00029 first.
	nameBtn := chromedp.CSS("#t-packages thead th:nth-child(1) button")
	tb.do(t, chromedp.Click(nameBtn), chromedp.Click(nameBtn))
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
	tb.do(t, chromedp.SendKeys(chromedp.CSS("#q"), "openssl"), chromedp.Sleep(400*time.Millisecond))
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
	tb.do(t, chromedp.Click(chromedp.CSS("#supp")))
	if got := eval[shown](t, tb, visible); got.Vulns != 18 {
		t.Errorf("suppressed hidden: %d rows, want 18", got.Vulns)
	}
	tb.do(t, chromedp.Click(chromedp.CSS("#supp")))
	tb.screenshot(t, "image.png")
	tb.axe(t)

	// The dark theme: readable too.
	dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, dark); err != nil {
		t.Fatal(err)
	}
	if bg := eval[string](t, tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 18, 18)" {
		t.Errorf("dark theme: body background %s", bg)
	}
	tb.screenshot(t, "image-dark.png")
	tb.axe(t)

	// A phone: the page does not scroll sideways (wide tables scroll in
	// their own box).
	tb.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if w := eval[[]int](t, tb, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a phone the page is %dpx wide in a %dpx window", w[0], w[1])
	}
	tb.screenshot(t, "image-phone.png")
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
	for _, v := range tb.violations(t) {
		if v.Impact == "serious" || v.Impact == "critical" {
			serious++
		}
	}
	if serious == 0 {
		t.Error("axe-core found no serious violation on a page with an unlabelled field and an image without alt")
	}
	reqs, _, _ := tb.seen()
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
	tb.screenshot(t, "image-hostile.png")
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
				if got := tb.outer(t, c.sel); !strings.Contains(got, c.want) {
					t.Errorf("js %v: %s is %s, want %q", jsOn, c.sel, got, c.want)
				}
				if jsOn {
					tb.screenshot(t, c.name+".png")
					tb.axe(t)
				}
			}
		})
	}
}
