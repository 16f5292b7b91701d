package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/jsonstream"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Result is everything one scan reports: the inventory and the findings of
// every scanner that ran (suppressed ones included, marked).
type Result struct {
	Inventory *inventory.Inventory
	Findings  []finding.Finding
	// Store, when set, holds the findings instead of Findings (a scan that
	// may find very many); the writers read it one finding at a time.
	Store *Store
	// Scanners that ran ("vuln", "misconfig", "secret"); the table shows
	// packages when no finding scanner ran.
	Scanners []string
	// DB describes the vulnerability database used, when one was.
	DB *DBInfo
	// Warnings beyond the inventory's (stale database, expired ignores):
	// the messages of Diagnostics, and any warning set without a code.
	Warnings []string
	// Diagnostics beyond the inventory's; add them with Diagnose, which
	// keeps Warnings in step.
	Diagnostics []diag.Diagnostic
}

// Diagnose adds diagnostics, and the messages of those that are not
// notes (diag.Info) to Warnings.
func (r *Result) Diagnose(ds ...diag.Diagnostic) {
	r.Diagnostics = append(r.Diagnostics, ds...)
	r.Warnings = append(r.Warnings, diag.Warnings(ds)...)
}

// AllDiagnostics are the inventory's diagnostics, then the result's
// (each list with its uncoded warnings as diag.Unclassified): what the
// terminal, the JSON report and the SARIF log show.
func (r *Result) AllDiagnostics() []diag.Diagnostic {
	var out []diag.Diagnostic
	if r.Inventory != nil {
		out = r.Inventory.AllDiagnostics()
	}
	return append(out, diag.Merge(r.Diagnostics, r.Warnings)...)
}

// DBInfo says which vulnerability database a scan used and how old the
// data it used is: the oldest of the ecosystems its packages were looked up
// in, not the database's last write.
type DBInfo struct {
	// Source is where the oldest data used came from.
	Source string `json:"source,omitempty"`
	// UpdatedAt: the oldest data used is at least this current; zero when
	// it cannot be dated (Age then says "unknown").
	UpdatedAt time.Time `json:"updatedAt,omitempty"`
	Age       string    `json:"age,omitempty"`
	Records   int       `json:"records,omitempty"`
	// OldestEcosystem is the ecosystem of that oldest data.
	OldestEcosystem string `json:"oldestEcosystem,omitempty"`
	// Ecosystems is the age of each ecosystem the scan used.
	Ecosystems []DBEcosystem `json:"ecosystems,omitempty"`
}

// DBEcosystem is how current one ecosystem's data is.
type DBEcosystem struct {
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updatedAt,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Source    string    `json:"source,omitempty"`
}

// Ran reports whether a scanner ran.
func (r *Result) Ran(scanner string) bool {
	for _, s := range r.Scanners {
		if s == scanner {
			return true
		}
	}
	return false
}

// Each calls fn with every finding (suppressed ones included, marked),
// from Store when set, else Findings, stopping at fn's first error. The
// finding is only valid during the call. Writers outside this package
// (report/html) stream through it.
func (r *Result) Each(fn func(f *finding.Finding) error) error { return r.each(fn) }

// each calls fn with every finding, from Store when set, else Findings.
func (r *Result) each(fn func(f *finding.Finding) error) error {
	if r.Store != nil {
		return r.Store.Each(fn)
	}
	for i := range r.Findings {
		if err := fn(&r.Findings[i]); err != nil {
			return err
		}
	}
	return nil
}

// summary counts the findings that count by severity.
func (r *Result) summary() map[string]int {
	if r.Store == nil {
		return Summary(r.Findings)
	}
	out := Summary(nil)
	r.Store.Each(func(f *finding.Finding) error {
		if f.Suppressed == nil {
			out[f.Severity.String()]++
		}
		return nil
	})
	return out
}

// ResultDocument is the JSON report with findings: the inventory document
// plus "findings" (each a finding.Finding: id, kind, aliases, severity and
// its source, package name/version/purl/type/path/layer, fixed versions,
// status, title, references, suppression) and "db".
type ResultDocument struct {
	SchemaVersion int `json:"schemaVersion"`
	*inventory.Inventory
	Scanners []string          `json:"scanners,omitempty"`
	DB       *DBInfo           `json:"vulnerabilityDB,omitempty"`
	Findings []finding.Finding `json:"findings"`
	Summary  map[string]int    `json:"summary"`
}

