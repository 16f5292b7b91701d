// Package python reads Python packages: the metadata of installed
// distributions (dist-info METADATA, egg-info PKG-INFO) and the pinned
// dependencies of lockfiles (requirements.txt, poetry.lock, Pipfile.lock,
// uv.lock).
package python

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on hostile input. Real metadata headers are a few kilobytes; old
// (Metadata-Version 1.x) files carry the whole README in a folded
// Description field, which can reach some hundreds of kilobytes.
const (
	// MaxHeader is the most bytes of a metadata file read before its body;
	// a header that does not end by then is cut there.
	MaxHeader = 16 << 20
	// MaxLine is the longest header line kept; longer lines are skipped.
	MaxLine = 1 << 20
)

// Cataloger reads the metadata of installed Python distributions.
type Cataloger struct{}

// New returns the cataloger of installed Python packages.
func New() *Cataloger { return &Cataloger{} }

var (
	_ catalog.Cataloger = (*Cataloger)(nil)
	_ catalog.Scoped    = (*Cataloger)(nil)
)

// Name implements catalog.Cataloger.
func (*Cataloger) Name() string { return "python" }

// Scope implements catalog.Scoped: site-packages are found in images and
// in source trees alike (a checked-in virtualenv).
func (*Cataloger) Scope() catalog.Scope { return catalog.ScopeAll }

// Match implements catalog.Cataloger. It takes what syft's globs take:
// **/*dist-info/METADATA, **/*egg-info/PKG-INFO (and their upper-case
// DIST-INFO, EGG-INFO forms, which eggs use) and **/*.egg-info, the
// single-file form distutils writes.
func (*Cataloger) Match(p string) bool {
	base := path.Base(p)
	switch base {
	case "METADATA":
		dir := path.Base(path.Dir(p))
		return strings.HasSuffix(dir, "dist-info") || strings.HasSuffix(dir, "DIST-INFO")
	case "PKG-INFO":
		dir := path.Base(path.Dir(p))
		return strings.HasSuffix(dir, "egg-info") || strings.HasSuffix(dir, "EGG-INFO")
	}
	return strings.HasSuffix(base, ".egg-info")
}

// Parse implements catalog.Cataloger.
func (*Cataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	p, ok, err := ParseMetadata(in.Reader)
	if err != nil {
		return nil, fmt.Errorf("python metadata %s: %w", in.Path, err)
	}
	if !ok {
		return nil, nil
	}
	return []inventory.Package{p}, nil
}

// Metadata is the part of a core-metadata header bulkhead keeps.
type Metadata struct {
	Name, Version      string
	License            string
	LicenseExpression  string
	LicenseClassifier  []string // "License :: OSI Approved :: MIT License"
	Author, Maintainer string
	AuthorEmail        string
}

// ReadMetadata reads the RFC 822-style header of a core-metadata file
// (PEP 566, 643, 639) up to the first blank line, which starts the body.
// Folded lines (a leading space or tab) continue the previous field.
func ReadMetadata(r io.Reader) (Metadata, error) {
	var m Metadata
	br := bufio.NewReaderSize(io.LimitReader(r, MaxHeader), 4096)
	var key string
	var val strings.Builder
	tooLong := false
	flush := func() {
		if key != "" && !tooLong {
			m.set(key, val.String())
		}
		key, tooLong = "", false
		val.Reset()
	}
	for {
		line, long, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return m, fmt.Errorf("read header: %w", err)
		}
		if len(line) == 0 && err != nil {
			break
		}
		s := strings.TrimRight(string(line), "\r\n")
		switch {
		case s == "":
			if key != "" || m.Name != "" || m.Version != "" {
				flush()
				return m, nil // the body starts here
			}
		case s[0] == ' ' || s[0] == '\t':
			if key != "" && val.Len() < MaxLine {
				val.WriteByte('\n')
				val.WriteString(strings.TrimSpace(s))
			}
		default:
			flush()
			if k, v, ok := strings.Cut(s, ":"); ok {
				key = strings.ToLower(strings.TrimSpace(k))
				val.WriteString(strings.TrimSpace(v))
			}
		}
		// No field bulkhead reads is this long in a real file: drop the
		// value rather than keep a truncated one.
		tooLong = tooLong || long
		if err != nil {
			break
		}
	}
	flush()
	return m, nil
}

// readLine returns one line with its newline. Of a line longer than
// MaxLine it returns the first MaxLine bytes and long, and discards the
// rest. err is io.EOF with the last line when the input ends without a
// newline.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if room := MaxLine - len(line); len(chunk) > room {
			chunk, long = chunk[:room], true
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, long, err
		}
	}
}

func (m *Metadata) set(key, v string) {
	switch key {
	case "name":
		m.Name = v
	case "version":
		m.Version = v
	case "license":
		m.License = v
	case "license-expression":
		m.LicenseExpression = v
	case "classifier":
		if strings.HasPrefix(v, "License ::") && len(m.LicenseClassifier) < 64 {
			m.LicenseClassifier = append(m.LicenseClassifier, v)
		}
	case "author":
		m.Author = v
	case "author-email":
		m.AuthorEmail = v
	case "maintainer":
		m.Maintainer = v
	}
}

