package walk

import (
	"archive/tar"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// maxWarningsPerLayer bounds the warnings kept for one layer; the rest are
// counted in a last warning, so a hostile layer cannot fill memory with them.
const maxWarningsPerLayer = 100

// layerWriter adds one layer's entries to the Tree as the layer is read.
type layerWriter struct {
	t      *Tree
	layer  uint16
	name   string // "layer 2 (sha256:...)", for messages
	max    int    // MaxEntries
	count  int
	entry  Entry // reused for Wants; copied for visitors that want it
	chain  []chainNode
	cpath  string // the directory chain holds the nodes of
	warns  []diag.Diagnostic
	hidden int
}

// chainNode is one directory of the last entry's path: its node, and
// whether this layer has recorded it (as an entry or an implied directory).
type chainNode struct {
	id      uint32
	touched bool
}

func (t *Tree) newLayerWriter(index int, name string, max int) *layerWriter {
	return &layerWriter{t: t, layer: uint16(index), name: name, max: max}
}

// warn records a warning of code about the file at p ("" when the entry
// has no usable name), its message prefixed with the layer's name.
func (w *layerWriter) warn(code diag.Code, p string, format string, args ...any) {
	if len(w.warns) >= maxWarningsPerLayer {
		w.hidden++
		return
	}
	loc := diag.Location{Layer: w.name}
	if p != "" {
		loc.Path = "/" + p
	}
	w.warns = append(w.warns, diag.Warnf(code, "%s: %s", w.name, fmt.Sprintf(format, args...)).At(loc))
}

// flush hands the layer's warnings to the tree.
func (w *layerWriter) flush() {
	if w.hidden > 0 {
		w.warns = append(w.warns, diag.Warnf(diag.WalkTruncated, "%s: %d more warnings not shown (the first %d are)", w.name, w.hidden, maxWarningsPerLayer).At(diag.Location{Layer: w.name}))
	}
	w.t.mu.Lock()
	w.t.warnings = append(w.t.warnings, w.warns...)
	w.t.mu.Unlock()
	w.warns, w.hidden = nil, 0
}

// limits returns an error naming the layer when a limit is passed.
func (w *layerWriter) limits() error {
	if w.count > w.max {
		return fmt.Errorf("%s has more than %d entries, over the per-layer limit (%w); %s", w.name, w.max, ErrLayerTooLarge, raiseHint)
	}
	t := w.t
	if t.count > t.maxEntries {
		return fmt.Errorf("the image has more than %d entries in all, over the per-image limit, passed while reading %s (%w); %s", t.maxEntries, w.name, ErrImageTooLarge, raiseHint)
	}
	if t.names.used > t.maxNameBytes {
		return fmt.Errorf("the image's distinct names and link targets take more than %d bytes, over the limit, passed while reading %s (%w); %s", t.maxNameBytes, w.name, ErrImageTooLarge, raiseHint)
	}
	return nil
}

const raiseHint = "ordinary images, even very large ones, have at most a few hundred thousand entries, so this is likely a tar bomb; if the image is genuine, raise the limit with --max-entries N"

func (w *layerWriter) counted(n int) {
	w.count += n
	w.t.count += n
}

// dir returns the node of directory dir (a cleaned path, "" for the root),
// creating nodes as needed. With touch, every directory on the way gets a
// record of this layer (an implied directory) when it has none, as a deeper
// entry implies its parents. The last directory's nodes are kept, so entries
// of one directory cost one comparison, not a lookup per component.
func (w *layerWriter) dir(dir string, touch bool) uint32 {
	t := w.t
	// Keep the components dir shares with the last directory.
	k, i, pos := 0, 0, 0
	a, b := dir, w.cpath
	for k < len(w.chain) {
		j := i
		for j < len(a) && j < len(b) && a[j] == b[j] && a[j] != '/' {
			j++
		}
		endA := j == len(a) || a[j] == '/'
		endB := j == len(b) || b[j] == '/'
		if !endA || !endB || j == i {
			break
		}
		k++
		pos = j + 1
		if j == len(a) || j == len(b) {
			break
		}
		i = j + 1
	}
	w.chain = w.chain[:k]
	w.cpath = dir
	if touch {
		for n := range w.chain {
			if !w.chain[n].touched {
				w.touch(w.chain[n].id, false)
				w.chain[n].touched = true
			}
		}
	}
	id := uint32(0)
	if k > 0 {
		id = w.chain[k-1].id
	}
	if pos >= len(dir) {
		return id
	}
	for rest := dir[pos:]; rest != ""; {
		comp, r, _ := strings.Cut(rest, "/")
		rest = r
		next := t.child(id, comp)
		isNew := next == 0
		if isNew {
			next = t.addChild(id, comp)
			w.counted(1)
		}
		if touch {
			w.touch(next, isNew)
		}
		w.chain = append(w.chain, chainNode{id: next, touched: touch})
		id = next
	}
	return id
}

// touch gives node id an implied-directory record of this layer, unless it
// has an entry or one already.
func (w *layerWriter) touch(id uint32, isNew bool) {
	t := w.t
	if !isNew && t.layerRecord(id, w.layer, recEntry, recImplied) != 0 {
		return
	}
	t.addRecord(id, record{layer: w.layer, what: recImplied})
	if !isNew {
		w.counted(1) // a new node was counted when it was made
	}
}

// node returns the node of path p (cleaned, not the root) and of its parent
// directory, creating them.
func (w *layerWriter) node(p string, touchParents bool) uint32 {
	dir, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i], p[i+1:]
	}
	parent := w.dir(dir, touchParents)
	id := w.t.child(parent, base)
	if id == 0 {
		id = w.t.addChild(parent, base)
	}
	return id
}

