// Package version compares package versions the way each ecosystem does.
//
// It is a thin layer over github.com/google/osv-scalibr/semantic — the
// comparators osv-scanner itself uses — so that bulkhead's matching agrees
// with osv-scanner by construction. The layer adds what a scanner of
// untrusted images needs: ecosystem names with release suffixes
// ("Debian:12"), errors instead of panics for any input, a bound on the
// length of a version string, and the corrections listed in Fixes where a
// comparator disagrees with its ecosystem's published vectors.
package version

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// MaxLen bounds a version string. Real versions are short; the semantic
// parsers allocate per component, so a hostile multi-megabyte "version" in a
// package database must not reach them.
const MaxLen = 256

// ErrUnsupported is returned for an ecosystem with no known comparator.
var ErrUnsupported = errors.New("no version comparator for ecosystem")

// Version is one parsed version of one ecosystem.
type Version struct {
	eco string
	raw string
	v   semantic.Version
}

// String returns the version as written.
func (v Version) String() string { return v.raw }

// Parse reads s as a version of the OSV ecosystem eco ("Debian:12", "PyPI").
func Parse(eco, s string) (v Version, err error) {
	if len(s) > MaxLen {
		return Version{}, fmt.Errorf("version %.40q... is %d bytes long (limit %d)", s, len(s), MaxLen)
	}
	base, _, _ := strings.Cut(eco, ":")
	defer func() {
		// The semantic parsers are not written for hostile input; a panic
		// there must become an error for this one package, not end the scan.
		if r := recover(); r != nil {
			v, err = Version{}, fmt.Errorf("parse %s version %q: %v", base, s, r)
		}
	}()
	sv, err := semantic.Parse(s, base)
	if err != nil {
		if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			return Version{}, fmt.Errorf("%w %q", ErrUnsupported, base)
		}
		return Version{}, fmt.Errorf("parse %s version %q: %w", base, s, err)
	}
	return Version{eco: base, raw: s, v: sv}, nil
}

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than
// the version string other of the same ecosystem.
func (v Version) Compare(other string) (c int, err error) {
	if v.v == nil {
		return 0, errors.New("compare: zero Version")
	}
	if len(other) > MaxLen {
		return 0, fmt.Errorf("version %.40q... is %d bytes long (limit %d)", other, len(other), MaxLen)
	}
	if c, ok := fix(v.eco, v.raw, other); ok {
		return c, nil
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = 0, fmt.Errorf("compare %s versions %q and %q: %v", v.eco, v.raw, other, r)
		}
	}()
	c, err = v.v.CompareStr(other)
	if err != nil {
		return 0, fmt.Errorf("compare %s versions %q and %q: %w", v.eco, v.raw, other, err)
	}
	return sign(c), nil
}

// Compare compares two version strings of the ecosystem eco.
func Compare(eco, a, b string) (int, error) {
	v, err := Parse(eco, a)
	if err != nil {
		return 0, err
	}
	return v.Compare(b)
}

// Supported reports whether eco (with or without a release suffix) has a
// comparator.
func Supported(eco string) bool {
	_, err := Parse(eco, "0")
	return !errors.Is(err, ErrUnsupported)
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// CompareTo compares two parsed versions of the same ecosystem; it saves
// re-parsing when one side is compared many times.
func (v Version) CompareTo(w Version) (c int, err error) {
	if v.v == nil || w.v == nil {
		return 0, errors.New("compare: zero Version")
	}
	if c, ok := fix(v.eco, v.raw, w.raw); ok {
		return c, nil
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = 0, fmt.Errorf("compare %s versions %q and %q: %v", v.eco, v.raw, w.raw, r)
		}
	}()
	c, err = v.v.Compare(w.v)
	if err != nil {
		return 0, fmt.Errorf("compare %s versions %q and %q: %w", v.eco, v.raw, w.raw, err)
	}
	return sign(c), nil
}
