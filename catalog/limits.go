package catalog

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// DefaultMaxPackages is the most packages one database file (an apk
// installed database, a dpkg status file, an rpm database, a lockfile) may
// list. Real distribution images hold at most a few thousand packages and the
// largest lockfiles some tens of thousands; a file listing more is corrupt or
// hostile (a 15 MB apk database can list a million one-line packages, which
// would cost gigabytes downstream). A file over the limit is rejected whole
// with a TooManyPackagesError, reported as a warning naming the file; the
// catalogers that read such files take a MaxPackages option to change it,
// and the environment variable MaxPackagesEnv changes the default.
const DefaultMaxPackages = 100_000

// MaxPackagesEnv names the environment variable that, set to a positive
// number, replaces DefaultMaxPackages for the catalogers left at the default.
const MaxPackagesEnv = "BULKHEAD_MAX_PACKAGES"

var envMaxPackages = sync.OnceValue(func() int {
	n, err := strconv.Atoi(os.Getenv(MaxPackagesEnv))
	if err != nil || n <= 0 {
		return DefaultMaxPackages
	}
	return n
})

// MaxPackagesOr returns limit when it is positive and otherwise the default:
// DefaultMaxPackages, or the value of MaxPackagesEnv when that is set.
func MaxPackagesOr(limit int) int {
	if limit > 0 {
		return limit
	}
	return envMaxPackages()
}

// TooManyPackagesError says that a file lists more packages than the limit.
type TooManyPackagesError struct {
	// What names the kind of file ("apk database").
	What  string
	Limit int
}

func (e *TooManyPackagesError) Error() string {
	return fmt.Sprintf("more than %d packages in one %s, far more than any real one: none of its packages are reported (corrupt or hostile input; if it is genuine, set %s to a higher limit)", e.Limit, e.What, MaxPackagesEnv)
}

// CheckPackageCount is called before a parser keeps one more package, with
// n the number it keeps already: it returns a *TooManyPackagesError when
// that package would go past limit (DefaultMaxPackages when limit <= 0).
func CheckPackageCount(n, limit int, what string) error {
	limit = MaxPackagesOr(limit)
	if n >= limit {
		return &TooManyPackagesError{What: what, Limit: limit}
	}
	return nil
}

// PartialError is returned by a Parse, together with the packages it did
// read, when it skipped part of its input: a nested archive too deep or too
// large, unreadable build information, a truncated last line. The Collector
// keeps the packages and reports every problem as a warning naming the file,
// so that a hostile input cannot hide a package silently.
type PartialError struct {
	Problems []error
}

// MaxProblems bounds the problems one PartialError keeps; Partial counts the
// rest in a last line.
const MaxProblems = 50

// Partial returns a *PartialError with the non-nil problems (identical
// messages once, at most MaxProblems of them), or nil when there are none.
func Partial(problems ...error) error {
	var out []error
	seen := map[string]bool{}
	dropped := 0
	for _, p := range problems {
		if p == nil || seen[p.Error()] {
			continue
		}
		seen[p.Error()] = true
		if len(out) == MaxProblems {
			dropped++
			continue
		}
		out = append(out, p)
	}
	if dropped > 0 {
		out = append(out, fmt.Errorf("and %d more problems", dropped))
	}
	if len(out) == 0 {
		return nil
	}
	return &PartialError{Problems: out}
}

func (e *PartialError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "read in part: " + strings.Join(msgs, "; ")
}

// Unwrap gives the problems to errors.Is and errors.As.
func (e *PartialError) Unwrap() []error { return e.Problems }

// splitPartial separates a parse result into the error that voids it and the
// warnings that go with its packages.
func splitPartial(err error) (fatal error, problems []error) {
	var pe *PartialError
	if errors.As(err, &pe) {
		return nil, pe.Problems
	}
	return err, nil
}

// Caps on what one package may keep. A package with a longer field is not
// a real package (corrupt or hostile input padding its fields to make the
// scan hold gigabytes): the Collector skips it and warns, naming the file
// and how many it skipped. The caps are well above every real ecosystem's:
//
//   - names (and source package names): npm allows 214 bytes, Debian, apk
//     and rpm names are some tens; Go module paths and Maven
//     group:artifact pairs stay under 300. MaxNameLen is 512.
//   - versions (and source versions, rpm releases): node-semver rejects
//     versions over 256 bytes; Debian, rpm and Go pseudo-versions are
//     under 100. MaxVersionLen is 256.
//   - architectures ("x86_64", "noarch", "all"): MaxArchLen is 64.
//   - maintainers, modularity labels, purls set by a parser, each licence
//     and each location path: MaxFieldLen, 4096 bytes (PATH_MAX).
//   - all licences of one package together: MaxLicensesLen, 8192 bytes
//     (rpm License: tags, the longest real ones, are some hundreds).
const (
	MaxNameLen     = 512
	MaxVersionLen  = 256
	MaxArchLen     = 64
	MaxFieldLen    = 4096
	MaxLicensesLen = 8192
)

// Budgets on the memory the packages of one file, and of one image, keep:
// PackageOverhead for each package's record plus the bytes of its fields
// (names, versions, sources, licences, maintainers, paths: the strings the
// reports repeat, and which its purl repeats again). Real files keep far
// less: a Debian status file of 5,000 packages about 2 MiB, an npm lockfile
// of 30,000 packages some 10 MiB; DefaultMaxFileBytes admits
// DefaultMaxPackages packages of 200 bytes of fields each. Past the budget
// a file's remaining packages are skipped with a warning naming the file.
// With them every report format stays under 500 MB of memory for the
// largest inventory the budget admits, whatever the packages look like
// (the count limits bound only the packages of one file, not how many
// files list packages, nor how long their fields are).
const (
	DefaultMaxFileBytes  = 48 << 20
	DefaultMaxImageBytes = 64 << 20
	PackageOverhead      = 256
)

