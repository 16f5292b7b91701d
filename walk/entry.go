// Package walk reads the layers of an image once each, as streams, and offers
// every file to the visitors that asked for it. After the walk, a Tree gives
// the final (squashed) view of the image: which instance of a path is visible,
// which were overwritten or deleted by a later layer, and symlink resolution
// that never leaves the image root.
//
// Layers are read concurrently; nothing is extracted to disk. A file is
// buffered (in memory, or spooled into the scan's own temp directory when it
// is large) only when more than one visitor wants it or a visitor asks for
// random access.
package walk

import (
	"io"
	"io/fs"
)

// Kind is the type of a filesystem entry.
type Kind uint8

const (
	KindFile Kind = iota + 1
	KindDir
	KindSymlink
	KindHardlink // a second name for a file earlier in the same layer
	KindOther    // devices, fifos: recorded, never read
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	case KindHardlink:
		return "hardlink"
	case KindOther:
		return "other"
	}
	return "unknown"
}

// LayerInfo describes one layer of the walk.
type LayerInfo struct {
	Index     int
	Digest    string // compressed digest ("sha256:..."), empty when unknown
	DiffID    string // uncompressed digest, empty when unknown
	CreatedBy string // history created_by of the layer
	Size      int64  // compressed size, -1 when unknown
}

// Layer is one input of a walk: its description and a way to open its
// uncompressed tar stream. The stream is read once (twice only when a visitor
// wants a hard link whose target came earlier in the same layer).
type Layer struct {
	Info LayerInfo
	Open func() (io.ReadCloser, error)
}

// Entry is one filesystem entry of one layer, after path cleaning. Whiteout
// markers are not entries: they are recorded in the Tree.
type Entry struct {
	Path     string // cleaned, relative to the root, no leading slash: "etc/os-release"
	Kind     Kind
	Mode     fs.FileMode
	Size     int64
	Linkname string // symlink target as written, or the cleaned path of a hard link's target
	UID, GID int
	Layer    int // index into the walk's layers
}

// IsExecutable reports whether any execute bit is set on a regular file.
func (e *Entry) IsExecutable() bool {
	return (e.Kind == KindFile || e.Kind == KindHardlink) && e.Mode&0o111 != 0
}

// Visitor receives the entries it wants from every layer. Wants is called for
// every entry of every layer, so it must be cheap. Both methods are called
// concurrently for different layers and must be safe for concurrent use;
// within one layer, entries arrive in tar order.
type Visitor interface {
	Wants(e *Entry) bool
	// Visit gets the entry's content (empty for non-files). A visitor that
	// needs random access calls c.ReaderAt before reading.
	Visit(e *Entry, c *Content) error
}

// Finisher is implemented by visitors that turn what they saw into results
// once the final view of the image is known.
type Finisher interface {
	Finish(t *Tree) error
}
