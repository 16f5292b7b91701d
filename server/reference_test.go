package server

import (
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// TestReference: a repository comes from a registry target, a repository
// tag or the reference given, never from a file name.
func TestReference(t *testing.T) {
	for _, c := range []struct {
		target          inventory.Target
		given           string
		wantRef, wantRp string
	}{
		{inventory.Target{Name: "alpine:3.20", Source: "registry"}, "", "index.docker.io/library/alpine:3.20", "index.docker.io/library/alpine"},
		{inventory.Target{Name: "testdata/app.oci.tar", Source: "oci-archive"}, "", "testdata/app.oci.tar", ""},
		{inventory.Target{Name: "app.tar", Source: "docker-archive", RepoTags: []string{"ghcr.io/acme/app:1"}}, "", "ghcr.io/acme/app:1", "ghcr.io/acme/app"},
		{inventory.Target{Name: "app.tar", Source: "docker-archive"}, "registry.example/app:2", "registry.example/app:2", "registry.example/app"},
		{inventory.Target{Name: "x", Source: "sbom"}, "not a reference!", "not a reference!", ""},
	} {
		ref, repo := reference(c.target, c.given)
		if ref != c.wantRef || repo != c.wantRp {
			t.Errorf("%+v %q: %q %q, want %q %q", c.target, c.given, ref, repo, c.wantRef, c.wantRp)
		}
	}
}
