package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Encrypted layers (OCI image encryption, containers/ocicrypt): the layer's
// media type is the plain one with EncryptedSuffix, and the key material is
// in the descriptor's annotations (AnnotationPrefix...). The config's
// diffIDs are those of the plain layers.
const (
	EncryptedSuffix = "+encrypted"
	// EncAnnotationPrefix starts every annotation of the encryption
	// namespace (org.opencontainers.image.enc.keys.jwe, ...pubopts).
	EncAnnotationPrefix = "org.opencontainers.image.enc."
)

// IsEncryptedMediaType says whether a layer media type is an encrypted one.
func IsEncryptedMediaType(mt string) bool { return strings.HasSuffix(mt, EncryptedSuffix) }

// LayerDecrypter decrypts layers as they are read; package image/crypt
// implements it with containers/ocicrypt.
type LayerDecrypter interface {
	// DecryptLayer returns the plain stored bytes (compressed as the
	// layer was before encryption) of the encrypted stream r, whose
	// manifest descriptor is desc. The returned reader fails at EOF when
	// the content does not authenticate.
	DecryptLayer(r io.Reader, desc v1.Descriptor) (io.Reader, error)
}

// KeepEncrypted, as Options.Decrypter, opens an image with encrypted layers
// as it is stored: for copying its blobs (image/crypt), never for a walk.
var KeepEncrypted LayerDecrypter = keepEncrypted{}

type keepEncrypted struct{}

func (keepEncrypted) DecryptLayer(io.Reader, v1.Descriptor) (io.Reader, error) {
	return nil, fmt.Errorf("the image was opened to copy its encrypted layers, not to read them")
}

// EncryptedLayer names one encrypted layer.
type EncryptedLayer struct {
	Index     int
	Digest    string
	MediaType string
}

// EncryptedLayersError is returned by Open for an image with encrypted
// layers when no decryption key was given: nothing of the image is read.
type EncryptedLayersError struct {
	Image  string
	Layers []EncryptedLayer
}

func (e *EncryptedLayersError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s has %d encrypted layer", e.Image, len(e.Layers))
	if len(e.Layers) != 1 {
		b.WriteString("s")
	}
	b.WriteString(" (")
	for j, l := range e.Layers {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "layer %d %s", l.Index, l.Digest)
		if j == 9 && len(e.Layers) > 10 {
			fmt.Fprintf(&b, ", and %d more", len(e.Layers)-10)
			break
		}
	}
	b.WriteString("); give the private key with --decryption-key FILE to scan it")
	return b.String()
}

// encryptedLayers lists the layers of m whose media type is encrypted.
func encryptedLayers(m *v1.Manifest) []EncryptedLayer {
	var out []EncryptedLayer
	for j, l := range m.Layers {
		if IsEncryptedMediaType(string(l.MediaType)) {
			out = append(out, EncryptedLayer{Index: j, Digest: l.Digest.String(), MediaType: string(l.MediaType)})
		}
	}
	return out
}

// checkEncrypted is what Open does with a manifest's layers: without a
// decrypter an image with encrypted layers is an *EncryptedLayersError;
// with one, each encrypted layer's open decrypts the stream and its diffID
// is verified (the stored digest only proves the ciphertext).
func checkEncrypted(name string, m *v1.Manifest, layers []storedLayer, dec LayerDecrypter) error {
	enc := encryptedLayers(m)
	if len(enc) == 0 || dec == KeepEncrypted {
		return nil
	}
	if dec == nil {
		return &EncryptedLayersError{Image: name, Layers: enc}
	}
	for _, e := range enc {
		desc := m.Layers[e.Index]
		idx := e.Index
		layers[e.Index].decrypt = func(r io.Reader) (io.Reader, error) {
			pr, err := dec.DecryptLayer(r, desc)
			if err != nil {
				return nil, fmt.Errorf("decrypt layer %d %s: %w", idx, desc.Digest, err)
			}
			return pr, nil
		}
	}
	return nil
}

// DiffID reads a layer's stored bytes (gzip, zstd or plain tar) to the end
// and returns the sha256 of the uncompressed tar: the layer's diffID.
func DiffID(r io.Reader) (v1.Hash, error) {
	plain, closeDec, err := decompress(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return v1.Hash{}, err
	}
	defer closeDec()
	h := sha256.New()
	if _, err := io.Copy(h, plain); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
