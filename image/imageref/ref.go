// Package imageref canonicalises image references at the boundary, before
// any policy scope is matched against them, so that a reference spelt
// differently from the repository a registry serves cannot escape a scope:
//
//   - the registry host is lower-cased, a port loses its leading zeros,
//     :443 and :80 (the default ports of the two schemes a registry is
//     reached over) are dropped, IPv6 addresses are written compactly;
//   - Docker Hub is index.docker.io whichever way it is written (docker.io,
//     registry-1.docker.io, no registry) and its official images are
//     library/NAME;
//   - a digest reference drops its tag: the digest is what is pulled;
//   - what a registry would resolve to another repository is rejected:
//     . and .. segments, empty segments (a//b), percent-encoding, and
//     anything outside the Docker reference grammar.
//
// It is built on go-containerregistry's name package: the canonical string
// is parsed again by name.ParseReference, and that is what is pulled.
package imageref

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the canonical name of Docker Hub's registry.
const DockerHub = name.DefaultRegistry // "index.docker.io"

// dockerHubAliases all serve Docker Hub's registry API.
var dockerHubAliases = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// maxRef bounds a reference (the Docker grammar allows 255 characters of
// name, a 128-character tag and a digest).
const maxRef = 1024

// Ref is an image reference in canonical form.
type Ref struct {
	// Written is the reference as given.
	Written string
	// Registry is the canonical registry: host[:port].
	Registry string
	// Repository is the repository path on the registry.
	Repository string
	// Tag is the tag ("" when Digest is set).
	Tag string
	// Digest is the manifest digest ("" for a tag reference).
	Digest string
	// IgnoredTag is a tag written alongside a digest
	// (repo:latest@sha256:...): the digest is what is pulled.
	IgnoredTag string

	ref name.Reference
}

// Error is a reference that was rejected, with the reason.
type Error struct {
	Ref    string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("image reference %q rejected: %s", e.Ref, e.Reason)
}

func reject(ref, format string, args ...any) error {
	return &Error{Ref: ref, Reason: fmt.Sprintf(format, args...)}
}

// Repo is registry/repository, what scopes match.
func (r *Ref) Repo() string { return r.Registry + "/" + r.Repository }

// String is the canonical reference: registry/repository:tag or
// registry/repository@digest.
func (r *Ref) String() string {
	if r.Digest != "" {
		return r.Repo() + "@" + r.Digest
	}
	return r.Repo() + ":" + r.Tag
}

// Pinned reports a digest reference.
func (r *Ref) Pinned() bool { return r.Digest != "" }

// Reference is the go-containerregistry reference of the canonical form:
// what is pulled.
func (r *Ref) Reference() name.Reference { return r.ref }

// Describe is the canonical form, and the reference as written when it
// differs, for messages.
func (r *Ref) Describe() string {
	s := r.String()
	if r.Written != "" && r.Written != s {
		s += " (written " + r.Written + ")"
	}
	return s
}

// Grammar of the Docker reference (distribution/reference), which is also
// what containerd and the kubelet accept.
var (
	pathComponent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`) })
	tagRE         = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
	hostLabel     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`) })
	numericLabel  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:[0-9]+|0[xX][0-9a-fA-F]*)$`) })
	digestRE      = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$`)
	})
)

// Parse canonicalises an image reference; opts are go-containerregistry's
// (name.Insecure for plain HTTP). A reference a registry could resolve to
// another repository is an *Error.
func Parse(s string, opts ...name.Option) (*Ref, error) {
	if s == "" {
		return nil, reject(s, "empty reference")
	}
	if len(s) > maxRef {
		return nil, reject(s[:64]+"...", "longer than %d characters", maxRef)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f:
			return nil, reject(s, "contains a space, a control or a non-ASCII character at byte %d", i)
		case c == '%':
			return nil, reject(s, "percent-encoding is not allowed in image references: write the name plainly")
		case c == '\\':
			return nil, reject(s, "backslash is not allowed in image references")
		}
	}
	base, dig, pinned := strings.Cut(s, "@")
	if pinned && strings.Contains(dig, "@") {
		return nil, reject(s, "more than one @: write registry/repository@sha256:<hex>")
	}
	if pinned && !digestRE().MatchString(dig) {
		return nil, reject(s, "digest %q is not valid: sha256: and 64 lower-case hex digits (or sha384:, sha512:)", dig)
	}
	tag := ""
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		base, tag = base[:i], base[i+1:]
		if !tagRE().MatchString(tag) {
			return nil, reject(s, "tag %q is not valid: letters, digits, _ . - (not first), at most 128", tag)
		}
	}
	registry, path := "", base
	if first, rest, ok := strings.Cut(base, "/"); ok {
		switch {
		case strings.ContainsAny(first, ".:[") || strings.EqualFold(first, "localhost"):
			registry, path = first, rest
		case strings.ToLower(first) != first:
			// Docker takes an upper-case first component for a registry
			// host, go-containerregistry for a Docker Hub namespace.
			return nil, reject(s, "%q is ambiguous: a registry host needs a dot or a port (registry.example.com/...), and repositories are lower-case", first)
		}
	}
	host, err := Host(registry)
	if err != nil {
		return nil, reject(s, "%v", err)
	}
	if err := checkPath(path); err != nil {
		return nil, reject(s, "%v", err)
	}
	if host == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	r := &Ref{Written: s, Registry: host, Repository: path}
	canonical := ""
	switch {
	case pinned:
		r.Digest, r.IgnoredTag = dig, tag
		canonical = r.Repo() + "@" + dig
	default:
		r.Tag = tag
		if r.Tag == "" {
			r.Tag = "latest"
		}
		canonical = r.Repo() + ":" + r.Tag
	}
	ref, err := name.ParseReference(canonical, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, reject(s, "%v", err)
	}
	if c := ref.Context(); c.RegistryStr() != r.Registry || c.RepositoryStr() != r.Repository || ref.Identifier() != r.identifier() {
		return nil, reject(s, "go-containerregistry reads it as %s, not %s", ref.Name(), canonical)
	}
	r.ref = ref
	return r, nil
}

