package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on binaries and their embedded dependency lists. cargo-auditable
// writes a few kilobytes of compressed JSON (about 100 bytes per crate).
const (
	// MaxSectionSize bounds the compressed section.
	MaxSectionSize = 8 << 20
	// MaxJSONSize bounds the decompressed JSON: a zlib bomb stops here.
	MaxJSONSize = 64 << 20
)

// Section names cargo-auditable (and its predecessor rust-audit) use.
var (
	elfSections   = []string{".dep-v0", ".rust-deps-v0"}
	peSections    = []string{".dep-v0", "rdep-v0"}
	machoSections = []string{".dep-v0", "rust-deps-v0"}
)

// Binary reads the dependency lists cargo-auditable embeds in executables.
type Binary struct{}

// NewBinary returns the cargo-auditable binary cataloger.
func NewBinary() *Binary { return &Binary{} }

var (
	_ catalog.Cataloger    = (*Binary)(nil)
	_ catalog.EntryMatcher = (*Binary)(nil)
	_ catalog.Scoped       = (*Binary)(nil)
	_ catalog.Streaming    = (*Binary)(nil)
)

// Name implements catalog.Cataloger.
func (*Binary) Name() string { return "cargo-auditable" }

// Scope implements catalog.Scoped.
func (*Binary) Scope() catalog.Scope { return catalog.ScopeAll }

// Match implements catalog.Cataloger: files directly in the bin directories.
func (*Binary) Match(p string) bool { return catalog.InBinDir(p) }

// MatchEntry implements catalog.EntryMatcher: the executables every binary
// cataloger reads (catalog.IsExecutable).
func (*Binary) MatchEntry(p string, mode fs.FileMode, size int64) bool {
	return catalog.IsExecutable(p, mode, size)
}

// Streams implements catalog.Streaming: Parse reads the stream once, front
// to back, and never asks for random access (see ReadDependenciesStream).
func (*Binary) Streams() bool { return true }

// Parse implements catalog.Cataloger. Executables without the section, and
// files that are not executables, give no packages and no error.
func (*Binary) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	var (
		info *VersionInfo
		err  error
	)
	if ra, ok := in.Reader.(io.ReaderAt); ok {
		// Random access at no cost (a file, or a buffer the caller made).
		info, err = ReadDependencies(ra)
	} else {
		info, err = ReadDependenciesStream(in.Reader, in.Size, in.TempDir)
	}
	if err != nil {
		return nil, fmt.Errorf("rust binary %s: %w", in.Path, err)
	}
	if info == nil {
		return nil, nil
	}
	return info.Packages(), nil
}

// VersionInfo is the JSON cargo-auditable embeds (auditable-serde).
type VersionInfo struct {
	Crates []AuditPackage `json:"packages"`
}

// AuditPackage is one crate of the build.
type AuditPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source: "crates.io", "git", "local", "registry", or another.
	Source string `json:"source"`
	// Kind: "runtime" (the default, omitted) or "build" (build
	// dependencies and proc-macros, not in the binary).
	Kind string `json:"kind"`
	Root bool   `json:"root"`
}

// Packages returns the crates compiled into the binary: build-time
// dependencies are left out (as syft does), the root crate is Main, and
// local crates get no purl (see ParseLock).
func (v *VersionInfo) Packages() []inventory.Package {
	var pkgs []inventory.Package
	for _, p := range v.Crates {
		if p.Name == "" || p.Version == "" || p.Kind == "build" {
			continue
		}
		pkg := inventory.Package{Name: p.Name, Version: p.Version, Type: inventory.TypeCargo, Main: p.Root}
		if p.Source != "local" {
			pkg.PURL = PURL(p.Name, p.Version)
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs
}

// errNoSection is returned inside ReadDependencies when a binary has no
// dependency section.
var errNoSection = errors.New("no dependency section")

// ReadDependencies reads the dependency list of an ELF, PE or Mach-O
// executable. It returns nil, without error, for other files, for Go
// binaries, and for executables built without cargo-auditable.
func ReadDependencies(r io.ReaderAt) (*VersionInfo, error) {
	head := make([]byte, 8)
	if n, _ := r.ReadAt(head, 0); n < len(head) {
		return nil, nil
	}
	var (
		sec io.Reader
		err error
	)
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		sec, err = elfSection(r)
	case bytes.HasPrefix(head, []byte("MZ")):
		sec, err = peSection(r)
	case bytes.HasPrefix(head, []byte("\xfe\xed\xfa")), bytes.HasPrefix(head[1:], []byte("\xfa\xed\xfe")):
		sec, err = machoSection(r)
	default:
		return nil, nil
	}
	return decodeSection(sec, err)
}

// decodeSection takes what a format's section finder returned and decodes
// the compressed JSON.
func decodeSection(sec io.Reader, err error) (*VersionInfo, error) {
	if errors.Is(err, errNoSection) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	z, err := zlib.NewReader(sec)
	if err != nil {
		return nil, fmt.Errorf("dependency section is not zlib data: %w", err)
	}
	defer z.Close()
	data, err := catalog.ReadLimited(z, MaxJSONSize)
	if err != nil {
		return nil, fmt.Errorf("decompress dependency section: %w", err)
	}
	var v VersionInfo
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("dependency section JSON: %w", err)
	}
	return &v, nil
}

func checkSize(size uint64) error {
	if size > MaxSectionSize {
		return fmt.Errorf("dependency section of %d bytes is over %d: not cargo-auditable data", size, MaxSectionSize)
	}
	return nil
}

func elfSection(r io.ReaderAt) (io.Reader, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, errNoSection // not a readable ELF file: nothing of ours
	}
	// A Go binary (the Go cataloger's) has no crates of its own.
	if f.Section(".go.buildinfo") != nil {
		return nil, errNoSection
	}
	for _, name := range elfSections {
		if s := f.Section(name); s != nil && s.Type != elf.SHT_NOBITS {
			if err := checkSize(s.Size); err != nil {
				return nil, err
			}
			return s.Open(), nil
		}
	}
	return nil, errNoSection
}

func peSection(r io.ReaderAt) (io.Reader, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return nil, errNoSection
	}
	for _, name := range peSections {
		if s := f.Section(name); s != nil {
			if err := checkSize(uint64(s.Size)); err != nil {
				return nil, err
			}
			return s.Open(), nil
		}
	}
	return nil, errNoSection
}

func machoSection(r io.ReaderAt) (io.Reader, error) {
	f, err := macho.NewFile(r)
	if err != nil {
		return nil, errNoSection
	}
	for _, name := range machoSections {
		if s := f.Section(name); s != nil {
			if err := checkSize(s.Size); err != nil {
				return nil, err
			}
			return s.Open(), nil
		}
	}
	return nil, errNoSection
}
