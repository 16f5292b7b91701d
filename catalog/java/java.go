// Package java reads Java packages: the Maven metadata inside archives
// (jar, war, ear and their kin, nested to a bounded depth) and the declared
// dependencies of build files (gradle.lockfile, pom.xml).
package java

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Default bounds on hostile archives. Real jars nest one or two levels
// (ear > war > jar, fat jar > jar); nested jars are rarely over 100 MB;
// jars are compressed class files, so a nested jar compresses little
// further, while a zip bomb expands a thousandfold.
const (
	DefaultMaxDepth     = 4
	DefaultMaxEntrySize = 512 << 20 // uncompressed size of one nested archive
	DefaultMaxTotal     = 2 << 30   // uncompressed bytes read from one top-level archive
	DefaultMaxRatio     = 100       // uncompressed/compressed size of a nested archive

	maxMetaFile = 1 << 20  // MANIFEST.MF, pom.properties
	memLimit    = 16 << 20 // nested archives up to this size are held in memory
	maxPackages = 1 << 16
)

// archiveExts are syft's Java archive globs (**/*.jar, ...).
var archiveExts = []string{".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi", ".kar", ".far", ".lpkg", ".rar", ".zap"}

func isArchive(name string) bool {
	for _, e := range archiveExts {
		if strings.HasSuffix(name, e) && len(name) > len(e) {
			return true
		}
	}
	return false
}

// Cataloger reads the Maven identity of Java archives.
type Cataloger struct {
	opts     Options
	indexErr error
}

// Options tune the archive cataloger.
type Options struct {
	// SHA1Index identifies archives that carry no Maven metadata by the
	// SHA-1 of their bytes (lower-case hex). Without an entry such an
	// archive is skipped: bulkhead does not guess and does not ask a
	// network service.
	SHA1Index map[string]Coordinates
	// MaxDepth is how deep archives nest before bulkhead stops opening them.
	MaxDepth int
	// MaxEntrySize and MaxTotal bound the uncompressed bytes of one nested
	// archive and of everything opened inside one top-level archive.
	MaxEntrySize, MaxTotal int64
	// MaxRatio bounds the compression ratio of a nested archive.
	MaxRatio int64
}

// Option sets an option of New.
type Option func(*Options)

// WithSHA1Index sets the SHA-1 index for archives without Maven metadata.
func WithSHA1Index(idx map[string]Coordinates) Option {
	return func(o *Options) { o.SHA1Index = idx }
}

// WithLimits sets the nesting depth and size bounds (zero keeps a default).
func WithLimits(maxDepth int, maxEntrySize, maxTotal, maxRatio int64) Option {
	return func(o *Options) {
		o.MaxDepth, o.MaxEntrySize, o.MaxTotal, o.MaxRatio = maxDepth, maxEntrySize, maxTotal, maxRatio
	}
}

// New returns the Java archive cataloger. Unless an option sets one, the
// SHA-1 index is loaded from the CSV file named by BULKHEAD_JAVA_SHA1_INDEX
// (see LoadSHA1Index); a file that cannot be loaded is reported when an
// archive needs it.
func New(opts ...Option) *Cataloger {
	c := &Cataloger{}
	for _, o := range opts {
		o(&c.opts)
	}
	if c.opts.SHA1Index == nil {
		if p := os.Getenv(SHA1IndexEnv); p != "" {
			c.opts.SHA1Index, c.indexErr = LoadSHA1Index(p)
		}
	}
	if c.opts.MaxDepth <= 0 {
		c.opts.MaxDepth = DefaultMaxDepth
	}
	if c.opts.MaxEntrySize <= 0 {
		c.opts.MaxEntrySize = DefaultMaxEntrySize
	}
	if c.opts.MaxTotal <= 0 {
		c.opts.MaxTotal = DefaultMaxTotal
	}
	if c.opts.MaxRatio <= 0 {
		c.opts.MaxRatio = DefaultMaxRatio
	}
	return c
}

var (
	_ catalog.Cataloger = (*Cataloger)(nil)
	_ catalog.Scoped    = (*Cataloger)(nil)
)

// Name implements catalog.Cataloger.
func (*Cataloger) Name() string { return "java" }

// Scope implements catalog.Scoped: archives are deployed in images and
// checked into source trees alike.
func (*Cataloger) Scope() catalog.Scope { return catalog.ScopeAll }

// Match implements catalog.Cataloger.
func (*Cataloger) Match(p string) bool { return isArchive(path.Base(p)) }

