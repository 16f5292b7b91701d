package walk

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Options bound what a walk may read and where it may write.
type Options struct {
	// TempDir is the scan's own temp space; large files are spooled there.
	TempDir string
	// MaxFileSize is the largest file a visitor may get random access to.
	MaxFileSize int64
	// MaxLayerBytes is the most uncompressed tar bytes read from one layer.
	MaxLayerBytes int64
	// MaxEntries is the most entries read from one layer.
	MaxEntries int
	// Jobs is how many layers are read at once (default: number of CPUs).
	Jobs int
	// Progress, when set, is told as layers start and finish.
	Progress func(Progress)
}

// Progress reports one layer's state.
type Progress struct {
	Layer LayerInfo
	Done  bool
	Bytes int64 // uncompressed bytes read so far (when Done)
}

// Defaults for Options fields left zero.
const (
	DefaultMaxFileSize   = 1 << 30
	DefaultMaxLayerBytes = 64 << 30
	DefaultMaxEntries    = 4 << 20
	maxPathLen           = 4096
)

func (o *Options) defaults() {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxLayerBytes <= 0 {
		o.MaxLayerBytes = DefaultMaxLayerBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.GOMAXPROCS(0)
	}
}

// ErrLayerTooLarge is returned when a layer is bigger than MaxLayerBytes or
// has more than MaxEntries entries (a decompression bomb, for instance).
var ErrLayerTooLarge = errors.New("layer exceeds the walk's limits")

// Walk reads every layer once, offers its entries to the visitors, and
// returns the final view. Visitors implementing Finisher are finished, in
// order, after the view is complete.
func Walk(ctx context.Context, layers []Layer, visitors []Visitor, opts Options) (*Tree, error) {
	opts.defaults()
	t := newTree(len(layers))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for i := range layers {
		l := layers[i]
		g.Go(func() error {
			rec, err := walkLayer(ctx, l, visitors, &opts)
			if err != nil {
				return err
			}
			t.addLayer(rec)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	t.finish()
	for _, v := range visitors {
		if f, ok := v.(Finisher); ok {
			if err := f.Finish(t); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

func layerName(info LayerInfo) string {
	if info.Digest != "" {
		return fmt.Sprintf("layer %d (%s)", info.Index, info.Digest)
	}
	return fmt.Sprintf("layer %d", info.Index)
}

// countingReader stops a layer at the byte limit.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, fmt.Errorf("%w: more than %d uncompressed bytes", ErrLayerTooLarge, c.limit)
	}
	return n, err
}

type pendingLink struct {
	entry    *Entry
	visitors []Visitor
}

func walkLayer(ctx context.Context, l Layer, visitors []Visitor, opts *Options) (*layerRecord, error) {
	name := layerName(l.Info)
	if opts.Progress != nil {
		opts.Progress(Progress{Layer: l.Info})
	}
	rc, err := l.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, limit: opts.MaxLayerBytes}
	rec := newLayerRecord(l.Info.Index)
	var pending map[string][]pendingLink
	tr := tar.NewReader(cr)
	// Content handed to visitors counts against the layer's limit too:
	// sparse entries can announce far more bytes than the layer holds.
	logical := &countingReader{r: tr, limit: opts.MaxLayerBytes}
	count := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, verifyFailure(rc, err))
		}
		count++
		if count > opts.MaxEntries {
			return nil, fmt.Errorf("read %s: %w: more than %d entries", name, ErrLayerTooLarge, opts.MaxEntries)
		}
		e, ok := rec.record(hdr)
		if !ok {
			continue
		}
		var wanted []Visitor
		for _, v := range visitors {
			if v.Wants(e) {
				wanted = append(wanted, v)
			}
		}
		if len(wanted) == 0 {
			continue
		}
		if e.Kind == KindHardlink {
			if pending == nil {
				pending = map[string][]pendingLink{}
			}
			pending[e.Linkname] = append(pending[e.Linkname], pendingLink{entry: e, visitors: wanted})
			continue
		}
		size := e.Size
		if e.Kind != KindFile {
			size = 0
		}
		visit(rec, name, e, newContent(logical, size, opts.TempDir, opts.MaxFileSize), wanted)
		if logical.n > logical.limit {
			return nil, fmt.Errorf("read %s: %w: files expand past %d bytes", name, ErrLayerTooLarge, logical.limit)
		}
	}
	// Read to the end so that digest checks in the opener see every byte.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, verifyFailure(rc, err))
	}
	if err := rc.Close(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(pending) > 0 {
		if err := serveHardlinks(ctx, l, name, rec, pending, opts); err != nil {
			return nil, err
		}
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Layer: l.Info, Done: true, Bytes: cr.n})
	}
	return rec, nil
}

// verifier is implemented by layer streams that can check their digest
// when their content proved unreadable.
type verifier interface{ Verify() error }

// verifyFailure prefers a digest error over the read error it caused.
func verifyFailure(rc io.ReadCloser, err error) error {
	if errors.Is(err, ErrLayerTooLarge) {
		return err
	}
	if v, ok := rc.(verifier); ok {
		if verr := v.Verify(); verr != nil {
			return fmt.Errorf("%w (reading it failed with: %v)", verr, err)
		}
	}
	return err
}

