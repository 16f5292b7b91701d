// Package image opens container images from anywhere — a registry, a
// docker-archive or oci-archive file, an OCI layout directory, a Docker Engine
// API socket (docker or podman), or a root filesystem directory — as one
// abstraction: go-containerregistry's v1.Image, plus the stream of each
// layer's stored bytes, verified against its digests as it is read.
package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Source kinds, as reported in inventory.Target.Source.
const (
	SourceRegistry      = "registry"
	SourceDockerArchive = "docker-archive"
	SourceOCIArchive    = "oci-archive"
	SourceOCILayout     = "oci-layout"
	SourceDaemon        = "daemon"
	SourceRootfs        = "rootfs"
	SourceDir           = "dir" // a source tree (bulkhead fs)
)

// Image is an opened image: the v1.Image every consumer sees, and what the
// layer walk needs to stream its layers.
type Image struct {
	v1.Image
	// Name is what the user asked for; Source is where it came from.
	Name   string
	Source string
	// Digest is the manifest digest, when the image has a manifest.
	Digest v1.Hash
	// RepoTags and RepoDigests come from archives and daemons.
	RepoTags    []string
	RepoDigests []string
	// ManifestAnnotations and IndexAnnotations are the annotations of the
	// image manifest and of the index entry that named it, where the
	// source has them (nil otherwise). Raw: they go to scanners, never to a
	// report as they are.
	ManifestAnnotations map[string]string
	IndexAnnotations    map[string]string

	layers  []storedLayer
	config  *v1.ConfigFile
	cleanup []func()
}

// storedLayer opens one layer's bytes as stored (compressed or not) and says
// which digests they must match.
type storedLayer struct {
	open   func() (io.ReadCloser, error)
	digest v1.Hash // of the stored bytes; zero when not known
	diffID v1.Hash // of the uncompressed tar; zero when not known
	size   int64
	info   walk.LayerInfo
	// decrypt, for an encrypted layer, turns the stored (encrypted) stream
	// into the plain stored bytes; nil for a plain layer.
	decrypt func(io.Reader) (io.Reader, error)
}

// Close removes anything the image kept in the scan's temp space.
func (i *Image) Close() error {
	for j := len(i.cleanup) - 1; j >= 0; j-- {
		i.cleanup[j]()
	}
	i.cleanup = nil
	return nil
}

// Config returns the image configuration (never nil after Open), as the
// image has it: scanners read it raw. What goes from it into a report goes
// through Target and InventoryLayers, which redact it.
func (i *Image) Config() *v1.ConfigFile { return i.config }

// Target describes the image for an inventory. Every string taken from the
// image's configuration or annotations (labels, user, history lines, tags
// named by annotations) is passed through secret.RedactValue: a report
// never repeats a secret that a build left in the config.
func (i *Image) Target() inventory.Target {
	t := inventory.Target{Name: i.Name, Source: i.Source, RepoTags: redactAll(i.RepoTags), RepoDigests: redactAll(i.RepoDigests)}
	if i.Digest.Hex != "" {
		t.Digest = i.Digest.String()
	}
	if i.config != nil {
		t.Arch = secret.RedactValue("", i.config.Architecture)
		t.OSName = secret.RedactValue("", i.config.OS)
		t.User = secret.RedactValue("", i.config.Config.User)
		t.Labels = secret.RedactMap(i.config.Config.Labels)
	}
	if i.Source != SourceRootfs && i.Source != SourceDir && i.Image != nil {
		if id, err := i.Image.ConfigName(); err == nil {
			t.ID = id.String()
		}
	}
	t.Layers = i.InventoryLayers()
	for _, l := range i.layers {
		if l.size > 0 {
			t.Size += l.size
		}
	}
	return t
}

func redactAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for j, s := range ss {
		out[j] = secret.RedactValue("", s)
	}
	return out
}

// InventoryLayers describes the layers for package locations (their
// created_by lines redacted, see setLayers).
func (i *Image) InventoryLayers() []inventory.Layer {
	out := make([]inventory.Layer, len(i.layers))
	for j, l := range i.layers {
		out[j] = inventory.Layer{Index: j, Digest: l.info.Digest, DiffID: l.info.DiffID, CreatedBy: l.info.CreatedBy}
	}
	return out
}

