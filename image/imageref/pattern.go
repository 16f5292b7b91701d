package imageref

import "strings"

const wildcards = "*?[]{}"

// ImagePattern puts the registry of a registry/repository glob in the
// canonical form references are matched in ("docker.io/library/*" is
// "index.docker.io/library/*", "Registry.Local:05000/**" is
// "registry.local:5000/**"). A registry part with wildcards is only
// lower-cased; a pattern without a registry part is returned as is.
func ImagePattern(p string) string {
	first, rest, ok := strings.Cut(p, "/")
	if !ok || !(strings.ContainsAny(first, ".:[") || strings.EqualFold(first, "localhost")) {
		return p
	}
	return HostPattern(first) + "/" + rest
}

// HostPattern puts a registry host glob in canonical form (see Host);
// with wildcards it is only lower-cased.
func HostPattern(p string) string {
	if strings.ContainsAny(p, wildcards) {
		return strings.ToLower(p)
	}
	if h, err := Host(p); err == nil {
		return h
	}
	return p
}
