package dashboard

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/browsertest"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// shots is where the screenshots are copied to be looked at.
const shots = "/tmp/dash"

// signIn opens a tab signed in with the token of role (through the login
// form, as a user would), which may load only the dashboard itself.
func signIn(t *testing.T, f *fixture, role Role, jsOn bool) *browsertest.Tab {
	t.Helper()
	tb := browsertest.NewTab(t, jsOn)
	login := f.srv.URL + Prefix + "login?next=" + url.QueryEscape(Prefix)
	t.Cleanup(func() {
		tb.Check(t, login, func(u string) bool { return strings.HasPrefix(u, f.srv.URL+Prefix) })
	})
	tb.Navigate(t, login)
	tb.Do(t, chromedp.SendKeys(chromedp.CSS("#token"), f.tokens[role]), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#n-images")))
	return tb
}

func text(t *testing.T, tb *browsertest.Tab, sel string) string {
	t.Helper()
	return browsertest.Eval[string](t, tb, `(document.querySelector(`+strconv.Quote(sel)+`) || {textContent: `+strconv.Quote("<missing "+sel+">")+`}).textContent.trim().replace(/\s+/g, " ")`)
}

func count(t *testing.T, tb *browsertest.Tab, sel string) int {
	t.Helper()
	return browsertest.Eval[int](t, tb, `document.querySelectorAll(`+strconv.Quote(sel)+`).length`)
}

func (f *fixture) visit(t *testing.T, tb *browsertest.Tab, path string) {
	t.Helper()
	tb.Navigate(t, f.srv.URL+path)
	if h := text(t, tb, "h1"); h == "Error" || h == "Sign in" {
		t.Fatalf("%s: %s: %s", path, h, text(t, tb, "main"))
	}
}

// TestBrowserPages: every page in Chromium shows the store's data, links
// to the others, passes axe-core and is saved as a screenshot.
func TestBrowserPages(t *testing.T) {
	f := theFixture(t)
	ctx := context.Background()
	tb := signIn(t, f, RoleScan, true)

	// Overview.
	fl, err := f.st.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, tb, "#n-images"); got != strconv.Itoa(fl.Images) || fl.Images != 2 {
		t.Errorf("overview images %s, store %d (want 2)", got, fl.Images)
	}
	if got := text(t, tb, "#n-workloads"); got != strconv.Itoa(fl.Workloads) || fl.Workloads != 3 {
		t.Errorf("overview workloads %s, store %d (want 3)", got, fl.Workloads)
	}
	for name, n := range fl.ByWorst {
		if got := text(t, tb, `#t-worst a[data-worst="`+name+`"]`); got != strconv.Itoa(n) {
			t.Errorf("images of worst %s: page %s, store %d", name, got, n)
		}
	}
	top, err := f.st.TopVulnerabilities(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	ids := browsertest.Eval[[]string](t, tb, `[...document.querySelectorAll("#t-top tbody tr td:first-child a")].map(a => a.textContent)`)
	if len(ids) != len(top) || len(top) == 0 {
		t.Fatalf("top vulnerabilities: page %v, store %d", ids, len(top))
	}
	for i := range top {
		if ids[i] != top[i].ID {
			t.Errorf("top vulnerability %d: page %s, store %s", i, ids[i], top[i].ID)
		}
	}
	if top[0].Severity != finding.Critical || top[0].Workloads == 0 {
		t.Errorf("the worst vulnerability of the fleet: %+v (want a CRITICAL one that runs somewhere)", top[0])
	}
	app, dis, _ := f.st.ChangeCounts(ctx, fleetNow.Add(-24*time.Hour))
	if got := text(t, tb, "#n-fixed"); got != strconv.Itoa(dis) || dis != 1 {
		t.Errorf("fixed since yesterday: page %s, store %d (want 1)", got, dis)
	}
	if got := text(t, tb, "#n-appeared"); got != strconv.Itoa(app) {
		t.Errorf("new since yesterday: page %s, store %d", got, app)
	}
	if c := text(t, tb, "#t-changes tbody"); !strings.Contains(c, f.fixedByReev.ID) || !strings.Contains(c, "fixed") {
		t.Errorf("the change list lacks the re-evaluation: %s", c)
	}
	if n := count(t, tb, `canvas[data-drawn="1"]`); n != 3 {
		t.Errorf("%d charts drawn, want 3 (is Chart.js loaded under the Content-Security-Policy?)", n)
	}
	if days := count(t, tb, "#t-trend tbody tr"); days != trendDays {
		t.Errorf("trend table: %d days, want %d", days, trendDays)
	}
	checkOpenTrend(t, f, tb, fl)
	tb.Screenshot(t, shots, "overview.png")
	tb.Axe(t)
	tb.Dark(t, true)
	if bg := browsertest.Eval[string](t, tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 18, 18)" {
		t.Errorf("dark theme: body background %s", bg)
	}
	tb.Screenshot(t, shots, "overview-dark.png")
	tb.Axe(t)
	tb.Dark(t, false)

	// The worst-severity link leads to the images with that worst.
	worst := sevName(f.latest(t, f.a.Digest).Worst)
	tb.Do(t, chromedp.Click(chromedp.CSS(`#t-worst a[data-worst="`+worst+`"]`)), chromedp.WaitVisible(chromedp.CSS("#t-images")))
	if got := text(t, tb, "#filter"); !strings.Contains(got, "worst "+worst) {
		t.Errorf("images filter: %q", got)
	}
	if n := count(t, tb, "#t-images tbody tr"); n != fl.ByWorst[worst] {
		t.Errorf("images of worst %s: %d rows, store %d", worst, n, fl.ByWorst[worst])
	}

	// The image list, and on to an image.
	f.visit(t, tb, Prefix+"images")
	if n := count(t, tb, `#t-images tbody a[href^="/ui/images/sha256:"]`); n != 2 {
		t.Errorf("image list: %d image links, want 2", n)
	}
	tb.Screenshot(t, shots, "images.png")
	tb.Axe(t)
	tb.Do(t, chromedp.Click(chromedp.CSS(`#t-images tbody a[href="/ui/images/`+f.a.Digest+`"]`)), chromedp.WaitVisible(chromedp.CSS("#digest")))
	if got := text(t, tb, "#digest"); got != f.a.Digest {
		t.Fatalf("image page of %s shows %s", f.a.Digest, got)
	}
	vulns, supp := 0, 0
	for _, x := range f.a.Findings {
		if x.Kind == finding.KindVulnerability {
			vulns++
			if x.Suppressed != nil {
				supp++
			}
		}
	}
	if n := count(t, tb, "#t-findings tbody tr"); n != vulns || vulns == 0 {
		t.Errorf("image vulnerabilities: %d rows, the scan has %d", n, vulns)
	}
	if n := count(t, tb, "#t-findings tbody tr.suppressed"); n != supp || supp != 1 {
		t.Errorf("suppressed rows %d, scan %d (want the one of the ignore file)", n, supp)
	}
	if row := text(t, tb, "#t-findings tbody tr.suppressed"); !strings.Contains(row, ignoredID) || !strings.Contains(row, "ignore") || !strings.Contains(row, "4.17.21") {
		t.Errorf("the ignored finding's row: %q (want its ID, ignore status and fixed version)", row)
	}
	if n := count(t, tb, "#rescan-form"); n != 1 {
		t.Errorf("a scan token sees %d rescan forms, want 1", n)
	}
	checkProvenance(t, f, tb, f.idA)
	tb.Screenshot(t, shots, "image.png")
	tb.Axe(t)
	for _, tab := range []string{"packages", "layers", "secrets", "audit", "where"} {
		tb.Do(t, chromedp.Click(chromedp.CSS(`a[data-tab="`+tab+`"]`)), chromedp.WaitVisible(chromedp.CSS(`a[data-tab="`+tab+`"][aria-current="page"]`)))
		switch tab {
		case "packages":
			want := min(len(f.a.Inventory.Packages), 80)
			if n := count(t, tb, "#t-packages tbody tr"); n != want {
				t.Errorf("packages tab: %d rows, want %d of %d", n, want, len(f.a.Inventory.Packages))
			}
		case "layers":
			if n := count(t, tb, "#layers > li"); n != len(f.a.Inventory.Target.Layers) {
				t.Errorf("layers: %d, inventory %d", n, len(f.a.Inventory.Target.Layers))
			}
			if got := text(t, tb, "#layers"); !strings.Contains(got, "apk del --no-network libc-utils") || !strings.Contains(got, "lodash 4.17.15") {
				t.Errorf("layers lack a created_by or a package: %.300s", got)
			}
		case "audit":
			if got := text(t, tb, "#t-findings tbody"); !strings.Contains(got, "BH-IMG-002") {
				t.Errorf("audit tab: %s", got)
			}
		case "where":
			if got := text(t, tb, "#t-where tbody"); !strings.Contains(got, "prod / shop / Deployment/worker") {
				t.Errorf("where tab: %s", got)
			}
			if got := text(t, tb, "#image-alerts"); !strings.Contains(got, "Read sensitive file untrusted") {
				t.Errorf("image alerts: %s", got)
			}
		}
		tb.Screenshot(t, shots, "image-"+tab+".png")
		tb.Axe(t)
	}
	// Version 1.1: its secret shows, and its failed signature check.
	f.visit(t, tb, Prefix+"images/"+f.b.Digest+"?tab=secrets")
	checkProvenance(t, f, tb, f.idB)
	if got := text(t, tb, "#t-findings tbody"); !strings.Contains(got, "/app/config/.env") {
		t.Errorf("secrets of 1.1: %s", got)
	}
	tb.Screenshot(t, shots, "image-secrets-1.1.png")

	// A vulnerability: its images, workloads and fix.
	v := top[0]
	f.visit(t, tb, Prefix+"vulnerabilities/"+v.ID)
	aff, _ := f.st.Affected(ctx, v.ID)
	if got := text(t, tb, "#affected-summary"); got != fmt.Sprintf("%d images, %d workloads.", v.Images, v.Workloads) {
		t.Errorf("vulnerability %s: %q, store %d images %d workloads", v.ID, got, v.Images, v.Workloads)
	}
	if n := count(t, tb, `#t-affected tbody a[href^="/ui/images/"]`); n != len(aff) {
		t.Errorf("affected rows %d, store %d", n, len(aff))
	}
	if got := text(t, tb, "#fix"); v.Fixable != strings.HasPrefix(got, "Upgrade to ") || (v.Fixable && !strings.Contains(got, aff[0].Fixed)) {
		t.Errorf("fix: %q, store %+v", got, aff[0])
	}
	tb.Screenshot(t, shots, "vulnerability.png")
	tb.Axe(t)
	f.visit(t, tb, Prefix+"vulnerabilities")
	if n := count(t, tb, "#t-vulns tbody tr"); n != min(len(top), 20) {
		t.Errorf("vulnerability list: %d rows", n)
	}
	tb.Screenshot(t, shots, "vulnerabilities.png")
	tb.Axe(t)

	// Runtime alerts, filtered by container, linked to the image.
	f.visit(t, tb, Prefix+"alerts")
	all, _ := f.st.EventsPage(ctx, store.EventFilter{Kinds: []string{"runtime"}})
	if n := count(t, tb, "#timeline > li[data-id]"); n != len(all) || n != 3 {
		t.Errorf("alerts: %d, store %d (want 3)", n, len(all))
	}
	tb.Screenshot(t, shots, "alerts.png")
	tb.Axe(t)
	tb.Do(t, chromedp.SendKeys(chromedp.CSS(`input[name="container"]`), "web"), chromedp.Submit(chromedp.CSS(`input[name="container"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="container"][value="web"]`)))
	web, _ := f.st.EventsPage(ctx, store.EventFilter{Kinds: []string{"runtime"}, Container: "web"})
	if n := count(t, tb, "#timeline > li[data-id]"); n != len(web) || n != 2 {
		t.Errorf("alerts of container web: %d, store %d (want 2)", n, len(web))
	}
	if u := browsertest.Eval[string](t, tb, "location.search"); !strings.Contains(u, "container=web") {
		t.Errorf("the filtered view's URL does not hold the filter: %s", u)
	}
	if n := count(t, tb, `#timeline a[href="/ui/images/`+f.b.Digest+`"]`); n != 1 {
		t.Errorf("alerts do not link to image 1.1 (%d links)", n)
	}
	tb.Screenshot(t, shots, "alerts-web.png")

	// Policy decisions with the denying rule.
	f.visit(t, tb, Prefix+"decisions")
	if n := count(t, tb, "#t-decisions tbody tr"); n != 2 {
		t.Errorf("decisions: %d rows, want 2", n)
	}
	if got := text(t, tb, "#t-decisions tbody tr:first-child"); !strings.Contains(got, "allow") {
		t.Errorf("newest decision first: %s", got)
	}
	if got := text(t, tb, "#t-decisions tbody tr:nth-child(2)"); !strings.Contains(got, "deny") || !strings.Contains(got, "no-critical") {
		t.Errorf("the deny decision with its rule: %s", got)
	}
	tb.Screenshot(t, shots, "decisions.png")
	tb.Axe(t)

	// Compare 1.0 and 1.1, from the history link of the image page.
	f.visit(t, tb, Prefix+"images/"+f.b.Digest)
	tb.Do(t, chromedp.Click(chromedp.CSS(`#history a[href^="/ui/compare"]`)), chromedp.WaitVisible(chromedp.CSS("#n-diff-vulns")))
	d := compare.Compare(compare.Side{Inventory: f.a.Inventory, Findings: f.a.Findings}, compare.Side{Inventory: f.b.Inventory, Findings: f.b.Findings})
	if got := text(t, tb, "#n-diff-vulns"); got != fmt.Sprintf("%d introduced, %d fixed", len(d.VulnsIntroduced), len(d.VulnsFixed)) || len(d.VulnsFixed) == 0 {
		t.Errorf("compare: %q, compare.Compare: %d introduced, %d fixed", got, len(d.VulnsIntroduced), len(d.VulnsFixed))
	}
	if got := text(t, tb, "#t-pkgdiff"); !strings.Contains(got, "lodash") || !strings.Contains(got, "4.17.21") {
		t.Errorf("compare packages: %s", got)
	}
	tb.Screenshot(t, shots, "compare.png")
	tb.Axe(t)

	// Search: a CVE alias, a package, an image.
	f.visit(t, tb, Prefix+"search?q=lodash")
	if got := text(t, tb, "#s-packages"); got != "lodash in 2 images" {
		t.Errorf("search lodash: %s", got)
	}
	f.visit(t, tb, Prefix+"search?q="+url.QueryEscape(strings.ToLower(top[0].ID)))
	if got := text(t, tb, "#s-vulns"); !strings.HasPrefix(got, top[0].ID) {
		t.Errorf("search %s: %s", top[0].ID, got)
	}
	browsertest.Eval[string](t, tb, `document.getElementById("top-q").value = ""`)
	tb.Do(t, chromedp.SendKeys(chromedp.CSS("#top-q"), "shop/web"), chromedp.Submit(chromedp.CSS("#top-q")))
	// The search page before it has #s-images too: wait for the new one.
	for deadline := time.Now().Add(10 * time.Second); !browsertest.Eval[bool](t, tb, `location.search.includes("shop")`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the search form did not navigate")
		}
	}
	tb.Do(t, chromedp.WaitVisible(chromedp.CSS("#s-images")))
	if n := count(t, tb, `#s-images a[href^="/ui/images/"]`); n != 2 {
		t.Errorf("search shop/web: %d images", n)
	}
	tb.Screenshot(t, shots, "search.png")
	tb.Axe(t)

	f.visit(t, tb, Prefix+"changes")
	if n := count(t, tb, "#t-changes tbody tr"); n != 1 {
		t.Errorf("changes: %d rows", n)
	}
	tb.Axe(t)

	// A phone: the page does not scroll sideways.
	tb.Do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	f.visit(t, tb, Prefix) // laid out at phone width (charts size themselves on load)
	if w := browsertest.Eval[int](t, tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a phone the overview is %dpx wide on a 390px screen", w)
	}
	tb.Screenshot(t, shots, "overview-phone.png")
	f.visit(t, tb, Prefix+"images/"+f.a.Digest)
	if w := browsertest.Eval[int](t, tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a phone the image page is %dpx wide on a 390px screen", w)
	}
	tb.Screenshot(t, shots, "image-phone.png")
}

