package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/image"
)

// maxIndexImages bounds the manifests read from one image index.
const maxIndexImages = 64

// Manifests implements ManifestFacts: the manifest at img's digest, or
// for an image index each image manifest in it (attestation manifests,
// platform unknown/unknown, left out). Only manifests are fetched, and
// they are cached by digest (their content never changes).
func (r *Registry) Manifests(ctx context.Context, img *Image) ([]ImageManifest, error) {
	key := img.Repo + "@" + img.Digest
	r.mu.Lock()
	if r.manifests == nil {
		r.manifests = map[string]timed[[]ImageManifest]{}
	}
	c, ok := r.manifests[key]
	r.mu.Unlock()
	if ok {
		return c.v, nil
	}
	v, err, _ := r.flight.Do("manifests\x00"+key, func() (any, error) {
		return r.readManifests(ctx, key)
	})
	if err != nil {
		return nil, err
	}
	ms := v.([]ImageManifest)
	r.mu.Lock()
	prune(r.manifests, maxMemoryEntries, func(timed[[]ImageManifest]) bool { return false })
	r.manifests[key] = timed[[]ImageManifest]{ms, time.Now()}
	r.mu.Unlock()
	return ms, nil
}

func (r *Registry) readManifests(ctx context.Context, key string) ([]ImageManifest, error) {
	var nopts []name.Option
	if r.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.NewDigest(key, nopts...)
	if err != nil {
		return nil, err
	}
	ro := image.RemoteOptions(ctx, image.Options{Insecure: r.Insecure})
	desc, err := remote.Get(ref, ro...)
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", key, err)
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("parse manifest of %s: %w", key, err)
		}
		return []ImageManifest{{Digest: desc.Digest.String(), Layers: m.Layers}}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("parse index of %s: %w", key, err)
	}
	var out []ImageManifest
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || (d.Platform != nil && d.Platform.OS == "unknown") {
			continue
		}
		if len(out) == maxIndexImages {
			return nil, fmt.Errorf("index %s lists more than %d images", key, maxIndexImages)
		}
		child, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := child.Manifest()
		if err != nil {
			return nil, fmt.Errorf("manifest %s in %s: %w", d.Digest, key, err)
		}
		out = append(out, ImageManifest{Digest: d.Digest.String(), Platform: platformString(d.Platform), Layers: m.Layers})
	}
	return out, nil
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	return p.String()
}
