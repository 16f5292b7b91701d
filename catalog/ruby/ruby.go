// Package ruby reads Ruby gems: the gemspecs RubyGems writes for every
// installed gem (specifications/*.gemspec, in images) and Bundler's
// Gemfile.lock (in source trees).
package ruby

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on hostile input.
const (
	// MaxGemspecSize is the largest gemspec read. RubyGems writes some
	// kilobytes; a long "files" list reaches some hundreds.
	MaxGemspecSize = 8 << 20
	// MaxLockSize is the largest Gemfile.lock read; big applications have
	// some tens of kilobytes.
	MaxLockSize = 64 << 20
	// MaxLine is the longest line read; longer lines (a gemspec's list of
	// files) are skipped.
	MaxLine = 64 << 10
	// MaxPackages is the most gems read from one Gemfile.lock: the limit
	// shared by the catalogers of package databases.
	MaxPackages = catalog.DefaultMaxPackages
)

// maxPackages is the limit in force: catalog.MaxPackagesOr(0) (MaxPackages,
// or BULKHEAD_MAX_PACKAGES), lowered by tests.
var maxPackages = catalog.MaxPackagesOr(0)

// Gemspecs reads installed gems' specifications.
type Gemspecs struct{}

// New returns the cataloger of installed gems.
func New() *Gemspecs { return &Gemspecs{} }

var (
	_ catalog.Cataloger = (*Gemspecs)(nil)
	_ catalog.Scoped    = (*Gemspecs)(nil)
)

// Name implements catalog.Cataloger.
func (*Gemspecs) Name() string { return "gem" }

// Scope implements catalog.Scoped. A source tree's *.gemspec is the
// project's own, hand-written Ruby; its Gemfile.lock says more.
func (*Gemspecs) Scope() catalog.Scope { return catalog.ScopeImage }

// Match implements catalog.Cataloger: **/specifications/**/*.gemspec, as
// syft reads. RubyGems keeps them in GEM_HOME/specifications (default gems
// in specifications/default); Debian in
// usr/share/rubygems-integration/all/specifications and
// usr/lib/<triplet>/rubygems-integration/<ruby>/specifications.
func (*Gemspecs) Match(path string) bool {
	if !strings.HasSuffix(path, ".gemspec") {
		return false
	}
	return strings.HasPrefix(path, "specifications/") || strings.Contains(path, "/specifications/")
}

// Parse implements catalog.Cataloger.
func (*Gemspecs) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	if in.Size > MaxGemspecSize {
		return nil, fmt.Errorf("gemspec %s: %d bytes, more than the %d a gem specification can sensibly have", in.Path, in.Size, MaxGemspecSize)
	}
	p, ok, err := ParseGemspec(in.Reader)
	if err != nil {
		return nil, fmt.Errorf("gemspec %s: %w", in.Path, err)
	}
	if !ok {
		return nil, nil
	}
	return []inventory.Package{p}, nil
}

// ParseGemspec reads the Ruby RubyGems writes for an installed gem
// (Gem::Specification#to_ruby):
//
//	# stub: rack 2.2.22 ruby lib
//	Gem::Specification.new do |s|
//	  s.name = "rack".freeze
//	  s.version = "2.2.22"
//	  s.licenses = ["MIT".freeze]
//
// It does not run Ruby: it reads the literal assignments of name, version,
// platform and licence(s), in the quoting forms RubyGems has written over
// the years ("x", "x".freeze, %q{x}, Gem::Version.new("x")), and falls
// back to the "# stub:" line. ok is false when neither names the gem.
func ParseGemspec(r io.Reader) (pkg inventory.Package, ok bool, err error) {
	var (
		name, version, platform string
		lic                     []string
		stub                    []string
	)
	err = eachLine(r, MaxGemspecSize, func(line string) {
		t := strings.TrimSpace(line)
		if rest, isStub := strings.CutPrefix(t, "# stub: "); isStub && stub == nil {
			stub = strings.Fields(rest)
			return
		}
		attr, value, isAssign := assignment(t)
		if !isAssign {
			return
		}
		switch attr {
		case "name":
			if name == "" {
				name, _ = rubyString(value)
			}
		case "version":
			if version == "" {
				version = rubyVersion(value)
			}
		case "platform":
			if platform == "" {
				platform, _ = rubyString(value)
			}
		case "license":
			if lic == nil {
				if s, ok := rubyString(value); ok && s != "" {
					lic = []string{s}
				}
			}
		case "licenses":
			if lic == nil {
				lic = rubyStringArray(value)
			}
		}
	})
	if err != nil {
		return pkg, false, err
	}
	if len(stub) >= 2 {
		if name == "" {
			name = stub[0]
		}
		if version == "" {
			version = stub[1]
		}
		if platform == "" && len(stub) >= 3 {
			platform = stub[2]
		}
	}
	if !validName(name) || !validVersion(version) {
		return pkg, false, nil
	}
	pkg = newPackage(name, version, platform)
	pkg.Licenses = lic
	return pkg, true, nil
}