// put records an entry of this layer; a later entry of the same path in the
// layer replaces it.
func (w *layerWriter) put(e *Entry) {
	t := w.t
	id := w.node(e.Path, true)
	r := record{size: e.Size, mode: uint32(e.Mode), layer: w.layer, kind: e.Kind, what: recEntry}
	ri := t.layerRecord(id, w.layer, recEntry, recImplied)
	if fits32(e.UID) && fits32(e.GID) {
		r.uid, r.gid = uint32(e.UID), uint32(e.GID)
	} else {
		r.uid, r.gid = idBig, idBig
	}
	if e.Kind == KindSymlink || e.Kind == KindHardlink {
		r.link = t.names.addLink(e.Linkname) + 1
	}
	if ri != 0 {
		old := t.recs.at(ri)
		r.next = old.next
		*old = r
	} else {
		ri = t.addRecord(id, r)
	}
	if r.uid == idBig {
		if t.bigIDs == nil {
			t.bigIDs = map[uint32][2]int{}
		}
		t.bigIDs[ri] = [2]int{e.UID, e.GID}
	}
}

func fits32(v int) bool { return v >= 0 && uint64(v) < uint64(idBig) }

// mark records a whiteout or an opaque marker of this layer on p.
func (w *layerWriter) mark(p string, what uint8) {
	var id uint32
	if what == recOpaque {
		id = w.dir(p, false)
	} else {
		id = w.node(p, false)
	}
	if w.t.layerRecord(id, w.layer, what) == 0 {
		w.t.addRecord(id, record{layer: w.layer, what: what})
	}
}

const whiteoutPrefix = ".wh."
const opaqueMarker = ".wh..wh..opq"

// header takes one tar header: it checks its name, records it in the tree,
// and returns the entry when visitors may want it. It returns an error when
// a limit is passed.
func (w *layerWriter) header(hdr *tar.Header) (*Entry, bool, error) {
	t := w.t
	e, ok := w.check(hdr)
	t.mu.Lock()
	defer t.mu.Unlock()
	w.counted(1)
	if ok {
		switch {
		case e.Kind == kindWhiteout:
			w.mark(e.Path, recWhiteout)
			ok = false
		case e.Kind == kindOpaque:
			if e.Path != "" { // a root opaque marker hides nothing
				w.mark(e.Path, recOpaque)
			}
			ok = false
		default:
			w.put(e)
		}
	}
	return e, ok, w.limits()
}

