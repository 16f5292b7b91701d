package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
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
// scopes match it ("alpine" -> "index.docker.io/library/alpine"), and its
// registry host.
func Repository(ref string) (repo, registry string, err error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	c := r.Context()
	return c.RegistryStr() + "/" + c.RepositoryStr(), c.RegistryStr(), nil
}