// checkOpenTrend: the open-findings chart's table has a row per day; the
// days from the first snapshot on show the day's last snapshot (carried
// over days without one), today shows the fleet now, and the days before
// the first snapshot say so.
func checkOpenTrend(t *testing.T, f *fixture, tb *browsertest.Tab, fl *store.Fleet) {
	t.Helper()
	rows := browsertest.Eval[[][]string](t, tb, `[...document.querySelectorAll("#t-open-trend tbody tr")].map(r => [...r.cells].map(c => c.textContent.trim()))`)
	if len(rows) != trendDays {
		t.Fatalf("open-findings table: %d days, want %d", len(rows), trendDays)
	}
	pts, err := f.st.FleetTrend(context.Background(), fleetNow.AddDate(0, 0, -trendDays))
	if err != nil || len(pts) == 0 {
		t.Fatalf("store trend: %v, %v", pts, err)
	}
	byDay := map[string]store.FleetPoint{}
	for _, p := range pts {
		byDay[p.Day.Format("2006-01-02")] = p
	}
	want := func(m map[string]int) []string {
		var out []string
		total := 0
		for _, s := range severities {
			out = append(out, strconv.Itoa(m[s.String()]))
			total += m[s.String()]
		}
		return append(out, strconv.Itoa(total))
	}
	var last *store.FleetPoint
	snapshots := 0
	for i, r := range rows {
		day := strings.TrimSuffix(r[0], " (now)")
		if p, ok := byDay[day]; ok {
			last = &p
			snapshots++
		}
		var exp []string
		switch {
		case i == len(rows)-1:
			exp = want(fl.Findings)
		case last != nil:
			exp = want(last.Findings)
		default:
			if len(r) != 2 || r[1] != "no snapshot yet" {
				t.Errorf("day %s before the first snapshot: %q", day, r)
			}
			continue
		}
		if strings.Join(r[1:], " ") != strings.Join(exp, " ") {
			t.Errorf("open findings on %s: page %q, store %q", day, r[1:], exp)
		}
	}
	if snapshots == 0 || !strings.HasSuffix(rows[len(rows)-1][0], "(now)") {
		t.Errorf("the table shows %d of the store's snapshots and ends %q", snapshots, rows[len(rows)-1][0])
	}
	series := browsertest.Eval[int](t, tb, `Chart.getChart(document.getElementById("chart-open")).data.datasets.length`)
	if series != len(severities) {
		t.Errorf("open-findings chart: %d series, want one per severity", series)
	}
}

