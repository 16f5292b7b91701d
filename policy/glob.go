package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/image/imageref"
)

// globCache keeps compiled image globs: the webhook matches the same few
// patterns on every request.
var globCache sync.Map // string -> *regexp.Regexp

// compileImageGlob turns an image glob into a regexp: "**" spans path
// segments, "*" and "?" stay within one, everything else is literal.
func compileImageGlob(g string) (*regexp.Regexp, error) {
	if re, ok := globCache.Load(g); ok {
		return re.(*regexp.Regexp), nil
	}
	if strings.ContainsAny(g, "[]{}") {
		return nil, fmt.Errorf("only *, ** and ? are wildcards in image patterns")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch {
		case strings.HasPrefix(g[i:], "**"):
			b.WriteString(".*")
			i++
		case g[i] == '*':
			b.WriteString("[^/]*")
		case g[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	globCache.Store(g, re)
	return re, nil
}

// matchImage reports whether s (registry/repository, or a registry host,
// or a base reference) matches any of the globs; no globs match all.
func matchImage(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if re, err := compileImageGlob(g); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// matchBase matches a base reference (as the base catalog names it) as
// written or in canonical form, so that "alpine:3.*" and
// "docker.io/library/alpine:3.*" both allow the catalog's alpine:3.19.
func matchBase(globs []string, base string) bool {
	if matchImage(globs, base) {
		return true
	}
	r, err := imageref.Parse(base)
	return err == nil && matchImage(globs, r.String())
}

// matchName matches a namespace glob (path.Match syntax).
func matchName(g, s string) (bool, error) {
	return path.Match(g, s)
}

// matchNamespace reports whether ns matches; no globs match all, and so
// does an unknown namespace ("": the gate judging an image that may go
// anywhere).
func matchNamespace(globs []string, ns string) bool {
	if len(globs) == 0 || ns == "" {
		return true
	}
	for _, g := range globs {
		if ok, _ := matchName(g, ns); ok {
			return true
		}
	}
	return false
}

// Repository returns the registry/repository a reference names, as
// scopes match it: the canonical form of package imageref ("alpine" ->
// "index.docker.io/library/alpine", "Registry.Local:05000/t/app" ->
// "registry.local:5000/t/app"), and its registry host. A reference a
// registry would route to another repository is an *imageref.Error.
func Repository(ref string) (repo, registry string, err error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return "", "", err
	}
	return r.Repo(), r.Registry, nil
}