// WalkLayers returns the layers as walk inputs. Each Open verifies the
// stored digest and the diffID while the stream is read, and guards against
// decompression bombs.
func (i *Image) WalkLayers() []walk.Layer {
	out := make([]walk.Layer, len(i.layers))
	for j := range i.layers {
		l := i.layers[j]
		out[j] = walk.Layer{Info: l.info, Open: func() (io.ReadCloser, error) { return openVerified(l) }}
	}
	return out
}

// setLayers fills layer descriptions from the config: diffIDs and the
// history's created_by lines (history entries marked empty_layer have no
// layer). The created_by lines are redacted (secret.RedactValue) here, once:
// every layer description of the walk, the inventory and the findings comes
// from them.
func (i *Image) setLayers(cfg *v1.ConfigFile, layers []storedLayer) error {
	i.config = cfg
	if len(cfg.RootFS.DiffIDs) != 0 && len(cfg.RootFS.DiffIDs) != len(layers) {
		return fmt.Errorf("image config lists %d diffIDs but the manifest has %d layers", len(cfg.RootFS.DiffIDs), len(layers))
	}
	var createdBy []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, secret.RedactValue("", h.CreatedBy))
		}
	}
	for j := range layers {
		if len(cfg.RootFS.DiffIDs) > 0 {
			layers[j].diffID = cfg.RootFS.DiffIDs[j]
		}
		info := walk.LayerInfo{Index: j, Size: layers[j].size}
		if layers[j].digest.Hex != "" {
			info.Digest = layers[j].digest.String()
		}
		if layers[j].diffID.Hex != "" {
			info.DiffID = layers[j].diffID.String()
		}
		if len(createdBy) == len(layers) {
			info.CreatedBy = createdBy[j]
		}
		layers[j].info = info
	}
	i.layers = layers
	return nil
}

// Limits on decompression: a layer that expands more than maxRatio times
// once past ratioFloor bytes is treated as a decompression bomb.
var (
	maxRatio   int64 = 100
	ratioFloor int64 = 1 << 30
)

// ErrDigestMismatch is returned when a blob's bytes do not match its digest.
var ErrDigestMismatch = errors.New("digest mismatch")

func openVerified(l storedLayer) (io.ReadCloser, error) {
	raw, err := l.open()
	if err != nil {
		return nil, err
	}
	stored := newHashingReader(raw, l.digest, "layer blob", nil, l.digest.Hex != "")
	var clear io.Reader = stored
	if l.decrypt != nil {
		if clear, err = l.decrypt(stored); err != nil {
			stored.stop() // its hashing goroutine, as on the other error paths
			raw.Close()
			return nil, err
		}
	}
	br := bufio.NewReaderSize(clear, 64<<10)
	plain, closeDec, err := decompress(br)
	compressed := plain != io.Reader(br)
	if err != nil {
		stored.stop()
		raw.Close()
		return nil, fmt.Errorf("open layer: %w", err)
	}
	if l.decrypt != nil && l.diffID.Hex == "" {
		stored.stop()
		raw.Close()
		closeDec()
		return nil, fmt.Errorf("layer %s is encrypted and the image config has no diffID for it: its decrypted content cannot be verified", l.digest)
	}
	// The diffID is checked when the stored bytes have no digest to check
	// (docker-archive layers), or when that digest is of the ciphertext
	// (encrypted layers: the config's diffID is what binds the decrypted
	// content to the manifest). Where the stored digest is of the plain
	// bytes, it already proves the content; hashing the uncompressed stream
	// as well would cost a second full pass for no added assurance.
	verifyDiffID := l.diffID.Hex != "" && (stored.h == nil || l.decrypt != nil)
	un := newHashingReader(plain, l.diffID, "uncompressed layer (diffID)", stored, verifyDiffID)
	v := &verifiedLayer{Reader: un, un: un, stored: stored, drain: clear, closeRaw: raw.Close, closeDec: closeDec}
	if compressed && asyncHashing {
		v.ahead = newInflateAhead(un)
		v.Reader = v.ahead
	}
	return v, nil
}

