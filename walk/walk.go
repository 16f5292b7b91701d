package walk

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/trace"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// Options bound what a walk may read and where it may write.
type Options struct {
	// TempDir is the scan's own temp space; large files are spooled there.
	TempDir string
	// MaxFileSize is the largest file a visitor may get random access to.
	MaxFileSize int64
	// MaxLayerBytes is the most uncompressed tar bytes read from one layer.
	MaxLayerBytes int64
	// MaxEntries is the most entries read from one layer, and
	// MaxImageEntries from all layers together. Entries are tar entries,
	// plus the parent directories a layer implies without listing them.
	MaxEntries      int
	MaxImageEntries int // at most about 67M (the Tree's node ids are 26 bits)
	// MaxNameBytes bounds the bytes of the distinct names (last path
	// components) and link targets the walk keeps for the whole image
	// (default: 32 bytes an entry of MaxImageEntries).
	MaxNameBytes int64
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
//
// The entry limits are set far above real images, which have from a few
// thousand files to about 100k-500k for the largest (CUDA, ML toolchains,
// big node_modules), yet low enough that the walk of the largest image they
// admit stays within a few hundred MB: the Tree costs about 55 bytes an
// entry plus its name (2M entries: about 110 MB for the tree, under 500 MB
// peak RSS for the whole scan).
const (
	DefaultMaxFileSize       = 1 << 30
	DefaultMaxLayerBytes     = 64 << 30
	DefaultMaxEntries        = 1 << 20 // per layer: 1,048,576
	DefaultMaxImageEntries   = 2 << 20 // per image: 2,097,152
	defaultNameBytesPerEntry = 32      // MaxNameBytes per MaxImageEntries
	maxNameBytesCeiling      = 1 << 31 // arena offsets are 32 bits
	maxPathLen               = 4096
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
	if o.MaxImageEntries <= 0 {
		o.MaxImageEntries = DefaultMaxImageEntries
	}
	// A header may add a path's worth of nodes before the check.
	o.MaxImageEntries = min(o.MaxImageEntries, maxNodes-maxPathLen)
	if o.MaxNameBytes <= 0 {
		o.MaxNameBytes = defaultNameBytesPerEntry * int64(o.MaxImageEntries)
	}
	o.MaxNameBytes = min(o.MaxNameBytes, maxNameBytesCeiling)
	if o.Jobs <= 0 {
		o.Jobs = runtime.GOMAXPROCS(0)
	}
}

// ErrLayerTooLarge is returned when a layer is bigger than MaxLayerBytes or
// has more than MaxEntries entries (a decompression bomb, for instance).
var ErrLayerTooLarge = errors.New("layer exceeds the walk's limits")

// ErrImageTooLarge is returned when the layers together have more than
// MaxImageEntries entries or MaxNameBytes of names, or the image has more
// layers than a walk takes.
var ErrImageTooLarge = errors.New("image exceeds the walk's limits")

// Walk reads every layer once, offers its entries to the visitors, and
// returns the final view. Visitors implementing Finisher are finished, in
// order, after the view is complete.
func Walk(ctx context.Context, layers []Layer, visitors []Visitor, opts Options) (*Tree, error) {
	opts.defaults()
	n := 0
	for _, l := range layers {
		if l.Info.Index < 0 || l.Info.Index >= maxLayers {
			return nil, fmt.Errorf("%w: layer index %d out of range (a walk takes at most %d layers)", ErrImageTooLarge, l.Info.Index, maxLayers)
		}
		n = max(n, l.Info.Index+1)
	}
	t := newTree(n, opts.MaxImageEntries, opts.MaxNameBytes)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for _, l := range largestFirst(layers) {
		g.Go(func() error {
			w := t.newLayerWriter(l.Info.Index, layerName(l.Info), opts.MaxEntries)
			if err := walkLayer(ctx, l, w, visitors, &opts); err != nil {
				return err
			}
			w.flush()
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

// largestFirst orders the layers by stored size, largest first (index
// order among equal or unknown sizes). With fewer jobs than layers, a large
// layer started last would be read alone at the end while the other CPUs
// idle; started first, the small layers are read beside it. Each layer
// writes its own slot of the tree, so the order read changes no result.
func largestFirst(layers []Layer) []Layer {
	out := slices.Clone(layers)
	slices.SortStableFunc(out, func(a, b Layer) int {
		return cmp.Compare(max(b.Info.Size, 0), max(a.Info.Size, 0))
	})
	return out
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

// maxPendingLinks bounds the hard links of one layer kept to be served by a
// second read (real layers have a handful that a visitor wants).
const maxPendingLinks = 1 << 16

type pendingLink struct {
	entry    *Entry
	visitors []Visitor
}

func walkLayer(ctx context.Context, l Layer, w *layerWriter, visitors []Visitor, opts *Options) error {
	name := w.name
	defer trace.StartRegion(ctx, "walk layer").End()
	trace.Log(ctx, "layer", name)
	if opts.Progress != nil {
		opts.Progress(Progress{Layer: l.Info})
	}
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, limit: opts.MaxLayerBytes}
	var pending map[string][]pendingLink
	tr := tar.NewReader(cr)
	// Content handed to visitors counts against the layer's limit too:
	// sparse entries can announce far more bytes than the layer holds.
	logical := &countingReader{r: tr, limit: opts.MaxLayerBytes}
	var wanted []Visitor
	npending := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, verifyFailure(rc, err))
		}
		e, ok, err := w.header(hdr)
		if err != nil {
			return err // names the layer
		}
		if !ok {
			continue
		}
		wanted = wanted[:0]
		for _, v := range visitors {
			if v.Wants(e) {
				wanted = append(wanted, v)
			}
		}
		if len(wanted) == 0 {
			continue
		}
		// e is the layer's scratch entry: visitors get their own copy.
		own := *e
		e = &own
		if e.Kind == KindHardlink {
			if npending >= maxPendingLinks {
				w.warn(diag.WalkHardLinkLimit, e.Path, "hard link /%s not read: more than %d hard links in the layer are wanted", e.Path, maxPendingLinks)
				continue
			}
			npending++
			if pending == nil {
				pending = map[string][]pendingLink{}
			}
			pending[e.Linkname] = append(pending[e.Linkname], pendingLink{entry: e, visitors: slices.Clone(wanted)})
			continue
		}
		size := e.Size
		if e.Kind != KindFile {
			size = 0
		}
		visit(w, e, newContent(logical, size, opts.TempDir, opts.MaxFileSize), wanted)
		if logical.n > logical.limit {
			return fmt.Errorf("read %s: %w: files expand past %d bytes", name, ErrLayerTooLarge, logical.limit)
		}
	}
	// Read to the end so that digest checks in the opener see every byte.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("read %s: %w", name, verifyFailure(rc, err))
	}
	if err := rc.Close(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if len(pending) > 0 {
		if err := serveHardlinks(ctx, l, w, pending, opts); err != nil {
			return err
		}
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Layer: l.Info, Done: true, Bytes: cr.n})
	}
	return nil
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

func visit(w *layerWriter, e *Entry, c *Content, wanted []Visitor) {
	defer c.close()
	if len(wanted) > 1 {
		if _, err := c.ReaderAt(); err != nil {
			w.warn(diag.WalkFileUnread, e.Path, "/%s: %v", e.Path, err)
			return
		}
	}
	for i, v := range wanted {
		cc := c
		if i > 0 {
			cc = c.fork()
		}
		if err := v.Visit(e, cc); err != nil {
			w.warn(diag.WalkFileUnread, e.Path, "/%s: %v", e.Path, err)
		}
	}
}

// serveHardlinks reads the layer a second time for hard links that visitors
// wanted: a tar hard link names a file that came earlier in the stream.
func serveHardlinks(ctx context.Context, l Layer, w *layerWriter, pending map[string][]pendingLink, opts *Options) error {
	name := w.name
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
				w.warn(diag.WalkFileUnread, p, "/%s: %v", p, err)
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
			visit(w, &e, cc, pl.visitors)
		}
		c.close()
	}
	for target, links := range pending {
		for _, pl := range links {
			w.warn(diag.WalkHardLinkDangling, pl.entry.Path, "hard link /%s names /%s, which is not a regular file earlier in the layer", pl.entry.Path, target)
		}
	}
	return nil
}