// Budget bounds what the Collector keeps. Zero fields mean the defaults.
type Budget struct {
	// FileBytes bounds the field bytes of the packages of one file.
	FileBytes int64
	// ImageBytes bounds the field bytes of all packages of a scan.
	ImageBytes int64
}

func (b Budget) fileBytes() int64 {
	if b.FileBytes > 0 {
		return b.FileBytes
	}
	return DefaultMaxFileBytes
}

func (b Budget) imageBytes() int64 {
	if b.ImageBytes > 0 {
		return b.ImageBytes
	}
	return DefaultMaxImageBytes
}

// FieldTooLongError says which field of a package passes its cap.
type FieldTooLongError struct {
	Field string
	Len   int
	Limit int
}

func (e *FieldTooLongError) Error() string {
	return fmt.Sprintf("its %s is %d bytes long, more than the %d of any real package", e.Field, e.Len, e.Limit)
}

// CheckPackage returns a *FieldTooLongError when a field of p passes its
// cap (MaxNameLen, MaxVersionLen, ...), and otherwise what p costs against
// the Collector's Budget: PackageOverhead plus the bytes of its fields.
func CheckPackage(p *inventory.Package) (int64, error) {
	n := int64(PackageOverhead)
	check := func(field, v string, limit int) error {
		if len(v) > limit {
			return &FieldTooLongError{Field: field, Len: len(v), Limit: limit}
		}
		n += int64(len(v))
		return nil
	}
	for _, f := range []struct {
		name, v string
		limit   int
	}{
		{"name", p.Name, MaxNameLen},
		{"version", p.Version, MaxVersionLen},
		{"source name", p.SourceName, MaxNameLen},
		{"source version", p.SourceVersion, MaxVersionLen},
		{"release", p.Release, MaxVersionLen},
		{"architecture", p.Arch, MaxArchLen},
		{"type", p.Type, MaxArchLen},
		{"maintainer", p.Maintainer, MaxFieldLen},
		{"modularity label", p.Modularity, MaxFieldLen},
		{"purl", p.PURL, MaxFieldLen},
	} {
		if err := check(f.name, f.v, f.limit); err != nil {
			return 0, err
		}
	}
	lic := n
	for _, l := range p.Licenses {
		if err := check("licence", l, MaxFieldLen); err != nil {
			return 0, err
		}
	}
	if lic = n - lic; lic > MaxLicensesLen {
		return 0, &FieldTooLongError{Field: "licence list", Len: int(lic), Limit: MaxLicensesLen}
	}
	for _, l := range p.Locations {
		if err := check("location", l.Path, MaxFieldLen); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// keep applies the field caps and the file budget to one parse result, in
// place: it returns the packages kept, what they cost, and a problem for
// the warnings when it skipped any.
func (b Budget) keep(pkgs []inventory.Package) ([]inventory.Package, int64, error) {
	k := keeper{limit: b.fileBytes()}
	out := pkgs[:0]
	for i := range pkgs {
		if k.admit(&pkgs[i]) {
			out = append(out, pkgs[i])
		}
	}
	clear(pkgs[len(out):]) // let the skipped packages' strings go
	if len(out) == 0 {
		out = nil
	}
	return out, k.cost, Partial(k.problems()...)
}

// keeper admits the packages of one file, in order, under the field caps
// and a file budget, and counts those it skips.
type keeper struct {
	limit         int64
	cost          int64 // of the packages admitted
	kept          int
	tooLong, over int
	first         error
}

func (k *keeper) admit(p *inventory.Package) bool {
	n, err := CheckPackage(p)
	switch {
	case err != nil:
		k.tooLong++
		if k.first == nil {
			k.first = err
		}
		return false
	case k.over > 0 || k.cost+n > k.limit:
		k.over++
		return false
	}
	k.cost += n
	k.kept++
	return true
}

func (k *keeper) problems() []error {
	var probs []error
	if k.tooLong > 0 {
		probs = append(probs, &DroppedError{fmt.Sprintf("%d packages skipped as corrupt or hostile: a field longer than any real package has (the first: %v)", k.tooLong, k.first)})
	}
	if k.over > 0 {
		probs = append(probs, &DroppedError{fmt.Sprintf("%d packages skipped: the %d before them already keep %s of names, versions and other fields, more than any real package database (corrupt or hostile input)", k.over, k.kept, size(k.limit))})
	}
	return probs
}

// size writes a byte count for a message: "48 MiB", or "3000 bytes".
func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// DroppedError says that packages a file lists were left out because the
// file is over a limit no real one reaches (field caps, the package-record
// budget). The inventory is then incomplete: see Collector.Incomplete.
type DroppedError struct{ Msg string }

func (e *DroppedError) Error() string { return e.Msg }

// overLimit reports whether err says a file's packages were dropped, in whole
// or in part, because it is over one of the limits for hostile input, as
// opposed to a file that is merely malformed.
func overLimit(err error) bool {
	var tm *TooManyPackagesError
	var tl *TooLargeError
	var d *DroppedError
	return errors.As(err, &tm) || errors.As(err, &tl) || errors.As(err, &d)
}
