// Package catalog turns package-database files into inventory packages.
//
// Each ecosystem is one Cataloger: it names the files it reads (Match) and
// parses one such file (Parse). A Collector offers the catalogers every file
// of the single walk over an image, parses each matching file in every layer
// it appears in, keeps the packages of the instance the final filesystem
// shows, and attributes each package to the layer that introduced it.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Cataloger reads one kind of package database.
type Cataloger interface {
	// Name identifies the cataloger ("dpkg", "apk", "rpm").
	Name() string
	// Match reports whether the file at path (relative to the root, no
	// leading slash: "var/lib/dpkg/status") is one of its inputs. It is
	// called for every file of every layer and must be cheap.
	Match(path string) bool
	// Parse reads the packages recorded in one input file. Packages need
	// not carry Locations or FoundBy: the Collector sets them.
	Parse(ctx context.Context, in Input) ([]inventory.Package, error)
}

// Scope says which kinds of target a cataloger reads.
type Scope uint8

const (
	// ScopeImage: installed packages, as found in images and root
	// filesystems (package databases, node_modules, site-packages, binaries).
	ScopeImage Scope = 1 << iota
	// ScopeSource: declared dependencies in source trees (lockfiles,
	// manifests), read by `bulkhead fs`.
	ScopeSource
	ScopeAll = ScopeImage | ScopeSource
)

// Scoped is implemented by catalogers that run only for some targets;
// catalogers without it run for all.
type Scoped interface {
	Scope() Scope
}

// EntryMatcher is implemented by catalogers that select files by more than
// their path (executables by mode, archives by size). When implemented it
// replaces Match for the walk; Match is still used where only a path is known.
type EntryMatcher interface {
	MatchEntry(path string, mode fs.FileMode, size int64) bool
}

// For returns the catalogers that run for a scope.
func For(cats []Cataloger, scope Scope) []Cataloger {
	var out []Cataloger
	for _, c := range cats {
		s := ScopeAll
		if sc, ok := c.(Scoped); ok {
			s = sc.Scope()
		}
		if s&scope != 0 {
			out = append(out, c)
		}
	}
	return out
}

// Streaming is implemented by catalogers whose Parse reads in.Reader once,
// front to back, and never calls in.ReaderAt (Streams reports true). When
// several catalogers match one file and all of them stream, the Collector
// feeds one sequential read of the file to all of them at once instead of
// buffering the whole file for random access; each executable in an image
// is otherwise buffered (up to 8 MiB in memory, spooled beyond).
type Streaming interface {
	Streams() bool
}

func streams(c Cataloger) bool {
	s, ok := c.(Streaming)
	return ok && s.Streams()
}

// PURLer is implemented by catalogers whose packages have package URLs that
// depend on the detected OS (the purl "distro" qualifier).
type PURLer interface {
	PURL(p *inventory.Package, os *inventory.OS) string
}

// Input is one file offered to a parser.
type Input struct {
	// Path is absolute within the image: "/var/lib/dpkg/status".
	Path string
	// Reader streams the content; Size is its length.
	Reader io.Reader
	Size   int64
	// ReaderAt gives random access; call it before reading from Reader.
	// Streaming catalogers may be given one that always fails (when the
	// file is streamed to several of them at once).
	ReaderAt func() (io.ReaderAt, error)
	// TempDir is the scan's own temp space, for parsers that need a file on
	// disk (rpm databases). Files made there must be removed by the parser.
	TempDir string
}

