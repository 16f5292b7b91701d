// Package signtest alters stored signatures and attestations the way an
// attacker with push access to a registry would, for tamper tests of
// bulkhead and cosign verification (like net/http/httptest, a test helper
// package).
package signtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Tampering helpers: they rewrite what is stored in the registry the way an
// attacker with push access would, using go-containerregistry only.

// RewriteTagLayer replaces layer i of the image at tag with edit's result.
func RewriteTagLayer(t testing.TB, tag name.Tag, ro []remote.Option, i int, edit func(blob []byte, anns map[string]string) ([]byte, map[string]string)) {
	t.Helper()
	img, err := remote.Image(tag, ro...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for j, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		anns := d.Annotations
		if j == i {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			cp := map[string]string{}
			for k, v := range anns {
				cp[k] = v
			}
			nb, na := edit(b, cp)
			l, anns = static.NewLayer(nb, d.MediaType), na
		}
		if out, err = mutate.Append(out, mutate.Addendum{Layer: l, Annotations: anns, MediaType: d.MediaType}); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(tag, out, ro...); err != nil {
		t.Fatal(err)
	}
}

// RewriteBundles replaces every bundle referrer of subject with edit's
// result: the old manifests are deleted (and dropped from the fallback
// referrers tag), the edited ones pushed.
func RewriteBundles(t testing.TB, subject name.Digest, ro []remote.Option, edit func(bundle []byte) []byte) {
	t.Helper()
	idx, err := remote.Referrers(subject, ro...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	repo := subject.Context()
	var old []v1.Hash
	for _, d := range im.Manifests {
		if d.ArtifactType != bundleMediaType && d.ArtifactType != emptyConfigMediaType {
			continue
		}
		r, err := remote.Get(repo.Digest(d.Digest.String()), ro...)
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(r.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		l, err := remote.Layer(repo.Digest(m.Layers[0].Digest.String()), ro...)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := l.Compressed()
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		nb := edit(b)
		nl := static.NewLayer(nb, types.MediaType(bundleMediaType))
		if err := remote.WriteLayer(repo, nl, ro...); err != nil {
			t.Fatal(err)
		}
		nd, _ := nl.Digest()
		m.Layers[0].Digest, m.Layers[0].Size = nd, int64(len(nb))
		m.Annotations["tampered"] = "yes"
		raw, _ := json.Marshal(m)
		h, _, _ := v1.SHA256(bytes.NewReader(raw))
		if err := remote.Put(repo.Digest(h.String()), rawManifest{&m}, ro...); err != nil {
			t.Fatal(err)
		}
		old = append(old, d.Digest)
	}
	if len(old) == 0 {
		t.Fatal("no bundle to tamper with")
	}
	for _, h := range old {
		_ = remote.Delete(repo.Digest(h.String()), ro...)
	}
	// The fallback tag (registries without the referrers API) still lists
	// the deleted manifests: drop them.
	fb := repo.Tag(fmt.Sprintf("%s-%s", subject.DigestStr()[:6], subject.DigestStr()[7:]))
	if fidx, err := remote.Index(fb, ro...); err == nil {
		fim, _ := fidx.IndexManifest()
		var keep []v1.Descriptor
		for _, d := range fim.Manifests {
			drop := false
			for _, h := range old {
				drop = drop || d.Digest == h
			}
			if !drop {
				keep = append(keep, d)
			}
		}
		fim.Manifests = keep
		if err := remote.Put(fb, rawIndex{fim}, ro...); err != nil {
			t.Fatal(err)
		}
	}
}

// Media types of cosign v3's bundle referrers (sign's constants; this
// package does not import sign so that sign's own tests can use it).
const (
	bundleMediaType      = "application/vnd.dev.sigstore.bundle.v0.3+json"
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
)

type rawManifest struct{ m *v1.Manifest }

func (r rawManifest) RawManifest() ([]byte, error)        { return json.Marshal(r.m) }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Tag is cosign's sha256-<hex>.<suffix> tag of a digest (sig, att).
func Tag(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix)
}

type rawIndex struct{ im *v1.IndexManifest }

func (r rawIndex) RawManifest() ([]byte, error)        { return json.Marshal(r.im) }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// EditBundleEnvelope applies edit to the DSSE envelope inside a bundle.
func EditBundleEnvelope(t testing.TB, b []byte, edit func(env map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	env := doc["dsseEnvelope"].(map[string]any)
	edit(env)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// EditStatement rewrites the base64 payload of a DSSE envelope map.
func EditStatement(t testing.TB, env map[string]any, edit func(st map[string]any)) {
	t.Helper()
	p, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(p, &st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	np, _ := json.Marshal(st)
	env["payload"] = base64.StdEncoding.EncodeToString(np)
}
