// Package dpkg reads the package databases of dpkg (Debian, Ubuntu and their
// derivatives): var/lib/dpkg/status, the per-package files of distroless
// images under var/lib/dpkg/status.d/, and the status file of opkg
// (OpenWrt), which has the same format.
//
// opkg packages are reported with the deb type, as syft does: their purls
// take the detected OS as namespace (pkg:deb/openwrt/...).
//
// The status file carries no licences: Debian keeps them in
// usr/share/doc/<package>/copyright, which this cataloger does not read.
package dpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/internal/lines"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on hostile input. Real status files have lines of a few kilobytes
// at most and some thousands of packages; the number of packages is bounded
// by catalog.DefaultMaxPackages (Cataloger.MaxPackages).
const (
	// MaxLine is the longest line read; longer lines are skipped whole,
	// with a warning.
	MaxLine = 1 << 20
)

// Paths of the databases, relative to the image root.
const (
	StatusPath   = "var/lib/dpkg/status"
	StatusDDir   = "var/lib/dpkg/status.d/"
	OpkgStatus   = "usr/lib/opkg/status"
	opkgStatusVL = "var/lib/opkg/status" // older opkg builds
)

// Cataloger reads dpkg and opkg status databases. The zero value is ready
// to use.
type Cataloger struct {
	// MaxPackages is the most packages one status file (or one status.d
	// file) may list; a file with more is rejected whole
	// (catalog.TooManyPackagesError). Zero means catalog.DefaultMaxPackages.
	MaxPackages int
}

// New returns the dpkg cataloger.
func New() *Cataloger { return &Cataloger{} }

var (
	_ catalog.Cataloger = (*Cataloger)(nil)
	_ catalog.PURLer    = (*Cataloger)(nil)
)

// Name implements catalog.Cataloger.
func (*Cataloger) Name() string { return "dpkg" }

// Match implements catalog.Cataloger.
func (*Cataloger) Match(path string) bool {
	switch path {
	case StatusPath, OpkgStatus, opkgStatusVL:
		return true
	}
	return isStatusD(path)
}

// isStatusD reports whether path is a distroless per-package status file
// (and not one of the .md5sums files kept beside them).
func isStatusD(path string) bool {
	rest, ok := strings.CutPrefix(path, StatusDDir)
	return ok && rest != "" && !strings.Contains(rest, "/") && !strings.HasSuffix(rest, ".md5sums")
}