// assignment splits "s.attr = value" (any receiver name).
func assignment(t string) (attr, value string, ok bool) {
	dot := strings.IndexByte(t, '.')
	eq := strings.IndexByte(t, '=')
	if dot <= 0 || eq < dot || !isIdent(t[:dot]) {
		return "", "", false
	}
	attr = strings.TrimSpace(t[dot+1 : eq])
	if !isIdent(attr) || strings.HasPrefix(t[eq:], "==") {
		return "", "", false
	}
	return attr, strings.TrimSpace(t[eq+1:]), true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// rubyVersion reads "1.2", "1.2".freeze or Gem::Version.new("1.2").
func rubyVersion(v string) string {
	if rest, ok := strings.CutPrefix(v, "Gem::Version.new("); ok {
		v = rest
	}
	s, _ := rubyString(v)
	return s
}

// rubyString reads the string literal at the start of v: "..." with
// backslash escapes, '...', or %q/%Q with any of RubyGems' delimiters.
// It returns the value and whether v began with a literal.
func rubyString(v string) (string, bool) {
	s, _, ok := readString(v)
	return s, ok
}

// readString returns the literal at the start of v and the text after it
// (after any .freeze).
func readString(v string) (val, rest string, ok bool) {
	if v == "" {
		return "", "", false
	}
	var b strings.Builder
	switch {
	case v[0] == '"' || v[0] == '\'':
		q := v[0]
		i := 1
		for ; i < len(v) && v[i] != q; i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v) {
				i++
				c = v[i]
				if q == '"' {
					switch c {
					case 'n':
						c = '\n'
					case 't':
						c = '\t'
					case 'u':
						// \uXXXX: RubyGems escapes non-ASCII this way.
						if i+4 < len(v) {
							if n, err := strconv.ParseUint(v[i+1:i+5], 16, 32); err == nil {
								b.WriteRune(rune(n))
								i += 4
								continue
							}
						}
					}
				} else if c != '\'' && c != '\\' {
					b.WriteByte('\\')
				}
			}
			b.WriteByte(c)
		}
		if i >= len(v) {
			return "", "", false // unterminated
		}
		rest = v[i+1:]
	case len(v) >= 3 && v[0] == '%' && (v[1] == 'q' || v[1] == 'Q'):
		open := v[2]
		closer, ok := map[byte]byte{'{': '}', '<': '>', '(': ')', '[': ']', '|': '|', '!': '!', '/': '/'}[open]
		if !ok {
			return "", "", false
		}
		j := strings.IndexByte(v[3:], closer)
		if j < 0 {
			return "", "", false
		}
		b.WriteString(v[3 : 3+j])
		rest = v[3+j+1:]
	default:
		return "", "", false
	}
	rest = strings.TrimPrefix(rest, ".freeze")
	return b.String(), rest, true
}

// rubyStringArray reads ["MIT".freeze, "Ruby".freeze] or a single string.
func rubyStringArray(v string) []string {
	if !strings.HasPrefix(v, "[") {
		if s, ok := rubyString(v); ok && s != "" {
			return []string{s}
		}
		return nil
	}
	v = strings.TrimSpace(v[1:])
	var out []string
	for v != "" && v[0] != ']' {
		s, rest, ok := readString(v)
		if !ok {
			break
		}
		if s != "" {
			out = append(out, s)
		}
		v = strings.TrimLeft(strings.TrimSpace(rest), ",")
		v = strings.TrimSpace(v)
	}
	return out
}

// validName accepts the names RubyGems allows: letters, digits, . _ -.
func validName(n string) bool {
	if n == "" || len(n) > 256 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '.' || c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validVersion(v string) bool {
	if v == "" || len(v) > 256 || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// newPackage returns a gem with its purl. Platform gems (nokogiri built for
// x86_64-linux) carry the platform as Arch and as the purl's platform
// qualifier; "ruby" is the pure-Ruby platform and is left out.
func newPackage(name, version, platform string) inventory.Package {
	if platform == "ruby" || !validVersion(platform) {
		platform = ""
	}
	var q packageurl.Qualifiers
	if platform != "" {
		q = packageurl.QualifiersFromMap(map[string]string{"platform": platform})
	}
	return inventory.Package{
		Name:    name,
		Version: version,
		Type:    inventory.TypeGem,
		Arch:    platform,
		PURL:    packageurl.NewPackageURL(packageurl.TypeGem, "", name, version, q, "").ToString(),
	}
}

// eachLine calls fn for every line of r, skipping lines longer than
// MaxLine; it fails past limit bytes.
func eachLine(r io.Reader, limit int64, fn func(string)) error {
	br := bufio.NewReaderSize(catalog.LimitReader(r, limit), MaxLine)
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			long = true
			continue
		case long:
			long = false // the tail of a skipped long line
		default:
			if len(chunk) > 0 {
				fn(string(bytes.TrimRight(chunk, "\r\n")))
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
}