// ResultJSON writes a Result as JSON. The packages and the findings are
// written one at a time (see jsonstream), so a report of a hundred thousand
// packages or a million findings is not held in memory a second time.
func ResultJSON(w io.Writer, r *Result) error {
	if r == nil || r.Inventory == nil {
		return fmt.Errorf("write JSON report: no result")
	}
	inv := skeleton(r.Inventory)
	if len(r.Warnings) > 0 {
		inv.Warnings = append(append([]string{}, inv.Warnings...), r.Warnings...)
	}
	// "diagnostics" holds the coded ones; "warnings" every message, as
	// before diagnostics had codes.
	if len(r.Diagnostics) > 0 {
		inv.Diagnostics = append(append([]diag.Diagnostic{}, inv.Diagnostics...), r.Diagnostics...)
	}
	doc := ResultDocument{SchemaVersion: SchemaVersion, Inventory: inv, Scanners: r.Scanners, DB: r.DB, Findings: []finding.Finding{}, Summary: r.summary()}
	findings := jsonstream.Slot{Key: "findings", Depth: 1, Each: func(emit func(any) error) error {
		return r.each(func(f *finding.Finding) error { return emit(f) })
	}}
	if err := jsonstream.Write(w, doc, packagesSlot(r.Inventory.Packages), findings); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// ResultJSONCompact writes the same document as ResultJSON on one line,
// without indentation, and holding it whole: for a machine reader (bulkhead
// server's answer to an upload), where the indentation costs as much CPU
// as the encoding.
func ResultJSONCompact(w io.Writer, r *Result) error {
	if r == nil || r.Inventory == nil {
		return fmt.Errorf("write JSON report: no result")
	}
	inv := *r.Inventory
	if len(r.Warnings) > 0 {
		inv.Warnings = append(append([]string{}, inv.Warnings...), r.Warnings...)
	}
	if len(r.Diagnostics) > 0 {
		inv.Diagnostics = append(append([]diag.Diagnostic{}, inv.Diagnostics...), r.Diagnostics...)
	}
	inv.Packages = make([]inventory.Package, len(r.Inventory.Packages))
	for i, p := range r.Inventory.Packages {
		if p.Locations == nil {
			p.Locations = []inventory.Location{}
		}
		inv.Packages[i] = p
	}
	doc := ResultDocument{SchemaVersion: SchemaVersion, Inventory: &inv, Scanners: r.Scanners, DB: r.DB, Findings: []finding.Finding{}, Summary: r.summary()}
	if err := r.each(func(f *finding.Finding) error { doc.Findings = append(doc.Findings, *f); return nil }); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// Summary counts the findings that count (not suppressed) by severity.
func Summary(fs []finding.Finding) map[string]int {
	out := map[string]int{}
	for _, s := range []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown} {
		out[s.String()] = 0
	}
	for _, f := range fs {
		if f.Suppressed == nil {
			out[f.Severity.String()]++
		}
	}
	return out
}

// ResultTable writes findings grouped by target and package, or the package
// table when no finding scanner ran.
func ResultTable(w io.Writer, r *Result, opts Options) error {
	if r == nil || r.Inventory == nil {
		return fmt.Errorf("write table: no result")
	}
	if len(r.Scanners) == 0 {
		return Table(w, r.Inventory, opts)
	}
	inv := r.Inventory
	buf := bufio.NewWriterSize(w, 64<<10)
	bw := &errWriter{w: buf}
	bw.printf("Target:   %s (%s)\n", clean(inv.Target.Name), inv.Target.Source)
	if inv.OS != nil {
		name := inv.OS.PrettyName
		if name == "" {
			name = strings.TrimSpace(inv.OS.ID + " " + inv.OS.VersionID)
		}
		bw.printf("OS:       %s\n", clean(name))
	}
	if len(inv.Packages) > 0 || r.Ran("vuln") {
		bw.printf("Packages: %d\n", len(inv.Packages))
	}
	if r.DB != nil {
		oldest := ""
		if r.DB.OldestEcosystem != "" {
			oldest = "; oldest data: " + clean(r.DB.OldestEcosystem)
		}
		if r.DB.UpdatedAt.IsZero() {
			bw.printf("Vuln DB:  %s, age unknown%s\n", clean(r.DB.Source), oldest)
		} else {
			bw.printf("Vuln DB:  %s, data as of %s (%s old%s)\n", clean(r.DB.Source), r.DB.UpdatedAt.Format("2006-01-02"), r.DB.Age, oldest)
		}
	}
	// Vulnerabilities are sorted by package here; the other findings (a
	// config scan may have millions) are printed in two passes over the
	// result, one for the column widths, one for the rows.
	var vulns []finding.Finding
	nActive, nSuppressed, nOthers := 0, 0, 0
	r.each(func(f *finding.Finding) error {
		switch {
		case f.Suppressed != nil:
			nSuppressed++
		case f.Kind == finding.KindVulnerability:
			nActive++
			vulns = append(vulns, *f)
		default:
			nActive++
			nOthers++
		}
		return nil
	})
	sum := r.summary()
	bw.printf("Findings: %d (CRITICAL: %d, HIGH: %d, MEDIUM: %d, LOW: %d, UNKNOWN: %d)", nActive,
		sum["CRITICAL"], sum["HIGH"], sum["MEDIUM"], sum["LOW"], sum["UNKNOWN"])
	if nSuppressed > 0 {
		bw.printf(", %d suppressed", nSuppressed)
	}
	bw.printf("\n\n")

	if len(vulns) > 0 {
		sort.SliceStable(vulns, func(i, j int) bool {
			a, b := vulns[i].Package, vulns[j].Package
			if a != nil && b != nil && a.Name != b.Name {
				return a.Name < b.Name
			}
			return vulns[i].Severity > vulns[j].Severity
		})
		rows := [][]string{{"PACKAGE", "VERSION", "VULNERABILITY", "SEVERITY", "FIXED IN", "TITLE"}}
		sev := []finding.Severity{0}
		for _, f := range vulns {
			p := f.Package
			if p == nil {
				p = &finding.Package{}
			}
			fixed := strings.Join(f.FixedVersions, ", ")
			if fixed == "" {
				fixed = "(no fix yet)"
			}
			rows = append(rows, []string{p.Name, p.Version, f.ID, f.Severity.String(), fixed, truncate(f.Title, 60)})
			sev = append(sev, f.Severity)
		}
		writeRows(bw, rows, sev, opts.Color)
	}
	if nOthers > 0 {
		if len(vulns) > 0 {
			bw.printf("\n")
		}
		header := []string{"ID", "SEVERITY", "LOCATION", "MESSAGE"}
		row := func(f *finding.Finding) []string {
			loc := ""
			if f.Location != nil {
				loc = f.Location.Path
				if f.Location.StartLine > 0 {
					loc += fmt.Sprintf(":%d", f.Location.StartLine)
				}
			}
			return []string{f.ID, f.Severity.String(), loc, truncate(f.Title, 70)}
		}
		others := func(fn func(f *finding.Finding)) {
			r.each(func(f *finding.Finding) error {
				if f.Suppressed == nil && f.Kind != finding.KindVulnerability {
					fn(f)
				}
				return nil
			})
		}
		widths := make([]int, len(header))
		rowWidths(widths, header)
		others(func(f *finding.Finding) { rowWidths(widths, row(f)) })
		writeRow(bw, header, widths, 0, opts.Color, true)
		others(func(f *finding.Finding) { writeRow(bw, row(f), widths, f.Severity, opts.Color, false) })
	}
	for _, warn := range append(append([]string{}, inv.Warnings...), r.Warnings...) {
		bw.printf("warning: %s\n", clean(warn))
	}
	if bw.err == nil {
		bw.err = buf.Flush()
	}
	return bw.err
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

var severityColor = map[finding.Severity]string{
	finding.Critical: "\033[1;31m",
	finding.High:     "\033[31m",
	finding.Medium:   "\033[33m",
	finding.Low:      "\033[36m",
	finding.Unknown:  "\033[37m",
}

// writeRows prints aligned columns; the first row is the header. sev holds
// each row's severity for colour (the header's is ignored).
func writeRows(bw *errWriter, rows [][]string, sev []finding.Severity, color bool) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		rowWidths(widths, r)
	}
	for ri, r := range rows {
		writeRow(bw, r, widths, sev[ri], color, ri == 0)
	}
}

// rowWidths widens widths to fit a row.
func rowWidths(widths []int, r []string) {
	for i, c := range r {
		if w := displayWidth(clean(c)); w > widths[i] {
			widths[i] = w
		}
	}
}

// writeRow prints one row in columns of the widths.
func writeRow(bw *errWriter, r []string, widths []int, sev finding.Severity, color, header bool) {
	var line strings.Builder
	for i, c := range r {
		c = clean(c)
		cell := c
		if i < len(r)-1 {
			cell += strings.Repeat(" ", widths[i]-displayWidth(c)+2)
		}
		if color && !header && i == 3 && len(r) == 6 || color && !header && i == 1 && len(r) == 4 {
			cell = severityColor[sev] + cell + "\033[0m"
		}
		if color && header {
			cell = "\033[1m" + cell + "\033[0m"
		}
		line.WriteString(cell)
	}
	bw.printf("%s\n", strings.TrimRight(line.String(), " "))
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