// Parse implements catalog.Cataloger. Packages found in nested archives
// carry a Location "outer.war:WEB-INF/lib/inner.jar" (one ":" per level).
// A nested archive that is corrupt, over a bound (size, compression ratio,
// total) or nested deeper than MaxDepth is skipped, and named in a
// *catalog.PartialError returned with the packages found, so that the scan
// warns about it.
func (c *Cataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	ra, size, cleanup, err := readerAt(in)
	if err != nil {
		return nil, fmt.Errorf("java archive %s: %w", in.Path, err)
	}
	defer cleanup()
	w := &walker{ctx: ctx, opts: &c.opts, indexErr: c.indexErr, tempDir: in.TempDir, budget: c.opts.MaxTotal}
	if err := w.archive(ra, size, in.Path, path.Base(in.Path), "", 0); err != nil {
		if errors.Is(err, errNotZip) && strings.HasSuffix(in.Path, ".rar") {
			return nil, nil // a RAR archive, not a Java resource adapter
		}
		return nil, fmt.Errorf("java archive %s: %w", in.Path, err)
	}
	if err := catalog.Partial(w.problems...); err != nil {
		return w.pkgs, fmt.Errorf("java archive %s: %w", in.Path, err)
	}
	return w.pkgs, nil
}

// readerAt gives random access to the input, buffering it when the Input
// offers only a stream.
func readerAt(in catalog.Input) (io.ReaderAt, int64, func(), error) {
	nop := func() {}
	if in.ReaderAt != nil {
		ra, err := in.ReaderAt()
		if err != nil {
			return nil, 0, nop, err
		}
		return ra, in.Size, nop, nil
	}
	if in.Size >= 0 && in.Size <= memLimit {
		b, err := io.ReadAll(io.LimitReader(in.Reader, memLimit+1))
		if err != nil {
			return nil, 0, nop, fmt.Errorf("read: %w", err)
		}
		if len(b) <= memLimit {
			return bytes.NewReader(b), int64(len(b)), nop, nil
		}
		in.Reader = io.MultiReader(bytes.NewReader(b), in.Reader)
	}
	name, cleanup, err := in.SpoolFile("bulkhead-jar-*")
	if err != nil {
		return nil, 0, nop, err
	}
	f, err := os.Open(name)
	if err != nil {
		cleanup()
		return nil, 0, nop, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		cleanup()
		return nil, 0, nop, err
	}
	return f, fi.Size(), func() { f.Close(); cleanup() }, nil
}

var errNotZip = errors.New("not a zip archive")

type walker struct {
	ctx      context.Context
	opts     *Options
	indexErr error
	tempDir  string
	budget   int64 // uncompressed bytes left to open
	pkgs     []inventory.Package
	// problems are the parts skipped, for the warnings (catalog.Partial
	// keeps the first catalog.MaxProblems distinct ones).
	problems []error
	dropped  int
}

// maxNotes bounds the problems kept in memory for one top-level archive.
const maxNotes = 4 * catalog.MaxProblems

func (w *walker) note(err error) {
	if len(w.problems) < maxNotes {
		w.problems = append(w.problems, err)
		return
	}
	if w.dropped++; w.dropped == 1 {
		w.problems = append(w.problems, errors.New("more problems in this archive were not recorded"))
	}
}

// archive catalogs one zip archive: location is "" for the top level and
// "/outer.war:WEB-INF/lib/inner.jar" below it; depth counts the nesting.
func (w *walker) archive(ra io.ReaderAt, size int64, top, fileName, location string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if errors.Is(err, zip.ErrFormat) {
			return fmt.Errorf("%w: %v", errNotZip, err)
		}
		return fmt.Errorf("open zip: %w", err)
	}
	w.identify(zr, ra, size, fileName, location)
	for _, f := range zr.File {
		if !isArchive(strings.ToLower(f.Name)) || strings.HasSuffix(f.Name, "/") {
			continue
		}
		loc := location
		if loc == "" {
			loc = top
		}
		loc += ":" + f.Name
		if depth+1 > w.opts.MaxDepth {
			// Not opened, and said so: a hostile image must not hide a
			// library by nesting it deeper than the limit.
			w.note(fmt.Errorf("%s: nested %d archives deep, over the limit of %d: not opened, its packages are not listed", loc, depth+1, w.opts.MaxDepth))
			continue
		}
		if err := w.nested(f, ra, loc, depth+1); err != nil {
			if ctxErr := w.ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			w.note(fmt.Errorf("%s: %w", loc, err))
		}
	}
	return nil
}