// checkProvenance: the image page shows the scan's base image, the best
// recommended bases and the signature status as the store has them.
func checkProvenance(t *testing.T, f *fixture, tb *browsertest.Tab, scanID int64) {
	t.Helper()
	p, err := f.st.Provenance(context.Background(), scanID)
	if err != nil {
		t.Fatal(err)
	}
	det := p.Base.Detection
	if got := text(t, tb, "#base-image"); det.BaseRef == "" || !strings.Contains(got, det.BaseRef) || !strings.Contains(got, det.Reason) {
		t.Errorf("base image: page %q, store %+v", got, det)
	}
	cands := p.Base.Recommendation.Candidates
	refs := browsertest.Eval[[]string](t, tb, `[...document.querySelectorAll("#t-candidates tbody tr td:first-child code")].map(c => c.textContent)`)
	if len(cands) == 0 || len(refs) != min(len(cands), maxCandidates) {
		t.Fatalf("recommended bases: page %v, store %d", refs, len(cands))
	}
	for i, r := range refs {
		if r != cands[i].Ref {
			t.Errorf("candidate %d: page %s, store %s", i, r, cands[i].Ref)
		}
	}
	if row := text(t, tb, "#t-candidates tbody tr:first-child"); !strings.Contains(row, vulnWords(cands[0].VulnsDelta, true)) || !strings.Contains(row, signedSize(cands[0].SizeDelta)) {
		t.Errorf("first candidate's row %q lacks its vulnerability or size change (%+v)", row, cands[0])
	}
	sig := p.Signature
	if got := text(t, tb, "#sig-status"); got != sig.Status {
		t.Errorf("signature status: page %q, store %q", got, sig.Status)
	}
	got := text(t, tb, "#signature")
	if !strings.Contains(got, "verified by the server") || !strings.Contains(got, sig.Reason) {
		t.Errorf("signature: %q, store %+v", got, sig)
	}
	for _, r := range sig.Rules {
		rules := text(t, tb, "#sig-rules")
		if !strings.Contains(rules, "policy "+r.Policy) || !strings.Contains(rules, r.Key) || !strings.Contains(rules, r.Attestations[0].PredicateType) ||
			!strings.Contains(rules, "transparency log not checked") {
			t.Errorf("signature rules: %q, store %+v", rules, r)
		}
	}
}

