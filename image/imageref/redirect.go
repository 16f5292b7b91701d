package imageref

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// RedirectError is a registry redirecting a manifest, tag list or
// referrers request to another repository or registry: what would be
// judged is not what would be served.
type RedirectError struct {
	From, To string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("registry redirected %s to %s, another repository: refusing it, since policies judge the repository as named; reference the repository it serves directly", e.From, e.To)
}

// GuardRedirects wraps a registry transport (go-containerregistry's
// remote.WithTransport) so that a redirect of a /v2/<repo>/manifests/,
// /tags/ or /referrers/ request to another repository or another
// host:port is an error (*RedirectError) instead of being followed. Blob
// redirects (to storage backends and CDNs, content-addressed and verified
// by digest) and the /v2/ ping pass. The guard sees the 3xx response
// itself: go-containerregistry's http.Client follows redirects through the
// same transport, so the next hop is never requested.
func GuardRedirects(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if g, ok := rt.(redirectGuard); ok {
		return g
	}
	return redirectGuard{rt}
}

type redirectGuard struct{ rt http.RoundTripper }

func (g redirectGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.rt.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return resp, err
	}
	repo, kind, ok := apiPath(req.URL.Path)
	if !ok {
		return resp, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil // not followed
	}
	to, perr := req.URL.Parse(loc)
	bad := perr != nil || to.RawPath != "" || !sameEndpoint(req.URL, to)
	if !bad {
		r2, k2, ok2 := apiPath(path.Clean(to.Path))
		bad = !ok2 || r2 != repo || k2 != kind
	}
	if !bad {
		return resp, nil
	}
	resp.Body.Close()
	return nil, &RedirectError{From: req.URL.Redacted(), To: loc}
}

// apiPath splits /v2/<repo>/<kind>/<ref> for the kinds whose redirects
// are guarded.
func apiPath(p string) (repo, kind string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", false
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return "", "", false
	}
	repo, kind = rest[:j], rest[j+1:]
	switch kind {
	case "manifests", "tags", "referrers":
		return repo, kind, repo != ""
	}
	return "", "", false
}

// sameEndpoint compares host and effective port (a scheme change on the
// default ports, http to https, is the same endpoint).
func sameEndpoint(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		p = strings.TrimLeft(p, "0")
		if p == "443" || p == "80" {
			return "default"
		}
		return p
	}
	return "default"
}
