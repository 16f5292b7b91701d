package rules

import "strings"

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// containsFold reports whether s contains the already-lowercased needle,
// ignoring ASCII case, without allocating.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	first := needle[0]
	for i := 0; i+n <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < n && lowerASCII(s[i+j]) == needle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// globMatch is fnmatch(3) without FNM_PATHNAME, which is what libsinsp uses
// for glob: '*' also matches '/'. With fold, pattern must be lowercased and
// s is compared case-insensitively (iglob).
func globMatch(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	// Backtracking points for the most recent '*'.
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '[':
				if ok, next, valid := matchClass(pattern, px, s[sx], fold); valid {
					if ok {
						px = next
						sx++
						continue
					}
				} else if s[sx] == '[' { // an unterminated '[' is literal
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(pattern) {
					if eqByte(pattern[px+1], s[sx], fold) {
						px += 2
						sx++
						continue
					}
					break
				}
				fallthrough
			default:
				if eqByte(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			}
		}
		if starP >= 0 {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

func eqByte(p, c byte, fold bool) bool {
	if fold {
		return p == lowerASCII(c)
	}
	return p == c
}

// matchClass matches c against the bracket expression at pattern[px]. It
// returns whether it matched, the index after the expression, and whether
// the expression was well formed.
func matchClass(pattern string, px int, c byte, fold bool) (bool, int, bool) {
	i := px + 1
	negate := false
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		negate = true
		i++
	}
	if fold {
		c = lowerASCII(c)
	}
	matched := false
	first := true
	for i < len(pattern) {
		lo := pattern[i]
		if lo == ']' && !first {
			return matched != negate, i + 1, true
		}
		first = false
		if lo == '\\' && i+1 < len(pattern) {
			i++
			lo = pattern[i]
		}
		hi := lo
		if i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']' {
			hi = pattern[i+2]
			if hi == '\\' && i+3 < len(pattern) {
				i++
				hi = pattern[i+2]
			}
			i += 2
		}
		if lo <= c && c <= hi {
			matched = true
		}
		i++
	}
	return false, 0, false
}

// pathMatcher implements pmatch: a value matches when one of the paths is
// itself or one of its ancestor directories, compared component-wise.
type pathMatcher struct{ prefixes []string }

func newPathMatcher(vals []string) *pathMatcher {
	pm := &pathMatcher{}
	for _, v := range vals {
		pm.prefixes = append(pm.prefixes, strings.TrimRight(v, "/"))
	}
	return pm
}

func (pm *pathMatcher) match(s string) bool {
	for _, p := range pm.prefixes {
		if pathPrefix(p, s) {
			return true
		}
	}
	return false
}

func pathPrefix(p, s string) bool {
	p = strings.TrimRight(p, "/")
	if p == "" { // "/" contains every absolute path
		return strings.HasPrefix(s, "/")
	}
	return s == p || (len(s) > len(p) && s[len(p)] == '/' && s[:len(p)] == p)
}