func (f *fixture) latest(t *testing.T, digest string) store.ImageSummary {
	t.Helper()
	list, err := f.st.Images(context.Background(), store.ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.Digest == digest {
			return m
		}
	}
	t.Fatalf("no image %s", digest)
	return store.ImageSummary{}
}

// TestBrowserNoScript: without JavaScript the overview's data is there
// (the tables next to the charts).
func TestBrowserNoScript(t *testing.T) {
	f := theFixture(t)
	tb := browsertest.NewTab(t, false)
	// Sign in through the form, without JavaScript.
	tb.Navigate(t, f.srv.URL+Prefix+"login")
	tb.Do(t, chromedp.SendKeys(chromedp.CSS("#token"), f.tokens[RoleRead]), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#n-images")))
	if got := tb.Outer(t, "#t-top tbody"); strings.Count(got, "<tr>") == 0 {
		t.Errorf("no top vulnerabilities without JavaScript: %s", got)
	}
	if got := tb.Outer(t, "#t-worst tbody"); !strings.Contains(got, "CRITICAL") {
		t.Errorf("worst table without JavaScript: %s", got)
	}
	tb.Screenshot(t, shots, "overview-nojs.png")
}

// client is an HTTP client that does not follow redirects.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}

func (f *fixture) do(t *testing.T, method, path string, role Role, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok := f.tokens[role]; tok != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: tok})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestRoles: a read token sees every page but no action, and the action
// answers 403; a scan token gets the form and the action runs; no token
// goes to the login page; a cross-site POST is refused.
func TestRoles(t *testing.T) {
	f := theFixture(t)
	pages := []string{Prefix, Prefix + "images", Prefix + "images/" + f.a.Digest, Prefix + "images/" + f.a.Digest + "?tab=where",
		Prefix + "vulnerabilities", Prefix + "vulnerabilities/GHSA-35jh-r3h4-6jhm", Prefix + "alerts", Prefix + "decisions",
		Prefix + "changes", Prefix + "compare?a=" + strconv.FormatInt(f.idA, 10) + "&b=" + strconv.FormatInt(f.idB, 10), Prefix + "search?q=lodash"}
	for _, p := range pages {
		resp, body := f.do(t, "GET", p, RoleRead, nil)
		if resp.StatusCode != 200 {
			t.Errorf("read token: GET %s = %d", p, resp.StatusCode)
		}
		if strings.Contains(body, "<form method=\"post\" action=\"/ui/images") || strings.Contains(body, "rescan") {
			t.Errorf("read token: GET %s shows an action", p)
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", p, resp.Header.Get("Content-Security-Policy"))
		}
		if resp, _ := f.do(t, "GET", p, RoleNone, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), Prefix+"login?next=") {
			t.Errorf("no token: GET %s = %d %s, want a redirect to the login page", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if _, body := f.do(t, "GET", Prefix+"images/"+f.a.Digest, RoleScan, nil); !strings.Contains(body, `id="rescan-form"`) {
		t.Error("scan token: no rescan form")
	}
	rescan := Prefix + "images/" + f.a.Digest + "/rescan"
	if resp, body := f.do(t, "POST", rescan, RoleRead, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "role read") {
		t.Errorf("read token: POST rescan = %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", rescan, RoleNone, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: POST rescan = %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", rescan, RoleScan, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST rescan = %d, want 403", resp.StatusCode)
	}
	f.mu.Lock()
	n := len(f.rescans)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("refused requests queued %d rescans", n)
	}
	resp, _ := f.do(t, "POST", rescan, RoleScan, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "?queued=1") {
		t.Errorf("scan token: POST rescan = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rescans) != 1 || f.rescans[0] != f.a.Repository+"@"+f.a.Digest {
		t.Errorf("rescans queued: %v", f.rescans)
	}
}

// TestBrowserReadOnly: with a read token the browser shows the image page
// without the action.
func TestBrowserReadOnly(t *testing.T) {
	f := theFixture(t)
	tb := signIn(t, f, RoleRead, true)
	f.visit(t, tb, Prefix+"images/"+f.a.Digest)
	if n := count(t, tb, "form[method=post][action$=rescan]"); n != 0 {
		t.Errorf("a read token sees %d action forms", n)
	}
	if got := text(t, tb, "#role"); got != "role: read" {
		t.Errorf("role shown: %q", got)
	}
	tb.Screenshot(t, shots, "image-read-only.png")
}

// TestExports: each list exports as CSV and JSON with the rows the store
// has; cells a spreadsheet would run are defused.
func TestExports(t *testing.T) {
	f := theFixture(t)
	ctx := context.Background()
	top, _ := f.st.TopVulnerabilities(ctx, 1000)
	imgs, _ := f.st.Images(ctx, store.ImageFilter{})
	vulnsA := 0
	for _, x := range f.a.Findings {
		if x.Kind == finding.KindVulnerability {
			vulnsA++
		}
	}
	aff, _ := f.st.Affected(ctx, "GHSA-35jh-r3h4-6jhm")
	for _, c := range []struct {
		path string
		rows int
	}{
		{Prefix + "images", len(imgs)},
		{Prefix + "vulnerabilities", len(top)},
		{Prefix + "images/" + f.a.Digest, vulnsA},
		{Prefix + "images/" + f.a.Digest + "?tab=packages", len(f.a.Inventory.Packages)},
		{Prefix + "images/" + f.a.Digest + "?tab=layers", len(f.a.Inventory.Target.Layers)},
		{Prefix + "vulnerabilities/GHSA-35jh-r3h4-6jhm", len(aff)},
		{Prefix + "alerts?container=web", 2},
		{Prefix + "decisions", 2},
		{Prefix + "changes", 1},
	} {
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		resp, body := f.do(t, "GET", c.path+sep+"format=csv", RoleRead, nil)
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if resp.StatusCode != 200 || err != nil || len(recs) != c.rows+1 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("%s CSV: %d, %v, %d rows, want %d", c.path, resp.StatusCode, err, len(recs)-1, c.rows)
		}
		resp, body = f.do(t, "GET", c.path+sep+"format=json", RoleRead, nil)
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(body), &list); resp.StatusCode != 200 || err != nil || len(list) != c.rows {
			t.Errorf("%s JSON: %d, %v, %d rows, want %d", c.path, resp.StatusCode, err, len(list), c.rows)
		}
	}
	if resp, _ := f.do(t, "GET", Prefix+"images?format=xml", RoleRead, nil); resp.StatusCode != 400 {
		t.Errorf("format=xml: %d", resp.StatusCode)
	}
	if got := csvSafe([]string{"=HYPERLINK(1)", "+1", "ok", ""}); got[0] != "'=HYPERLINK(1)" || got[1] != "'+1" || got[2] != "ok" {
		t.Errorf("csvSafe: %q", got)
	}
}

