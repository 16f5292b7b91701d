package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// ParseFunc reads the packages of one file. path is absolute within the
// image or tree ("/app/yarn.lock"); r gives at most the registration's
// MaxSize bytes and fails with a *TooLargeError past them.
type ParseFunc func(ctx context.Context, path string, r io.Reader) ([]inventory.Package, error)

// FileParser registers one kind of file with a Generic cataloger.
type FileParser struct {
	// What names the kind of file in errors ("yarn.lock", "pom.xml").
	What string
	// Match selects the files, by path relative to the root ("app/yarn.lock",
	// no leading slash); BaseName builds one from globs.
	Match func(path string) bool
	// MaxSize bounds the file: a larger one is rejected, naming the file
	// and the limit, before or while it is read.
	MaxSize int64
	// MaxPackages bounds the packages of one file (CheckPackageCount's
	// limit: 0 is DefaultMaxPackages or MaxPackagesEnv). Parsers should
	// check it as they go, to bound their memory; the Generic checks what
	// they return, so that no registration goes without the limit.
	MaxPackages int
	Parse       ParseFunc
}

// Generic is a cataloger made of FileParsers: it selects the files, bounds
// their reading, names the file in every error, and leaves parsing to the
// registration that matched. Lockfile catalogers are Generics.
type Generic struct {
	name    string
	scope   Scope
	parsers []FileParser
}

var (
	_ Cataloger = (*Generic)(nil)
	_ Scoped    = (*Generic)(nil)
)

// NewGeneric returns a cataloger of the given name and scope reading the
// files of the parsers; the first parser that matches a file reads it.
func NewGeneric(name string, scope Scope, parsers ...FileParser) *Generic {
	for _, p := range parsers {
		if p.Match == nil || p.Parse == nil || p.MaxSize <= 0 || p.What == "" {
			panic(fmt.Sprintf("catalog.NewGeneric(%q): registration %q lacks Match, Parse, MaxSize or What", name, p.What))
		}
	}
	return &Generic{name: name, scope: scope, parsers: parsers}
}

// Name implements Cataloger.
func (g *Generic) Name() string { return g.name }

// Scope implements Scoped.
func (g *Generic) Scope() Scope { return g.scope }

// Match implements Cataloger.
func (g *Generic) Match(p string) bool { return g.parser(p) != nil }

func (g *Generic) parser(p string) *FileParser {
	for i := range g.parsers {
		if g.parsers[i].Match(p) {
			return &g.parsers[i]
		}
	}
	return nil
}

// Parse implements Cataloger.
func (g *Generic) Parse(ctx context.Context, in Input) ([]inventory.Package, error) {
	fp := g.parser(strings.TrimPrefix(in.Path, "/"))
	if fp == nil {
		return nil, fmt.Errorf("%s: not a file the %s cataloger reads", in.Path, g.name)
	}
	if in.Size > fp.MaxSize {
		return nil, &TooLargeError{Path: fp.What + " " + in.Path, Limit: fp.MaxSize}
	}
	pkgs, err := fp.Parse(ctx, in.Path, LimitReader(in.Reader, fp.MaxSize))
	if err == nil && len(pkgs) > 0 {
		err = CheckPackageCount(len(pkgs)-1, fp.MaxPackages, fp.What)
	}
	if err == nil {
		return pkgs, nil
	}
	var pe *PartialError
	if errors.As(err, &pe) {
		return pkgs, err // the Collector names the file in each warning
	}
	var tl *TooLargeError
	if errors.As(err, &tl) && tl.Path == "" {
		return nil, &TooLargeError{Path: fp.What + " " + in.Path, Limit: tl.Limit}
	}
	return nil, fmt.Errorf("%s %s: %w", fp.What, in.Path, err)
}

// BaseName returns a Match that selects files whose base name matches one
// of the path.Match patterns ("Cargo.lock", "gradle.lockfile*").
func BaseName(patterns ...string) func(string) bool {
	for _, pat := range patterns {
		if _, err := path.Match(pat, ""); err != nil {
			panic(fmt.Sprintf("catalog.BaseName: bad pattern %q: %v", pat, err))
		}
	}
	return func(p string) bool {
		base := path.Base(p)
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, base); ok {
				return true
			}
		}
		return false
	}
}

// ReaderFunc adapts a parser that needs neither the context nor the path.
func ReaderFunc(f func(io.Reader) ([]inventory.Package, error)) ParseFunc {
	return func(_ context.Context, _ string, r io.Reader) ([]inventory.Package, error) { return f(r) }
}

// ContextFunc adapts a parser that needs no path.
func ContextFunc(f func(context.Context, io.Reader) ([]inventory.Package, error)) ParseFunc {
	return func(ctx context.Context, _ string, r io.Reader) ([]inventory.Package, error) { return f(ctx, r) }
}
