package vulndb

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
)

// MaxRecordSize bounds one OSV JSON record. The largest real records (kernel
// and distro advisories with enumerated versions) are a few MB; anything past
// this is not an OSV record and would only cost memory.
const MaxRecordSize = 32 << 20

// unmarshal discards fields the bindings do not know: OSV adds optional
// fields over time (schema 1.x is additive) and an old bulkhead must still
// read a new record rather than reject it.
var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// ParseRecord parses one OSV JSON record into the osv-schema protobuf type.
// It rejects records without an id, since nothing can be stored or reported
// without one.
func ParseRecord(data []byte) (*osvschema.Vulnerability, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("OSV record is %d bytes, over the %d-byte limit", len(data), MaxRecordSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from Windows editors
	v := &osvschema.Vulnerability{}
	if err := unmarshal.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("parse OSV record: %w", err)
	}
	if err := checkRecord(v); err != nil {
		return nil, err
	}
	return v, nil
}

var errNoID = errors.New("OSV record has no id")

// idPattern is deliberately loose (OSV only says <DB>-<ENTRYID>), but it
// keeps ids usable as file names and bucket keys: no separators, no control
// characters.
var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$`) })

func checkRecord(v *osvschema.Vulnerability) error {
	if v.GetId() == "" {
		return errNoID
	}
	if !idPattern().MatchString(v.GetId()) {
		return fmt.Errorf("OSV record id %.80q (%d bytes) is not a valid identifier", v.GetId(), len(v.GetId()))
	}
	for _, a := range v.GetAffected() {
		eco, name := a.GetPackage().GetEcosystem(), a.GetPackage().GetName()
		switch {
		case strings.ContainsRune(eco, 0) || strings.ContainsRune(name, 0):
			return fmt.Errorf("OSV record %s: NUL byte in an affected package", v.GetId())
		case len(eco) > MaxEcosystemLen:
			return fmt.Errorf("OSV record %s: affected ecosystem %.40q... is %d bytes, over the %d-byte limit", v.GetId(), eco, len(eco), MaxEcosystemLen)
		case len(name) > MaxNameLen:
			return fmt.Errorf("OSV record %s: affected package name %.40q... is %d bytes, over the %d-byte limit", v.GetId(), name, len(name), MaxNameLen)
		}
	}
	return nil
}

// Withdrawn reports whether the record has been withdrawn by its source.
// Withdrawn records stay in the store (so a later update can see them) but
// are never returned by Lookup.
func Withdrawn(v *osvschema.Vulnerability) bool { return v.GetWithdrawn() != nil }

// NormalizeName returns the form of a package name used as the lookup key.
// It folds only where the ecosystem itself treats names as equal and OSV
// tooling does the same:
//   - PyPI: PEP 503 (lower case, runs of "-", "_" and "." become "-"),
//     as osv.dev does for its queries;
//   - every other ecosystem compares exactly (Go module paths, npm, crates.io,
//     Maven group:artifact, distro source/binary package names).
func NormalizeName(ecosystem, name string) string {
	if baseEcosystem(ecosystem) == "PyPI" {
		return pep503(name)
	}
	return name
}

func pep503(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			sep = true
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteByte(c)
	}
	return b.String()
}

// baseEcosystem strips the release suffix: "Debian:12" -> "Debian".
func baseEcosystem(ecosystem string) string {
	if i := strings.IndexByte(ecosystem, ':'); i >= 0 {
		return ecosystem[:i]
	}
	return ecosystem
}

// indexKeys lists the (ecosystem, normalized name) keys a record is found
// under; a withdrawn record has none.
func indexKeys(v *osvschema.Vulnerability) []string {
	if Withdrawn(v) {
		return nil
	}
	seen := map[string]bool{}
	var keys []string
	for _, a := range v.GetAffected() {
		eco, name := a.GetPackage().GetEcosystem(), a.GetPackage().GetName()
		if eco == "" || name == "" {
			continue // GIT-only affected entries name a repository, not a package
		}
		k := indexKey(eco, NormalizeName(eco, name))
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func indexKey(ecosystem, name string) string { return ecosystem + "\x00" + name }

func splitIndexKey(k []byte) (ecosystem, name string) {
	e, n, _ := bytes.Cut(k, []byte{0})
	return string(e), string(n)
}