// shotsDir is where TestBrowserScreenshots leaves every page, light and
// dark, laptop and phone, to be looked at.
const shotsDir = "/tmp/dash-shots"

// TestBrowserScreenshots: every page in light and dark, at laptop and phone
// width: axe-core finds no serious violation in either theme, no page
// scrolls sideways on a phone, and each is saved as a screenshot.
func TestBrowserScreenshots(t *testing.T) {
	f := theFixture(t)
	pages := []struct{ name, path string }{
		{"overview", Prefix},
		{"images", Prefix + "images"},
		{"images-filtered", Prefix + "images?worst=high"},
		{"image", Prefix + "images/" + f.a.Digest},
		{"image-packages", Prefix + "images/" + f.a.Digest + "?tab=packages"},
		{"image-layers", Prefix + "images/" + f.a.Digest + "?tab=layers"},
		{"image-secrets", Prefix + "images/" + f.b.Digest + "?tab=secrets"},
		{"image-audit", Prefix + "images/" + f.a.Digest + "?tab=audit"},
		{"image-where", Prefix + "images/" + f.a.Digest + "?tab=where"},
		{"vulnerabilities", Prefix + "vulnerabilities"},
		{"vulnerability", Prefix + "vulnerabilities/GHSA-35jh-r3h4-6jhm"},
		{"alerts", Prefix + "alerts"},
		{"decisions", Prefix + "decisions"},
		{"changes", Prefix + "changes"},
		{"compare", Prefix + "compare?a=" + strconv.FormatInt(f.idA, 10) + "&b=" + strconv.FormatInt(f.idB, 10)},
		{"compare-empty", Prefix + "compare"},
		{"search", Prefix + "search?q=lodash"},
		{"login", Prefix + "login"},
		{"not-found", Prefix + "images/sha256:" + strings.Repeat("0", 64)},
	}
	sizes := []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"laptop", 1280, 900, false}, {"phone", 390, 844, true}}
	for _, size := range sizes {
		for _, dark := range []bool{false, true} {
			theme := map[bool]string{false: "light", true: "dark"}[dark]
			for _, p := range pages {
				// A tab of its own for each page (a tab lives 60 s, and a
				// loaded machine is slow), signed in through the form; it
				// is not checked for console errors, as the not-found page
				// is a 404 the console reports.
				t.Run(size.name+"-"+theme+"/"+p.name, func(t *testing.T) {
					tb := browsertest.NewTab(t, true)
					tb.Navigate(t, f.srv.URL+Prefix+"login")
					tb.Do(t, chromedp.SendKeys(chromedp.CSS("#token"), f.tokens[RoleScan]), chromedp.Submit(chromedp.CSS("#token")),
						chromedp.WaitVisible(chromedp.CSS("#n-images")))
					if size.mobile {
						tb.Do(t, chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile))
					} else {
						tb.Do(t, chromedp.EmulateViewport(size.width, size.height))
					}
					tb.Dark(t, dark)
					tb.Navigate(t, f.srv.URL+p.path)
					want := map[string]string{"not-found": "Error", "login": "Sign in"}[p.name]
					if h := text(t, tb, "h1"); (want == "" && (h == "Error" || h == "Sign in")) || (want != "" && h != want) {
						t.Errorf("%s: %s: %s", p.path, h, text(t, tb, "main"))
					}
					// Against the device's width: a phone's layout viewport
					// (innerWidth) grows to a page that is too wide.
					if w := browsertest.Eval[int](t, tb, `document.documentElement.scrollWidth`); w > int(size.width) {
						t.Errorf("%s, %s: the page is %dpx wide on a %dpx screen", p.name, size.name, w, size.width)
					}
					if !size.mobile {
						tb.Axe(t)
					}
					tb.Screenshot(t, shotsDir, p.name+"-"+theme+"-"+size.name+".png")
				})
			}
		}
	}
}

