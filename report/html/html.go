// Package html writes bulkhead's reports as one self-contained HTML file:
// a scan (bulkhead image --format html), a comparison of two images
// (compare) and a policy gate's decisions (gate).
//
// The file needs no server and makes no network request: its stylesheet
// and its small script are inline, and a Content-Security-Policy meta tag
// allows those two (by hash) and nothing else. Every table is rendered on
// the server side by html/template, which escapes every value (package
// names, created_by lines and rule texts come from the image and are
// hostile), so the data shows with JavaScript disabled; the script only
// adds sorting and filtering. Rows are written as they are read (findings
// from report.Result.Each), through one buffered writer, so writing a
// report holds no second copy of the packages or the findings.
package html

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

var (
	//go:embed assets/report.css
	css string
	//go:embed assets/report.js
	js string
	//go:embed assets/report.tmpl
	tmplText string

	// tmpl is parsed on first use, not at start-up (every bulkhead command
	// links this package).
	tmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("report").Funcs(funcs).Parse(tmplText))
	})
	// jsHash is the CSP source of the inline script (the stylesheet's is
	// computed per report: its severity bar is sized in it).
	jsHash = hash(js)
)

// Options for every report.
type Options struct {
	// ToolVersion is bulkhead's version, written in the footer.
	ToolVersion string
	// Now is when the report is written (zero: the current time).
	Now time.Time
	// MaxLayerPackages is how many package names each layer lists (the
	// rest are counted, and are in the packages table with their layer);
	// 0: DefaultMaxLayerPackages.
	MaxLayerPackages int
	// CollapseRows: a table of more rows starts closed (its heading opens
	// it, with or without JavaScript), so that a browser lays out a
	// report of 100,000 packages only when asked to; 0:
	// DefaultCollapseRows.
	CollapseRows int
}

// DefaultCollapseRows is the most rows a table starts open with.
const DefaultCollapseRows = 5000

// DefaultMaxLayerPackages bounds the names listed under one layer.
const DefaultMaxLayerPackages = 500

// page is what every report's head and foot need.
type page struct {
	Title, Version, Generated string
	CSP                       string
	Collapse                  int
	CSS                       template.CSS
	JS                        template.JS
}

// sevCount is one severity's count, for the counts and the bar.
type sevCount struct {
	Name, Class string
	N           int
}

var severities = []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown}

func newPage(title string, o Options, counts []sevCount) page {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	style := css + barCSS(counts)
	p := page{
		Title: title, Version: o.ToolVersion, Generated: now.UTC().Format("2006-01-02 15:04 UTC"),
		CSP: "default-src 'none'; script-src '" + jsHash + "'; style-src '" + hash(style) + "'; img-src 'none'; " +
			"font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'",
		CSS: template.CSS(style), JS: template.JS(js), Collapse: o.CollapseRows,
	}
	if p.Collapse <= 0 {
		p.Collapse = DefaultCollapseRows
	}
	return p
}

// barCSS sizes the severity bar's segments by their counts (in the
// stylesheet: the policy allows no style attribute).
func barCSS(counts []sevCount) string {
	var b strings.Builder
	for _, c := range counts {
		if c.N > 0 {
			fmt.Fprintf(&b, ".bar .seg-%s{flex-grow:%d}\n", c.Class, c.N)
		}
	}
	return b.String()
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// controls says which filters a report's form has.
type controls struct{ Suppressed, Outcomes bool }

var funcs = template.FuncMap{
	"ctl":   func(suppressed int, outcomes bool) controls { return controls{suppressed > 0, outcomes} },
	"join":  strings.Join,
	"rank":  func(s finding.Severity) int { return int(s) },
	"class": func(s finding.Severity) string { return strings.ToLower(s.String()) },
	"short": func(d string) string {
		if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
			return d[:i+13]
		}
		return d
	},
	"layer": func(p *inventory.Package) string {
		if l := pkgLayer(p); l != nil {
			return fmt.Sprint(l.Index)
		}
		return ""
	},
	"path": func(p *inventory.Package) string {
		if len(p.Locations) > 0 {
			return p.Locations[0].Path
		}
		return ""
	},
	"loc": func(f *finding.Finding) string {
		if f.Location == nil {
			return ""
		}
		if f.Location.StartLine > 0 {
			return fmt.Sprintf("%s:%d", f.Location.Path, f.Location.StartLine)
		}
		return f.Location.Path
	},
	"outcomeRank": func(o string) int {
		switch o {
		case "deny":
			return 4
		case "warn":
			return 2
		}
		return 0
	},
	"outcomeClass": func(o string) string {
		switch o {
		case "deny":
			return "deny"
		case "warn":
			return "warn"
		}
		return "ok"
	},
}

// pkgLayer is the layer that brought a package: that of its first
// location that has one.
func pkgLayer(p *inventory.Package) *inventory.Layer {
	for i := range p.Locations {
		if p.Locations[i].Layer != nil {
			return p.Locations[i].Layer
		}
	}
	return nil
}

