package sqlstore

import (
	"fmt"
	"strings"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Known values of the enumerated fields.
var (
	scanSources   = []string{"registry", "upload", "sbom"}
	sightingKinds = []string{"registry", "ci", "cluster"}
	changeKinds   = []string{"appeared", "disappeared"}
	eventKinds    = []string{"runtime", "gate", "admission"}
	tokenRoles    = []string{"read", "scan", "admin"}
)

const (
	maxTokenName = 256
	minHash      = 16
	maxHash      = 128
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{store.ErrInvalid}, a...)...)
}

func checkDigest(what, d string) error {
	if _, err := v1.NewHash(d); err != nil {
		return invalid("%s: image digest %q: %v (want sha256:<64 hex>)", what, d, err)
	}
	return nil
}

func checkOneOf(what, field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return invalid("%s: %s %q: use one of %s", what, field, v, strings.Join(allowed, ", "))
}

// checkText refuses what PostgreSQL's text cannot hold (NUL, invalid
// UTF-8) and what is over the limit, with the same answer on both
// databases.
func (s *Store) checkText(what, field, v string) error {
	if len(v) > s.opt.MaxString {
		return fmt.Errorf("%w: %s: %s is %d bytes, over the limit of %d", store.ErrTooLarge, what, field, len(v), s.opt.MaxString)
	}
	if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
		return invalid("%s: %s %q holds a NUL byte or invalid UTF-8", what, field, v)
	}
	return nil
}

// indexText makes a value fit an index column: NUL and invalid UTF-8 become
// U+FFFD and it is cut at the limit. The blob keeps the value as it was;
// only searching for such a name is approximate.
func (s *Store) indexText(v string) string {
	if strings.IndexByte(v, 0) >= 0 {
		v = strings.ReplaceAll(v, "\x00", "\uFFFD")
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) > s.opt.MaxString {
		cut := s.opt.MaxString
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v
}

func (s *Store) checkSighting(what string, seen *store.Sighting) error {
	if err := checkDigest(what, seen.Digest); err != nil {
		return err
	}
	if err := checkOneOf(what, "sighting kind", seen.Kind, sightingKinds); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"reference", seen.Reference}, {"cluster", seen.Cluster}, {"namespace", seen.Namespace},
		{"workload", seen.Workload}, {"CI run", seen.CIRun},
	} {
		if err := s.checkText(what, f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}
