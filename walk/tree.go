package walk

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// State is what became of one layer's instance of a path in the final view.
type State uint8

const (
	// Visible: the instance is what the final filesystem shows.
	Visible State = iota
	// Shadowed: a later layer wrote the same path again, with no deletion in
	// between (an upgrade of a package database, say).
	Shadowed
	// Deleted: a later layer removed the path (a whiteout, an opaque
	// directory, or a non-directory put in place of a parent directory).
	Deleted
)

func (s State) String() string {
	return [...]string{"visible", "shadowed", "deleted"}[s]
}

// Tree is the final view of a walked image, built from every layer's entries
// and whiteouts. It answers which instance of a path is visible and resolves
// symlinks without leaving the image root. Safe for concurrent reads once the
// walk has returned.
//
// It is stored compactly (see store.go): a walk's memory grows by about 55
// bytes per entry plus its name, and the entry limits of Options bound it.
type Tree struct {
	mu      sync.Mutex
	layers  int // highest layer index + 1
	nodes   chunked[node]
	recs    chunked[record]
	names   arena
	kidsIdx childIndex
	bigIDs  map[uint32][2]int // record -> uid, gid that do not fit 32 bits

	maxEntries   int
	maxNameBytes int64
	count        int // entries so far, against maxEntries

	// set by finish
	kids     []uint32 // children of each node, sorted by name
	kidStart []uint32 // kids[kidStart[n]:kidStart[n+1]] are node n's
	visible  int
	warnings []diag.Diagnostic
}

func newTree(layers, maxEntries int, maxNameBytes int64) *Tree {
	t := &Tree{layers: layers, maxEntries: maxEntries, maxNameBytes: maxNameBytes}
	t.kidsIdx.seed = maphash.MakeSeed()
	t.nodes.add(node{})  // the root
	t.recs.add(record{}) // record 0 means none
	return t
}

// records calls fn for each record of node id.
func (t *Tree) records(id uint32, fn func(ri uint32, r *record)) {
	for ri := t.nodes.at(id).first; ri != 0; {
		r := t.recs.at(ri)
		fn(ri, r)
		ri = r.next
	}
}

// layerRecord returns node id's record of the given kind (an entry or an
// implied directory count as one kind) from layer, or 0.
func (t *Tree) layerRecord(id uint32, layer uint16, whats ...uint8) uint32 {
	for ri := t.nodes.at(id).first; ri != 0; {
		r := t.recs.at(ri)
		if r.layer == layer {
			for _, w := range whats {
				if r.is(w) {
					return ri
				}
			}
		}
		ri = r.next
	}
	return 0
}

func (t *Tree) addRecord(id uint32, r record) uint32 {
	n := t.nodes.at(id)
	r.next = n.first
	ri := t.recs.add(r)
	n.first = ri
	return ri
}

// finalRecord returns the record the final view shows at node id, or 0.
func (t *Tree) finalRecord(id uint32) uint32 {
	for ri := t.nodes.at(id).first; ri != 0; {
		r := t.recs.at(ri)
		if r.what&recFinal != 0 {
			return ri
		}
		ri = r.next
	}
	return 0
}

// find returns the node at a cleaned path.
func (t *Tree) find(p string) (uint32, bool) {
	id := uint32(0)
	for p != "" {
		comp, rest, _ := strings.Cut(p, "/")
		if id = t.child(id, comp); id == 0 {
			return 0, false
		}
		p = rest
	}
	return id, true
}

// entry builds the Entry of a record.
func (t *Tree) entry(p string, ri uint32) *Entry {
	r := t.recs.at(ri)
	e := &Entry{Path: p, Kind: r.kind, Mode: fs.FileMode(r.mode), Size: r.size, UID: int(r.uid), GID: int(r.gid), Layer: int(r.layer)}
	if r.uid == idBig {
		ids := t.bigIDs[ri]
		e.UID, e.GID = ids[0], ids[1]
	}
	if r.link != 0 {
		e.Linkname = t.names.link(r.link - 1)
	}
	return e
}

