package sbom

import (
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

// LicenseKind says how an SBOM format must carry a licence string.
type LicenseKind int

const (
	// LicenseNone is an empty string, NONE or NOASSERTION: nothing to record.
	LicenseNone LicenseKind = iota
	// LicenseID is one identifier from the SPDX licence list ("MIT",
	// "GPL-2.0-only", or a deprecated one such as "GPL-2.0").
	LicenseID
	// LicenseExpression is a valid SPDX expression that is more than one
	// listed identifier ("GPL-2.0-or-later AND BSD-3-Clause",
	// "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-foo").
	LicenseExpression
	// LicenseName is free text that is not an SPDX expression ("GPLv2+",
	// "MIT/X11", "Public-Domain"): packagers write these all the time.
	LicenseName
)

// License is a classified licence string.
type License struct {
	Kind LicenseKind
	// Text is the normalised identifier or expression (case as the SPDX
	// list writes it) for LicenseID and LicenseExpression, and the trimmed
	// original for LicenseName.
	Text string
}

// maxExpression bounds the licence strings parsed as SPDX expressions.
// Real ones are short (Fedora's longest rpm License tags are a few hundred
// bytes); a longer string from a hostile package database is kept as text
// rather than parsed.
const maxExpression = 4096

// ParseLicense classifies one licence string as packagers write it.
func ParseLicense(s string) License {
	s = strings.TrimSpace(s)
	switch s {
	case "", "NONE", "NOASSERTION":
		return License{Kind: LicenseNone}
	}
	if len(s) > maxExpression {
		return License{Kind: LicenseName, Text: s}
	}
	norm, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{s}, spdxexp.ValidateLicensesOptions{})
	if len(invalid) > 0 || len(norm) != 1 {
		return License{Kind: LicenseName, Text: s}
	}
	n := norm[0]
	if ok, id := spdxlicenses.IsActiveLicense(n); ok {
		return License{Kind: LicenseID, Text: id}
	}
	if ok, id := spdxlicenses.IsDeprecatedLicense(n); ok {
		return License{Kind: LicenseID, Text: id}
	}
	return License{Kind: LicenseExpression, Text: n}
}

// LicenseCache memoises ParseLicense: an image has thousands of packages but
// a few dozen distinct licence strings, and parsing is the costly part of
// encoding.
type LicenseCache map[string]License

// Parse is ParseLicense, cached.
func (c LicenseCache) Parse(s string) License {
	if l, ok := c[s]; ok {
		return l
	}
	l := ParseLicense(s)
	c[s] = l
	return l
}

// JoinAnd combines expressions that all apply into one expression, wrapping
// compound terms in parentheses so the result parses as intended.
func JoinAnd(exprs []string) string {
	if len(exprs) == 1 {
		return exprs[0]
	}
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		if hasTopLevelOperator(e) {
			e = "(" + e + ")"
		}
		parts[i] = e
	}
	return strings.Join(parts, " AND ")
}

// SplitAnd splits an expression into the terms joined by AND: the licences
// that all apply, which is how the inventory lists them. AND is
// associative, so parenthesised conjunctions are flattened too:
// "(MIT OR Apache-2.0) AND (Zlib AND BSD-3-Clause)" gives
// "MIT OR Apache-2.0", "Zlib" and "BSD-3-Clause".
func SplitAnd(expr string) []string {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil
	}
	if len(expr) > maxExpression {
		return []string{expr}
	}
	expr = trimParens(expr)
	if hasTopLevel(expr, " OR ") {
		// AND binds tighter than OR: "A OR B AND C" is one alternative.
		return []string{expr}
	}
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ':
			if depth == 0 && strings.HasPrefix(expr[i:], " AND ") {
				out = append(out, trimParens(strings.TrimSpace(expr[start:i])))
				start = i + len(" AND ")
				i = start - 1
			}
		}
	}
	out = append(out, trimParens(strings.TrimSpace(expr[start:])))
	if len(out) == 1 {
		return out
	}
	flat := make([]string, 0, len(out))
	for _, t := range out {
		flat = append(flat, SplitAnd(t)...)
	}
	return flat
}

// trimParens removes parentheses that wrap the whole expression.
func trimParens(s string) string {
	for len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' && closesAtEnd(s) {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// closesAtEnd reports whether the parenthesis opening s closes at its last
// byte (so "(A) AND (B)" is not wrapped as a whole).
func closesAtEnd(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i == len(s)-1
			}
		}
	}
	return false
}

func hasTopLevelOperator(s string) bool {
	return hasTopLevel(s, " AND ") || hasTopLevel(s, " OR ")
}

// hasTopLevel reports whether op occurs in s outside parentheses.
func hasTopLevel(s, op string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ':
			if depth == 0 && strings.HasPrefix(s[i:], op) {
				return true
			}
		}
	}
	return false
}
