package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/walk"
)

// OpenRootfs presents a root filesystem directory as a one-layer image. The
// layer is a tar stream made on the fly while the directory is walked:
// symlinks are recorded, never followed, and nothing is copied to disk.
func OpenRootfs(dir string) (*Image, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("rootfs: %s is not a directory", dir)
	}
	l := &rootfsLayer{root: abs}
	cfg := &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}
	img, err := partial.UncompressedToImage(&rootfsImage{layer: l, cfg: cfg})
	if err != nil {
		return nil, err
	}
	out := &Image{Image: img, Name: dir, Source: SourceRootfs}
	out.config = cfg
	out.layers = []storedLayer{{open: l.Uncompressed, size: -1, info: walk.LayerInfo{Size: -1}}}
	return out, nil
}

// skipDirs are pseudo filesystems skipped when the root is "/".
var skipDirs = map[string]bool{"proc": true, "sys": true, "dev": true, "run": true}

type rootfsLayer struct {
	root string

	once   sync.Once
	diffID v1.Hash
	err    error
}

// Uncompressed streams the directory as a tar archive.
func (l *rootfsLayer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTree(pw, l.root)) }()
	return pr, nil
}

func writeTree(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Unreadable directories are skipped, not fatal: the scan
			// reports what it could read.
			if d != nil && d.IsDir() && p != root {
				return fs.SkipDir
			}
			if p == root {
				return err
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if root == "/" && d.IsDir() && skipDirs[rel] {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return nil
			}
		}
		if info.Mode()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0 {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil
		}
		hdr.Name = rel
		hdr.Uname, hdr.Gname = "", ""
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return nil // unreadable file: skipped
			}
			defer f.Close()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			// The file may shrink or grow while read: copy exactly the size
			// announced in the header, padding with zeros if it shrank.
			n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
			if err != nil {
				return err
			}
			if n < hdr.Size {
				if _, err := io.CopyN(tw, zeroReader{}, hdr.Size-n); err != nil {
					return err
				}
			}
			return nil
		}
		return tw.WriteHeader(hdr)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// DiffID hashes the tar stream, once, only when asked.
func (l *rootfsLayer) DiffID() (v1.Hash, error) {
	l.once.Do(func() {
		rc, _ := l.Uncompressed()
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			l.err = err
			return
		}
		l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	})
	return l.diffID, l.err
}

func (l *rootfsLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }

type rootfsImage struct {
	layer *rootfsLayer
	cfg   *v1.ConfigFile
}

func (r *rootfsImage) RawConfigFile() ([]byte, error) {
	d, err := r.layer.DiffID()
	if err != nil {
		return nil, err
	}
	cfg := *r.cfg
	cfg.RootFS.DiffIDs = []v1.Hash{d}
	return json.Marshal(&cfg)
}

func (r *rootfsImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (r *rootfsImage) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	if d, err := r.layer.DiffID(); err != nil || d != h {
		return nil, fmt.Errorf("no layer %s", h)
	}
	return r.layer, nil
}