// State tells what became of the instance of p written by layer.
func (t *Tree) State(p string, layer int) State {
	// own: the nearest later touch of p itself (a later entry shadows this
	// one, a later whiteout deletes it); anc: the nearest later deletion of
	// an ancestor (a whiteout of it, an opaque marker on it, or a
	// non-directory put in its place deletes everything below it in lower
	// layers). On a tie, p's own touch decides.
	own, ownState, anc := -1, Visible, -1
	id := uint32(0)
	for p != "" {
		comp, rest, _ := strings.Cut(p, "/")
		if id = t.child(id, comp); id == 0 {
			break
		}
		p = rest
		last := p == ""
		t.records(id, func(_ uint32, r *record) {
			l := int(r.layer)
			if l <= layer {
				return
			}
			switch {
			case last && !r.is(recOpaque) && (own < 0 || l < own):
				own, ownState = l, Shadowed
				if r.is(recWhiteout) {
					ownState = Deleted
				}
			case !last && r.deletesBelow() && (anc < 0 || l < anc):
				anc = l
			}
		})
	}
	switch {
	case anc >= 0 && (own < 0 || anc < own):
		return Deleted
	case own >= 0:
		return ownState
	}
	return Visible
}

// finish computes the final view; called once after every layer was added.
// It visits every node once, top down, keeping the layers that deleted an
// ancestor in a Fenwick tree, so its cost does not grow with path depth.
func (t *Tree) finish() {
	t.buildChildren()
	deleted := newFenwick(t.layers)
	t.dfs(func(id uint32, _ []byte) bool {
		// The topmost entry or whiteout decides; directories implied by
		// deeper entries do not count here.
		top, topRec := -1, uint32(0)
		t.records(id, func(ri uint32, r *record) {
			l := int(r.layer)
			if !r.is(recEntry) && !r.is(recWhiteout) {
				return
			}
			if l > top || (l == top && r.is(recEntry)) {
				top, topRec = l, ri
			}
		})
		if topRec != 0 && t.recs.at(topRec).is(recEntry) {
			// The nearest later implied directory shadows it; a deletion of
			// an ancestor before that removes it.
			shadow := -1
			t.records(id, func(_ uint32, r *record) {
				if l := int(r.layer); r.is(recImplied) && l > top && (shadow < 0 || l < shadow) {
					shadow = l
				}
			})
			del := deleted.next(top)
			r := t.recs.at(topRec)
			switch {
			case del >= 0 && (shadow < 0 || del < shadow):
			case shadow >= 0 && r.kind != KindDir:
			default:
				r.what |= recFinal
				t.visible++
			}
		}
		t.records(id, func(_ uint32, r *record) {
			if r.deletesBelow() {
				deleted.add(int(r.layer), 1)
			}
		})
		return true
	}, func(id uint32) {
		t.records(id, func(_ uint32, r *record) {
			if r.deletesBelow() {
				deleted.add(int(r.layer), -1)
			}
		})
	})
	sort.SliceStable(t.warnings, func(i, j int) bool { return t.warnings[i].Message < t.warnings[j].Message })
}

// buildChildren lists each node's children, sorted by name.
func (t *Tree) buildChildren() {
	n := t.nodes.n
	t.kidStart = make([]uint32, n+1)
	for id := 1; id < n; id++ {
		t.kidStart[t.nodes.at(uint32(id)).parent+1]++
	}
	for i := 1; i <= n; i++ {
		t.kidStart[i] += t.kidStart[i-1]
	}
	pos := make([]uint32, n)
	copy(pos, t.kidStart[:n])
	t.kids = make([]uint32, n-1)
	for id := 1; id < n; id++ {
		p := t.nodes.at(uint32(id)).parent
		t.kids[pos[p]] = uint32(id)
		pos[p]++
	}
	for id := 0; id < n; id++ {
		if s, e := t.kidStart[id], t.kidStart[id+1]; e-s > 1 {
			slices.SortFunc(t.kids[s:e], func(a, b uint32) int {
				return bytes.Compare(t.nodeName(t.nodes.at(a)), t.nodeName(t.nodes.at(b)))
			})
		}
	}
}

