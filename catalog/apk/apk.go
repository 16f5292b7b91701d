// Package apk reads the installed-package database of apk, the package
// manager of Alpine Linux, Wolfi and Chainguard images
// (lib/apk/db/installed).
package apk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/internal/lines"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on hostile input. A real database has lines of a few hundred bytes
// and at most some thousands of packages; the number of packages is bounded
// by catalog.DefaultMaxPackages (Cataloger.MaxPackages).
const (
	// MaxLine is the longest line read; longer lines are skipped whole.
	MaxLine = 1 << 20

	// SPDX validation takes time quadratic in the expression's length, so
	// it is done only on licence fields of real-world size, and only for
	// so many distinct fields per database; past either bound a field is
	// split on spaces. Real databases have licence fields of at most a few
	// hundred bytes and some hundreds of distinct ones.
	maxExpressionLen = 512
	maxValidations   = 4096
)

// DBPaths are where apk keeps its database. The second is the same file seen
// through a merged /usr, where lib is a symlink to usr/lib and the layer tar
// names the real path.
var DBPaths = []string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}

// Cataloger reads apk installed databases. The zero value is ready to use.
type Cataloger struct {
	// MaxPackages is the most packages one database may list; a database
	// with more is rejected whole (catalog.TooManyPackagesError). Zero
	// means catalog.DefaultMaxPackages.
	MaxPackages int
}

// New returns the apk cataloger.
func New() *Cataloger { return &Cataloger{} }

var (
	_ catalog.Cataloger = (*Cataloger)(nil)
	_ catalog.PURLer    = (*Cataloger)(nil)
)

// Name implements catalog.Cataloger.
func (*Cataloger) Name() string { return "apk" }

// Match implements catalog.Cataloger.
func (*Cataloger) Match(path string) bool {
	return path == DBPaths[0] || path == DBPaths[1]
}

