package match

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image/imageref"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// maxVEXFile bounds one VEX document.
const maxVEXFile = 32 << 20

// VEXDocument is one loaded OpenVEX document.
type VEXDocument struct {
	Path string
	Doc  *vex.VEX
}

// LoadVEX reads an OpenVEX document (JSON, any published context version).
func LoadVEX(path string) (*VEXDocument, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read VEX document: %w", err)
	}
	if st.Size() > maxVEXFile {
		return nil, fmt.Errorf("VEX document %s is %d bytes; the limit is %d", path, st.Size(), maxVEXFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read VEX document: %w", err)
	}
	if !isOpenVEX(data) {
		return nil, notOpenVEX(path, data)
	}
	// vex.Open understands the legacy context versions too.
	doc, err := vex.Open(path)
	if err != nil {
		return nil, fmt.Errorf("VEX document %s: %w", path, err)
	}
	return checkVEX(&VEXDocument{Path: path, Doc: doc})
}

// ParseVEX reads an OpenVEX document in the current (v0.2.0) format.
func ParseVEX(data []byte, path string) (*VEXDocument, error) {
	if len(data) > maxVEXFile {
		return nil, fmt.Errorf("VEX document %s is %d bytes; the limit is %d", path, len(data), maxVEXFile)
	}
	if !isOpenVEX(data) {
		return nil, notOpenVEX(path, data)
	}
	doc, err := vex.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("VEX document %s: %w", path, err)
	}
	return checkVEX(&VEXDocument{Path: path, Doc: doc})
}

func isOpenVEX(data []byte) bool {
	var head struct {
		Context string `json:"@context"`
	}
	return json.Unmarshal(data, &head) == nil && strings.HasPrefix(head.Context, "https://openvex.dev/ns")
}

func notOpenVEX(path string, data []byte) error {
	if bytes.Contains(data, []byte(`"csaf_version"`)) {
		return fmt.Errorf("%s is a CSAF document; --vex takes OpenVEX (convert it with `vexctl` first)", path)
	}
	return fmt.Errorf("%s is not an OpenVEX document (no \"@context\": \"https://openvex.dev/ns/...\")", path)
}

func checkVEX(d *VEXDocument) (*VEXDocument, error) {
	for i, s := range d.Doc.Statements {
		if s.Vulnerability.Name == "" && s.Vulnerability.ID == "" {
			return nil, fmt.Errorf("VEX document %s: statement %d names no vulnerability", d.Path, i+1)
		}
		switch s.Status {
		case vex.StatusNotAffected, vex.StatusAffected, vex.StatusFixed, vex.StatusUnderInvestigation:
		default:
			return nil, fmt.Errorf("VEX document %s: statement %d has unknown status %q", d.Path, i+1, s.Status)
		}
	}
	return d, nil
}

// ImageIdentifiers lists the identifiers a VEX statement's product may use
// for the scanned image: its digest, its references, and an OCI purl. A
// registry (or daemon) reference is given in canonical form (package
// imageref: index.docker.io/library/nginx for nginx), so that the spelling
// of the scanned reference does not change which statements apply.
func ImageIdentifiers(t *inventory.Target) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			ids = append(ids, s)
		}
	}
	add(t.Digest)
	add(t.ID)
	purls := func(repo string) {
		if t.Digest == "" {
			return
		}
		name := repo
		if i := strings.LastIndex(name, "/"); i >= 0 {
			name = name[i+1:]
		}
		if name != "" {
			base := "pkg:oci/" + strings.ToLower(name) + "@" + url.PathEscape(t.Digest)
			add(base)
			add(base + "?repository_url=" + url.QueryEscape(strings.ToLower(repo)))
		}
	}
	switch t.Source {
	case "registry", "daemon", "":
		for _, n := range append([]string{t.Name}, t.RepoDigests...) {
			r, err := imageref.Parse(n)
			if err != nil {
				add(n)
				continue
			}
			add(r.String())
			if t.Digest != "" {
				add(r.Repo() + "@" + t.Digest)
			}
			purls(r.Repo())
		}
		return ids
	}
	// An archive, layout or directory: its name as given.
	add(t.Name)
	for _, r := range t.RepoDigests {
		add(r)
	}
	repo := t.Name
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	purls(repo)
	return ids
}

