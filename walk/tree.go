package walk

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
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

// touch is one layer's action on one path.
type touch struct {
	layer    int
	whiteout bool   // a .wh. marker deleted the path (and what lies below it)
	dir      bool   // a directory entry, or a parent implied by a deeper entry
	entry    *Entry // nil for whiteouts and implied parents
}

// Tree is the final view of a walked image, built from every layer's entries
// and whiteouts. It answers which instance of a path is visible and resolves
// symlinks without leaving the image root. Safe for concurrent reads once the
// walk has returned.
type Tree struct {
	mu      sync.Mutex
	layers  int
	touches map[string][]touch // path -> actions, any layer order
	opaque  map[string][]int   // dir -> layers that made it opaque

	final    map[string]*Entry
	warnings []string
}

func newTree(layers int) *Tree {
	return &Tree{layers: layers, touches: map[string][]touch{}, opaque: map[string][]int{}}
}

// layerRecord collects one layer's actions while it is walked.
type layerRecord struct {
	index     int
	entries   map[string]*Entry // last entry per path in the layer
	whiteouts []string
	opaques   []string
	warnings  []string
}

func newLayerRecord(index int) *layerRecord {
	return &layerRecord{index: index, entries: map[string]*Entry{}}
}

func (t *Tree) addLayer(r *layerRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	implied := map[string]bool{}
	for p, e := range r.entries {
		t.touches[p] = append(t.touches[p], touch{layer: r.index, dir: e.Kind == KindDir, entry: e})
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if implied[d] {
				break
			}
			implied[d] = true
			if _, ok := r.entries[d]; !ok {
				t.touches[d] = append(t.touches[d], touch{layer: r.index, dir: true})
			}
		}
	}
	for _, p := range r.whiteouts {
		t.touches[p] = append(t.touches[p], touch{layer: r.index, whiteout: true})
	}
	for _, d := range r.opaques {
		t.opaque[d] = append(t.opaque[d], r.index)
	}
	t.warnings = append(t.warnings, r.warnings...)
}

// State tells what became of the instance of p written by layer.
func (t *Tree) State(p string, layer int) State {
	nearest, state := t.layers+1, Visible
	for _, tc := range t.touches[p] {
		if tc.layer > layer && tc.layer < nearest {
			nearest = tc.layer
			if tc.whiteout {
				state = Deleted
			} else {
				state = Shadowed
			}
		}
	}
	for d := parent(p); d != ""; d = parent(d) {
		for _, tc := range t.touches[d] {
			// A whiteout of an ancestor, or a non-directory put in its place,
			// deletes everything below it in lower layers.
			if tc.layer > layer && tc.layer < nearest && (tc.whiteout || !tc.dir) {
				nearest, state = tc.layer, Deleted
			}
		}
		for _, l := range t.opaque[d] {
			if l > layer && l < nearest {
				nearest, state = l, Deleted
			}
		}
	}
	return state
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// finish computes the final view; called once after every layer was added.
func (t *Tree) finish() {
	t.final = make(map[string]*Entry, len(t.touches))
	for p, tcs := range t.touches {
		// Directories implied by deeper entries do not count here: the
		// topmost explicit entry or whiteout decides.
		top := -1
		var e *Entry
		for _, tc := range tcs {
			if (tc.entry != nil || tc.whiteout) && tc.layer > top {
				top, e = tc.layer, tc.entry
			}
		}
		if e == nil {
			continue
		}
		switch st := t.State(p, top); {
		case st == Visible, st == Shadowed && e.Kind == KindDir:
			t.final[p] = e
		}
	}
	sort.Strings(t.warnings)
}

// Lookup returns the visible entry at p (not following a symlink at p).
func (t *Tree) Lookup(p string) (*Entry, bool) {
	e, ok := t.final[cleanRel(p)]
	return e, ok
}

// Len is the number of visible entries.
func (t *Tree) Len() int { return len(t.final) }

// Walk calls fn for every visible entry, in path order.
func (t *Tree) Walk(fn func(e *Entry) error) error {
	paths := make([]string, 0, len(t.final))
	for p := range t.final {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := fn(t.final[p]); err != nil {
			return err
		}
	}
	return nil
}

// Warnings are the problems met in the walk that did not stop it: unsafe
// entry names, links pointing out of the image, unreadable files.
func (t *Tree) Warnings() []string { return t.warnings }

func (t *Tree) warn(format string, args ...any) {
	t.mu.Lock()
	t.warnings = append(t.warnings, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

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
	hops := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		next := comp
		if cur != "" {
			next = cur + "/" + comp
		}
		e, ok := t.final[next]
		if !ok || e.Kind != KindSymlink {
			cur = next
			continue
		}
		hops++
		if hops > MaxSymlinks {
			return "", false, fmt.Errorf("resolve /%s: %w", p, ErrSymlinkLoop)
		}
		target := e.Linkname
		var base string
		if strings.HasPrefix(target, "/") {
			base = ""
		} else {
			base = cur
		}
		joined := cleanRel(path.Join("/", base, target))
		rest = append(splitPath(joined), rest...)
		cur = ""
	}
	_, ok := t.final[cur]
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