// SpoolFile writes the input to a temp file in TempDir and returns its path
// and a function that removes it. For libraries that only open paths.
func (in Input) SpoolFile(pattern string) (string, func(), error) {
	f, err := os.CreateTemp(in.TempDir, pattern)
	if err != nil {
		return "", nil, fmt.Errorf("spool %s: %w", in.Path, err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	if _, err := io.Copy(f, in.Reader); err != nil {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("spool %s: %w", in.Path, err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("spool %s: %w", in.Path, err)
	}
	return f.Name(), cleanup, nil
}

// instance is one layer's copy of one input file, parsed.
type instance struct {
	layer int
	pkgs  []inventory.Package
	err   error
	// problems are the parts of the file the parser skipped (a
	// PartialError) and the packages the Budget skipped: warnings that go
	// with pkgs.
	problems []error
	// bytes is what pkgs keep in their fields (CheckPackage).
	bytes int64
	// keys, once the copy is reduced, are the sorted hashes of its
	// packages' keys, and pkgs is nil: see reduce.
	keys    []uint64
	reduced bool
}

// Collector is the walk visitor that runs catalogers.
type Collector struct {
	ctx        context.Context
	catalogers []Cataloger
	layers     []inventory.Layer
	tempDir    string
	budget     Budget
	incomplete []string

	mu    sync.Mutex
	found map[string]map[string][]instance // cataloger -> path -> instances
	seed  maphash.Seed

	packages []inventory.Package
	warnings []diag.Diagnostic
}

// NewCollector returns a visitor running the catalogers. layers describes the
// walk's layers, by index, for package locations.
func NewCollector(ctx context.Context, catalogers []Cataloger, layers []inventory.Layer, tempDir string) *Collector {
	return &Collector{ctx: ctx, catalogers: catalogers, layers: layers, tempDir: tempDir, found: map[string]map[string][]instance{}, seed: maphash.MakeSeed()}
}

// SetBudget replaces the default bounds on what the packages of one file
// and of the whole scan may keep (see Budget); call it before the walk.
func (c *Collector) SetBudget(b Budget) { c.budget = b }

// Wants implements walk.Visitor.
func (c *Collector) Wants(e *walk.Entry) bool {
	if e.Kind != walk.KindFile && e.Kind != walk.KindHardlink {
		return false
	}
	for _, cat := range c.catalogers {
		if matches(cat, e) {
			return true
		}
	}
	return false
}

func matches(cat Cataloger, e *walk.Entry) bool {
	if em, ok := cat.(EntryMatcher); ok {
		return em.MatchEntry(e.Path, e.Mode, e.Size)
	}
	return cat.Match(e.Path)
}

// Visit implements walk.Visitor.
func (c *Collector) Visit(e *walk.Entry, content *walk.Content) error {
	var matched []Cataloger
	all := true
	for _, cat := range c.catalogers {
		if matches(cat, e) {
			matched = append(matched, cat)
			all = all && streams(cat)
		}
	}
	switch {
	case len(matched) == 0:
		return nil
	case len(matched) == 1:
		in := Input{Path: "/" + e.Path, Reader: content, Size: content.Size(), ReaderAt: content.ReaderAt, TempDir: c.tempDir}
		pkgs, err := matched[0].Parse(c.ctx, in)
		c.record(matched[0], e, pkgs, err)
	case all:
		c.fanOut(e, content, matched)
	default:
		// Random access for all of them: one buffered copy, read by each.
		ra, err := content.ReaderAt()
		if err != nil {
			return err
		}
		for _, cat := range matched {
			r := io.NewSectionReader(ra, 0, content.Size())
			in := Input{Path: "/" + e.Path, Reader: r, Size: content.Size(), ReaderAt: content.ReaderAt, TempDir: c.tempDir}
			pkgs, err := cat.Parse(c.ctx, in)
			c.record(cat, e, pkgs, err)
		}
	}
	return nil
}

func (c *Collector) record(cat Cataloger, e *walk.Entry, pkgs []inventory.Package, err error) {
	err, problems := splitPartial(err)
	var n int64
	if err != nil {
		pkgs = nil // a failed parse voids what it returned
	} else {
		// Every package passes the field caps and the file's budget here,
		// whichever parser read it.
		var skipped error
		pkgs, n, skipped = c.budget.keep(pkgs)
		_, more := splitPartial(skipped)
		problems = append(problems, more...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byPath := c.found[cat.Name()]
	if byPath == nil {
		byPath = map[string][]instance{}
		c.found[cat.Name()] = byPath
	}
	insts := append(byPath[e.Path], instance{layer: e.Layer, pkgs: pkgs, err: err, problems: problems, bytes: n})
	byPath[e.Path] = insts
	if len(insts) > 1 {
		// Only the copy of the newest layer can be the one the image
		// shows: a newer copy shadows an older one, and a deletion
		// removes both. The older copies serve only to tell which layer
		// introduced each package, for which the hashes of their keys
		// do: an image that rewrites a large database in every layer
		// then holds one copy of it, not one per layer.
		newest := 0
		for i := range insts {
			if insts[i].layer > insts[newest].layer {
				newest = i
			}
		}
		for i := range insts {
			if i != newest {
				c.reduce(&insts[i])
			}
		}
	}
}

// reduce replaces an instance's packages by the sorted hashes of their keys.
func (c *Collector) reduce(in *instance) {
	if in.reduced {
		return
	}
	in.keys = make([]uint64, len(in.pkgs))
	for i := range in.pkgs {
		in.keys[i] = c.keyHash(&in.pkgs[i])
	}
	slices.Sort(in.keys)
	in.pkgs, in.problems, in.reduced = nil, nil, true
}

// keyHash hashes Package.Key without building it.
func (c *Collector) keyHash(p *inventory.Package) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, s := range [...]string{p.Type, p.Name, p.Version, p.Arch} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// fanOutChunk is how much of a file is copied to the parsers at a time.
const fanOutChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, fanOutChunk); return &b }}

// errStreamed is what Input.ReaderAt gives a parser that shares a stream.
var errStreamed = errors.New("random access is not available: the file is streamed to several catalogers at once (a Streaming cataloger must not call Input.ReaderAt)")

// errParserDone tells the copier that a parser returned; it never reaches
// a parser.
var errParserDone = errors.New("parser returned")

// fanOut reads the content once and gives every byte to each parser, each
// in its own goroutine behind its own pipe. A parser that returns early is
// dropped; when all have returned the copying stops and the walk drains the
// rest of the file itself. Memory is one chunk plus what the parsers keep.
func (c *Collector) fanOut(e *walk.Entry, content *walk.Content, cats []Cataloger) {
	type result struct {
		pkgs []inventory.Package
		err  error
	}
	results := make([]result, len(cats))
	writers := make([]*io.PipeWriter, len(cats))
	noRandomAccess := func() (io.ReaderAt, error) { return nil, errStreamed }
	var wg sync.WaitGroup
	for i, cat := range cats {
		pr, pw := io.Pipe()
		writers[i] = pw
		in := Input{Path: "/" + e.Path, Reader: pr, Size: content.Size(), ReaderAt: noRandomAccess, TempDir: c.tempDir}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Closing the read side unblocks the copier's pending write
			// and drops this parser from the fan-out.
			defer pr.CloseWithError(errParserDone)
			pkgs, err := cat.Parse(c.ctx, in)
			results[i] = result{pkgs, err}
		}()
	}

	bp := chunkPool.Get().(*[]byte)
	buf := *bp
	open := writers
	for len(open) > 0 {
		if err := c.ctx.Err(); err != nil {
			for _, w := range open {
				w.CloseWithError(err)
			}
			break
		}
		n, rerr := content.Read(buf)
		if n > 0 {
			keep := open[:0]
			for _, w := range open {
				// A write fails only when the parser has returned.
				if _, err := w.Write(buf[:n]); err == nil {
					keep = append(keep, w)
				}
			}
			open = keep
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = nil // CloseWithError(nil) gives readers io.EOF
			}
			for _, w := range open {
				w.CloseWithError(rerr)
			}
			break
		}
	}
	chunkPool.Put(bp)
	wg.Wait()
	for i, cat := range cats {
		c.record(cat, e, results[i].pkgs, results[i].err)
	}
}