// canonicalProduct is a VEX product with its image identifiers in the
// canonical form ImageIdentifiers uses: an image reference canonicalised,
// an OCI purl's repository_url canonicalised. Other identifiers (package
// purls, CPEs, names) are unchanged.
func canonicalProduct(c vex.Component) vex.Component {
	out := c
	out.ID = canonicalProductID(c.ID)
	if len(c.Identifiers) > 0 {
		out.Identifiers = make(map[vex.IdentifierType]string, len(c.Identifiers))
		for k, v := range c.Identifiers {
			out.Identifiers[k] = canonicalProductID(v)
		}
	}
	return out
}

func canonicalProductID(id string) string {
	if strings.HasPrefix(id, "pkg:oci/") {
		p, err := packageurl.FromString(id)
		if err != nil {
			return id
		}
		q := p.Qualifiers.Map()
		if ru, ok := q["repository_url"]; ok {
			if r, err := imageref.Parse(ru); err == nil {
				q["repository_url"] = r.Repo()
				p.Qualifiers = packageurl.QualifiersFromMap(q)
			}
		}
		return p.ToString()
	}
	if strings.HasPrefix(id, "pkg:") || !strings.ContainsAny(id, "/:@") {
		return id
	}
	if r, err := imageref.Parse(id); err == nil {
		return r.String()
	}
	return id
}

// ApplyVEX marks findings covered by the documents' statements. For each
// finding, the statements that name its id or an alias and whose product
// is the package's purl, or the image with the package's purl as a
// subcomponent (or no subcomponents), are ordered by time; the latest
// decides. not_affected and fixed suppress (justification and impact
// statement kept); affected and under_investigation do not.
func ApplyVEX(fs []finding.Finding, docs []*VEXDocument, image []string) {
	canon := map[*vex.Component]vex.Component{} // products in canonical form, by statement product
	for i := range fs {
		f := &fs[i]
		if f.Suppressed != nil || f.Package == nil {
			continue
		}
		type cand struct {
			s    vex.Statement
			t    time.Time
			path string
		}
		var cands []cand
		ids := append([]string{f.ID}, f.Aliases...)
		for _, d := range docs {
			if d == nil || d.Doc == nil {
				continue
			}
			for _, s := range d.Doc.Statements {
				if !vulnMatches(&s, ids) || !productMatches(&s, f.Package.PURL, image, canon) {
					continue
				}
				t := time.Time{}
				if s.Timestamp != nil {
					t = *s.Timestamp
				} else if d.Doc.Timestamp != nil {
					t = *d.Doc.Timestamp
				}
				if s.LastUpdated != nil && s.LastUpdated.After(t) {
					t = *s.LastUpdated
				}
				cands = append(cands, cand{s, t, d.Path})
			}
		}
		if len(cands) == 0 {
			continue
		}
		sort.SliceStable(cands, func(a, b int) bool { return cands[a].t.Before(cands[b].t) })
		last := cands[len(cands)-1]
		if last.s.Status != vex.StatusNotAffected && last.s.Status != vex.StatusFixed {
			continue
		}
		f.Suppressed = &finding.Suppression{
			Kind:          "vex",
			Status:        string(last.s.Status),
			Justification: string(last.s.Justification),
			Statement:     firstNonEmpty(last.s.ImpactStatement, last.s.StatusNotes),
			Source:        last.path,
		}
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func vulnMatches(s *vex.Statement, ids []string) bool {
	for _, id := range ids {
		if s.Vulnerability.Matches(id) {
			return true
		}
		for _, a := range s.Vulnerability.Aliases {
			if strings.EqualFold(string(a), id) {
				return true
			}
		}
		if strings.EqualFold(string(s.Vulnerability.Name), id) {
			return true
		}
	}
	return false
}

func productMatches(s *vex.Statement, purl string, image []string, canon map[*vex.Component]vex.Component) bool {
	for i := range s.Products {
		p := &s.Products[i]
		// The package itself is the product.
		if purl != "" && p.Component.Matches(purl) {
			return true
		}
		// The image is the product; the package a subcomponent of it.
		if len(image) == 0 {
			continue
		}
		product, ok := canon[&p.Component]
		if !ok {
			product = canonicalProduct(p.Component)
			canon[&p.Component] = product
		}
		for _, img := range image {
			if !product.Matches(img) {
				continue
			}
			if len(p.Subcomponents) == 0 {
				return true
			}
			for _, sc := range p.Subcomponents {
				if purl != "" && sc.Matches(purl) {
					return true
				}
			}
		}
	}
	return false
}
