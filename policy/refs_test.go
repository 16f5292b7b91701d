package policy

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// hubFacts stands for Docker Hub, which tests cannot reach: it records
// which repository each fact was asked about, finds no trusted signature
// on anything, and reports alpine:3.19 as every image's base.
type hubFacts struct {
	mu       sync.Mutex
	verified []string
}

func (h *hubFacts) Resolve(_ context.Context, img *Image) (string, error) {
	return "sha256:" + strings.Repeat("ab", 32), nil
}

func (h *hubFacts) Verify(_ context.Context, img *Image, _ *SignatureRule) error {
	h.mu.Lock()
	h.verified = append(h.verified, img.Repo)
	h.mu.Unlock()
	return &Violation{"no valid signature by a trusted key"}
}

func (h *hubFacts) Scan(_ context.Context, img *Image) (*Scan, error) {
	return &Scan{Digest: img.Digest, Base: "alpine:3.19"}, nil
}

// TestScopesCanonical: scopes, registries.allowed, baseImages and
// exemptions match the canonical reference whatever spelling the image or
// the pattern uses: Docker Hub as docker.io, index.docker.io,
// registry-1.docker.io or nothing, :443 written out, upper case, leading
// zeros; a digest next to a misleading tag is the digest.
func TestScopesCanonical(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f, err := Parse("p.yaml", []byte(`apiVersion: bulkhead.dev/v1
kind: Policy
rules:
  - {name: hub-signed, match: {images: ["docker.io/acme/**"]}, signatures: {keys: [release.pub]}}
  - {name: registries, registries: {allowed: ["docker.io", "Registry.Local:05000", "ghcr.io:443"]}}
  - {name: pinned, match: {images: ["Registry.Local:5000/**", "docker.io/acme/legacy"]}, digestPinning: {}}
  - {name: bases, match: {images: ["ghcr.io/**"]}, baseImages: {allowed: ["docker.io/library/alpine:3.*"]}}
exemptions:
  - {rule: pinned, images: ["index.docker.io/acme/legacy"], owner: o, reason: r, expires: 2999-01-01}
`), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image   string
		allowed bool
		want    []string // in the reason
		checked string   // repository the signature was verified for ("" none)
	}{
		{"acme/app:1", false, []string{`rule "hub-signed" (signatures): index.docker.io/acme/app:1 (written acme/app:1)`}, "index.docker.io/acme/app"},
		{"docker.io/acme/app:1", false, []string{"index.docker.io/acme/app:1 (written docker.io/acme/app:1)"}, "index.docker.io/acme/app"},
		{"index.docker.io/acme/app:1", false, []string{`(signatures): index.docker.io/acme/app:1: no valid`}, "index.docker.io/acme/app"},
		{"registry-1.docker.io/acme/app:1", false, []string{"index.docker.io/acme/app:1"}, "index.docker.io/acme/app"},
		{"Docker.IO:443/acme/app:1", false, []string{"index.docker.io/acme/app:1"}, "index.docker.io/acme/app"},
		{"docker.io/acme/app:latest@" + dg, false, []string{"index.docker.io/acme/app@" + dg + " (written docker.io/acme/app:latest@"}, "index.docker.io/acme/app"},
		// Not Docker Hub: out of the signature scope, allowed registry.
		{"registry.local:5000/acme/app@" + dg, true, nil, ""},
		{"REGISTRY.local:05000/acme/app@" + dg, true, nil, ""},
		{"registry.local:5000/acme/app:1", false, []string{`rule "pinned" (digestPinning): registry.local:5000/acme/app:1: not pinned`}, ""},
		{"registry.local:5001/acme/app@" + dg, false, []string{"registry registry.local:5001 is not allowed (allowed: index.docker.io, registry.local:5000, ghcr.io)"}, ""},
		{"ghcr.io:0443/acme/app@" + dg, true, nil, ""},
		// The exemption for docker.io/acme/legacy, however spelt.
		{"acme/legacy", false, []string{`rule "pinned" (digestPinning): index.docker.io/acme/legacy:latest (written acme/legacy): not pinned`, "[exempted until"}, "index.docker.io/acme/legacy"},
		// Rejected references are denied by every image rule.
		{"registry.local:5000/acme/../app@" + dg, false, []string{`rule "registries" (registries): registry.local:5000/acme/../app@`, `".." segment`}, ""},
	} {
		facts := &hubFacts{}
		d := (&Engine{File: f, Facts: facts}).Evaluate(context.Background(), Input{Images: []string{tc.image}})
		if d.Allowed != tc.allowed {
			t.Errorf("%s: allowed %v: %s", tc.image, d.Allowed, d.Reason())
		}
		all := d.Reason()
		for _, r := range d.Results {
			all += "\n" + r.Message
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: lacks %q:\n%s", tc.image, w, all)
			}
		}
		if got := strings.Join(facts.verified, ","); got != tc.checked {
			t.Errorf("%s: verified for %q, want %q", tc.image, got, tc.checked)
		}
	}
}