func visit(rec *layerRecord, layer string, e *Entry, c *Content, wanted []Visitor) {
	defer c.close()
	if len(wanted) > 1 {
		if _, err := c.ReaderAt(); err != nil {
			rec.warnings = append(rec.warnings, fmt.Sprintf("%s: /%s: %v", layer, e.Path, err))
			return
		}
	}
	for i, v := range wanted {
		cc := c
		if i > 0 {
			cc = c.fork()
		}
		if err := v.Visit(e, cc); err != nil {
			rec.warnings = append(rec.warnings, fmt.Sprintf("%s: /%s: %v", layer, e.Path, err))
		}
	}
}

// serveHardlinks reads the layer a second time for hard links that visitors
// wanted: a tar hard link names a file that came earlier in the stream.
func serveHardlinks(ctx context.Context, l Layer, name string, rec *layerRecord, pending map[string][]pendingLink, opts *Options) error {
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("reopen %s for hard links: %w", name, err)
	}
	defer rc.Close()
	tr := tar.NewReader(&countingReader{r: rc, limit: opts.MaxLayerBytes})
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reread %s: %w", name, err)
		}
		p := cleanRel(hdr.Name)
		links, ok := pending[p]
		if !ok || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA) {
			continue
		}
		delete(pending, p)
		c := newContent(tr, hdr.Size, opts.TempDir, opts.MaxFileSize)
		if len(links) > 1 {
			if _, err := c.ReaderAt(); err != nil {
				rec.warnings = append(rec.warnings, fmt.Sprintf("%s: /%s: %v", name, p, err))
				continue
			}
		}
		for _, pl := range links {
			e := *pl.entry
			e.Size = hdr.Size
			cc := c
			if len(links) > 1 {
				cc = c.fork()
			}
			visit(rec, name, &e, cc, pl.visitors)
		}
		c.close()
	}
	for target, links := range pending {
		for _, pl := range links {
			rec.warnings = append(rec.warnings, fmt.Sprintf("%s: hard link /%s names /%s, which is not a regular file earlier in the layer", name, pl.entry.Path, target))
		}
	}
	return nil
}

const whiteoutPrefix = ".wh."
const opaqueMarker = ".wh..wh..opq"

// record turns a tar header into an entry (or a whiteout), with the safety
// checks every name gets. It reports false for headers that are not entries.
func (r *layerRecord) record(hdr *tar.Header) (*Entry, bool) {
	raw := hdr.Name
	if len(raw) > maxPathLen {
		r.warnings = append(r.warnings, fmt.Sprintf("layer %d: entry name of %d bytes skipped", r.index, len(raw)))
		return nil, false
	}
	if strings.ContainsRune(raw, 0) {
		r.warnings = append(r.warnings, fmt.Sprintf("layer %d: entry name with a NUL byte skipped: %q", r.index, raw))
		return nil, false
	}
	p := cleanRel(raw)
	if hasDotDot(raw) {
		r.warnings = append(r.warnings, fmt.Sprintf("layer %d: entry %q climbs with \"..\"; read as /%s inside the image", r.index, raw, p))
	}
	if p == "" {
		return nil, false // the root itself
	}
	base := path.Base(p)
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	if base == opaqueMarker {
		r.opaques = append(r.opaques, dir)
		return nil, false
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		target := base[len(whiteoutPrefix):]
		if dir != "" {
			target = dir + "/" + target
		}
		r.whiteouts = append(r.whiteouts, target)
		return nil, false
	}
	e := &Entry{
		Path:  p,
		Mode:  hdr.FileInfo().Mode(),
		Size:  hdr.Size,
		UID:   hdr.Uid,
		GID:   hdr.Gid,
		Layer: r.index,
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Kind = KindFile
	case tar.TypeDir:
		e.Kind = KindDir
		e.Size = 0
	case tar.TypeSymlink:
		e.Kind = KindSymlink
		e.Linkname = hdr.Linkname
		e.Size = 0
		if escapes(p, hdr.Linkname) {
			r.warnings = append(r.warnings, fmt.Sprintf("layer %d: symlink /%s points outside the image (%s); it is resolved within the image root", r.index, p, hdr.Linkname))
		}
	case tar.TypeLink:
		e.Kind = KindHardlink
		e.Linkname = cleanRel(hdr.Linkname)
		e.Size = 0
		if hasDotDot(hdr.Linkname) {
			r.warnings = append(r.warnings, fmt.Sprintf("layer %d: hard link /%s names %q; read as /%s inside the image", r.index, p, hdr.Linkname, e.Linkname))
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Kind = KindOther
		e.Size = 0
	case tar.TypeXGlobalHeader:
		return nil, false
	default:
		r.warnings = append(r.warnings, fmt.Sprintf("layer %d: entry /%s of unknown tar type %q skipped", r.index, p, hdr.Typeflag))
		return nil, false
	}
	r.entries[p] = e
	return e, true
}

func hasDotDot(name string) bool {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}
