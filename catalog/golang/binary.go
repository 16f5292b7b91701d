// Package golang reads Go modules: the build information the Go linker embeds
// in binaries (images and trees alike) and go.mod files in source trees.
package golang

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Binary reads the build information of Go executables.
type Binary struct{}

// NewBinary returns the Go binary cataloger.
func NewBinary() *Binary { return &Binary{} }

var (
	_ catalog.Cataloger    = (*Binary)(nil)
	_ catalog.EntryMatcher = (*Binary)(nil)
	_ catalog.Scoped       = (*Binary)(nil)
	_ catalog.Streaming    = (*Binary)(nil)
)

// Name implements catalog.Cataloger.
func (*Binary) Name() string { return "go-binary" }

// Scope implements catalog.Scoped: binaries are read in images and trees.
func (*Binary) Scope() catalog.Scope { return catalog.ScopeAll }

// Streams implements catalog.Streaming: Parse reads the stream front to back
// and stops at the build information. (Pre-1.18 Mach-O and PE binaries,
// which need random access, then get an error saying so.)
func (*Binary) Streams() bool { return true }

// Match implements catalog.Cataloger for callers that know only a path: files
// directly in the usual bin directories.
func (*Binary) Match(p string) bool { return catalog.InBinDir(p) }

// MatchEntry implements catalog.EntryMatcher: regular files with an execute
// bit (or in a bin directory, or named .exe) of plausible size.
func (*Binary) MatchEntry(p string, mode fs.FileMode, size int64) bool {
	return catalog.IsExecutable(p, mode, size)
}

// Parse implements catalog.Cataloger. Files that are not executables, or are
// executables of other languages, give no packages and no error. A Go
// executable whose build information is damaged or missing gives an error
// (a warning naming the file); one whose module list alone is unreadable
// gives the toolchain's stdlib package and a *catalog.PartialError.
func (*Binary) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	bi, err := ReadBuildInfo(in.Reader)
	var pkgs []inventory.Package
	if bi != nil {
		pkgs = Packages(bi)
	}
	if err != nil {
		return pkgs, fmt.Errorf("go binary %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// ReadBuildInfo reads the build information of a Go executable from a
// stream, reading no further than the build information. It returns nil, nil
// for non-executables and for executables that are not Go programs. For a
// file that holds the build-information magic where the linker puts it but
// no valid build information after it, it returns a *MalformedError; for a
// Go executable (one with a Go build ID) without build information, an
// error saying so; and when the version could be read but not the module
// list, the build information (version only) with a *catalog.PartialError.
//
// Binaries built before Go 1.18 keep pointers to their strings instead of the
// strings; in ELF files the scan resolves them from the strings it passed. In
// other formats it needs random access: r must then be an io.ReaderAt (as it
// is when the caller buffered the file), or an error says so.
func ReadBuildInfo(r io.Reader) (*debug.BuildInfo, error) {
	s := &scanner{}
	bi, err := scanBuildInfo(r, s)
	if errors.Is(err, errNotExecutable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case bi != nil && s.modErr != nil:
		return bi, catalog.Partial(s.modErr)
	case bi != nil:
		return bi, nil
	case s.pointerFormat:
		// A pre-1.18 blob: resolved below.
	case s.bad != nil:
		return nil, s.bad
	case s.goBuildID:
		return nil, errNoBuildInfo
	default:
		return nil, nil
	}
	ra, ok := r.(io.ReaderAt)
	if !ok {
		return nil, errors.New("built with Go before 1.18 (build information as pointers), and its strings were not on the streamed path (a non-ELF file, or an ELF file without a Go build ID note, which is searched only from its data segment): the module list needs random access; scan the unpacked file with bulkhead fs to read it")
	}
	bi, err = buildinfo.Read(ra)
	if err != nil {
		return nil, fmt.Errorf("read pre-1.18 build information: %w", err)
	}
	return bi, nil
}

// Packages turns build information into packages: the main module (its
// version as the toolchain wrote it, "(devel)" included), every dependency
// with replacements applied, and the toolchain as "stdlib".
func Packages(bi *debug.BuildInfo) []inventory.Package {
	var pkgs []inventory.Package
	if bi.Main.Path != "" && bi.Main.Path != "command-line-arguments" {
		p := newPackage(bi.Main.Path, bi.Main.Version)
		p.Main = true
		pkgs = append(pkgs, p)
	}
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		name, version := resolve(d.Path, d.Version, d.Replace)
		if name == "" || (name == bi.Main.Path && version == bi.Main.Version) {
			continue
		}
		pkgs = append(pkgs, newPackage(name, version))
	}
	if v, ok := StdlibVersion(bi.GoVersion); ok {
		p := newPackage("stdlib", v)
		p.Licenses = []string{"BSD-3-Clause"}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// resolve applies a replacement as govulncheck does: the replacement's path
// and version are what was compiled in. A replacement by a local directory
// ("./fork", "/src/x") has no module path a vulnerability database knows,
// so the original path is kept, with the directory's (empty) version, as
// syft does.
func resolve(path, version string, repl *debug.Module) (string, string) {
	if repl == nil {
		return path, version
	}
	if IsLocalPath(repl.Path) {
		return path, repl.Version
	}
	return repl.Path, repl.Version
}

// IsLocalPath reports whether a replacement path names a directory rather
// than a module (go.mod reference: a path starting with ./ or ../, or an
// absolute path, on any OS).
func IsLocalPath(p string) bool {
	if p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, ".\\") || strings.HasPrefix(p, "..\\") || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') // C:\src
}

// StdlibVersion turns the toolchain version a binary records ("go1.22.3",
// "go1.21.0 X:boringcrypto") into the version of the "stdlib" module
// ("1.22.3"). Development toolchains ("devel go1.23-abc...") have none.
func StdlibVersion(goVersion string) (string, bool) {
	f := strings.Fields(goVersion)
	if len(f) == 0 || !strings.HasPrefix(f[0], "go1") {
		return "", false
	}
	return strings.TrimPrefix(f[0], "go"), true
}

func newPackage(name, version string) inventory.Package {
	return inventory.Package{Name: name, Version: version, Type: inventory.TypeGo, PURL: PURL(name, version)}
}

// PURL is the package URL of a Go module: its path up to the last slash is
// the namespace (pkg:golang/github.com/cli/cli/v2@v2.63.0), as syft and the
// purl spec's golang examples write it.
func PURL(module, version string) string {
	ns, name := "", module
	if i := strings.LastIndex(module, "/"); i > 0 && i < len(module)-1 {
		ns, name = module[:i], module[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}
