package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// severities, worst first, and the "no findings" bucket.
var severities = []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown}

type bucket struct {
	Name, Class, Link string
	N                 int
}

// chartSeries is a chart's data, written into data- attributes (JSON) for
// dash.js, and shown as a table for screen readers and without
// JavaScript.
type chartSeries struct {
	Labels string // JSON array
	Series string // JSON array of {label, data, color}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Overview.

type overviewData struct {
	Fleet                 *store.Fleet
	Worst                 []bucket
	Findings              []bucket
	WorstChart            chartSeries
	Top                   []store.VulnCount
	Trend                 []store.TrendDay
	TrendChart            chartSeries
	Open                  []openDay
	OpenChart             chartSeries
	Appeared, Disappeared int
	Changes               []store.Change
	Since                 time.Time
	ChangesLink           string
}

// trendDays is how far back the overview's trend goes.
const trendDays = 30

// openDay is one day of the open-findings trend; Known is false before
// the first snapshot (the day's counts are not known).
type openDay struct {
	Day    time.Time
	Known  bool
	Counts []int // CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN (severities)
	Total  int
	Live   bool // today: the fleet now, not a snapshot
}

// openTrend makes one point per day of the last trendDays: the day's last
// snapshot, else the previous day's (a day without a snapshot saw no
// stored scan or re-evaluation), and today the fleet as it is now.
func openTrend(points []store.FleetPoint, now time.Time, fl *store.Fleet) []openDay {
	first := now.Truncate(24*time.Hour).AddDate(0, 0, -(trendDays - 1))
	byDay := map[int64]store.FleetPoint{}
	for _, p := range points {
		byDay[p.Day.Unix()] = p
	}
	out := make([]openDay, trendDays)
	var last *store.FleetPoint
	for i := range out {
		day := first.AddDate(0, 0, i)
		if p, ok := byDay[day.Unix()]; ok {
			last = &p
		}
		o := openDay{Day: day}
		var counts map[string]int
		switch {
		case i == trendDays-1:
			o.Known, o.Live, counts = true, true, fl.Findings
		case last != nil:
			o.Known, counts = true, last.Findings
		}
		if o.Known {
			for _, s := range severities {
				o.Counts = append(o.Counts, counts[s.String()])
				o.Total += counts[s.String()]
			}
		}
		out[i] = o
	}
	return out
}

func (d *Dashboard) overview(q *request) error {
	fl, err := d.st.Fleet(q.ctx)
	if err != nil {
		return err
	}
	top, err := d.st.TopVulnerabilities(q.ctx, 10)
	if err != nil {
		return err
	}
	now := d.opt.Now().UTC()
	trend, err := d.st.Trend(q.ctx, now.Truncate(24*time.Hour).AddDate(0, 0, -(trendDays-1)))
	if err != nil {
		return err
	}
	// The snapshot of the day before the window carries into its first
	// days.
	points, err := d.st.FleetTrend(q.ctx, now.Truncate(24*time.Hour).AddDate(0, 0, -trendDays))
	if err != nil {
		return err
	}
	since := now.Add(-24 * time.Hour)
	app, dis, err := d.st.ChangeCounts(q.ctx, since)
	if err != nil {
		return err
	}
	changes, err := d.st.Changes(q.ctx, since, 20)
	if err != nil {
		return err
	}
	o := overviewData{Fleet: fl, Top: top, Trend: trend, Appeared: app, Disappeared: dis, Changes: changes, Since: since,
		ChangesLink: Prefix + "changes?since=" + since.Format(time.RFC3339)}
	var labels []string
	var counts []int
	var colors []string
	for _, s := range severities {
		n := fl.ByWorst[s.String()]
		o.Worst = append(o.Worst, bucket{Name: s.String(), Class: strings.ToLower(s.String()), N: n, Link: Prefix + "images?worst=" + strings.ToLower(s.String())})
		o.Findings = append(o.Findings, bucket{Name: s.String(), Class: strings.ToLower(s.String()), N: fl.Findings[s.String()]})
		labels, counts, colors = append(labels, s.String()), append(counts, n), append(colors, "--sev-"+strings.ToLower(s.String()))
	}
	o.Worst = append(o.Worst, bucket{Name: "NONE", Class: "none", N: fl.ByWorst["NONE"], Link: Prefix + "images?worst=none"})
	labels, counts, colors = append(labels, "NONE"), append(counts, fl.ByWorst["NONE"]), append(colors, "--sev-none")
	o.WorstChart = chartSeries{Labels: jsonString(labels), Series: jsonString([]map[string]any{{"label": "images", "data": counts, "colors": colors}})}
	var days []string
	var scans, appeared, disappeared []int
	for _, t := range trend {
		days = append(days, t.Day.Format("01-02"))
		scans, appeared, disappeared = append(scans, t.Scans), append(appeared, t.Appeared), append(disappeared, t.Disappeared)
	}
	o.TrendChart = chartSeries{Labels: jsonString(days), Series: jsonString([]map[string]any{
		{"label": "findings appeared", "data": appeared, "color": "--sev-high"},
		{"label": "findings fixed", "data": disappeared, "color": "--good"},
		{"label": "scans stored", "data": scans, "color": "--link"},
	})}
	o.Open = openTrend(points, now, fl)
	openSeries := make([]map[string]any, len(severities))
	for j, sv := range severities {
		data := make([]any, len(o.Open))
		for i, p := range o.Open {
			if p.Known {
				data[i] = p.Counts[j]
			}
		}
		openSeries[j] = map[string]any{"label": sv.String(), "data": data, "color": "--line-" + strings.ToLower(sv.String())}
	}
	openLabels := make([]string, len(o.Open))
	for i, p := range o.Open {
		openLabels[i] = p.Day.Format("01-02")
	}
	o.OpenChart = chartSeries{Labels: jsonString(openLabels), Series: jsonString(openSeries)}
	d.render(q, http.StatusOK, "overview", "Fleet overview", o)
	return nil
}

// Images.

type imagesData struct {
	Images                                      []store.ImageSummary
	Filter                                      []string // what the list is narrowed by, for the heading
	Next                                        string
	First                                       string
	Exports                                     exports
	Worst, Severity, Query, Package, Repository string
}

func (d *Dashboard) imageFilter(q *request) (store.ImageFilter, []string, error) {
	var f store.ImageFilter
	var desc []string
	w, err := q.severityParam("worst")
	if err != nil {
		return f, nil, err
	}
	if f.Worst = w; w != nil {
		desc = append(desc, "worst "+sevName(*w))
	}
	m, err := q.severityParam("severity")
	if err != nil {
		return f, nil, err
	}
	if m != nil && *m > finding.Unknown {
		f.MinSeverity = *m
		desc = append(desc, "a finding of "+m.String()+" or above")
	}
	f.Query, f.Package, f.Repository = q.param("q"), q.param("package"), q.param("repository")
	for _, p := range []struct{ what, v string }{{"text", f.Query}, {"package", f.Package}, {"repository", f.Repository}} {
		if p.v != "" {
			desc = append(desc, p.what+" "+p.v)
		}
	}
	if f.After, err = q.intParam("after"); err != nil {
		return f, nil, err
	}
	return f, desc, nil
}

func (d *Dashboard) images(q *request) error {
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	f, desc, err := d.imageFilter(q)
	if err != nil {
		return err
	}
	if format != "" {
		f.After, f.Limit = 0, 1000
		return export(d, q, format, "images", []string{"digest", "repository", "scan_id", "scanned_at", "packages", "worst", "critical", "high", "medium", "low", "unknown"},
			func(m *store.ImageSummary) []string {
				return []string{m.Digest, m.Repository, strconv.FormatInt(m.ScanID, 10), m.ScannedAt.Format(time.RFC3339), strconv.Itoa(m.Packages), sevName(m.Worst),
					strconv.Itoa(m.Counts["CRITICAL"]), strconv.Itoa(m.Counts["HIGH"]), strconv.Itoa(m.Counts["MEDIUM"]), strconv.Itoa(m.Counts["LOW"]), strconv.Itoa(m.Counts["UNKNOWN"])}
			}, func() ([]store.ImageSummary, error) {
				list, err := d.st.Images(q.ctx, f)
				if len(list) > 0 {
					f.After = list[len(list)-1].ScanID
				}
				return list, err
			})
	}
	f.Limit = d.opt.PageSize + 1
	list, err := d.st.Images(q.ctx, f)
	if err != nil {
		return err
	}
	v := imagesData{Filter: desc, Exports: q.exports(), Worst: q.param("worst"), Severity: q.param("severity"), Query: f.Query, Package: f.Package, Repository: f.Repository}
	if len(list) > d.opt.PageSize {
		list = list[:d.opt.PageSize]
		v.Next = q.with("after", strconv.FormatInt(list[len(list)-1].ScanID, 10))
	}
	if f.After > 0 {
		v.First = q.with("after", "")
	}
	v.Images = list
	d.render(q, http.StatusOK, "images", "Images", v)
	return nil
}

// An image.

type layerView struct {
	inventory.Layer
	Packages []string
	More     int
	Count    int
}

type imageData struct {
	Scan       *store.Scan
	Repository string
	Tab        string
	Tabs       []tabLink
	Counts     []bucket
	Layers     []layerView
	Packages   []inventory.Package
	Findings   []findingView
	Sightings  []store.Sighting
	Alerts     []store.Event
	History    []store.Scan
	Pager      pager
	Exports    exports
	CanRescan  bool
	Queued     bool
	Suppressed int
	Provenance *provenanceView
}

type tabLink struct {
	ID, Label, Link string
	N               int
	Current         bool
}

type findingView struct {
	finding.Finding
	Layer string
}

// pager pages an in-memory list.
type pager struct {
	From, To, Total int
	Prev, Next      string
}

func (q *request) pageOf(total, size int) (pager, error) {
	p, err := q.intParam("page")
	if err != nil {
		return pager{}, err
	}
	p = min(p, int64(total)) // no overflow: a page past the end is empty
	from := min(int(p)*size, total)
	pg := pager{From: from, To: min(from+size, total), Total: total}
	if p > 0 {
		pg.Prev = q.with("page", strconv.FormatInt(p-1, 10))
	}
	if pg.To < total {
		pg.Next = q.with("page", strconv.FormatInt(p+1, 10))
	}
	return pg, nil
}

// maxLayerNames bounds the package names listed under one layer.
const maxLayerNames = 30

var imageTabs = []struct{ id, label string }{
	{"vulnerabilities", "Vulnerabilities"}, {"packages", "Packages"}, {"layers", "Layers"},
	{"secrets", "Secrets"}, {"audit", "Image audit"}, {"where", "Where it runs"},
}

func (d *Dashboard) image(q *request) error {
	digest := q.r.PathValue("digest")
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	var sc *store.Scan
	if id, _ := q.intParam("scan"); id > 0 {
		if sc, err = d.st.Scan(q.ctx, id); err == nil && sc.Digest != digest {
			return &httpError{http.StatusNotFound, fmt.Sprintf("scan %d is not of image %s", id, digest)}
		}
	} else {
		sc, err = d.st.LatestScan(q.ctx, digest)
	}
	if err != nil {
		return err
	}
	tab := q.param("tab")
	if tab == "" {
		tab = "vulnerabilities"
	}
	v := imageData{Scan: sc, Repository: sc.Repository, Tab: tab, Queued: q.param("queued") == "1",
		CanRescan: d.opt.Rescan != nil && q.role >= RoleScan && sc.Repository != ""}
	byKind := map[finding.Kind][]findingView{}
	for i := range sc.Findings {
		f := &sc.Findings[i]
		fv := findingView{Finding: *f}
		if f.Package != nil && f.Package.Layer != nil {
			fv.Layer = strconv.Itoa(f.Package.Layer.Index)
		} else if f.Location != nil && f.Location.Layer != nil {
			fv.Layer = strconv.Itoa(f.Location.Layer.Index)
		}
		byKind[f.Kind] = append(byKind[f.Kind], fv)
		if f.Suppressed != nil {
			v.Suppressed++
		}
	}
	// Worst first, then by ID (the scan's order is by ID).
	for _, fs := range byKind {
		sort.SliceStable(fs, func(i, j int) bool {
			if fs[i].Severity != fs[j].Severity {
				return fs[i].Severity > fs[j].Severity
			}
			return fs[i].ID < fs[j].ID
		})
	}
	counts := map[string]int{}
	for _, f := range sc.Findings {
		if f.Suppressed == nil {
			counts[f.Severity.String()]++
		}
	}
	for _, s := range severities {
		v.Counts = append(v.Counts, bucket{Name: s.String(), Class: strings.ToLower(s.String()), N: counts[s.String()]})
	}
	seen, err := d.st.Sightings(q.ctx, digest)
	if err != nil {
		return err
	}
	if v.Provenance, err = d.provenance(q.ctx, sc.ID); err != nil {
		return err
	}
	n := map[string]int{"vulnerabilities": len(byKind[finding.KindVulnerability]), "packages": len(sc.Inventory.Packages),
		"layers": len(sc.Inventory.Target.Layers), "secrets": len(byKind[finding.KindSecret]), "audit": len(byKind[finding.KindMisconfiguration]), "where": len(seen)}
	for _, t := range imageTabs {
		v.Tabs = append(v.Tabs, tabLink{ID: t.id, Label: t.label, N: n[t.id], Current: t.id == tab,
			Link: q.with("tab", t.id, "page", "", "format", "", "queued", "")})
	}
	v.Exports = q.exports()
	name := "image-" + strings.TrimPrefix(digest, "sha256:")[:min(12, len(strings.TrimPrefix(digest, "sha256:")))] + "-" + tab
	size := d.opt.PageSize * 4
	switch tab {
	case "vulnerabilities", "secrets", "audit":
		kind := map[string]finding.Kind{"vulnerabilities": finding.KindVulnerability, "secrets": finding.KindSecret, "audit": finding.KindMisconfiguration}[tab]
		fs := byKind[kind]
		if format != "" {
			return export(d, q, format, name, []string{"id", "severity", "package", "version", "fixed", "status", "suppressed", "path", "layer", "title"},
				func(f *findingView) []string {
					var pkg, ver, path string
					if f.Package != nil {
						pkg, ver, path = f.Package.Name, f.Package.Version, f.Package.Path
					}
					if f.Location != nil {
						path = f.Location.Path
					}
					return []string{f.ID, f.Severity.String(), pkg, ver, strings.Join(f.FixedVersions, " "), f.Status, suppression(f.Suppressed), path, f.Layer, f.Title}
				}, once(fs))
		}
		if v.Pager, err = q.pageOf(len(fs), size); err != nil {
			return err
		}
		v.Findings = fs[v.Pager.From:v.Pager.To]
	case "packages":
		ps := sc.Inventory.Packages
		if format != "" {
			return export(d, q, format, name, []string{"name", "version", "type", "purl", "path", "layer"}, func(p *inventory.Package) []string {
				return []string{p.Name, p.Version, p.Type, p.PURL, pkgPath(p), layerOf(p)}
			}, once(ps))
		}
		if v.Pager, err = q.pageOf(len(ps), size); err != nil {
			return err
		}
		v.Packages = ps[v.Pager.From:v.Pager.To]
	case "layers":
		ls := make([]layerView, len(sc.Inventory.Target.Layers))
		for i, l := range sc.Inventory.Target.Layers {
			ls[i].Layer = l
		}
		for i := range sc.Inventory.Packages {
			p := &sc.Inventory.Packages[i]
			if len(p.Locations) == 0 || p.Locations[0].Layer == nil {
				continue
			}
			if li := p.Locations[0].Layer.Index; li >= 0 && li < len(ls) {
				ls[li].Count++
				if len(ls[li].Packages) < maxLayerNames {
					ls[li].Packages = append(ls[li].Packages, p.Name+" "+p.Version)
				} else {
					ls[li].More++
				}
			}
		}
		if format != "" {
			return export(d, q, format, name, []string{"index", "digest", "diff_id", "created_by", "packages"}, func(l *layerView) []string {
				return []string{strconv.Itoa(l.Index), l.Digest, l.DiffID, l.CreatedBy, strconv.Itoa(l.Count)}
			}, once(ls))
		}
		v.Layers = ls
	case "where":
		if format != "" {
			return export(d, q, format, name, []string{"kind", "reference", "cluster", "namespace", "workload", "ci_run", "seen_at"}, func(s *store.Sighting) []string {
				return []string{s.Kind, s.Reference, s.Cluster, s.Namespace, s.Workload, s.CIRun, s.SeenAt.Format(time.RFC3339)}
			}, once(seen))
		}
		v.Sightings = seen
		if v.Alerts, err = d.st.EventsPage(q.ctx, store.EventFilter{Digest: digest, Kinds: []string{"runtime"}, Limit: 10}); err != nil {
			return err
		}
	default:
		return badRequest("tab=%q: use one of vulnerabilities, packages, layers, secrets, audit, where", tab)
	}
	if format != "" {
		return badRequest("this tab has no list to export")
	}
	if sc.Repository != "" {
		if v.History, err = d.st.ScansOf(q.ctx, sc.Repository, 10); err != nil {
			return err
		}
	}
	d.render(q, http.StatusOK, "image", shortName(sc), v)
	return nil
}

func pkgPath(p *inventory.Package) string {
	if len(p.Locations) > 0 {
		return p.Locations[0].Path
	}
	return ""
}

func layerOf(p *inventory.Package) string {
	if len(p.Locations) > 0 && p.Locations[0].Layer != nil {
		return strconv.Itoa(p.Locations[0].Layer.Index)
	}
	return ""
}

func suppression(s *finding.Suppression) string {
	if s == nil {
		return ""
	}
	out := s.Kind
	if s.Status != "" {
		out += ": " + s.Status
	}
	if s.Justification != "" {
		out += " (" + s.Justification + ")"
	}
	return out
}

func shortName(sc *store.Scan) string {
	if sc.Repository != "" {
		return sc.Repository + "@" + shortDigest(sc.Digest)
	}
	if sc.Inventory != nil && sc.Inventory.Target.Name != "" {
		return sc.Inventory.Target.Name
	}
	return sc.Digest
}

func (d *Dashboard) rescan(q *request) error {
	if d.opt.Rescan == nil {
		return &httpError{http.StatusNotFound, "this server does not re-scan from the dashboard"}
	}
	digest := q.r.PathValue("digest")
	sc, err := d.st.LatestScan(q.ctx, digest)
	if err != nil {
		return err
	}
	if sc.Repository == "" {
		return badRequest("image %s has no repository to pull it from", digest)
	}
	if err := d.opt.Rescan(q.ctx, sc.Repository, digest); err != nil {
		return fmt.Errorf("rescan %s: %w", digest, err)
	}
	http.Redirect(q.w, q.r, Prefix+"images/"+digest+"?queued=1", http.StatusSeeOther)
	return nil
}

// Vulnerabilities.

type vulnsData struct {
	Vulns   []store.VulnCount
	Pager   pager
	Exports exports
}

// maxTop bounds the vulnerabilities list.
const maxTop = 1000

func (d *Dashboard) vulns(q *request) error {
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	p, err := q.intParam("page")
	if err != nil {
		return err
	}
	limit := maxTop
	p = min(p, maxTop)
	if format == "" {
		limit = min(int(p+1)*d.opt.PageSize+1, maxTop)
	}
	top, err := d.st.TopVulnerabilities(q.ctx, limit)
	if err != nil {
		return err
	}
	if format != "" {
		return export(d, q, format, "vulnerabilities", []string{"id", "severity", "images", "workloads", "fixable"}, func(v *store.VulnCount) []string {
			return []string{v.ID, v.Severity.String(), strconv.Itoa(v.Images), strconv.Itoa(v.Workloads), strconv.FormatBool(v.Fixable)}
		}, once(top))
	}
	v := vulnsData{Exports: q.exports()}
	if v.Pager, err = q.pageOf(len(top), d.opt.PageSize); err != nil {
		return err
	}
	v.Vulns = top[v.Pager.From:v.Pager.To]
	d.render(q, http.StatusOK, "vulnerabilities", "Vulnerabilities", v)
	return nil
}

type vulnData struct {
	ID        string
	Finding   *finding.Finding
	Affected  []store.Affected
	Images    int
	Workloads []store.Sighting
	Fixed     []string
	Pager     pager
	Exports   exports
}

func (d *Dashboard) vuln(q *request) error {
	id := q.r.PathValue("id")
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	aff, err := d.st.Affected(q.ctx, id)
	if err != nil {
		return err
	}
	if format != "" {
		return export(d, q, format, "affected-"+id, []string{"digest", "repository", "package", "version", "fixed", "workloads"}, func(a *store.Affected) []string {
			var ws []string
			for _, s := range a.Sightings {
				if s.Workload != "" {
					ws = append(ws, s.Cluster+"/"+s.Namespace+"/"+s.Workload)
				}
			}
			return []string{a.Digest, a.Repository, a.Package, a.Version, a.Fixed, strings.Join(ws, " ")}
		}, once(aff))
	}
	v := vulnData{ID: id, Exports: q.exports()}
	images, fixed, wl := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, a := range aff {
		images[a.Digest] = true
		if a.Fixed != "" && !fixed[a.Fixed] {
			fixed[a.Fixed] = true
			v.Fixed = append(v.Fixed, a.Package+" "+a.Fixed)
		}
		for _, s := range a.Sightings {
			k := s.Cluster + "\x00" + s.Namespace + "\x00" + s.Workload
			if s.Kind == "cluster" && s.Workload != "" && !wl[k] {
				wl[k] = true
				v.Workloads = append(v.Workloads, s)
			}
		}
	}
	v.Images = len(images)
	sort.Strings(v.Fixed)
	if len(aff) > 0 {
		// The advisory's text, from one affected image's findings.
		sc, err := d.st.Scan(q.ctx, aff[0].ScanID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if sc != nil {
			up := strings.ToUpper(id)
			for i := range sc.Findings {
				f := &sc.Findings[i]
				if strings.ToUpper(f.ID) == up || containsFold(f.Aliases, up) {
					v.Finding = f
					break
				}
			}
		}
	}
	if v.Pager, err = q.pageOf(len(aff), d.opt.PageSize); err != nil {
		return err
	}
	v.Affected = aff[v.Pager.From:v.Pager.To]
	status := http.StatusOK
	if len(aff) == 0 {
		status = http.StatusNotFound
	}
	d.render(q, status, "vulnerability", id, v)
	return nil
}

func containsFold(list []string, up string) bool {
	for _, s := range list {
		if strings.ToUpper(s) == up {
			return true
		}
	}
	return false
}

// Events: runtime alerts and policy decisions.

type eventsData struct {
	Events  []store.Event
	Filter  store.EventFilter
	Kind    string
	Next    string
	First   string
	Exports exports
}

func (d *Dashboard) events(q *request, kinds []string, page, title string) error {
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	f := store.EventFilter{Kinds: kinds, Rule: q.param("rule"), Priority: q.param("priority"), Container: q.param("container"),
		Namespace: q.param("namespace"), Digest: q.param("image")}
	if k := q.param("kind"); k != "" && len(kinds) > 1 {
		if k != kinds[0] && k != kinds[1] {
			return badRequest("kind=%q: use %s", k, strings.Join(kinds, " or "))
		}
		f.Kinds = []string{k}
	}
	if f.Before, err = q.intParam("before"); err != nil {
		return err
	}
	if format != "" {
		f.Before, f.Limit = 0, 1000
		return export(d, q, format, page, []string{"id", "at", "kind", "priority", "rule", "image", "container", "namespace", "output"}, func(e *store.Event) []string {
			return []string{strconv.FormatInt(e.ID, 10), e.At.Format(time.RFC3339), e.Kind, e.Priority, e.Rule, e.Digest, e.Container, e.Namespace, e.Output}
		}, func() ([]store.Event, error) {
			list, err := d.st.EventsPage(q.ctx, f)
			if len(list) > 0 {
				f.Before = list[len(list)-1].ID
			}
			return list, err
		})
	}
	f.Limit = d.opt.PageSize + 1
	list, err := d.st.EventsPage(q.ctx, f)
	if err != nil {
		return err
	}
	v := eventsData{Filter: f, Kind: q.param("kind"), Exports: q.exports()}
	if len(list) > d.opt.PageSize {
		list = list[:d.opt.PageSize]
		v.Next = q.with("before", strconv.FormatInt(list[len(list)-1].ID, 10))
	}
	if f.Before > 0 {
		v.First = q.with("before", "")
	}
	v.Events = list
	d.render(q, http.StatusOK, page, title, v)
	return nil
}

func (d *Dashboard) alerts(q *request) error {
	return d.events(q, []string{"runtime"}, "alerts", "Runtime alerts")
}

func (d *Dashboard) decisions(q *request) error {
	return d.events(q, []string{"gate", "admission"}, "decisions", "Policy decisions")
}

// Changes since a time.

type changesData struct {
	Since   time.Time
	Changes []store.Change
	Next    string
	Exports exports
}

func (d *Dashboard) changes(q *request) error {
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	since := d.opt.Now().UTC().Add(-24 * time.Hour)
	if s := q.param("since"); s != "" {
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return badRequest("since=%q: want a time like 2026-12-01T00:00:00Z", s)
		}
	}
	if format != "" {
		at := since
		return export(d, q, format, "changes", []string{"at", "kind", "digest", "id", "severity", "package", "version", "db_version"}, func(c *store.Change) []string {
			var pkg, ver string
			if c.Finding.Package != nil {
				pkg, ver = c.Finding.Package.Name, c.Finding.Package.Version
			}
			return []string{c.At.Format(time.RFC3339Nano), c.Kind, c.Digest, c.Finding.ID, c.Finding.Severity.String(), pkg, ver, c.DBVersion}
		}, func() ([]store.Change, error) {
			list, err := d.st.Changes(q.ctx, at, 1000)
			if len(list) > 0 {
				at = list[len(list)-1].At
			}
			return list, err
		})
	}
	list, err := d.st.Changes(q.ctx, since, d.opt.PageSize+1)
	if err != nil {
		return err
	}
	v := changesData{Since: since, Exports: q.exports()}
	if len(list) > d.opt.PageSize {
		list = list[:d.opt.PageSize]
		v.Next = q.with("since", list[len(list)-1].At.Format(time.RFC3339Nano))
	}
	v.Changes = list
	d.render(q, http.StatusOK, "changes", "Changes", v)
	return nil
}

// Compare.

type compareData struct {
	A, B    string
	ScanA   *store.Scan
	ScanB   *store.Scan
	Diff    *compare.Diff
	Exports exports
	Asked   bool
}

// scanParam reads a scan ID or an image digest (its latest scan).
func (d *Dashboard) scanParam(q *request, name string) (*store.Scan, error) {
	v := q.param(name)
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		return d.st.Scan(q.ctx, id)
	}
	if strings.HasPrefix(v, "sha256:") {
		return d.st.LatestScan(q.ctx, v)
	}
	return nil, badRequest("%s=%q: give a scan ID or an image digest (sha256:...)", name, v)
}