func (r *Ref) identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// checkPath rejects repository paths a registry would route elsewhere
// (dot segments and empty segments are cleaned away by HTTP routers) or
// that the reference grammar does not allow.
func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("no repository")
	}
	if len(p) > 255 {
		return fmt.Errorf("repository path is over 255 characters")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("repository path %q has an empty segment (// or a leading or trailing /): a registry resolves it to another repository; write it without", p)
		case seg == "." || seg == "..":
			return fmt.Errorf("repository path %q has a %q segment: a registry resolves it to another repository, which policies would not judge; write the repository it means", p, seg)
		case !pathComponent().MatchString(seg):
			return fmt.Errorf("repository path segment %q is not valid: lower-case letters and digits, separated by one . or _, two __, or dashes", seg)
		}
	}
	return nil
}

// Host canonicalises a registry host[:port] ("" is Docker Hub): lower
// case, no leading zeros in the port, no :443 or :80, Docker Hub's
// aliases as index.docker.io, IPv6 compact and IPv4 as a dotted quad.
func Host(h string) (string, error) {
	if h == "" {
		return DockerHub, nil
	}
	hostname, port := h, ""
	ipv6 := false
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("registry %q: unclosed [", h)
		}
		hostname, port, ipv6 = h[1:end], h[end+1:], true
		if port != "" {
			if port[0] != ':' {
				return "", fmt.Errorf("registry %q: junk after ]", h)
			}
			port = port[1:]
			if port == "" {
				return "", fmt.Errorf("registry %q: empty port", h)
			}
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		hostname, port = h[:i], h[i+1:]
		if port == "" {
			return "", fmt.Errorf("registry %q: empty port", h)
		}
	}
	if port != "" {
		if len(port) > 10 || strings.Trim(port, "0123456789") != "" {
			return "", fmt.Errorf("registry %q: port %q is not a number", h, port)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("registry %q: port %q is out of range", h, port)
		}
		port = strconv.Itoa(n)
	}
	hostname = strings.ToLower(hostname)
	switch {
	case ipv6:
		a, err := netip.ParseAddr(hostname)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("registry %q: %q is not an IPv6 address", h, hostname)
		}
		if a.Is4In6() {
			hostname = a.Unmap().String()
		} else {
			hostname = "[" + a.String() + "]"
		}
	default:
		if err := checkHostname(hostname); err != nil {
			return "", fmt.Errorf("registry %q: %w", h, err)
		}
	}
	if dockerHubAliases[hostname] && (port == "" || port == "443") {
		return DockerHub, nil
	}
	// A default port adds nothing, unless the host would then no longer
	// read as a registry (myreg:443/app is not myreg/app, a Docker Hub
	// repository).
	if (port == "443" || port == "80") && (strings.ContainsAny(hostname, ".:") || hostname == "localhost") {
		port = ""
	}
	if port != "" {
		return hostname + ":" + port, nil
	}
	return hostname, nil
}

// checkHostname accepts DNS names and dotted-quad IPv4 addresses; other
// numeric forms (127.1, 0x7f.0.0.1, 127.000.0.1) are read differently by
// different resolvers and are rejected.
func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host is over 253 characters")
	}
	if strings.HasSuffix(h, ".") {
		return fmt.Errorf("host %q ends with a dot; write it without", h)
	}
	labels := strings.Split(h, ".")
	if numericLabel().MatchString(labels[len(labels)-1]) {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() || a.String() != h {
			return fmt.Errorf("host %q looks like an IPv4 address but is not a dotted quad without leading zeros", h)
		}
		return nil
	}
	for _, l := range labels {
		if !hostLabel().MatchString(l) {
			return fmt.Errorf("host %q: label %q is not a DNS label (letters, digits, inner dashes)", h, l)
		}
	}
	return nil
}
