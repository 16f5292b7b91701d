// Package rpm catalogs the packages recorded in an rpm database, in all three
// on-disk formats rpm has used: BerkeleyDB (Packages, RHEL/CentOS ≤ 8), NDB
// (Packages.db, SUSE) and SQLite (rpmdb.sqlite, Fedora ≥ 33, RHEL 9).
//
// Parsing is done by github.com/anchore/go-rpmdb, the library syft and
// grype use. That library reads a database in a goroutine of its own, where
// a panic cannot be recovered and a cyclic page chain never ends, so every
// file is first checked by guard.go against exactly the structures the
// library would trip on; panics in the part that runs on the caller's
// goroutine (header decoding) are recovered and returned as errors.
package rpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	rpmdb "github.com/anchore/go-rpmdb/pkg"
	"github.com/package-url/packageurl-go"

	// go-rpmdb opens rpmdb.sqlite through database/sql's "sqlite" driver but
	// registers none itself; modernc's is pure Go (no cgo), as in syft.
	_ "modernc.org/sqlite"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// DefaultMaxSize is the largest database file Parse accepts. The largest
// real rpm databases (full desktop installs) are a few hundred MB; go-rpmdb
// holds every package's header data in memory at once, so the limit bounds
// memory too.
const DefaultMaxSize = 1 << 30

// Cataloger reads rpm databases. The zero value is ready to use.
type Cataloger struct {
	// MaxSize overrides DefaultMaxSize when positive.
	MaxSize int64
	// MaxPackages is the most packages one database may hold; a database
	// with more is rejected whole (catalog.TooManyPackagesError) before
	// go-rpmdb reads it. Zero means catalog.DefaultMaxPackages.
	MaxPackages int
}

var (
	_ catalog.Cataloger = (*Cataloger)(nil)
	_ catalog.PURLer    = (*Cataloger)(nil)
)

// New returns an rpm cataloger with the default limits.
func New() *Cataloger { return &Cataloger{} }

// Name implements catalog.Cataloger.
func (*Cataloger) Name() string { return "rpm" }

// Match implements catalog.Cataloger. It accepts the package table of the
// database in the two places rpm keeps it: /var/lib/rpm (classic) and
// /usr/lib/sysimage/rpm (SUSE, and Fedora ≥ 36 where /var/lib/rpm is a
// symlink to it). The index files beside it (Name, Basenames, Providename,
// Index.db, __db.00*, rpmdb.sqlite-shm/-wal, ...) are derived data and are
// not read.
func (*Cataloger) Match(path string) bool {
	switch path {
	case "var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "var/lib/rpm/rpmdb.sqlite",
		"usr/lib/sysimage/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db", "usr/lib/sysimage/rpm/rpmdb.sqlite":
		return true
	}
	return false
}

func (c *Cataloger) maxSize() int64 {
	if c != nil && c.MaxSize > 0 {
		return c.MaxSize
	}
	return DefaultMaxSize
}

// Parse implements catalog.Cataloger. It lists every header in the
// database, gpg-pubkey pseudo-packages included, because that is what
// `rpm -qa` prints and what users compare with.
func (c *Cataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := c.maxSize()
	if in.Size > limit {
		return nil, fmt.Errorf("rpm database %s is %d bytes, over the %d-byte limit: it is corrupt or not an rpm database (raise Cataloger.MaxSize if it is genuine)", in.Path, in.Size, limit)
	}
	// go-rpmdb opens paths only. Read one byte past the limit so that an
	// input whose Size understated its length is still caught.
	in.Reader = io.LimitReader(in.Reader, limit+1)
	path, cleanup, err := in.SpoolFile("rpmdb-*")
	if err != nil {
		return nil, err
	}
	defer cleanup()

	infos, err := readDB(path, limit, c.MaxPackages)
	if err != nil {
		return nil, fmt.Errorf("read rpm database %s: %w", in.Path, err)
	}
	pkgs := make([]inventory.Package, 0, len(infos))
	for _, info := range infos {
		if info == nil {
			continue
		}
		pkgs = append(pkgs, toPackage(info))
	}
	return pkgs, nil
}

// errNotRPMDB marks files that are none of the three formats.
var errNotRPMDB = errors.New("not an rpm database (neither SQLite, NDB nor BerkeleyDB hash)")

// readDB checks the file and then lets go-rpmdb list its packages.
func readDB(path string, limit int64, maxPackages int) ([]*rpmdb.PackageInfo, error) {
	chk, err := check(path, limit, maxPackages)
	if err != nil {
		return nil, err
	}
	infos, err := listPackages(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chk.format, err)
	}
	// go-rpmdb's SQLite reader stops silently when a row cannot be read
	// (it never looks at rows.Err), so count what the table holds.
	if chk.rows >= 0 && len(infos) != chk.rows {
		return nil, fmt.Errorf("%s: read %d of the %d packages in the table: the database is corrupt", chk.format, len(infos), chk.rows)
	}
	return infos, nil
}