// Kinds used inside header only.
const (
	kindWhiteout Kind = 100 + iota
	kindOpaque
)

// check turns a tar header into an entry, a whiteout or an opaque marker
// (in w.entry), with the safety checks every name gets; ok is false for
// headers that are nothing to record.
func (w *layerWriter) check(hdr *tar.Header) (*Entry, bool) {
	raw := hdr.Name
	if len(raw) > maxPathLen {
		w.warn(diag.WalkLongName, "", "entry name of %d bytes (%.60q...) skipped: longer than the %d bytes a path can have", len(raw), raw, maxPathLen)
		return nil, false
	}
	if strings.IndexByte(raw, 0) >= 0 {
		w.warn(diag.WalkNULName, "", "entry name with a NUL byte skipped: %q", raw)
		return nil, false
	}
	p := cleanRel(raw)
	switch {
	case hasDotDot(raw):
		w.warn(diag.WalkClimbingName, p, "entry %q climbs with \"..\"; read as /%s inside the image", raw, p)
	case strings.HasPrefix(raw, "/"):
		w.warn(diag.WalkAbsoluteName, p, "entry %q is an absolute name; read as /%s inside the image", raw, p)
	}
	if p == "" {
		return nil, false // the root itself
	}
	e := &w.entry
	*e = Entry{Path: p, Layer: int(w.layer)}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if base == opaqueMarker {
		e.Kind, e.Path = kindOpaque, dir
		return e, true
	}
	if target, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if target == "" || target == "." || target == ".." {
			w.warn(diag.WalkOrphanWhiteout, p, "whiteout %q names nothing; ignored", raw)
			return nil, false
		}
		if dir != "" {
			target = dir + "/" + target
		}
		e.Kind, e.Path = kindWhiteout, target
		return e, true
	}
	e.Mode = hdr.FileInfo().Mode()
	e.Size = hdr.Size
	e.UID, e.GID = hdr.Uid, hdr.Gid
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Kind = KindFile
	case tar.TypeDir:
		e.Kind = KindDir
		e.Size = 0
	case tar.TypeSymlink, tar.TypeLink:
		if len(hdr.Linkname) > maxPathLen {
			w.warn(diag.WalkLongLink, p, "link /%s skipped: its target is %d bytes, longer than the %d bytes a path can have", p, len(hdr.Linkname), maxPathLen)
			return nil, false
		}
		e.Size = 0
		if hdr.Typeflag == tar.TypeSymlink {
			e.Kind = KindSymlink
			e.Linkname = hdr.Linkname
			if escapes(p, hdr.Linkname) {
				w.warn(diag.WalkSymlinkEscape, p, "symlink /%s points outside the image (%s); it is resolved within the image root", p, hdr.Linkname)
			}
			break
		}
		e.Kind = KindHardlink
		e.Linkname = cleanRel(hdr.Linkname)
		if hasDotDot(hdr.Linkname) {
			w.warn(diag.WalkHardLinkRenamed, p, "hard link /%s names %q; read as /%s inside the image", p, hdr.Linkname, e.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Kind = KindOther
		e.Size = 0
	case tar.TypeXGlobalHeader:
		return nil, false
	default:
		w.warn(diag.WalkUnknownType, p, "entry /%s of unknown tar type %q skipped", p, hdr.Typeflag)
		return nil, false
	}
	return e, true
}

// hasDotDot reports whether a name has a ".." component.
func hasDotDot(name string) bool {
	for name != "" {
		var c string
		c, name, _ = strings.Cut(name, "/")
		if c == ".." {
			return true
		}
	}
	return false
}

// maxLayers is how many layers a walk takes (layer numbers are 16 bits in
// the Tree); real images have tens.
const maxLayers = math.MaxUint16