// decompress reads gzip, zstd or plain bytes, told apart by their magic
// numbers; closeDec releases the decoder.
func decompress(br *bufio.Reader) (r io.Reader, closeDec func(), err error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(true)
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<29))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

func newHasher(h v1.Hash) hash.Hash {
	if h.Algorithm == "sha256" {
		return sha256.New()
	}
	return nil
}

// hashingReader hashes what passes through it and checks the digest at EOF.
// With more than one CPU the hash runs in its own goroutine (see
// hashAhead); call stop when done with the stream.
type hashingReader struct {
	r      io.Reader
	h      hash.Hash
	want   v1.Hash
	what   string
	n      int64
	done   bool           // the source ended: err is what it ended with
	err    error          // io.EOF, or the digest mismatch, once done
	stored *hashingReader // for the bomb check: bytes read of the stored blob
	ahead  *hashAhead     // asynchronous hashing, when set
}

func newHashingReader(r io.Reader, want v1.Hash, what string, stored *hashingReader, verify bool) *hashingReader {
	h := &hashingReader{r: r, want: want, what: what, stored: stored}
	if verify {
		h.h = newHasher(want)
	}
	if h.h != nil && asyncHashing {
		h.ahead = newHashAhead(h.h)
	}
	return h
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.ahead != nil {
		return h.readAhead(p)
	}
	if h.done {
		return 0, h.err
	}
	n, err := h.r.Read(p)
	if n > 0 {
		if h.h != nil {
			h.h.Write(p[:n])
		}
		if cerr := h.count(n); cerr != nil {
			return n, cerr
		}
	}
	if err == io.EOF {
		return n, h.end(err)
	}
	return n, err
}

// count adds n bytes read, and refuses a likely decompression bomb.
func (h *hashingReader) count(n int) error {
	h.n += int64(n)
	if h.stored != nil && h.n > ratioFloor && h.stored.n > 0 && h.n/h.stored.n > maxRatio {
		return fmt.Errorf("%w: content expands %d times (%d bytes from %d); refusing a likely decompression bomb", walk.ErrLayerTooLarge, h.n/h.stored.n, h.n, h.stored.n)
	}
	return nil
}

// end is called with the error that ended the source: at io.EOF (the first
// time) the digest is checked.
func (h *hashingReader) end(err error) error {
	if err != io.EOF || h.done {
		return err
	}
	h.done, h.err = true, err
	if h.h == nil {
		return err
	}
	var sum []byte
	if h.ahead != nil {
		sum = h.ahead.sum()
	} else {
		sum = h.h.Sum(nil)
	}
	if got := hex.EncodeToString(sum); got != h.want.Hex {
		h.err = fmt.Errorf("%w: %s should be %s but is %s:%s; the image is corrupt or was tampered with", ErrDigestMismatch, h.what, h.want, h.want.Algorithm, got)
	}
	return h.err
}

// stop ends the asynchronous hasher, if any.
func (h *hashingReader) stop() {
	if h.ahead != nil {
		h.ahead.stop()
	}
}

type verifiedLayer struct {
	io.Reader
	un, stored *hashingReader
	// ahead, for a compressed layer on more than one CPU, runs the
	// decompressor and everything under it (un, stored) in its own
	// goroutine; they are touched here only once it has stopped.
	ahead *inflateAhead
	// drain is what Close reads to the end: the stored blob, or for an
	// encrypted layer the decrypting stream over it (which authenticates
	// the ciphertext at its end).
	drain    io.Reader
	closeRaw func() error
	closeDec func()
}

// Verify reads what is left of the stored blob and checks its digest. The
// walk calls it when the content turned out unreadable, so that a corrupt
// blob is reported as such rather than as a broken tar.
func (v *verifiedLayer) Verify() error {
	if v.ahead != nil {
		v.ahead.stop()
	}
	if !v.stored.done {
		if _, err := io.Copy(io.Discard, v.stored); err != nil {
			return err
		}
	}
	// A docker-archive layer has no stored digest: its diffID is what
	// tells a tampered layer from a broken one, so read the rest of the
	// uncompressed stream through its hash. (Past a decompression error
	// this fails with that error, which is then the one reported.)
	if v.un.h != nil && !v.un.done {
		if _, err := io.Copy(io.Discard, v.un); err != nil && errors.Is(err, ErrDigestMismatch) {
			return err
		}
	}
	return nil
}

