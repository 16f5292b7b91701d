package imageref

import (
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// served is what a registry serves for a reference, computed the way the
// request is made and routed, independently of Parse: go-containerregistry
// reads the reference and builds /v2/<repo>/manifests/<ref>; the registry
// routes path.Clean of the URL path (distribution's router, net/http's
// ServeMux); the host is case-insensitive, the port an integer (443 and 80
// being the default ports of https and http), Docker Hub one registry with
// its official images under library/. ok is false when go-containerregistry
// rejects the reference (nothing is requested). clean reports whether the
// routed path is the requested one.
func served(ref string) (repo string, clean, ok bool) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", false, false
	}
	c := r.Context()
	u, err := url.Parse("https://" + c.RegistryStr() + "/v2/" + c.RepositoryStr() + "/manifests/x")
	if err != nil {
		return "", false, false
	}
	requested := "/v2/" + c.RepositoryStr() + "/manifests/x"
	routed := path.Clean(u.Path)
	clean = routed == requested && u.Path == requested
	p := strings.TrimPrefix(routed, "/v2/")
	p = strings.TrimSuffix(p, "/manifests/x")
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		if a.Is4In6() {
			host = a.Unmap().String()
		} else {
			host = "[" + a.String() + "]"
		}
	}
	port := ""
	if u.Port() != "" {
		n, err := strconv.Atoi(u.Port())
		if err != nil || n < 1 || n > 65535 {
			return "", false, false
		}
		if (n != 443 && n != 80) || !(strings.ContainsAny(host, ".:") || host == "localhost") {
			port = ":" + strconv.Itoa(n)
		}
	}
	if dockerHubAliases[host] && (port == "" || port == ":443") {
		host, port = DockerHub, ""
	}
	if host == DockerHub && !strings.Contains(p, "/") {
		p = "library/" + p
	}
	return host + port + "/" + p, clean, true
}

// hasDotSegment: the repository part of a written reference has a . or
// .. or empty segment.
func hasDotSegment(ref string) bool {
	base, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		base = base[:i]
	}
	if _, rest, ok := strings.Cut(base, "/"); ok {
		base = rest
	}
	s := "/" + base + "/"
	return strings.Contains(s, "/./") || strings.Contains(s, "/../") || strings.Contains(s, "//")
}

// FuzzParse: a reference Parse accepts has the canonical repository the
// registry serves for the reference as written (so a scope matched on it
// is matched on what is pulled), re-parses to itself, and go-containerregistry
// pulls exactly it; one with dot or empty segments is never accepted.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"alpine", "alpine:3.19", "docker.io/library/alpine", "Docker.IO/acme/app:1", "registry-1.docker.io/acme/app",
		"registry.local:5000/t/app@" + dg, "registry.local/other/../t/app@" + dg, "127.0.0.1:05000/t/app",
		"Registry.Local:5000/t/app", "registry.example.com:443/t/app", "registry.example.com:80/t/app",
		"registry.local/t/app:latest@" + dg, "registry.local/t//app", "registry.local/./t/app", "[::1]:5000/t/app",
		"[0:0::1]:05000/t/app", "localhost/app", "LOCALHOST:443/a", "myreg:443/app", "127.1:5000/a", "reg.local/%2e%2e/a",
		"reg.local/a/..", "reg.local/..", "reg.local/a/../..", "reg.local:0080/a/b/../c:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if hasDotSegment(s) {
			t.Fatalf("%q accepted as %s despite a dot or empty segment", s, r)
		}
		if repo, clean, ok := served(s); ok {
			if !clean {
				t.Fatalf("%q accepted as %s but the registry routes it elsewhere (%s)", s, r, repo)
			}
			if repo != r.Repo() {
				t.Fatalf("%q: canonical %s, served %s", s, r.Repo(), repo)
			}
		}
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() || again.Repo() != r.Repo() {
			t.Fatalf("%q: canonical %s does not re-parse to itself: %v %v", s, r, again, err)
		}
		if got := r.Reference().Context().Name(); got != r.Repo() {
			t.Fatalf("%q: pulls %s, judged %s", s, got, r.Repo())
		}
		if r.Pinned() != (r.Reference().Identifier() == r.Digest) {
			t.Fatalf("%q: pinned %v but pulls %s", s, r.Pinned(), r.Reference().Identifier())
		}
	})
}
