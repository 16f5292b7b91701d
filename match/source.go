package match

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
)

// MemorySource is a Source over records held in memory: for tests, the
// osv-scanner comparison, and embedding bulkhead without its database.
type MemorySource struct {
	index map[[2]string][]*osvpb.Vulnerability
	ecos  map[string]bool
}

// NewMemorySource indexes records by every (ecosystem, name) they affect.
// Withdrawn records are kept (vulndb drops them; Match skips them anyway).
func NewMemorySource(recs []*osvpb.Vulnerability) *MemorySource {
	s := &MemorySource{index: map[[2]string][]*osvpb.Vulnerability{}, ecos: map[string]bool{}}
	for _, v := range recs {
		seen := map[[2]string]bool{}
		for _, a := range v.GetAffected() {
			p := a.GetPackage()
			if p == nil {
				continue
			}
			name := p.GetName()
			if p.GetEcosystem() == "PyPI" {
				name = normalizePyPI(name)
			}
			k := [2]string{p.GetEcosystem(), name}
			if !seen[k] {
				seen[k] = true
				s.index[k] = append(s.index[k], v)
				s.ecos[k[0]] = true
			}
		}
	}
	return s
}

// Lookup implements Source.
func (s *MemorySource) Lookup(eco, name string) ([]*osvpb.Vulnerability, error) {
	if eco == "PyPI" {
		name = normalizePyPI(name)
	}
	return s.index[[2]string{eco, name}], nil
}

// Ecosystems implements Source.
func (s *MemorySource) Ecosystems() ([]string, error) {
	out := make([]string, 0, len(s.ecos))
	for e := range s.ecos {
		out = append(out, e)
	}
	sort.Strings(out)
	return out, nil
}

// ParseRecord reads one OSV JSON record. Unknown fields are tolerated (the
// schema grows); malformed JSON is an error naming the file.
func ParseRecord(data []byte, name string) (*osvpb.Vulnerability, error) {
	v := &osvpb.Vulnerability{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("OSV record %s: %w", name, err)
	}
	if v.GetId() == "" {
		return nil, fmt.Errorf("OSV record %s has no id", name)
	}
	return v, nil
}

// LoadRecords reads every *.json OSV record under dir.
func LoadRecords(dir string) ([]*osvpb.Vulnerability, error) {
	var out []*osvpb.Vulnerability
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		v, err := ParseRecord(data, p)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load OSV records from %s: %w", dir, err)
	}
	return out, nil
}