func (d *Dashboard) compare(q *request) error {
	v := compareData{A: q.param("a"), B: q.param("b")}
	if v.A == "" || v.B == "" {
		d.render(q, http.StatusOK, "compare", "Compare", v)
		return nil
	}
	v.Asked = true
	format, err := q.exportFormat()
	if err != nil {
		return err
	}
	if v.ScanA, err = d.scanParam(q, "a"); err != nil {
		return err
	}
	if v.ScanB, err = d.scanParam(q, "b"); err != nil {
		return err
	}
	v.Diff = compare.Compare(compare.Side{Inventory: v.ScanA.Inventory, Findings: v.ScanA.Findings},
		compare.Side{Inventory: v.ScanB.Inventory, Findings: v.ScanB.Findings})
	if format == "json" {
		return export(d, q, format, "compare", nil, func(*compare.Diff) []string { return nil }, once([]compare.Diff{*v.Diff}))
	}
	if format == "csv" {
		type row struct{ change, kind, id, severity, pkg, before, after string }
		var rows []row
		for _, x := range v.Diff.VulnsIntroduced {
			rows = append(rows, row{"introduced", "vulnerability", x.ID, x.Severity.String(), x.Package, "", x.Version})
		}
		for _, x := range v.Diff.VulnsFixed {
			rows = append(rows, row{"fixed", "vulnerability", x.ID, x.Severity.String(), x.Package, x.Version, ""})
		}
		for _, x := range v.Diff.PackagesAdded {
			rows = append(rows, row{"added", "package", "", "", x.Name, "", x.Version})
		}
		for _, x := range v.Diff.PackagesRemoved {
			rows = append(rows, row{"removed", "package", "", "", x.Name, x.Version, ""})
		}
		for _, x := range v.Diff.PackagesChanged {
			rows = append(rows, row{"changed", "package", "", "", x.Name, strings.Join(x.Before, " "), strings.Join(x.After, " ")})
		}
		return export(d, q, format, "compare", []string{"change", "kind", "id", "severity", "package", "before", "after"}, func(r *row) []string {
			return []string{r.change, r.kind, r.id, r.severity, r.pkg, r.before, r.after}
		}, once(rows))
	}
	v.Exports = q.exports()
	d.render(q, http.StatusOK, "compare", "Compare", v)
	return nil
}

// Search.

type searchData struct {
	Query  string
	Result *store.SearchResult
}

func (d *Dashboard) search(q *request) error {
	v := searchData{Query: q.param("q")}
	if v.Query != "" {
		// A digest or a vulnerability ID found exactly goes straight to
		// its page.
		r, err := d.st.Search(q.ctx, v.Query, d.opt.PageSize)
		if err != nil {
			return err
		}
		v.Result = r
		if len(r.Images) == 1 && r.Images[0].Digest == v.Query && len(r.Packages)+len(r.Vulnerabilities) == 0 {
			http.Redirect(q.w, q.r, Prefix+"images/"+r.Images[0].Digest, http.StatusSeeOther)
			return nil
		}
	}
	d.render(q, http.StatusOK, "search", "Search", v)
	return nil
}