// Parse implements catalog.Cataloger.
func (c *Cataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	pkgs, err := ParseLimit(ctx, in.Reader, c.MaxPackages)
	if err != nil {
		return pkgs, fmt.Errorf("apk database %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// record is the part of one database entry bulkhead keeps.
type record struct {
	name, version, arch, origin, license, maintainer string
	seen                                             bool // any field at all
}

// Parse reads an apk installed database: records of "X:value" lines
// separated by blank lines (apk-tools' "installed" format). Records without
// a name (P) or version (V) are skipped; lines longer than MaxLine are
// skipped, and counted in a *catalog.PartialError returned with the
// packages. It fails only on a read error, cancellation, or more than
// catalog.DefaultMaxPackages packages.
func Parse(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	return ParseLimit(ctx, r, 0)
}

// ParseLimit is Parse with a limit on the number of packages (zero:
// catalog.DefaultMaxPackages). It stops reading at the first package past
// the limit and returns a *catalog.TooManyPackagesError.
//
// Memory is what the packages returned need and little more: the file is
// read line by line and only the kept fields of the current record are
// copied out (never the file lists, F: and R:, nor checksums); values that
// repeat across packages (versions, architectures, origins, maintainers,
// licences) are stored once; packages are gathered in fixed-size blocks
// and copied once into a slice of exactly their number.
func ParseLimit(ctx context.Context, r io.Reader, maxPackages int) ([]inventory.Package, error) {
	lr := lines.NewReader(r, MaxLine)
	var (
		pkgs     catalog.PackageBlocks
		cur      record
		licCache = map[string][]string{}
		strs     = catalog.NewInterner(0)
		n        int
	)
	flush := func() error {
		defer func() { cur = record{} }()
		if !cur.seen || cur.name == "" || cur.version == "" {
			return nil
		}
		if err := catalog.CheckPackageCount(pkgs.Len(), maxPackages, "apk database"); err != nil {
			return err
		}
		p := inventory.Package{
			Name:       cur.name,
			Version:    cur.version,
			Type:       inventory.TypeAPK,
			Arch:       cur.arch,
			Maintainer: cur.maintainer,
		}
		// Alpine's security database is keyed by origin (the aport the
		// binary package was built from); without one, the package is
		// its own origin.
		p.SourceName, p.SourceVersion = cur.origin, cur.version
		if p.SourceName == "" {
			p.SourceName = cur.name
		}
		if cur.license != "" {
			lic, ok := licCache[cur.license]
			switch {
			case ok:
			case len(licCache) < maxValidations:
				lic = SplitLicense(cur.license)
				licCache[cur.license] = lic
			default:
				lic = splitFields(strings.Fields(cur.license))
			}
			// Shared by every package with the same field: the
			// Collector and its consumers do not modify Licenses.
			p.Licenses = lic[:len(lic):len(lic)]
		}
		pkgs.Append(p)
		return nil
	}
	for {
		line, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue // not a field: ignore, as apk does
		}
		// Only the kept fields' values are copied out of the line: most
		// lines are file names (F:, R:) and checksums (Z:).
		val := func() string { return string(bytes.TrimSpace(line[2:])) }
		shared := func() string { return strs.Bytes(bytes.TrimSpace(line[2:])) }
		switch line[0] {
		case 'P':
			// A second name in one record means the blank line between
			// two records was lost: start a new record.
			if cur.name != "" {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			cur.name = val()
		case 'V':
			cur.version = shared()
		case 'A':
			cur.arch = shared()
		case 'o':
			cur.origin = shared()
		case 'L':
			cur.license = shared()
		case 'm':
			cur.maintainer = shared()
		}
		cur.seen = true
	}
	if err := flush(); err != nil {
		return nil, err
	}
	problems := pkgs.Problems()
	if k := lr.Skipped(); k > 0 {
		problems = append(problems, fmt.Errorf("%d lines longer than %d bytes were skipped, and any field on them with them", k, MaxLine))
	}
	return pkgs.Slice(), catalog.Partial(problems...)
}

// SplitLicense turns an apk L: field into licence entries. A valid SPDX
// expression that is a plain conjunction ("MPL-2.0 AND MIT") becomes its
// terms, since all of them apply; any other valid expression ("ISC AND
// (BSD-3-Clause OR MIT)") stays whole so that a choice is not lost. Older
// packages list licences separated by spaces ("MIT BSD GPL2+"), which is not
// SPDX: those are split on spaces and kept as written, as syft does.
func SplitLicense(s string) []string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil
	}
	norm := strings.Join(fields, " ")
	if len(norm) > maxExpressionLen {
		return splitFields(fields) // longer than any real one: see maxExpressionLen
	}
	if valid, _ := spdxexp.ValidateLicenses([]string{norm}); valid {
		if !strings.ContainsAny(norm, "()") && !hasWord(fields, "OR") && !hasWord(fields, "WITH") {
			var out []string
			for _, f := range fields {
				if !strings.EqualFold(f, "AND") {
					out = append(out, f)
				}
			}
			return out
		}
		norm = strings.ReplaceAll(strings.ReplaceAll(norm, "( ", "("), " )", ")")
		return []string{norm}
	}
	return splitFields(fields)
}

// splitFields keeps the words of a licence field that are not operators.
func splitFields(fields []string) []string {
	var out []string
	for _, f := range fields {
		switch strings.ToUpper(f) {
		case "AND", "OR", "WITH", "(", ")":
			continue
		}
		out = append(out, f)
	}
	return out
}

func hasWord(fields []string, w string) bool {
	for _, f := range fields {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// PURL implements catalog.PURLer:
// pkg:apk/<os id>/<name>@<version>?arch=<arch>&distro=<id>-<version id>,
// with upstream=<origin> when the origin differs from the name (as syft
// writes it, for matchers that look advisories up by origin). The namespace
// is the distribution's os-release ID (alpine, wolfi, chainguard, ...), and
// "alpine" when the OS is unknown.
func (*Cataloger) PURL(p *inventory.Package, os *inventory.OS) string {
	ns := "alpine"
	if os != nil && os.ID != "" {
		ns = strings.ToLower(os.ID)
	}
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		q["upstream"] = p.SourceName
	}
	if d := os.Distro(); d != "" {
		q["distro"] = d
	}
	return packageurl.NewPackageURL(packageurl.TypeApk, ns, p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