// write runs one named template on a buffered writer.
func write(w io.Writer, name string, data any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := tmpl().ExecuteTemplate(bw, name, data); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// imageView is the data of a scan's report.
type imageView struct {
	Page                       page
	Target                     inventory.Target
	OS, Platform, Size         string
	DB                         *report.DBInfo
	Scanners, Warnings         []string
	Counts                     []sevCount
	Active, Suppressed         int
	NPackages                  int
	NVulns, NSecrets, NMisconf int
	Layers                     []layerView
	Packages                   iter.Seq[*inventory.Package]
	Vulns, Secrets, Misconf    iter.Seq[*finding.Finding]
}

// layerView is one layer and the packages it brought.
type layerView struct {
	inventory.Layer
	N, More  int
	Packages iter.Seq[*inventory.Package]
}

// Result writes a scan's report: summary, layers, packages,
// vulnerabilities, secrets and misconfigurations (suppressed findings
// shown, marked with their VEX or ignore-file reason).
func Result(w io.Writer, r *report.Result, o Options) error {
	if r == nil || r.Inventory == nil {
		return fmt.Errorf("write HTML report: no result")
	}
	inv := r.Inventory
	v := imageView{
		Target: inv.Target, DB: r.DB, Scanners: r.Scanners, NPackages: len(inv.Packages),
		Warnings: append(append([]string{}, inv.Warnings...), r.Warnings...),
	}
	if inv.OS != nil {
		v.OS = inv.OS.PrettyName
		if v.OS == "" {
			v.OS = strings.TrimSpace(inv.OS.ID + " " + inv.OS.VersionID)
		}
	}
	if inv.Target.OSName != "" || inv.Target.Arch != "" {
		v.Platform = inv.Target.OSName + "/" + inv.Target.Arch
	}
	if inv.Target.Size > 0 {
		v.Size = base.HumanSize(inv.Target.Size)
	}
	// One pass for the counts: the summary comes before the tables.
	bySev := map[finding.Severity]int{}
	err := r.Each(func(f *finding.Finding) error {
		switch f.Kind {
		case finding.KindVulnerability:
			v.NVulns++
		case finding.KindSecret:
			v.NSecrets++
		default:
			v.NMisconf++
		}
		if f.Suppressed != nil {
			v.Suppressed++
		} else {
			v.Active++
			bySev[f.Severity]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	for _, s := range severities {
		v.Counts = append(v.Counts, sevCount{Name: s.String(), Class: strings.ToLower(s.String()), N: bySev[s]})
	}
	v.Layers = layers(inv, o.MaxLayerPackages)
	v.Packages = func(yield func(*inventory.Package) bool) {
		for i := range inv.Packages {
			if !yield(&inv.Packages[i]) {
				return
			}
		}
	}
	v.Vulns = findings(r, func(k finding.Kind) bool { return k == finding.KindVulnerability })
	v.Secrets = findings(r, func(k finding.Kind) bool { return k == finding.KindSecret })
	v.Misconf = findings(r, func(k finding.Kind) bool { return k != finding.KindVulnerability && k != finding.KindSecret })
	v.Page = newPage("bulkhead: "+inv.Target.Name, o, v.Counts)
	return write(w, "image", v)
}

// findings yields the result's findings of the kinds keep accepts, one
// at a time (a Store's finding is only valid while it is yielded).
func findings(r *report.Result, keep func(finding.Kind) bool) iter.Seq[*finding.Finding] {
	return func(yield func(*finding.Finding) bool) {
		stop := fmt.Errorf("stop")
		r.Each(func(f *finding.Finding) error {
			if keep(f.Kind) && !yield(f) {
				return stop
			}
			return nil
		})
	}
}

// layers lists the image's layers with the packages each brought, at
// most max names each; the packages are walked once per layer, not
// grouped into a second copy.
func layers(inv *inventory.Inventory, max int) []layerView {
	if max <= 0 {
		max = DefaultMaxLayerPackages
	}
	count := map[int]int{}
	for i := range inv.Packages {
		if l := pkgLayer(&inv.Packages[i]); l != nil {
			count[l.Index]++
		}
	}
	out := make([]layerView, 0, len(inv.Target.Layers))
	for _, l := range inv.Target.Layers {
		idx := l.Index
		lv := layerView{Layer: l, N: count[idx]}
		if lv.N > max {
			lv.More = lv.N - max
		}
		lv.Packages = func(yield func(*inventory.Package) bool) {
			n := 0
			for i := range inv.Packages {
				p := &inv.Packages[i]
				if pl := pkgLayer(p); pl != nil && pl.Index == idx {
					if n++; n > max || !yield(p) {
						return
					}
				}
			}
		}
		out = append(out, lv)
	}
	return out
}