// TestBrowserAlertFilters: the runtime alerts timeline filters by rule,
// priority, container, image and namespace, each from the form or from a
// link in the timeline; the filtered view is a URL that shows the same in
// another signed-in browser tab.
func TestBrowserAlertFilters(t *testing.T) {
	f := theFixture(t)
	ctx := context.Background()
	tb := signIn(t, f, RoleRead, true)
	ids := func() []string {
		return browsertest.Eval[[]string](t, tb, `[...document.querySelectorAll("#timeline > li[data-id]")].map(li => li.dataset.id)`)
	}
	storeIDs := func(fl store.EventFilter) []string {
		fl.Kinds = []string{"runtime"}
		evs, err := f.st.EventsPage(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, strconv.FormatInt(e.ID, 10))
		}
		return out
	}
	check := func(what string, fl store.EventFilter, wantN int) {
		t.Helper()
		got, want := ids(), storeIDs(fl)
		if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != wantN {
			t.Errorf("alerts by %s: page %v, store %v (want %d)", what, got, want, wantN)
		}
	}
	submit := func(field, value string) {
		t.Helper()
		f.visit(t, tb, Prefix+"alerts")
		tb.Do(t, chromedp.SendKeys(chromedp.CSS(`input[name="`+field+`"]`), value), chromedp.Submit(chromedp.CSS(`input[name="`+field+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="`+field+`"][value="`+value+`"]`)))
	}
	// From the form.
	submit("priority", "Warning")
	check("priority Warning", store.EventFilter{Priority: "Warning"}, 1)
	submit("namespace", "shop")
	check("namespace shop", store.EventFilter{Namespace: "shop"}, 3)
	submit("image", f.b.Digest)
	check("image 1.1", store.EventFilter{Digest: f.b.Digest}, 1)
	submit("rule", "Terminal shell in container")
	check("rule", store.EventFilter{Rule: "Terminal shell in container"}, 2)
	// From the links of the timeline: a rule, then a container.
	f.visit(t, tb, Prefix+"alerts")
	tb.Do(t, chromedp.Click(chromedp.CSS(`#timeline a.rule[href*="Read+sensitive"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name="rule"][value="Read sensitive file untrusted"]`)))
	check("rule link", store.EventFilter{Rule: "Read sensitive file untrusted"}, 1)
	// From the image page: all the alerts of the image.
	f.visit(t, tb, Prefix+"images/"+f.a.Digest+"?tab=where")
	tb.Do(t, chromedp.Click(chromedp.CSS(`a[href^="/ui/alerts?image="]`)), chromedp.WaitVisible(chromedp.CSS(`input[name="image"][value="`+f.a.Digest+`"]`)))
	check("image link", store.EventFilter{Digest: f.a.Digest}, 2)
	// Several filters at once, as a URL opened in another tab.
	u := Prefix + "alerts?" + url.Values{"container": {"web"}, "priority": {"Critical"}, "namespace": {"shop"}, "image": {f.a.Digest}}.Encode()
	other := signIn(t, f, RoleRead, true)
	other.Navigate(t, f.srv.URL+u)
	got := browsertest.Eval[[]string](t, other, `[...document.querySelectorAll("#timeline > li[data-id]")].map(li => li.dataset.id)`)
	if want := storeIDs(store.EventFilter{Container: "web", Priority: "Critical", Namespace: "shop", Digest: f.a.Digest}); strings.Join(got, ",") != strings.Join(want, ",") || len(got) != 1 {
		t.Errorf("shared URL %s: %v, store %v", u, got, want)
	}
	for field, v := range map[string]string{"container": "web", "priority": "Critical", "namespace": "shop", "image": f.a.Digest} {
		if got := browsertest.Eval[string](t, other, `document.querySelector('input[name="`+field+`"]').value`); got != v {
			t.Errorf("shared URL: the %s field shows %q, want %q", field, got, v)
		}
	}
}