// Finish implements walk.Finisher: it keeps the visible instance of every
// input and attributes packages to layers. The parsed instances are dropped
// afterwards, so that only the final package list stays in memory.
func (c *Collector) Finish(t *walk.Tree) error {
	layers := make([]*inventory.Layer, len(c.layers))
	for i := range c.layers {
		l := c.layers[i]
		layers[i] = &l // one copy per layer, shared by its packages
	}
	var lists [][]inventory.Package
	total := 0
	room := c.budget.imageBytes() // what the image budget has left
	for _, cat := range c.catalogers {
		byPath := c.found[cat.Name()]
		paths := make([]string, 0, len(byPath))
		for p := range byPath {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			pkgs, warns := c.resolve(cat.Name(), p, byPath[p], t, layers, &room)
			lists = append(lists, pkgs)
			total += len(pkgs)
			c.warnings = append(c.warnings, warns...)
		}
	}
	c.found = nil
	if len(c.packages) == 0 && len(lists) == 1 {
		c.packages = lists[0] // one database: no copy
		return nil
	}
	c.packages = slices.Grow(c.packages, total)
	for i, l := range lists {
		c.packages = append(c.packages, l...)
		lists[i] = nil
	}
	return nil
}

// trim keeps the packages, in order, whose cost (CheckPackage) fits in
// room, and returns them and their cost.
func trim(pkgs []inventory.Package, room int64) ([]inventory.Package, int64) {
	var kept int64
	for i := range pkgs {
		n, _ := CheckPackage(&pkgs[i])
		if kept+n > room {
			clear(pkgs[i:])
			return pkgs[:i:i], kept
		}
		kept += n
	}
	return pkgs, kept
}