// nested opens one archive inside another.
func (w *walker) nested(f *zip.File, outer io.ReaderAt, loc string, depth int) error {
	usize, csize := int64(f.UncompressedSize64), int64(f.CompressedSize64)
	switch {
	case f.UncompressedSize64 > uint64(w.opts.MaxEntrySize):
		return fmt.Errorf("nested archive of %d bytes is over the %d-byte limit", f.UncompressedSize64, w.opts.MaxEntrySize)
	case f.Method != zip.Store && (csize <= 0 || usize/max(csize, 1) > w.opts.MaxRatio):
		return fmt.Errorf("nested archive expands %d bytes to %d, over the %d:1 ratio limit (a zip bomb?)", csize, usize, w.opts.MaxRatio)
	case usize > w.budget:
		return fmt.Errorf("archive expands to more than %d bytes in all; skipped the rest", w.opts.MaxTotal)
	}
	w.budget -= usize
	name := path.Base(f.Name)
	// A stored entry is its own bytes: read it in place (fat jars store
	// their nested jars uncompressed for this reason).
	if f.Method == zip.Store {
		off, err := f.DataOffset()
		if err != nil {
			return err
		}
		if f.CompressedSize64 != f.UncompressedSize64 {
			return fmt.Errorf("stored entry declares %d bytes compressed but %d uncompressed", f.CompressedSize64, f.UncompressedSize64)
		}
		return w.archive(io.NewSectionReader(outer, off, usize), usize, "", name, loc, depth)
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	// archive/zip fails a read past the declared size; the limit makes
	// sure of it for any decompressor.
	lr := io.LimitReader(rc, usize+1)
	if usize <= memLimit {
		b, err := io.ReadAll(lr)
		if err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
		if int64(len(b)) != usize {
			return fmt.Errorf("entry declares %d bytes but holds %d", usize, len(b))
		}
		return w.archive(bytes.NewReader(b), usize, "", name, loc, depth)
	}
	tf, err := os.CreateTemp(w.tempDir, "bulkhead-nested-*.jar")
	if err != nil {
		return fmt.Errorf("spool nested archive: %w (set TMPDIR to a directory with free space)", err)
	}
	defer func() { tf.Close(); os.Remove(tf.Name()) }()
	n, err := io.Copy(tf, lr)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if n != usize {
		return fmt.Errorf("entry declares %d bytes but holds %d", usize, n)
	}
	return w.archive(tf, usize, "", name, loc, depth)
}

// identify adds the packages one archive describes: one per Maven
// pom.properties; failing those, the archive itself from its manifest;
// failing that, the archive's SHA-1 in the user's index.
func (w *walker) identify(zr *zip.Reader, ra io.ReaderAt, size int64, fileName, location string) bool {
	var manifest *zip.File
	n := 0
	seen := map[string]bool{}
	for _, f := range zr.File {
		switch {
		case isPomProperties(f.Name):
			b, err := readSmall(f)
			if err != nil {
				w.note(fmt.Errorf("%s: %w", f.Name, err))
				continue
			}
			props := parseProperties(b)
			g, a, v := props["groupId"], props["artifactId"], props["version"]
			if g == "" || a == "" || v == "" || seen[g+":"+a+":"+v] {
				continue
			}
			seen[g+":"+a+":"+v] = true
			w.add(newPackage(g, a, v), location)
			n++
		case strings.EqualFold(f.Name, "META-INF/MANIFEST.MF"):
			manifest = f
		}
	}
	if n > 0 {
		// The manifest's licence is the archive's own: it belongs to the
		// package only when the archive holds no other (not shaded).
		if n == 1 && manifest != nil {
			if b, err := readSmall(manifest); err == nil {
				w.pkgs[len(w.pkgs)-1].Licenses = parseManifest(b).licenses()
			}
		}
		return true
	}
	if manifest != nil {
		if b, err := readSmall(manifest); err == nil {
			m := parseManifest(b)
			if p, ok := m.pkg(fileName); ok {
				w.add(p, location)
				return true
			}
		} else {
			w.note(fmt.Errorf("META-INF/MANIFEST.MF: %w", err))
		}
	}
	if len(w.opts.SHA1Index) == 0 {
		if w.indexErr != nil {
			w.note(w.indexErr)
		}
		return false
	}
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(ra, 0, size)); err != nil {
		w.note(fmt.Errorf("hash: %w", err))
		return false
	}
	if c, ok := w.opts.SHA1Index[hex.EncodeToString(h.Sum(nil))]; ok {
		w.add(newPackage(c.Group, c.Artifact, c.Version), location)
		return true
	}
	return false
}

func (w *walker) add(p inventory.Package, location string) {
	if len(w.pkgs) >= maxPackages {
		w.note(fmt.Errorf("more than %d packages in one archive; skipped the rest", maxPackages))
		return
	}
	if location != "" {
		p.Locations = []inventory.Location{{Path: location}}
	}
	w.pkgs = append(w.pkgs, p)
}

// isPomProperties matches META-INF/maven/<group>/<artifact>/pom.properties
// at any depth (shaded jars keep those of the jars they absorbed).
func isPomProperties(name string) bool {
	return strings.HasSuffix(name, "/pom.properties") && (strings.HasPrefix(name, "META-INF/maven/") || strings.Contains(name, "/META-INF/maven/"))
}

// readSmall reads a metadata entry, refusing one over maxMetaFile.
func readSmall(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxMetaFile {
		return nil, fmt.Errorf("%d bytes is over the %d-byte limit for metadata files", f.UncompressedSize64, maxMetaFile)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return catalog.ReadLimited(rc, maxMetaFile)
}

// newPackage names a Maven package "group:artifact", as Maven and OSV do;
// without a group it is the artifact alone.
func newPackage(group, artifact, version string) inventory.Package {
	name := artifact
	if group != "" {
		name = group + ":" + artifact
	}
	return inventory.Package{
		Name:    name,
		Version: version,
		Type:    inventory.TypeMaven,
		PURL:    packageurl.NewPackageURL(packageurl.TypeMaven, group, artifact, version, nil, "").ToString(),
	}
}
