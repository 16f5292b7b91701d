// Package browsertest drives a real headless Chromium (Debian's chromium
// package) through the DevTools protocol (chromedp) for the tests of the
// HTML reports and the dashboard: one browser per test binary, tabs that
// record every request, console error and dialog, axe-core accessibility
// checks, and screenshots saved as test artifacts.
//
// It is for tests only: it embeds axe-core (axe-core/PROVENANCE), and
// nothing but _test.go files imports it.
package browsertest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
)

// axe-core 4.14.1 from npm (axe-core/PROVENANCE).
//
//go:embed axe-core/axe.min.js
var axeJS string

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	browserCancel = func() {}
)

// Close stops the browser; call it from TestMain after m.Run.
func Close() { browserCancel() }

// Browser is the one Chromium of this test binary; the test is skipped
// when chromium is not installed, and fails then under CI=true.
func Browser(t testing.TB) context.Context {
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

// Tab is one page of the browser, with everything it asked the network
// for and every error it logged.
type Tab struct {
	Ctx      context.Context
	mu       sync.Mutex
	requests []string
	logs     []string
	dialogs  []string
}

// Seen returns the requests, log entries and dialogs so far.
func (tb *Tab) Seen() (reqs, logs, dialogs []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string{}, tb.requests...), append([]string{}, tb.logs...), append([]string{}, tb.dialogs...)
}

// Open loads u in a new tab, with JavaScript enabled or not, and fails
// the test at its end if the page requested a URL allowed rejects, logged
// an error or opened a dialog, or if no request of u itself was seen.
func Open(t *testing.T, u string, jsOn bool, allowed func(string) bool) *Tab {
	t.Helper()
	tb := NewTab(t, jsOn)
	t.Cleanup(func() { tb.Check(t, u, allowed) })
	tb.Navigate(t, u)
	return tb
}

// Check fails the test if the tab requested a URL allowed rejects, logged
// an error or opened a dialog, or never requested first.
func (tb *Tab) Check(t *testing.T, first string, allowed func(string) bool) {
	reqs, logs, dialogs := tb.Seen()
	self := false
	for _, r := range reqs {
		if !allowed(r) {
			t.Errorf("the page requested %s, which it may not", r)
		}
		self = self || r == first
	}
	if !self {
		t.Errorf("no network event for %s: the request listener sees nothing", first)
	}
	for _, l := range logs {
		t.Errorf("the page logged %s", l)
	}
	for _, d := range dialogs {
		t.Errorf("the page opened a dialog: %q (script injection)", d)
	}
}

// NewTab opens a blank tab that records its requests, logs and dialogs.
func NewTab(t *testing.T, jsOn bool) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(Browser(t))
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel() })
	tb := &Tab{Ctx: ctx}
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
	// (chromedp enables the Network, Log and Runtime domains of each tab.)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !jsOn}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// Navigate loads u in the tab and waits for it.
func (tb *Tab) Navigate(t *testing.T, u string) {
	t.Helper()
	if err := chromedp.Do(tb.Ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
}

// Outer is an element's HTML through the DOM domain (works with
// JavaScript disabled).
func (tb *Tab) Outer(t *testing.T, sel string) string {
	t.Helper()
	ids, err := chromedp.Run(tb.Ctx, chromedp.QueryNodeIDs(chromedp.CSS(sel)))
	if err != nil || len(ids) == 0 {
		t.Fatalf("%s: not found (%v)", sel, err)
	}
	res, err := chromedp.Call(tb.Ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: ids[0]})
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return res.OuterHTML
}

// Eval runs a JavaScript expression in the page and decodes its value.
func Eval[T any](t *testing.T, tb *Tab, js string) T {
	t.Helper()
	v, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// Do runs actions in the tab.
func (tb *Tab) Do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.Ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// Screenshot saves the whole page as name under the test's temp dir, and
// a copy under dir (e.g. /tmp/html) to look at.
func (tb *Tab) Screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tb.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG")
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir != "" && os.MkdirAll(dir, 0o755) == nil {
		os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
}

// Dark switches the tab's prefers-color-scheme to dark (or back).
func (tb *Tab) Dark(t *testing.T, on bool) {
	t.Helper()
	v := "light"
	if on {
		v = "dark"
	}
	p := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}}
	if _, err := chromedp.Call(tb.Ctx, emulation.SetEmulatedMedia, p); err != nil {
		t.Fatal(err)
	}
}

// Violation is one axe-core finding.
type Violation struct {
	ID, Impact, Help string
	Nodes            []string
}

// Axe runs axe-core on the page and fails on serious or critical
// violations (the others are logged).
func (tb *Tab) Axe(t *testing.T) {
	t.Helper()
	for _, v := range tb.Violations(t) {
		msg := fmt.Sprintf("axe %s (%s): %s: %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// Violations are axe-core's findings on the page.
func (tb *Tab) Violations(t *testing.T) []Violation {
	t.Helper()
	if _, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[*runtime.RemoteObject](axeJS)); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	vs, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[[]Violation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " " + (n.failureSummary || ""))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	return vs
}
