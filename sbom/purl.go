package sbom

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// FromPURL returns the package identity a package URL carries: type, name,
// version (with the epoch folded in as the ecosystems write it: rpm and dpkg
// "1:1.0.2k-16.el7"), arch, and the source package from the "upstream"
// qualifier (syft and bulkhead's catalogers write it).
func FromPURL(s string) (inventory.Package, error) {
	pu, err := packageurl.FromString(s)
	if err != nil {
		return inventory.Package{}, fmt.Errorf("parse purl %q: %w", s, err)
	}
	q := pu.Qualifiers.Map()
	p := inventory.Package{
		Name:    pu.Name,
		Version: pu.Version,
		Type:    strings.ToLower(pu.Type),
		PURL:    s,
		Arch:    q["arch"],
	}
	if e, ok := q["epoch"]; ok {
		if n, err := strconv.Atoi(e); err == nil && n >= 0 {
			p.Epoch = &n
			if p.Version != "" && !strings.HasPrefix(p.Version, e+":") {
				p.Version = e + ":" + p.Version
			}
		}
	} else if i := strings.IndexByte(p.Version, ':'); i > 0 && (p.Type == inventory.TypeDeb || p.Type == inventory.TypeRPM) {
		if n, err := strconv.Atoi(p.Version[:i]); err == nil && n >= 0 {
			p.Epoch = &n
		}
	}
	if up := q["upstream"]; up != "" {
		p.SourceName, p.SourceVersion = parseUpstream(p.Type, up)
	}
	return p, nil
}

// parseUpstream reads the purl "upstream" qualifier: a source package name,
// "name@version", or for rpm the source rpm file name
// ("bash-4.2.46-31.el7.src.rpm").
func parseUpstream(typ, up string) (name, version string) {
	if typ == inventory.TypeRPM && strings.HasSuffix(up, ".src.rpm") {
		nvr := strings.TrimSuffix(up, ".src.rpm")
		// name-version-release: name may itself contain dashes.
		if r := strings.LastIndexByte(nvr, '-'); r > 0 {
			if v := strings.LastIndexByte(nvr[:r], '-'); v > 0 {
				return nvr[:v], nvr[v+1:]
			}
		}
		return nvr, ""
	}
	if i := strings.IndexByte(up, '@'); i > 0 {
		return up[:i], up[i+1:]
	}
	return up, ""
}

// OSFromPURLs guesses the operating system from the "distro" qualifier of
// OS package purls ("pkg:deb/debian/bash@5.2.15-2?distro=debian-12"), for
// SBOMs that carry no operating-system component. It returns nil when no
// package says.
func OSFromPURLs(pkgs []inventory.Package) *inventory.OS {
	for i := range pkgs {
		p := &pkgs[i]
		switch p.Type {
		case inventory.TypeAPK, inventory.TypeDeb, inventory.TypeRPM:
		default:
			continue
		}
		pu, err := packageurl.FromString(p.PURL)
		if err != nil || pu.Namespace == "" {
			continue
		}
		d := pu.Qualifiers.Map()["distro"]
		ns := strings.ToLower(pu.Namespace)
		switch {
		case d == "":
			continue
		case strings.HasPrefix(d, ns+"-"):
			return &inventory.OS{ID: ns, VersionID: d[len(ns)+1:], Source: "purl distro qualifier"}
		case d[0] >= '0' && d[0] <= '9':
			// trivy writes the version alone ("distro=3.15.0").
			return &inventory.OS{ID: ns, VersionID: d, Source: "purl distro qualifier"}
		}
	}
	return nil
}

// ImagePURL returns the pkg:oci package URL of a scanned image, or "" when
// the manifest digest or the repository is unknown (a directory scan, an
// archive without tags). The form follows the purl spec's oci type:
// pkg:oci/debian@sha256%3A...?arch=amd64&repository_url=docker.io/library/debian&tag=12
func ImagePURL(t inventory.Target) string {
	if !strings.HasPrefix(t.Digest, "sha256:") {
		return ""
	}
	var candidates []string
	candidates = append(candidates, t.RepoDigests...)
	candidates = append(candidates, t.RepoTags...)
	switch t.Source {
	case "registry", "daemon", "":
		candidates = append(candidates, t.Name)
	}
	var ref name.Reference
	for _, c := range candidates {
		if r, err := name.ParseReference(c); err == nil {
			ref = r
			break
		}
	}
	if ref == nil {
		return ""
	}
	repo := ref.Context()
	repoURL := repo.Name()
	if repo.RegistryStr() == name.DefaultRegistry {
		repoURL = "docker.io/" + repo.RepositoryStr()
	}
	q := map[string]string{"repository_url": repoURL}
	if t.Arch != "" {
		q["arch"] = t.Arch
	}
	// ParseReference defaults a missing tag to "latest": record only a tag
	// that the user or the image named.
	tagged := append([]string{}, t.RepoTags...)
	if t.Source == "registry" || t.Source == "daemon" {
		tagged = append([]string{t.Name}, tagged...)
	}
	for _, c := range tagged {
		last := c[strings.LastIndexByte(c, '/')+1:]
		if !strings.Contains(last, ":") || strings.Contains(c, "@") {
			continue
		}
		if tg, err := name.NewTag(c); err == nil && tg.Context().Name() == repo.Name() {
			q["tag"] = tg.TagStr()
			break
		}
	}
	base := repo.RepositoryStr()
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", strings.ToLower(base), t.Digest,
		packageurl.QualifiersFromMap(q), "").ToString()
}
