package catalog

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