// listPackages runs go-rpmdb, turning a panic in its header decoding into
// an error.
func listPackages(path string) (infos []*rpmdb.PackageInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			infos, err = nil, fmt.Errorf("go-rpmdb failed on malformed data: %v", r)
		}
	}()
	db, err := rpmdb.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ListPackages()
}

func toPackage(info *rpmdb.PackageInfo) inventory.Package {
	p := inventory.Package{
		Name:       info.Name,
		Version:    evr(info.Epoch, info.Version, info.Release),
		Type:       inventory.TypeRPM,
		Arch:       info.Arch,
		Release:    info.Release,
		Maintainer: info.Vendor,
		Modularity: info.Modularitylabel,
	}
	if info.Epoch != nil {
		e := *info.Epoch
		p.Epoch = &e
	}
	if info.License != "" {
		p.Licenses = []string{info.License}
	}
	if name, ver, rel, ok := splitSourceRPM(info.SourceRpm); ok {
		p.SourceName = name
		// The SRPM file name carries no epoch. Every subpackage of a spec
		// shares the source's Epoch, so the binary's is the source's (the
		// same assumption trivy makes); advisories keyed by source package
		// compare full EVRs.
		p.SourceVersion = evr(info.Epoch, ver, rel)
	}
	return p
}

// evr formats [epoch:]version-release. Epoch 0 is omitted like a missing
// one: rpm compares the two as equal and dnf/yum print neither, so one
// package never gets two spellings. Package.Epoch still tells them apart.
func evr(epoch *int, version, release string) string {
	v := version
	if release != "" {
		v += "-" + release
	}
	if epoch != nil && *epoch != 0 {
		v = strconv.Itoa(*epoch) + ":" + v
	}
	return v
}

// splitSourceRPM splits "name-version-release.src.rpm" from the right, as
// rpm names are free to contain dashes but versions and releases are not.
func splitSourceRPM(s string) (name, version, release string, ok bool) {
	base, found := strings.CutSuffix(s, ".src.rpm")
	if !found {
		// No-source packages (NoSource:/NoPatch: in the spec).
		if base, found = strings.CutSuffix(s, ".nosrc.rpm"); !found {
			return "", "", "", false
		}
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(base[:i], '-')
	if j <= 0 || i-j < 2 || i == len(base)-1 {
		return "", "", "", false
	}
	return base[:j], base[j+1 : i], base[i+1:], true
}

// PURL implements catalog.PURLer with the form syft writes:
// pkg:rpm/<os id>/<name>@<version>-<release>?arch=&distro=<id>-<version id>&epoch=&upstream=<SOURCERPM>.
// The namespace is the os-release ID (rhel and hummingbird become "redhat",
// opensuse-leap and opensuse-tumbleweed "opensuse", as in syft); the epoch
// is a qualifier, present whenever the header has one, even 0.
func (*Cataloger) PURL(p *inventory.Package, osr *inventory.OS) string {
	var namespace string
	if osr != nil {
		namespace = strings.ToLower(osr.ID)
	}
	switch {
	case namespace == "rhel" || namespace == "hummingbird":
		namespace = "redhat"
	case strings.HasPrefix(namespace, "opensuse"):
		namespace = "opensuse"
	}
	version, release := p.Version, p.Release
	// Version is [epoch:]version-release; the purl version is version-release.
	if p.Epoch != nil {
		version = strings.TrimPrefix(version, strconv.Itoa(*p.Epoch)+":")
	}
	if release != "" && !strings.HasSuffix(version, "-"+release) {
		version += "-" + release
	}
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if p.Epoch != nil {
		q["epoch"] = strconv.Itoa(*p.Epoch)
	}
	if src := sourceRPM(p); src != "" {
		q["upstream"] = src
	}
	if d := osr.Distro(); d != "" {
		q["distro"] = d
	}
	return packageurl.NewPackageURL(packageurl.TypeRPM, namespace, p.Name, version, packageurl.QualifiersFromMap(q), "").ToString()
}

// sourceRPM rebuilds the SOURCERPM file name from the split fields (a
// .nosrc.rpm, which no distribution ships installed, comes back as .src.rpm).
func sourceRPM(p *inventory.Package) string {
	if p.SourceName == "" || p.SourceVersion == "" {
		return ""
	}
	v := p.SourceVersion
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return p.SourceName + "-" + v + ".src.rpm"
}
