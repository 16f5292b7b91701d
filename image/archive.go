package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OpenArchive opens a docker-archive (`docker save`) or an oci-archive file,
// gzip-compressed or not. The archive is indexed, not extracted: layers are
// read in place. A compressed archive is first decompressed into the temp
// space, since layers need random access.
func OpenArchive(file string, opts Options) (*Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open image archive: %w", err)
	}
	var cleanup []func()
	done := false
	defer func() {
		if !done {
			for _, c := range cleanup {
				c()
			}
		}
	}()
	cleanup = append(cleanup, func() { f.Close() })
	// A compressed archive is bounded like a layer: a gzip bomb must not
	// fill the temp space.
	counted := &hashingReader{r: f}
	br := bufio.NewReader(counted)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		plain, closeDec, err := decompress(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		defer closeDec()
		tmp, err := os.CreateTemp(opts.TempDir, "archive-*.tar")
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", file, err)
		}
		cleanup = append(cleanup, func() { tmp.Close(); os.Remove(tmp.Name()) })
		if _, err := io.Copy(tmp, &hashingReader{r: plain, stored: counted}); err != nil {
			return nil, fmt.Errorf("decompress %s: %w", file, err)
		}
		f = tmp
	}
	idx, err := indexTar(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var img *Image
	switch {
	case idx.has("manifest.json"):
		img, err = openDockerArchive(idx, file, opts)
	case idx.has("index.json") && idx.has("oci-layout"):
		img, err = openOCI(tarStore{idx: idx}, file, SourceOCIArchive, "", opts)
	default:
		return nil, fmt.Errorf("%s is neither a docker-archive (no manifest.json) nor an oci-archive (no index.json and oci-layout)", file)
	}
	if err != nil {
		return nil, err
	}
	img.cleanup = append(img.cleanup, cleanup...)
	done = true
	return img, nil
}

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func openDockerArchive(idx *tarIndex, file string, opts Options) (*Image, error) {
	raw, err := idx.readAll("manifest.json", maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("%s: parse manifest.json: %w", file, err)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s: manifest.json lists no image", file)
	}
	m := ms[0]
	cb, err := idx.readAll(m.Config, maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", file, err)
	}
	// The config's file name is its digest ("<hex>.json" or
	// "blobs/sha256/<hex>"): check it.
	if h, ok := digestFromName(m.Config); ok {
		if err := checkDigest(cb, h); err != nil {
			return nil, fmt.Errorf("%s: config %s: %w", file, m.Config, err)
		}
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cb))
	if err != nil {
		return nil, fmt.Errorf("%s: parse config: %w", file, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: config lists %d diffIDs but manifest.json %d layers", file, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	da := &dockerArchiveImage{idx: idx, config: cb, layers: map[v1.Hash]string{}}
	layers := make([]storedLayer, 0, len(m.Layers))
	for i, lp := range m.Layers {
		lp := lp
		if !idx.has(lp) {
			return nil, fmt.Errorf("%s: layer %s is missing from the archive", file, lp)
		}
		da.layers[cfg.RootFS.DiffIDs[i]] = lp
		sl := storedLayer{open: func() (io.ReadCloser, error) {
			sr, err := idx.open(lp)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(sr), nil
		}, size: idx.files[cleanArchivePath(lp)].size}
		// Blobs named by digest (OCI-style docker-archives) are checked
		// against it; every layer is checked against its diffID.
		if h, ok := digestFromName(lp); ok {
			sl.digest = h
		}
		layers = append(layers, sl)
	}
	img, err := partial.UncompressedToImage(da)
	if err != nil {
		return nil, err
	}
	out := &Image{Image: img, Name: file, Source: SourceDockerArchive, RepoTags: m.RepoTags}
	if err := out.setLayers(cfg, layers); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// digestFromName recognises "blobs/sha256/<hex>", "<hex>.json" and
// "<hex>/layer.tar"-less names that are a digest.
func digestFromName(name string) (v1.Hash, bool) {
	name = cleanArchivePath(name)
	var hexPart string
	switch {
	case strings.HasPrefix(name, "blobs/sha256/"):
		hexPart = strings.TrimPrefix(name, "blobs/sha256/")
	case strings.HasSuffix(name, ".json") && !strings.Contains(name, "/"):
		hexPart = strings.TrimSuffix(name, ".json")
	default:
		return v1.Hash{}, false
	}
	if len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: hexPart}, true
}

// dockerArchiveImage is the v1.Image of a docker-archive, built with partial.
type dockerArchiveImage struct {
	idx    *tarIndex
	config []byte
	layers map[v1.Hash]string // diffID -> path in the archive
}

func (d *dockerArchiveImage) RawConfigFile() ([]byte, error) { return d.config, nil }
func (d *dockerArchiveImage) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (d *dockerArchiveImage) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	p, ok := d.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer with diffID %s", h)
	}
	return &archiveLayer{idx: d.idx, path: p, diffID: h}, nil
}

type archiveLayer struct {
	idx    *tarIndex
	path   string
	diffID v1.Hash
}

func (a *archiveLayer) DiffID() (v1.Hash, error) { return a.diffID, nil }
func (a *archiveLayer) MediaType() (types.MediaType, error) {
	return types.DockerLayer, nil
}

// Uncompressed returns the layer tar, decompressing a gzip layer.
func (a *archiveLayer) Uncompressed() (io.ReadCloser, error) {
	sr, err := a.idx.open(a.path)
	if err != nil {
		return nil, err
	}
	plain, closeDec, err := decompress(bufio.NewReader(sr))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", path.Base(a.path), err)
	}
	return readCloser{plain, closeDec}, nil
}

type readCloser struct {
	io.Reader
	close func()
}

func (r readCloser) Close() error { r.close(); return nil }