// Close checks, when the whole stream was read, that the stored blob was read
// to its end too, so its digest was verified.
func (v *verifiedLayer) Close() error {
	var err error
	if v.ahead != nil {
		rawClosed := false
		if !v.ahead.finished() {
			// Abandoned before the end: unblock a read the goroutine
			// may wait in (a registry stream) before waiting for it.
			rawClosed = true
			err = v.closeRaw()
		}
		v.ahead.stop()
		if rawClosed {
			v.un.stop()
			v.stored.stop()
			v.closeDec()
			return err
		}
	}
	if v.un.done && !v.stored.done {
		// The tar stream ended; drain the rest of the stored blob (gzip
		// trailer, padding) through the hash.
		_, err = io.Copy(io.Discard, v.drain)
	}
	v.un.stop()
	v.stored.stop()
	v.closeDec()
	if cerr := v.closeRaw(); err == nil {
		err = cerr
	}
	return err
}

// Options tell Open how to reach images.
type Options struct {
	// Platform picks an image from a multi-platform index ("linux/arm64");
	// default: the host's.
	Platform *v1.Platform
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// TempDir is the scan's temp space (archives from daemons are saved
	// there). Default: os.TempDir().
	TempDir string
	// Progress, when set, is told how many bytes each registry read brought.
	Progress func(n int64)
	// DockerHost overrides DOCKER_HOST for daemon sources.
	DockerHost string
	// Auth, when set, is the registry credential for this open (a server
	// pulling with the credentials a request carried, such as Harbor's
	// robot account) instead of Keychain's. It is used for registry
	// references only and is never logged.
	Auth authn.Authenticator
	// Decrypter, when set, decrypts encrypted layers as they are read.
	// Without it, Open refuses an image with encrypted layers
	// (*EncryptedLayersError).
	Decrypter LayerDecrypter
}

// Open opens an image named by ref:
//
//	docker-archive:FILE, oci-archive:FILE   image archives (gzip or not)
//	oci:DIR[:TAG], oci-layout:DIR[:TAG]      an OCI image layout directory
//	docker:NAME, podman:NAME                 an image from a Docker Engine API socket
//	rootfs:DIR                               a root filesystem directory
//	FILE or DIR                              an existing archive file or OCI layout directory
//	anything else                            a registry reference (alpine:3.20, host:5000/app@sha256:...)
func Open(ctx context.Context, ref string, opts Options) (*Image, error) {
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	scheme, rest, hasScheme := strings.Cut(ref, ":")
	if hasScheme {
		switch scheme {
		case "docker-archive", "oci-archive":
			return OpenArchive(rest, opts)
		case "oci", "oci-layout":
			dir, tag := splitLayoutRef(rest)
			return OpenLayout(dir, tag, opts)
		case "docker", "podman":
			return OpenDaemon(ctx, scheme, rest, opts)
		case "rootfs":
			return OpenRootfs(rest)
		case "dir":
			img, err := OpenRootfs(rest)
			if err == nil {
				img.Source = SourceDir
			}
			return img, err
		}
	}
	if st, err := os.Stat(ref); err == nil {
		if st.IsDir() {
			if _, err := os.Stat(ref + "/oci-layout"); err == nil {
				return OpenLayout(ref, "", opts)
			}
			return nil, fmt.Errorf("%s is a directory but not an OCI image layout (no oci-layout file); to scan a root filesystem use `bulkhead rootfs %s`", ref, ref)
		}
		return OpenArchive(ref, opts)
	}
	return OpenRemote(ctx, ref, opts)
}

// splitLayoutRef splits "DIR:TAG"; a colon inside the directory part (as in
// a Windows path or a tag-less path containing colons) is left alone when
// DIR:TAG is not an existing directory split.
func splitLayoutRef(s string) (string, string) {
	if st, err := os.Stat(s); err == nil && st.IsDir() {
		return s, ""
	}
	if i := strings.LastIndex(s, ":"); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
