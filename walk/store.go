package walk

import "hash/maphash"

// The Tree keeps every path of every layer, so its cost per entry bounds what
// a walk can hold. It is stored without Go pointers, in fixed-size chunks
// (no slice ever doubles, and the garbage collector never scans it):
//
//   - node (16 bytes): one distinct path, as its parent node and its last
//     component in the name arena;
//   - record (32 bytes): one layer's action on one node — an entry with its
//     metadata, a parent directory a deeper entry implies, a whiteout or an
//     opaque marker;
//   - the name arena: each node's last component and each link's target,
//     stored once;
//   - childIndex: an open-addressing hash table (parent, name) -> node, 4
//     bytes a slot.
//
// An entry thus costs about 55 bytes plus its last component, against about
// 500 bytes (a string key, a map slot, an Entry and a touch slice) before.

const (
	chunkBits = 14
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

// chunked is an append-only vector in fixed-size chunks; index 0 is valid.
type chunked[T any] struct {
	chunks [][]T
	n      int
}

// add appends v. Pointers from at stay valid only until the next add: the
// first chunk starts small (a small walk stays small) and grows.
func (c *chunked[T]) add(v T) uint32 {
	i := c.n >> chunkBits
	if i == len(c.chunks) {
		size := chunkLen
		if i == 0 {
			size = 64
		}
		c.chunks = append(c.chunks, make([]T, 0, size))
	}
	if len(c.chunks[i]) == cap(c.chunks[i]) {
		grown := make([]T, len(c.chunks[i]), min(2*cap(c.chunks[i]), chunkLen))
		copy(grown, c.chunks[i])
		c.chunks[i] = grown
	}
	c.chunks[i] = append(c.chunks[i], v)
	c.n++
	return uint32(c.n - 1)
}

func (c *chunked[T]) at(i uint32) *T { return &c.chunks[i>>chunkBits][i&chunkMask] }

// arena holds names and link targets; an item never straddles chunks.
const arenaChunk = 1 << 20

type arena struct {
	chunks [][]byte
	used   int64 // bytes stored, the figure checked against MaxNameBytes
}

func (a *arena) end() int { return len(a.chunks)*arenaChunk - (arenaChunk - len(a.last())) }

func (a *arena) last() []byte {
	if len(a.chunks) == 0 {
		return nil
	}
	return a.chunks[len(a.chunks)-1]
}

// reserve makes room for n bytes and returns their offset and the slice to
// fill.
func (a *arena) reserve(n int) (uint32, []byte) {
	if len(a.chunks) == 0 || len(a.last())+n > arenaChunk {
		size := arenaChunk
		if len(a.chunks) == 0 {
			size = 4 * maxPathLen // the first chunk grows as needed
		}
		a.chunks = append(a.chunks, make([]byte, 0, size))
	}
	off := a.end()
	c := &a.chunks[len(a.chunks)-1]
	l := len(*c)
	if l+n > cap(*c) {
		grown := make([]byte, l, min(max(2*cap(*c), l+n), arenaChunk))
		copy(grown, *c)
		*c = grown
	}
	*c = (*c)[:l+n]
	a.used += int64(n)
	return uint32(off), (*c)[l : l+n]
}

func (a *arena) add(b string) uint32 {
	off, dst := a.reserve(len(b))
	copy(dst, b)
	return off
}

func (a *arena) get(off uint32, n int) []byte {
	c := a.chunks[off/arenaChunk]
	o := int(off % arenaChunk)
	return c[o : o+n]
}

// addLink stores a link target (at most 64 KiB) behind a two-byte length.
func (a *arena) addLink(target string) uint32 {
	off, dst := a.reserve(2 + len(target))
	dst[0], dst[1] = byte(len(target)>>8), byte(len(target))
	copy(dst[2:], target)
	return off
}

func (a *arena) link(off uint32) string {
	h := a.get(off, 2)
	return string(a.get(off+2, int(h[0])<<8|int(h[1])))
}

// node is one distinct path of the image.
type node struct {
	parent  uint32 // node 0 is the root
	name    uint32 // arena offset of the last component
	nameLen uint16
	_       uint16
	first   uint32 // first record, 0 for none
}

// What a record says.
const (
	recEntry    uint8 = iota + 1 // an entry of the layer (kind != 0)
	recImplied                   // a parent directory implied by a deeper entry
	recWhiteout                  // a .wh. marker deleted the path
	recOpaque                    // the directory was made opaque
)

// recFinal marks the record the final view shows.
const recFinal uint8 = 0x80

// record is one layer's action on one node.
type record struct {
	size     int64
	mode     uint32
	uid, gid uint32 // idBig: look in Tree.bigIDs
	link     uint32 // arena offset + 1 of the link target, 0 for none
	next     uint32 // next record of the same node, 0 for none
	layer    uint16
	kind     Kind
	what     uint8 // rec* | recFinal
}

const idBig = ^uint32(0)

func (r *record) is(w uint8) bool { return r.what&^recFinal == w }

// deletesBelow reports whether the record removes, for lower layers,
// everything under its path: a whiteout, an opaque marker, or a
// non-directory put where a directory was.
func (r *record) deletesBelow() bool {
	switch r.what &^ recFinal {
	case recWhiteout, recOpaque:
		return true
	case recEntry:
		return r.kind != KindDir
	}
	return false
}

// childIndex maps (parent node, name) to the child node. A slot holds the
// node id in its low idBits and the top bits of the hash above them, so that
// a probe reads another node only when those bits match; at most 3/4 full.
type childIndex struct {
	seed  maphash.Seed
	slots []uint32 // 0 is empty (the root is nobody's child)
	n     int
}

const (
	idBits = 26
	// maxNodes is how many distinct paths a Tree holds; the entry limits
	// are capped below it.
	maxNodes = 1<<idBits - 1
	idMask   = 1<<idBits - 1
)

func slotTag(h uint64) uint32 { return uint32(h>>(64-(32-idBits))) << idBits }

func hashChild(seed maphash.Seed, parent uint32, name string) uint64 {
	return mixParent(maphash.String(seed, name), parent)
}

// hashChildBytes equals hashChild for the same bytes.
func hashChildBytes(seed maphash.Seed, parent uint32, name []byte) uint64 {
	return mixParent(maphash.Bytes(seed, name), parent)
}

func mixParent(h uint64, parent uint32) uint64 {
	h ^= uint64(parent) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func (t *Tree) nodeName(n *node) []byte { return t.names.get(n.name, int(n.nameLen)) }

// child returns the child of parent called name, or 0.
func (t *Tree) child(parent uint32, name string) uint32 {
	ci := &t.kidsIdx
	if len(ci.slots) == 0 {
		return 0
	}
	h := hashChild(ci.seed, parent, name)
	tag := slotTag(h)
	mask := uint64(len(ci.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := ci.slots[i]
		if s == 0 {
			return 0
		}
		if s&^idMask != tag {
			continue
		}
		id := s & idMask
		n := t.nodes.at(id)
		if n.parent == parent && int(n.nameLen) == len(name) && string(t.nodeName(n)) == name {
			return id
		}
	}
}

// addChild creates the child of parent called name; it must not exist.
func (t *Tree) addChild(parent uint32, name string) uint32 {
	ci := &t.kidsIdx
	if (ci.n+1)*4 > len(ci.slots)*3 {
		t.growIndex()
	}
	id := t.nodes.add(node{parent: parent, name: t.names.add(name), nameLen: uint16(len(name))})
	t.insertSlot(id, hashChild(ci.seed, parent, name))
	ci.n++
	return id
}

func (t *Tree) insertSlot(id uint32, h uint64) {
	ci := &t.kidsIdx
	mask := uint64(len(ci.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if ci.slots[i] == 0 {
			ci.slots[i] = id | slotTag(h)
			return
		}
	}
}

func (t *Tree) growIndex() {
	ci := &t.kidsIdx
	size := 1024
	if len(ci.slots) > 0 {
		size = len(ci.slots) * 2
	}
	ci.slots = make([]uint32, size)
	for id := uint32(1); int(id) < t.nodes.n; id++ {
		n := t.nodes.at(id)
		t.insertSlot(id, hashChildBytes(ci.seed, n.parent, t.nodeName(n)))
	}
}

// fenwick counts events by layer and finds the nearest layer above one that
// has any.
type fenwick []int32

func newFenwick(n int) fenwick { return make(fenwick, n+1) }

func (f fenwick) add(i int, d int32) {
	for i++; i < len(f); i += i & -i {
		f[i] += d
	}
}

func (f fenwick) prefix(i int) int32 { // events in layers 0..i
	var s int32
	for i++; i > 0; i -= i & -i {
		s += f[i]
	}
	return s
}

// next returns the lowest layer above after with an event, or -1.
func (f fenwick) next(after int) int {
	want := f.prefix(after) + 1
	if f.prefix(len(f)-2) < want {
		return -1
	}
	pos := 0
	step := 1
	for step*2 < len(f) {
		step *= 2
	}
	for ; step > 0; step /= 2 {
		if pos+step < len(f) && f[pos+step] < want {
			pos += step
			want -= f[pos]
		}
	}
	return pos // 1-based pos+1, as a 0-based layer: pos
}
