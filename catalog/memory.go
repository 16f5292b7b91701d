package catalog

import (
	"cmp"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Helpers that keep the memory of a large package list close to what the
// packages themselves need, for parsers of databases with many packages.

// Interner stores each distinct short string once: the versions,
// architectures, maintainers and licences that repeat across the packages
// of one database. It holds at most a bounded number of strings; past that,
// or for long values, it returns fresh copies, so hostile input cannot grow
// it beyond its bound.
type Interner struct {
	m   map[string]string
	max int
}

// Bounds of an Interner: DefaultInternerSize distinct values of up to
// maxInternLen bytes.
const (
	DefaultInternerSize = 4096
	maxInternLen        = 256
)

// NewInterner returns an Interner holding up to size strings (zero:
// DefaultInternerSize).
func NewInterner(size int) *Interner {
	if size <= 0 {
		size = DefaultInternerSize
	}
	return &Interner{m: map[string]string{}, max: size}
}

// Bytes returns b as a string, shared with earlier calls for the same bytes.
func (in *Interner) Bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in.m) < in.max {
		in.m[s] = s
	}
	return s
}

// packageBlock is how many packages PackageBlocks allocates at a time.
const packageBlock = 1024

// PackageBlocks gathers packages in fixed-size blocks instead of one
// growing slice, whose doubling copies would hold up to three times the
// packages' size at the moment of growth; Slice copies them once into a
// slice of exactly their number. It applies the field caps and the default
// file budget (CheckPackage, DefaultMaxFileBytes) as packages are added, so
// that a parser never holds more than the Collector would keep: the
// packages it skips are counted in Problems. The zero value is empty and
// ready.
type PackageBlocks struct {
	// MaxBytes replaces DefaultMaxFileBytes when positive.
	MaxBytes int64

	blocks [][]inventory.Package
	n      int // packages stored
	added  int
	keep   keeper
}

// Append adds a package, unless it fails the field caps or the budget.
func (b *PackageBlocks) Append(p inventory.Package) {
	b.added++
	if b.keep.limit == 0 {
		b.keep.limit = cmp.Or(max(b.MaxBytes, 0), DefaultMaxFileBytes)
	}
	if !b.keep.admit(&p) {
		return
	}
	if len(b.blocks) == 0 || len(b.blocks[len(b.blocks)-1]) == packageBlock {
		b.blocks = append(b.blocks, make([]inventory.Package, 0, packageBlock))
	}
	last := &b.blocks[len(b.blocks)-1]
	*last = append(*last, p)
	b.n++
}

// Len is the number of packages added, kept or skipped.
func (b *PackageBlocks) Len() int { return b.added }

// Problems says how many packages Append skipped and why, for a
// PartialError; none when it kept them all.
func (b *PackageBlocks) Problems() []error { return b.keep.problems() }

// Slice returns the packages kept, in the order added (nil when there are
// none), and empties b; Problems stays.
func (b *PackageBlocks) Slice() []inventory.Package {
	b.added = 0
	if b.n == 0 {
		return nil
	}
	out := make([]inventory.Package, 0, b.n)
	for i, blk := range b.blocks {
		out = append(out, blk...)
		b.blocks[i] = nil // let the block go as soon as it is copied
	}
	b.blocks, b.n = nil, 0
	return out
}