// resolve returns the packages of the visible copy of one file, charged to
// the image budget's room, and the warnings that go with them.
func (c *Collector) resolve(name, p string, insts []instance, t *walk.Tree, layers []*inventory.Layer, room *int64) ([]inventory.Package, []diag.Diagnostic) {
	// Newest layer first.
	sort.Slice(insts, func(i, j int) bool { return insts[i].layer > insts[j].layer })
	top := -1
	for i, in := range insts {
		if t.State(p, in.layer) == walk.Visible {
			top = i
			break
		}
	}
	if top < 0 {
		return nil, nil // every copy of the file was deleted
	}
	vis := insts[top]
	loc := diag.Location{Path: "/" + p, Object: name}
	if vis.layer >= 0 && vis.layer < len(layers) {
		loc.Layer = layers[vis.layer].Digest
	}
	if vis.reduced {
		// record keeps the newest copy whole, and only it can be visible.
		return nil, []diag.Diagnostic{diag.Errorf(diag.CatalogInternal, "%s: /%s: internal error: the visible copy (layer %d) is not the newest; its packages are not reported", name, p, vis.layer).At(loc)}
	}
	if vis.err != nil {
		w := fmt.Sprintf("%s: /%s: %v", name, p, vis.err)
		code := diag.CatalogUnreadable
		if overLimit(vis.err) {
			c.incomplete = append(c.incomplete, w)
			code = diag.CatalogLimit
		}
		return nil, []diag.Diagnostic{diag.New(code, diag.Warning, w).At(loc)}
	}
	var warns []diag.Diagnostic
	for _, prob := range vis.problems {
		w := fmt.Sprintf("%s: /%s: %v", name, p, prob)
		code := diag.CatalogPartial
		if overLimit(prob) {
			c.incomplete = append(c.incomplete, w)
			code = diag.CatalogLimit
		}
		warns = append(warns, diag.New(code, diag.Warning, w).At(loc))
	}
	if vis.bytes > *room {
		before := len(vis.pkgs)
		vis.pkgs, vis.bytes = trim(vis.pkgs, *room)
		w := fmt.Sprintf("%s: /%s: %d packages skipped: the packages of this scan already keep %s of names, versions and other fields, more than any real image (corrupt or hostile input)", name, p, before-len(vis.pkgs), size(c.budget.imageBytes()))
		c.incomplete = append(c.incomplete, w)
		warns = append(warns, diag.New(diag.CatalogLimit, diag.Warning, w).At(loc))
	}
	*room -= vis.bytes
	// The chain of earlier copies that a later layer overwrote without
	// deleting in between: the package database's history.
	chain := []instance{vis}
	for _, in := range insts[top+1:] {
		if t.State(p, in.layer) != walk.Shadowed || in.err != nil {
			break
		}
		chain = append(chain, in)
	}
	for i := range chain[1:] {
		c.reduce(&chain[i+1])
	}
	// The parser's slice is the Collector's now: set the fields in place,
	// and give the packages without locations of their own one shared
	// backing array rather than one allocation each.
	out := vis.pkgs
	var locs []inventory.Location
	path := "/" + p // one string shared by the file's packages
	for i := range out {
		pkg := &out[i]
		intro := vis.layer
		if len(chain) > 1 {
			k := c.keyHash(pkg)
			for j := 1; j < len(chain); j++ {
				if _, found := slices.BinarySearch(chain[j].keys, k); !found {
					break
				}
				intro = chain[j].layer
			}
		}
		pkg.FoundBy = name
		loc := inventory.Location{Path: path}
		if intro >= 0 && intro < len(layers) {
			loc.Layer = layers[intro]
		}
		if len(pkg.Locations) > 0 {
			pkg.Locations = append([]inventory.Location{loc}, pkg.Locations...)
			continue
		}
		if locs == nil {
			locs = make([]inventory.Location, len(out)-i)
		}
		locs[0] = loc
		pkg.Locations, locs = locs[:1:1], locs[1:]
	}
	return out, warns
}

// Incomplete lists, after Finish, the files whose packages were left out in
// whole or in part because the file is over a limit for hostile input (too
// many packages, too large, fields or records over the caps): the inventory
// does not show everything the image holds, and a judgement on it (a
// vulnerability gate) must not pass as if it did. Malformed files are
// warnings only.
func (c *Collector) Incomplete() []string { return c.incomplete }

// Packages returns the packages found, after Finish.
func (c *Collector) Packages() []inventory.Package { return c.packages }

// Warnings are the files that could not be parsed, and the parts of files
// that were skipped (see PartialError), each naming its file.
func (c *Collector) Warnings() []string { return diag.Messages(c.warnings) }

// Diagnostics are the Warnings with their codes (catalog.unreadable,
// catalog.partial, catalog.limit) and locations, in the same order.
func (c *Collector) Diagnostics() []diag.Diagnostic { return c.warnings }

// Catalogers returns the catalogers the collector runs.
func (c *Collector) Catalogers() []Cataloger { return c.catalogers }