// Parse implements catalog.Cataloger. Besides the packages it may return a
// *catalog.PartialError: the file did not end with a newline (its last
// package is still read) or had lines over MaxLine (skipped).
func (c *Cataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	statusD := isStatusD(strings.TrimPrefix(in.Path, "/"))
	pkgs, err := parse(ctx, in.Reader, statusD, c.MaxPackages)
	if err != nil {
		return pkgs, fmt.Errorf("dpkg database %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// ParseStatus reads a dpkg (or opkg) status file and returns the installed
// packages.
//
// "Installed" is what dpkg-query reports as db:Status-Status "installed": the
// third word of the Status field, whatever the selection ("install",
// "hold", or "deinstall" for a package marked for removal but still on
// disk). Packages that are only unpacked, half-configured, awaiting or
// pending triggers, or that left only their config files are not counted,
// nor are stanzas without a Status field, which dpkg reads as not installed.
//
// Over catalog.DefaultMaxPackages packages it fails with a
// *catalog.TooManyPackagesError; a file without a final newline, or with
// lines over MaxLine, gives its packages and a *catalog.PartialError.
func ParseStatus(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	return parse(ctx, r, false, 0)
}

// ParseStatusD reads one file of a distroless var/lib/dpkg/status.d
// directory. These files are written by image builders, not by dpkg, and
// usually have no Status field: a stanza without one is installed.
func ParseStatusD(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	return parse(ctx, r, true, 0)
}

// stanza is the part of one paragraph bulkhead keeps.
type stanza struct {
	pkg, version, arch, status, source, maintainer string
	hasPkg, hasStatus                              bool
}

func parse(ctx context.Context, r io.Reader, missingStatusInstalled bool, maxPackages int) ([]inventory.Package, error) {
	lr := lines.NewReader(r, MaxLine)
	var (
		pkgs catalog.PackageBlocks
		seen = map[string]bool{}
		strs = catalog.NewInterner(0)
		cur  stanza
		last string // the name of the last stanza read
		n    int
	)
	flush := func() error {
		s := cur
		cur = stanza{}
		if s.pkg != "" {
			last = s.pkg
		}
		if s.pkg == "" || s.version == "" {
			return nil // dpkg rejects an installed package without a version
		}
		if s.hasStatus {
			if !installed(s.status) {
				return nil
			}
		} else if !missingStatusInstalled {
			return nil
		}
		p := newPackage(s)
		if k := p.Key(); !seen[k] {
			if err := catalog.CheckPackageCount(pkgs.Len(), maxPackages, "dpkg status file"); err != nil {
				return err
			}
			seen[k] = true
			pkgs.Append(p)
		}
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
		switch line[0] {
		case ' ', '\t', '#':
			// A continuation of a multi-line field (Description,
			// Conffiles, ...) or a comment: none of the fields kept
			// spans lines.
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue // not a field
		}
		key := bytes.TrimSpace(line[:i])
		val := func() string { return string(bytes.TrimSpace(line[i+1:])) }
		shared := func() string { return strs.Bytes(bytes.TrimSpace(line[i+1:])) }
		// Field names are case-insensitive (deb822). Only the kept fields'
		// values are copied out of the line.
		switch {
		case bytes.EqualFold(key, fPackage):
			// A second Package in one stanza means the blank line
			// between two stanzas was lost: start a new one.
			if cur.hasPkg {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			cur.pkg, cur.hasPkg = val(), true
		case bytes.EqualFold(key, fVersion):
			cur.version = shared()
		case bytes.EqualFold(key, fArchitecture):
			cur.arch = shared()
		case bytes.EqualFold(key, fStatus):
			cur.status, cur.hasStatus = shared(), true
		case bytes.EqualFold(key, fSource):
			cur.source = shared()
		case bytes.EqualFold(key, fMaintainer):
			cur.maintainer = shared()
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	problems := pkgs.Problems()
	if lr.Unterminated() {
		// dpkg ends every stanza with a newline: the file was cut, and
		// its last line may be too. What it holds is kept.
		what := "its last line was read as it stands"
		if last != "" {
			what = fmt.Sprintf("its last stanza (Package: %s) was read as it stands", last)
		}
		problems = append(problems, fmt.Errorf("the file does not end with a newline, so it may be truncated: %s; check the image's package database (dpkg --audit)", what))
	}
	if k := lr.Skipped(); k > 0 {
		problems = append(problems, fmt.Errorf("%d lines longer than %d bytes were skipped, and any field on them with them", k, MaxLine))
	}
	return pkgs.Slice(), catalog.Partial(problems...)
}

var (
	fPackage      = []byte("Package")
	fVersion      = []byte("Version")
	fArchitecture = []byte("Architecture")
	fStatus       = []byte("Status")
	fSource       = []byte("Source")
	fMaintainer   = []byte("Maintainer")
)

// installed reports whether a Status field ("want flag status") says the
// package is installed.
func installed(status string) bool {
	f := strings.Fields(status)
	return len(f) == 3 && f[2] == "installed"
}

func newPackage(s stanza) inventory.Package {
	p := inventory.Package{
		Name:       s.pkg,
		Version:    s.version,
		Type:       inventory.TypeDeb,
		Arch:       s.arch,
		Maintainer: s.maintainer,
		Epoch:      epoch(s.version),
	}
	// As dpkg-query's ${source:Package} and ${source:Version}: the Source
	// field is "name" or "name (version)"; without it, or without a
	// version in it, the binary package's own name and version apply.
	// Debian's security tracker is keyed by source package.
	p.SourceName, p.SourceVersion = SplitSource(s.source)
	if p.SourceName == "" {
		p.SourceName = s.pkg
	}
	if p.SourceVersion == "" {
		p.SourceVersion = s.version
	}
	return p
}

// SplitSource splits a Source field, "name" or "name (version)".
func SplitSource(src string) (name, version string) {
	src = strings.TrimSpace(src)
	i := strings.IndexByte(src, '(')
	if i < 0 {
		return src, ""
	}
	name = strings.TrimSpace(src[:i])
	version = src[i+1:]
	if j := strings.IndexByte(version, ')'); j >= 0 {
		version = version[:j]
	}
	return name, strings.TrimSpace(version)
}

// epoch returns the epoch of a Debian version ("1:2.3-4" -> 1), or nil when
// the version has none.
func epoch(v string) *int {
	i := strings.IndexByte(v, ':')
	if i <= 0 || i == len(v)-1 {
		return nil // no epoch, or nothing after it
	}
	for _, c := range v[:i] {
		if c < '0' || c > '9' {
			return nil // dpkg allows digits only ("+1" is not an epoch)
		}
	}
	e, err := strconv.Atoi(v[:i])
	if err != nil {
		return nil // too large
	}
	return &e
}

// PURL implements catalog.PURLer, following the purl deb type and syft:
// pkg:deb/<os id>/<name>@<version>?arch=<arch>&distro=<id>-<version id>.
// The version keeps its epoch ("1:2.3-4"): the deb type has no epoch
// qualifier. upstream names the source package, as syft writes it
// ("name" or "name@version"), when it differs from the binary package. The
// namespace is the os-release ID (debian, ubuntu, ...) and "debian" when the
// OS is unknown; the distro qualifier uses the codename when the OS has no
// VERSION_ID (Debian testing and unstable).
func (*Cataloger) PURL(p *inventory.Package, os *inventory.OS) string {
	ns := "debian"
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	switch {
	case p.SourceVersion != "" && p.SourceVersion != p.Version:
		q["upstream"] = p.SourceName + "@" + p.SourceVersion
	case p.SourceName != "" && p.SourceName != p.Name:
		q["upstream"] = p.SourceName
	}
	if os != nil && os.ID != "" {
		ns = strings.ToLower(os.ID)
		switch {
		case os.VersionID != "":
			q["distro"] = os.ID + "-" + os.VersionID
		case os.Codename != "":
			q["distro"] = os.ID + "-" + os.Codename
		default:
			q["distro"] = os.ID
		}
	}
	return packageurl.NewPackageURL(packageurl.TypeDebian, ns, p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