// dfs visits every node but the root, parents before children and
// siblings by name, with the node's path.
// It stops when enter returns false.
func (t *Tree) dfs(enter func(id uint32, path []byte) bool, leave func(id uint32)) {
	type frame struct {
		id, next, end uint32
		plen          int
	}
	var buf []byte
	stack := []frame{{id: 0, next: t.kidStart[0], end: t.kidStart[1]}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == f.end {
			if leave != nil && f.id != 0 {
				leave(f.id)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		c := t.kids[f.next]
		f.next++
		buf = buf[:f.plen]
		if f.id != 0 {
			buf = append(buf, '/')
		}
		buf = append(buf, t.nodeName(t.nodes.at(c))...)
		if !enter(c, buf) {
			return
		}
		stack = append(stack, frame{id: c, next: t.kidStart[c], end: t.kidStart[c+1], plen: len(buf)})
	}
}

// Lookup returns the visible entry at p (not following a symlink at p).
func (t *Tree) Lookup(p string) (*Entry, bool) {
	p = cleanRel(p)
	id, ok := t.find(p)
	if !ok || id == 0 {
		return nil, false
	}
	ri := t.finalRecord(id)
	if ri == 0 {
		return nil, false
	}
	return t.entry(p, ri), true
}

// Len is the number of visible entries.
func (t *Tree) Len() int { return t.visible }

// Walk calls fn for every visible entry, directory by directory with names
// in byte order (as fs.WalkDir), parents before their children. Each call
// gets its own Entry.
func (t *Tree) Walk(fn func(e *Entry) error) error {
	var err error
	t.dfs(func(id uint32, p []byte) bool {
		if ri := t.finalRecord(id); ri != 0 {
			err = fn(t.entry(string(p), ri))
		}
		return err == nil
	}, nil)
	return err
}

// Warnings are the problems met in the walk that did not stop it: unsafe
// entry names, links pointing out of the image, unreadable files.
func (t *Tree) Warnings() []string { return diag.Messages(t.warnings) }

// Diagnostics are the Warnings with their codes and locations, in the
// same order.
func (t *Tree) Diagnostics() []diag.Diagnostic { return t.warnings }

// MaxSymlinks is how many symlinks one resolution follows, as Linux's
// MAXSYMLINKS.
const MaxSymlinks = 40

// ErrSymlinkLoop is returned by Resolve for cycles and over-long chains.
var ErrSymlinkLoop = errors.New("too many levels of symbolic links")

// Resolve follows symlinks in p and in its parent directories through the
// final view. Absolute targets and ".." are taken relative to the image root,
// so resolution can never leave the image. It returns the resolved path and
// whether an entry exists there.
func (t *Tree) Resolve(p string) (string, bool, error) {
	rest := splitPath(cleanRel(p))
	cur := ""
	curID, curOK := uint32(0), true // the node at cur, when there is one
	hops := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		next := comp
		if cur != "" {
			next = cur + "/" + comp
		}
		id, ri := uint32(0), uint32(0)
		if curOK {
			if id = t.child(curID, comp); id != 0 {
				ri = t.finalRecord(id)
			}
		}
		if ri == 0 || t.recs.at(ri).kind != KindSymlink {
			cur, curID, curOK = next, id, id != 0
			continue
		}
		hops++
		if hops > MaxSymlinks {
			return "", false, fmt.Errorf("resolve /%s: %w", p, ErrSymlinkLoop)
		}
		target := t.names.link(t.recs.at(ri).link - 1)
		var base string
		if strings.HasPrefix(target, "/") {
			base = ""
		} else {
			base = cur
		}
		joined := cleanRel(path.Join("/", base, target))
		rest = append(splitPath(joined), rest...)
		cur, curID, curOK = "", 0, true
	}
	ok := cur != "" && curOK && t.finalRecord(curID) != 0
	return cur, ok, nil
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// cleanRel turns any entry name into a path relative to the root: "./a/../b"
// and "/b" and "../../b" all become "b". ".." never climbs above the root.
func cleanRel(p string) string {
	c := path.Clean("/" + p)
	return strings.TrimPrefix(c, "/")
}

// escapes reports whether a symlink at p with the given target points above
// the root when read lexically (it is clamped to the root when resolved).
func escapes(p, target string) bool {
	var parts []string
	if !strings.HasPrefix(target, "/") {
		parts = splitPath(path.Dir(p))
		if len(parts) == 1 && parts[0] == "." {
			parts = nil
		}
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return true
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return false
}
