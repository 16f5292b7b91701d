package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bulkhead-sec/bulkhead/image/imageref"
)

// envKeychain gives BULKHEAD_USERNAME / BULKHEAD_PASSWORD to every registry.
type envKeychain struct{}

func (envKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	u, p := os.Getenv("BULKHEAD_USERNAME"), os.Getenv("BULKHEAD_PASSWORD")
	if u == "" && p == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: u, Password: p}, nil
}

// Keychain is how registry credentials are found: BULKHEAD_USERNAME and
// BULKHEAD_PASSWORD first, then ~/.docker/config.json (and $DOCKER_CONFIG)
// with its credential helpers, else anonymous (with token auth when the
// registry asks for it).
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(envKeychain{}, authn.DefaultKeychain)
}

// HostPlatform is the platform picked from a multi-platform index by default.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// RemoteOptions are the go-containerregistry options for a registry,
// shared with other commands (signing) that talk to registries.
func RemoteOptions(ctx context.Context, opts Options) []remote.Option {
	p := HostPlatform()
	if opts.Platform != nil {
		p = *opts.Platform
	}
	auth := remote.WithAuthFromKeychain(Keychain())
	if opts.Auth != nil {
		auth = remote.WithAuth(opts.Auth)
	}
	ro := []remote.Option{
		remote.WithContext(ctx),
		auth,
		remote.WithPlatform(p),
		remote.WithUserAgent("bulkhead"),
	}
	// Every registry request goes through the redirect guard: a manifest
	// request redirected to another repository is an error, never followed.
	var tr http.RoundTripper = remote.DefaultTransport
	if opts.Insecure {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for --insecure
		tr = t
	}
	return append(ro, remote.WithTransport(imageref.GuardRedirects(tr)))
}

// ParseReference parses an image reference into its canonical form
// (package imageref: what is judged is what is pulled), allowing plain HTTP
// when insecure (localhost and loopback registries are plain HTTP anyway).
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := imageref.Parse(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w; it is not an archive file or a layout directory either", err)
	}
	return r.Reference(), nil
}

// OpenRemote pulls an image's manifest and config from a registry; layers are
// streamed later, when walked.
func OpenRemote(ctx context.Context, ref string, opts Options) (*Image, error) {
	r, err := ParseReference(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, RemoteOptions(ctx, opts)...)
	if err != nil {
		return nil, explainRegistryError(r, err)
	}
	return fromV1(img, ref, SourceRegistry, opts)
}

func explainRegistryError(r name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("pull %s: access denied (%d); log in with `docker login %s` or set BULKHEAD_USERNAME and BULKHEAD_PASSWORD: %w", r, terr.StatusCode, r.Context().RegistryStr(), err)
		case http.StatusNotFound:
			return fmt.Errorf("pull %s: not found in the registry; check the repository and tag: %w", r, err)
		}
		return fmt.Errorf("pull %s: registry answered %d: %w", r, terr.StatusCode, err)
	}
	return fmt.Errorf("pull %s: %w", r, err)
}

// fromV1 wraps an image whose layers' Compressed() streams are the stored
// blobs (registry and OCI layout images).
func fromV1(img v1.Image, ref, source string, opts Options) (*Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", ref, err)
	}
	dg, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", ref, err)
	}
	layers := make([]storedLayer, 0, len(m.Layers))
	for _, desc := range m.Layers {
		desc := desc
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", desc.Digest, ref, err)
		}
		open := func() (io.ReadCloser, error) {
			rc, err := l.Compressed()
			if err != nil {
				return nil, fmt.Errorf("fetch layer %s: %w", desc.Digest, err)
			}
			if opts.Progress != nil {
				return &progressReader{rc: rc, fn: opts.Progress}, nil
			}
			return rc, nil
		}
		layers = append(layers, storedLayer{open: open, digest: desc.Digest, size: desc.Size})
	}
	if err := checkEncrypted(ref, m, layers, opts.Decrypter); err != nil {
		return nil, err
	}
	out := &Image{Image: img, Name: ref, Source: source, Digest: dg, ManifestAnnotations: m.Annotations}
	if err := out.setLayers(cfg, layers); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return out, nil
}

type progressReader struct {
	rc io.ReadCloser
	fn func(n int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

func (p *progressReader) Close() error { return p.rc.Close() }
