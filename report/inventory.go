// Package report renders scan results for people (a table) and for programs
// (JSON). Both start from the inventory; later scanners add their findings
// to the same Document and the same table, after the packages.
package report

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/term"
	"golang.org/x/text/width"

	"github.com/bulkhead-sec/bulkhead/internal/jsonstream"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// SchemaVersion is the version of the JSON report format. It changes only
// when a field is removed or changes meaning; new fields may appear
// without a change, so readers must ignore fields they do not know.
const SchemaVersion = 1

// Document is the JSON report: schemaVersion, then the inventory's fields
// (target, os, packages, warnings) at the top level.
type Document struct {
	// SchemaVersion is SchemaVersion at the time of writing.
	SchemaVersion int `json:"schemaVersion"`
	*inventory.Inventory
}

// Options control the table.
type Options struct {
	// Color adds ANSI colour and emphasis. Set it only when the writer is
	// a terminal: ColorEnabled says so for a file.
	Color bool
}

// ColorEnabled reports whether colour suits output to f: f is a terminal
// and the user has not asked for no colour (https://no-color.org).
func ColorEnabled(f *os.File) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// JSON writes the inventory as an indented JSON Document. The packages are
// written one at a time (see jsonstream): memory stays that of the
// inventory, however large the document.
func JSON(w io.Writer, inv *inventory.Inventory) error {
	if inv == nil {
		return fmt.Errorf("write JSON report: no inventory")
	}
	doc := Document{SchemaVersion: SchemaVersion, Inventory: skeleton(inv)}
	if err := jsonstream.Write(w, doc, packagesSlot(inv.Packages)); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// skeleton returns a shallow copy of inv whose packages are one
// placeholder, for packagesSlot to replace.
func skeleton(inv *inventory.Inventory) *inventory.Inventory {
	out := *inv
	out.Packages = []inventory.Package{{}}
	return &out
}

// packagesSlot writes the packages one at a time, each with an empty
// rather than null list of locations, so that readers of the JSON need not
// tell the two apart.
func packagesSlot(pkgs []inventory.Package) jsonstream.Slot {
	return jsonstream.Slot{Key: "packages", Depth: 1, Each: func(emit func(any) error) error {
		for i := range pkgs {
			p := &pkgs[i]
			if p.Locations == nil {
				cp := *p
				cp.Locations = []inventory.Location{}
				p = &cp
			}
			if err := emit(p); err != nil {
				return err
			}
		}
		return nil
	}}
}

// ANSI styles.
const (
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	reset  = "\x1b[0m"
)

// Table writes a readable summary: the target and OS, then one row per
// package (name, version, type, source package, layer that introduced it),
// then the scan's warnings.
func Table(w io.Writer, inv *inventory.Inventory, opts Options) error {
	if inv == nil {
		return fmt.Errorf("write table: no inventory")
	}
	p := &printer{w: w, color: opts.Color}
	p.header(inv)
	p.packages(inv.Packages)
	p.warnings(inv.Warnings)
	if p.err != nil {
		return fmt.Errorf("write table: %w", p.err)
	}
	return nil
}

type printer struct {
	w     io.Writer
	color bool
	err   error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) style(s, code string) string {
	if !p.color || s == "" {
		return s
	}
	return code + s + reset
}

func (p *printer) header(inv *inventory.Inventory) {
	t := &inv.Target
	field := func(k, v string) {
		if v != "" {
			p.printf("%s %s\n", p.style(fmt.Sprintf("%-9s", k+":"), bold), clean(v))
		}
	}
	target := t.Name
	if t.Source != "" {
		target += " (" + t.Source + ")"
	}
	field("Target", target)
	field("Digest", t.Digest)
	if t.Arch != "" {
		field("Platform", strings.Trim(t.OSName+"/"+t.Arch, "/"))
	}
	switch o := inv.OS; {
	case o == nil:
		field("OS", "unknown")
	case o.PrettyName != "":
		field("OS", o.PrettyName)
	default:
		field("OS", strings.TrimSpace(o.ID+" "+o.VersionID))
	}
	field("Packages", strconv.Itoa(len(inv.Packages)))
}

func (p *printer) packages(pkgs []inventory.Package) {
	p.printf("\n")
	if len(pkgs) == 0 {
		p.printf("No packages found.\n")
		return
	}
	// Two passes over the packages, one for the column widths and one to
	// print, rather than a table of every cell: memory stays that of the
	// inventory.
	header := []string{"NAME", "VERSION", "TYPE", "SOURCE", "LAYER"}
	row := func(pk *inventory.Package) []string {
		return []string{clean(pk.Name), clean(pk.Version), clean(pk.Type), clean(source(pk)), layer(pk)}
	}
	widths := make([]int, len(header))
	measure := func(r []string) {
		for c, cell := range r {
			widths[c] = max(widths[c], displayWidth(cell))
		}
	}
	measure(header)
	for i := range pkgs {
		measure(row(&pkgs[i]))
	}
	var b strings.Builder
	line := func(r []string, isHeader bool) {
		b.Reset()
		for c, cell := range r {
			last := c == len(r)-1
			styled := cell
			switch {
			case isHeader:
				styled = p.style(cell, bold)
			case c == 0:
				styled = p.style(cell, cyan)
			case cell == "-" || c == 3:
				styled = p.style(cell, dim)
			}
			b.WriteString(styled)
			if !last {
				b.WriteString(strings.Repeat(" ", widths[c]-displayWidth(cell)+2))
			}
		}
		p.printf("%s\n", strings.TrimRight(b.String(), " "))
	}
	line(header, true)
	for i := range pkgs {
		line(row(&pkgs[i]), false)
	}
}

func (p *printer) warnings(ws []string) {
	if len(ws) == 0 {
		return
	}
	p.printf("\n%s\n", p.style("Warnings:", yellow))
	for _, w := range ws {
		p.printf("  - %s\n", clean(w))
	}
}

// source names the source package when it says more than the package's
// own name and version.
func source(p *inventory.Package) string {
	if p.SourceName == "" {
		return ""
	}
	if p.SourceName == p.Name && (p.SourceVersion == "" || p.SourceVersion == p.Version) {
		return ""
	}
	return strings.TrimSpace(p.SourceName + " " + p.SourceVersion)
}

// layer is the index of the layer that introduced the package, or "-" for
// a directory scan.
func layer(p *inventory.Package) string {
	var idx []string
	seen := map[int]bool{}
	for _, l := range p.Locations {
		if l.Layer != nil && l.Layer.Index >= 0 && !seen[l.Layer.Index] {
			seen[l.Layer.Index] = true
			idx = append(idx, strconv.Itoa(l.Layer.Index))
		}
	}
	if len(idx) == 0 {
		return "-"
	}
	return strings.Join(idx, ",")
}

// clean replaces control characters: package names and versions come from
// the scanned image, and an escape sequence in one must not reach the
// user's terminal.
func clean(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// displayWidth counts terminal columns: East Asian wide and fullwidth runes
// take two, combining marks none.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
		case width.LookupRune(r).Kind() == width.EastAsianWide, width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