// Licenses returns the licences the metadata declares: the SPDX
// License-Expression (PEP 639) when present, else the License field when it
// names a licence rather than holding its text, else the licence
// classifiers.
func (m *Metadata) Licenses() []string {
	if e := strings.TrimSpace(m.LicenseExpression); e != "" {
		return []string{e}
	}
	if l := strings.TrimSpace(m.License); l != "" && !strings.EqualFold(l, "UNKNOWN") && !strings.Contains(l, "\n") && len(l) <= 128 {
		return []string{l}
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range m.LicenseClassifier {
		l := classifierLicense(c)
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// classifierSPDX maps the licence classifiers that name exactly one SPDX
// licence; the others ("BSD License", "Apache Software License") leave the
// version open and are kept as written.
var classifierSPDX = map[string]string{
	"MIT License":                                             "MIT",
	"MIT No Attribution License (MIT-0)":                      "MIT-0",
	"ISC License (ISCL)":                                      "ISC",
	"Mozilla Public License 2.0 (MPL 2.0)":                    "MPL-2.0",
	"GNU General Public License v2 (GPLv2)":                   "GPL-2.0-only",
	"GNU General Public License v2 or later (GPLv2+)":         "GPL-2.0-or-later",
	"GNU General Public License v3 (GPLv3)":                   "GPL-3.0-only",
	"GNU General Public License v3 or later (GPLv3+)":         "GPL-3.0-or-later",
	"GNU Lesser General Public License v2 (LGPLv2)":           "LGPL-2.0-only",
	"GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
	"GNU Lesser General Public License v3 (LGPLv3)":           "LGPL-3.0-only",
	"GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
	"GNU Affero General Public License v3":                    "AGPL-3.0-only",
	"GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
	"Python Software Foundation License":                      "PSF-2.0",
	"The Unlicense (Unlicense)":                               "Unlicense",
	"Boost Software License 1.0 (BSL-1.0)":                    "BSL-1.0",
	"Eclipse Public License 2.0 (EPL-2.0)":                    "EPL-2.0",
	"European Union Public Licence 1.2 (EUPL 1.2)":            "EUPL-1.2",
	"Universal Permissive License (UPL)":                      "UPL-1.0",
	"zlib/libpng License":                                     "Zlib",
	"CC0 1.0 Universal (CC0 1.0) Public Domain Dedication":    "CC0-1.0",
	"Apache Software License 2.0 (Apache-2.0)":                "Apache-2.0",
	"BSD Zero Clause License (0BSD)":                          "0BSD",
}

// classifierLicense turns "License :: OSI Approved :: MIT License" into
// "MIT", and a classifier without an SPDX equivalent into its last part.
func classifierLicense(c string) string {
	parts := strings.Split(c, "::")
	last := strings.TrimSpace(parts[len(parts)-1])
	if len(parts) < 2 || last == "" || last == "OSI Approved" {
		return ""
	}
	if id, ok := classifierSPDX[last]; ok {
		return id
	}
	return last
}

// ParseMetadata reads one installed distribution's metadata. ok is false
// for a header without a name or a version, and for the interpreter's own
// Python-X.Y.egg-info, which describes CPython rather than a package.
func ParseMetadata(r io.Reader) (p inventory.Package, ok bool, err error) {
	m, err := ReadMetadata(r)
	if err != nil {
		return p, false, err
	}
	name, version := strings.TrimSpace(m.Name), strings.TrimSpace(m.Version)
	if !validName(name) || version == "" || strings.ContainsAny(version, " \t\n") || name == "Python" {
		return p, false, nil
	}
	p = newPackage(name, version)
	p.Licenses = m.Licenses()
	switch {
	case m.Author != "" && !strings.EqualFold(m.Author, "UNKNOWN"):
		p.Maintainer = firstLine(m.Author)
	case m.AuthorEmail != "" && !strings.EqualFold(m.AuthorEmail, "UNKNOWN"):
		p.Maintainer = firstLine(m.AuthorEmail)
	case m.Maintainer != "" && !strings.EqualFold(m.Maintainer, "UNKNOWN"):
		p.Maintainer = firstLine(m.Maintainer)
	}
	return p, true, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.TrimSpace(s)
}

// validNamePattern is PEP 508's distribution name.
var validNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?i:[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`) })

func validName(n string) bool { return len(n) <= 256 && validNamePattern().MatchString(n) }

var separatorRuns = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[-_.]+`) })

// NormalizeName is PEP 503's normalised project name: lower case, with
// every run of -, _ and . replaced by one -. PyPI and the purl spec key
// packages by it.
func NormalizeName(name string) string {
	return strings.ToLower(separatorRuns().ReplaceAllString(name, "-"))
}

// PURL returns pkg:pypi/<normalised name>@version.
func PURL(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(name), version, nil, "").ToString()
}

// newPackage keeps the name as the distribution spells it (what pip and
// importlib.metadata show); the purl carries the normalised form.
func newPackage(name, version string) inventory.Package {
	return inventory.Package{Name: name, Version: version, Type: inventory.TypePyPI, PURL: PURL(name, version)}
}
