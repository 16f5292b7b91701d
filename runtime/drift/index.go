// Package drift finds executables that did not come from a container's
// image: a process in a container runs a file that is in none of the
// image's layers, or whose content differs from the image's file at that
// path. It knows an image's files from an Index, built once per image id
// by walking the image's layers (bulkhead's walk, as a scan does) and kept
// on disk by digest in a Store.
package drift

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// File is one regular file of an image, as its final (squashed) view has it.
type File struct {
	// SHA256 is the hex digest of the content.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Mode is the permission bits.
	Mode uint32 `json:"mode"`
}

// Index lists an image's regular files with their digests.
type Index struct {
	// Image is the image id, its config digest ("sha256:...").
	Image string `json:"image"`
	// Digest is the manifest digest, when the source had one.
	Digest string `json:"digest,omitempty"`
	// Names are the references the image was indexed as.
	Names   []string  `json:"names,omitempty"`
	Created time.Time `json:"created"`
	// Files maps absolute paths ("/bin/busybox") to the files.
	Files map[string]File `json:"files"`
	// Warnings are the walk's problems (unsafe entries, limits).
	Warnings []string `json:"warnings,omitempty"`
}

var idRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// ErrBadID is an image id that is not "sha256:" and 64 hex digits.
var ErrBadID = errors.New("image id must be sha256: followed by 64 lower-case hex digits")

// NormalizeID turns a runtime's image id (with or without "sha256:") into
// the "sha256:<hex>" form.
func NormalizeID(id string) (string, error) {
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	if !idRe().MatchString(id) {
		return "", fmt.Errorf("%q: %w", id, ErrBadID)
	}
	return id, nil
}

// hasher hashes every regular file of every layer; Finish keeps the
// digests of the files the final view shows.
type hasher struct {
	mu     sync.Mutex
	byPath map[hashKey]string
	files  map[string]File
}

type hashKey struct {
	layer int
	path  string
}

func (h *hasher) Wants(e *walk.Entry) bool {
	return e.Kind == walk.KindFile || e.Kind == walk.KindHardlink
}

func (h *hasher) Visit(e *walk.Entry, c *walk.Content) error {
	sum := sha256.New()
	if _, err := io.Copy(sum, c); err != nil {
		return fmt.Errorf("hash /%s: %w", e.Path, err)
	}
	d := hex.EncodeToString(sum.Sum(nil))
	h.mu.Lock()
	h.byPath[hashKey{e.Layer, e.Path}] = d
	h.mu.Unlock()
	return nil
}

func (h *hasher) Finish(t *walk.Tree) error {
	return t.Walk(func(e *walk.Entry) error {
		if e.Kind != walk.KindFile && e.Kind != walk.KindHardlink {
			return nil
		}
		h.files["/"+e.Path] = File{SHA256: h.byPath[hashKey{e.Layer, e.Path}], Size: e.Size, Mode: uint32(e.Mode.Perm())}
		return nil
	})
}

// Build walks img's layers and lists its files. tempDir is the walk's
// temp space ("" is os.TempDir()).
func Build(ctx context.Context, img *image.Image, tempDir string) (*Index, error) {
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("index %s: the image has no config digest: %w", img.Name, err)
	}
	h := &hasher{byPath: map[hashKey]string{}, files: map[string]File{}}
	tree, err := walk.Walk(ctx, img.WalkLayers(), []walk.Visitor{h}, walk.Options{TempDir: tempDir, Jobs: 1})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", img.Name, err)
	}
	ix := &Index{Image: id.String(), Created: time.Now().UTC(), Files: h.files, Warnings: tree.Warnings()}
	if img.Digest.Hex != "" {
		ix.Digest = img.Digest.String()
	}
	ix.Names = append(ix.Names, img.RepoTags...)
	if len(ix.Names) == 0 && img.Name != "" {
		ix.Names = []string{img.Name}
	}
	return ix, nil
}

// IndexStore keeps file lists by image id: Store (a directory), or
// bulkhead server. Load's error wraps fs.ErrNotExist when there is none.
type IndexStore interface {
	Load(id string) (*Index, error)
	// Save stores ix and says where.
	Save(ix *Index) (string, error)
	// Where names the store in messages.
	Where() string
}

// Store keeps indexes on disk by image id: DIR/sha256-<hex>.json.gz.
type Store struct {
	Dir string
}

// Where is the directory.
func (s *Store) Where() string { return s.Dir }

// DefaultStoreDir is where `bulkhead runtime` keeps image indexes.
const DefaultStoreDir = "/var/lib/bulkhead/image-index"

func (s *Store) file(id string) (string, error) {
	id, err := NormalizeID(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, strings.Replace(id, ":", "-", 1)+".json.gz"), nil
}

// Load reads the index of image id; the error wraps fs.ErrNotExist when
// there is none.
func (s *Store) Load(id string) (*Index, error) {
	name, err := s.file(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ix, err := DecodeIndex(f, MaxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("read image index %s: %w (delete it and index the image again)", name, err)
	}
	if want, _ := NormalizeID(id); ix.Image != want {
		return nil, fmt.Errorf("image index %s is for %s, not %s (delete it and index the image again)", name, ix.Image, want)
	}
	return ix, nil
}

// MaxIndexBytes bounds an image file list's JSON (uncompressed) when it is
// read: 256 MiB holds a few million files.
const MaxIndexBytes = 256 << 20

// ErrIndexTooLarge is a file list whose JSON exceeds the bound given to
// DecodeIndex.
var ErrIndexTooLarge = errors.New("image file list too large")

// DecodeIndex reads a file list as Store keeps it and the server serves it
// (gzip-compressed JSON), decompressing at most max bytes of JSON, and
// checks its image id and paths.
func DecodeIndex(r io.Reader, max int64) (*Index, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	lr := &io.LimitedReader{R: zr, N: max + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	var ix Index
	if err := dec.Decode(&ix); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: over %d bytes of JSON", ErrIndexTooLarge, max)
		}
		return nil, fmt.Errorf("malformed file list JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed file list JSON: more than one document")
	}
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: over %d bytes of JSON", ErrIndexTooLarge, max)
	}
	if _, err := NormalizeID(ix.Image); err != nil || !strings.HasPrefix(ix.Image, "sha256:") {
		return nil, fmt.Errorf("the file list's image %q is not an image id (sha256:<64 hex>)", ix.Image)
	}
	for p := range ix.Files {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("the file list's path %q is not absolute", p)
		}
	}
	return &ix, nil
}

// EncodeIndex writes ix as gzip-compressed JSON.
func EncodeIndex(w io.Writer, ix *Index) error {
	zw := gzip.NewWriter(w)
	err := json.NewEncoder(zw).Encode(ix)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	return err
}

// Save writes ix atomically (a temp file renamed into place).
func (s *Store) Save(ix *Index) (string, error) {
	name, err := s.file(ix.Image)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("create the image index directory: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".index-*")
	if err != nil {
		return "", fmt.Errorf("save the image index: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = EncodeIndex(tmp, ix)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return "", fmt.Errorf("save the image index %s: %w", name, err)
	}
	return name, nil
}
