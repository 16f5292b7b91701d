// Package sbom holds what the SBOM writers and readers share: encoder
// options, licence classification, maintainer parsing, package-URL decoding
// and the limits applied to untrusted SBOM input.
//
// The formats themselves live in sbom/cyclonedx and sbom/spdx.
package sbom

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Options configure an SBOM encoder.
type Options struct {
	// ToolVersion is the bulkhead version recorded as the SBOM's creator
	// ("1.2.0"; "dev" when empty).
	ToolVersion string
	// Now is the clock for the document's creation time (default time.Now).
	// Golden tests fix it.
	Now func() time.Time
	// Rand is the randomness behind the document's UUID (CycloneDX serial
	// number, SPDX namespace); default crypto/rand. Golden tests fix it.
	Rand io.Reader
}

// Version returns the tool version to record.
func (o Options) Version() string {
	if o.ToolVersion == "" {
		return "dev"
	}
	return o.ToolVersion
}

// Time returns the creation time in UTC, truncated to seconds because both
// formats print it that way.
func (o Options) Time() time.Time {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().UTC().Truncate(time.Second)
}

// UUID returns a random (version 4) UUID for the document.
func (o Options) UUID() (uuid.UUID, error) {
	r := o.Rand
	if r == nil {
		r = rand.Reader
	}
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return uuid.Nil, fmt.Errorf("make document UUID: %w", err)
	}
	return u, nil
}

// MaxSize is the largest SBOM document the readers accept. A 10,000-package
// image makes a CycloneDX document of about 15 MB, so this leaves room while
// keeping a hostile input from taking unbounded memory.
const MaxSize = 256 << 20

// ReadAll reads a whole document of at most MaxSize bytes.
func ReadAll(r io.Reader, format string) ([]byte, error) {
	return readAll(r, format, MaxSize)
}

func readAll(r io.Reader, format string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s document: %w", format, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s document is larger than %d MiB: split it or scan the image directly", format, limit>>20)
	}
	return b, nil
}

// PackageHash is a short stable identifier for a package within one
// inventory: its key plus where it was found, so that two packages sharing
// a purl (the same deb in two dpkg databases) still get different
// identifiers, and the identifier does not change between runs.
func PackageHash(p *inventory.Package) string {
	h := sha256.New()
	io.WriteString(h, p.Key())
	for _, l := range p.Locations {
		io.WriteString(h, "\x00"+l.Path)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Unique returns id, or id with a counter suffix when seen already holds it,
// and records the result in seen.
func Unique(seen map[string]bool, id, sep string) string {
	out := id
	for n := 2; seen[out]; n++ {
		out = fmt.Sprintf("%s%s%d", id, sep, n)
	}
	seen[out] = true
	return out
}
