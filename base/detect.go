package base

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// OCI annotations a build may leave on an image's manifest to name its base.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// How a base was decided.
const (
	MethodAnnotation = "annotation"
	MethodLayers     = "layers"
	MethodNone       = "none"
)

// Detection says which catalog entry an image was built from, and how that
// was decided.
type Detection struct {
	Method string `json:"method"`
	// Base is the entry decided on; nil when the base is not in the catalog.
	Base *Entry `json:"-"`
	// BaseRef names it (empty when none).
	BaseRef string `json:"base,omitempty"`
	// Aliases are other entries with the very same layers (alpine:3.20 and
	// alpine:latest indexed from one build).
	Aliases []string `json:"aliases,omitempty"`
	// Layers is how many of the image's layers the base accounts for.
	Layers int `json:"baseLayers"`
	// Of is the image's layer count.
	Of int `json:"imageLayers"`
	// AnnotationName and AnnotationDigest are the image's base annotations,
	// when it has them.
	AnnotationName   string `json:"annotationName,omitempty"`
	AnnotationDigest string `json:"annotationDigest,omitempty"`
	// Reason says in words how the decision was made, or why there is none.
	Reason string `json:"reason"`
}

// Detect decides the base of an image from its layer diffIDs and manifest
// annotations. The annotations win when they name a catalog entry (by
// digest, else by name); otherwise the entry whose layers are the longest
// prefix of the image's layers is the base. An image whose base is not in
// the catalog gets MethodNone and a reason, never a guess.
func Detect(c *Catalog, diffIDs []string, annotations map[string]string) Detection {
	d := Detection{Method: MethodNone, Of: len(diffIDs)}
	d.AnnotationName = annotations[AnnotationBaseName]
	d.AnnotationDigest = annotations[AnnotationBaseDigest]

	if e, how := byAnnotation(c, d.AnnotationName, d.AnnotationDigest); e != nil {
		d.Method, d.Base, d.BaseRef = MethodAnnotation, e, e.Ref
		n := prefixLen(e.DiffIDs, diffIDs)
		d.Layers = n
		d.Reason = fmt.Sprintf("the image's %s annotation names %s", how, e.Ref)
		if n == len(e.DiffIDs) {
			d.Reason += fmt.Sprintf(", and its first %d of %d layers are that base's", n, len(diffIDs))
		} else {
			d.Reason += fmt.Sprintf(", but only %d of that base's %d layers start the image: the base was rebuilt since (re-index it)", n, len(e.DiffIDs))
		}
		d.Aliases = aliases(c, e)
		return d
	}

	var best []*Entry
	bestLen := 0
	for i := range c.Entries {
		e := &c.Entries[i]
		// An empty base (scratch) is a prefix of everything and says nothing.
		if len(e.DiffIDs) == 0 || len(e.DiffIDs) > len(diffIDs) || prefixLen(e.DiffIDs, diffIDs) != len(e.DiffIDs) {
			continue
		}
		switch {
		case len(e.DiffIDs) > bestLen:
			best, bestLen = []*Entry{e}, len(e.DiffIDs)
		case len(e.DiffIDs) == bestLen:
			best = append(best, e)
		}
	}
	var annot string
	if d.AnnotationName != "" || d.AnnotationDigest != "" {
		annot = fmt.Sprintf("the image's base annotations (%s) name no catalog entry; ", strings.TrimSpace(strings.Join(nonEmpty(d.AnnotationName, d.AnnotationDigest), " ")))
	}
	if len(best) == 0 {
		d.Reason = annot + fmt.Sprintf("no catalog entry's layers start this image's %d layers: its base is not in the catalog (index it with `bulkhead base index REF`)", len(diffIDs))
		if len(c.Entries) == 0 {
			d.Reason = annot + "the base catalog is empty (index bases with `bulkhead base index REF...` or `--defaults`)"
		}
		return d
	}
	sort.SliceStable(best, func(i, j int) bool { return best[i].Ref < best[j].Ref })
	d.Method, d.Base, d.BaseRef, d.Layers = MethodLayers, best[0], best[0].Ref, bestLen
	for _, e := range best[1:] {
		d.Aliases = append(d.Aliases, e.Ref)
	}
	d.Reason = annot + fmt.Sprintf("the image's first %d of %d layers are exactly %s's layers (the longest match in the catalog)", bestLen, len(diffIDs), best[0].Ref)
	return d
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// byAnnotation finds the entry an annotation names: by manifest digest
// first (exact), then by reference name.
func byAnnotation(c *Catalog, nameAnn, digestAnn string) (*Entry, string) {
	if digestAnn != "" {
		for i := range c.Entries {
			e := &c.Entries[i]
			if e.Digest == digestAnn || e.ImageID == digestAnn {
				return e, AnnotationBaseDigest
			}
			for _, rd := range e.RepoDigests {
				if _, dg, ok := strings.Cut(rd, "@"); ok && dg == digestAnn {
					return e, AnnotationBaseDigest
				}
			}
		}
	}
	if nameAnn != "" {
		want := normalizeRef(nameAnn)
		for i := range c.Entries {
			e := &c.Entries[i]
			if normalizeRef(e.Ref) == want {
				return e, AnnotationBaseName
			}
			for _, t := range e.RepoTags {
				if normalizeRef(t) == want {
					return e, AnnotationBaseName
				}
			}
		}
	}
	return nil, ""
}

// normalizeRef spells a registry reference fully (docker.io/library/alpine:latest)
// so that "alpine" and "docker.io/library/alpine:latest" compare equal.
func normalizeRef(s string) string {
	r, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return s
	}
	return r.Name()
}

func prefixLen(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] != "" && a[n] == b[n] {
		n++
	}
	return n
}

func aliases(c *Catalog, e *Entry) []string {
	var out []string
	for i := range c.Entries {
		o := &c.Entries[i]
		if o.Ref != e.Ref && len(o.DiffIDs) > 0 && equal(o.DiffIDs, e.DiffIDs) {
			out = append(out, o.Ref)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
