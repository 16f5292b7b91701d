package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// tarIndex gives random access to the regular files of an uncompressed tar
// file (an image archive) without extracting it: one pass records each
// file's offset, later reads are section reads.
type tarIndex struct {
	f     *os.File
	files map[string]tarFile
}

type tarFile struct {
	offset, size int64
}

// maxArchiveEntries bounds the index of an image archive, which keeps every
// file name in memory: a docker-archive or an oci-archive has a handful of
// files per layer and per manifest, so 65536 admits thousands of layers
// while a hostile archive of empty entries costs a few MB. (A variable for
// tests.)
var maxArchiveEntries = 1 << 16

func indexTar(f *os.File) (*tarIndex, error) {
	idx := &tarIndex{f: f, files: map[string]tarFile{}}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	links := map[string]string{}
	for n := 0; ; n++ {
		if n > maxArchiveEntries {
			return nil, fmt.Errorf("archive has more than %d entries, far more than an image archive has (a few a layer); it is not an image archive, or a hostile one", maxArchiveEntries)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive index: %w", err)
		}
		name := cleanArchivePath(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			// The tar reader is positioned at the start of the content.
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			idx.files[name] = tarFile{offset: off, size: hdr.Size}
		case tar.TypeSymlink:
			// docker save links identical layers to each other.
			links[name] = cleanArchivePath(path.Join(path.Dir(name), hdr.Linkname))
		case tar.TypeLink:
			links[name] = cleanArchivePath(hdr.Linkname)
		}
	}
	for name, target := range links {
		for i := 0; i < 8; i++ {
			if next, ok := links[target]; ok {
				target = next
				continue
			}
			break
		}
		if tf, ok := idx.files[target]; ok {
			idx.files[name] = tf
		}
	}
	return idx, nil
}

func cleanArchivePath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (t *tarIndex) open(name string) (*io.SectionReader, error) {
	tf, ok := t.files[cleanArchivePath(name)]
	if !ok {
		return nil, fmt.Errorf("archive has no file %q", name)
	}
	return io.NewSectionReader(t.f, tf.offset, tf.size), nil
}

func (t *tarIndex) has(name string) bool {
	_, ok := t.files[cleanArchivePath(name)]
	return ok
}

func (t *tarIndex) readAll(name string, limit int64) ([]byte, error) {
	sr, err := t.open(name)
	if err != nil {
		return nil, err
	}
	if sr.Size() > limit {
		return nil, fmt.Errorf("%s in archive is %d bytes, over the %d-byte limit for metadata", name, sr.Size(), limit)
	}
	return io.ReadAll(sr)
}
