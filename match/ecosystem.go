package match

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/inventory"
	packageurl "github.com/package-url/packageurl-go"
)

// query is what one inventory package is looked up and compared as.
type query struct {
	eco     string // exact OSV ecosystem ("Debian:12")
	name    string // package name as OSV writes it (source name for distros)
	version string // version compared against the ranges
}

// Language package types (the purl types the catalogers set).
const (
	typeGo       = "golang"
	typeNPM      = "npm"
	typePyPI     = "pypi"
	typeMaven    = "maven"
	typeGem      = "gem"
	typeCargo    = "cargo"
	typeComposer = "composer"
	typeNuGet    = "nuget"
)

var languageEcosystems = map[string]string{
	typeGo:       "Go",
	typeNPM:      "npm",
	typePyPI:     "PyPI",
	typeMaven:    "Maven",
	typeGem:      "RubyGems",
	typeCargo:    "crates.io",
	typeComposer: "Packagist",
	typeNuGet:    "NuGet",
}

// debianReleases maps Debian codenames to the release numbers OSV uses, for
// images whose os-release has no VERSION_ID (testing, some distroless).
var debianReleases = map[string]string{
	"wheezy": "7", "jessie": "8", "stretch": "9", "buster": "10",
	"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14", "duke": "15",
}

var pypiNameSep = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[-_.]+`) })

// normalizePyPI applies PEP 503 name normalisation, which OSV PyPI records use.
func normalizePyPI(name string) string {
	if !strings.ContainsAny(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_.") && !strings.Contains(name, "--") {
		return name
	}
	return strings.ToLower(pypiNameSep().ReplaceAllString(name, "-"))
}

// osEcosystem derives the OSV ecosystem for a distro package type from the
// detected OS, or "" with a reason when none applies. The strings are
// osv.dev's (https://ossf.github.io/osv-schema/#defined-ecosystems) and match
// what osv-scalibr's ecosystem code derives, except where noted.
func osEcosystem(typ string, os *inventory.OS) (eco, prefix, reason string) {
	if os == nil || os.ID == "" {
		return "", "", "no operating system detected"
	}
	id := strings.ToLower(os.ID)
	ver := os.VersionID
	majorMinor := func(v string) string {
		parts := strings.Split(v, ".")
		if len(parts) < 2 {
			return v
		}
		return parts[0] + "." + parts[1]
	}
	major, _, _ := strings.Cut(ver, ".")
	switch typ {
	case inventory.TypeAPK:
		switch id {
		case "wolfi":
			return "Wolfi", "", ""
		case "chainguard":
			return "Chainguard", "", ""
		case "minimos":
			return "MinimOS", "", ""
		case "alpine":
			if ver == "" {
				return "", "", "Alpine without VERSION_ID"
			}
			// VERSION_ID 3.20.3 -> Alpine:v3.20; edge reports e.g.
			// 3.21.0_alpha20240923, which trims to the next release.
			return "Alpine:v" + majorMinor(ver), "", ""
		}
	case inventory.TypeDeb:
		switch id {
		case "debian":
			if major == "" {
				major = debianReleases[strings.ToLower(os.Codename)]
			}
			if major == "" {
				return "", "", "Debian release unknown (no VERSION_ID, codename " + strconv.Quote(os.Codename) + ")"
			}
			return "Debian:" + major, "", ""
		case "ubuntu":
			if ver == "" {
				return "", "", "Ubuntu without VERSION_ID"
			}
			// osv.dev writes LTS releases as "Ubuntu:22.04:LTS" (osv-scalibr's
			// purl mapping agrees; its os-release path writes "Ubuntu:22.04",
			// which matches no LTS record).
			if isUbuntuLTS(os) {
				return "Ubuntu:" + ver + ":LTS", "", ""
			}
			return "Ubuntu:" + ver, "", ""
		}
	case inventory.TypeRPM:
		switch id {
		case "almalinux":
			return "AlmaLinux:" + major, "", ""
		case "rocky":
			// osv.dev's Rocky records are per major release; osv-scalibr
			// queries plain "Rocky Linux" and so matches every release's
			// records (see bench/match-compare.sh notes).
			return "Rocky Linux:" + major, "", ""
		case "rhel":
			// Red Hat records are keyed by CPE-derived repositories
			// ("Red Hat:enterprise_linux:9::appstream"); the image does
			// not say which repositories it used, so every
			// enterprise_linux:<major> repository is consulted.
			return "", "Red Hat:enterprise_linux:" + major + "::", ""
		case "opensuse-leap":
			return "openSUSE:Leap " + ver, "", ""
		case "sles":
			return "SUSE:" + ver, "", ""
		case "mageia":
			return "Mageia:" + ver, "", ""
		case "azurelinux", "mariner":
			return "Azure Linux:" + ver, "", ""
		case "openeuler":
			return "openEuler:" + ver, "", ""
		}
	}
	return "", "", "no OSV ecosystem for " + typ + " packages on " + os.ID
}

func isUbuntuLTS(os *inventory.OS) bool {
	if strings.Contains(os.PrettyName, "LTS") || strings.Contains(os.Name, "LTS") {
		return true
	}
	// LTS releases are the even years' April releases.
	y, m, ok := strings.Cut(os.VersionID, ".")
	n, err := strconv.Atoi(y)
	return ok && err == nil && m == "04" && n%2 == 0
}

// rhelFamily are the ecosystems whose OSV versions carry the rpm epoch
// ("1:2.06-27.el9_0.7.alma").
func rhelFamily(eco string) bool {
	return strings.HasPrefix(eco, "AlmaLinux:") || strings.HasPrefix(eco, "Rocky Linux") || strings.HasPrefix(eco, "Red Hat:")
}

// packageName returns the name OSV uses for p in the ecosystem eco.
func packageName(p *inventory.Package, eco string) string {
	switch p.Type {
	case inventory.TypeDeb, inventory.TypeAPK:
		// Debian/Ubuntu advisories name source packages; Alpine's secdb
		// (and so OSV's Alpine records, purl "?arch=source") names origins.
		if p.SourceName != "" {
			return p.SourceName
		}
		return p.Name
	case inventory.TypeRPM:
		// AlmaLinux, Rocky and Red Hat records list binary rpm names.
		return p.Name
	}
	name := p.Name
	var pu *packageurl.PackageURL
	if p.PURL != "" {
		if u, err := packageurl.FromString(p.PURL); err == nil {
			pu = &u
		}
	}
	switch p.Type {
	case typeMaven:
		if !strings.Contains(name, ":") && pu != nil && pu.Namespace != "" {
			name = pu.Namespace + ":" + name
		}
	case typeNPM, typeGo, typeComposer:
		if pu != nil && pu.Namespace != "" && !strings.HasPrefix(name, pu.Namespace+"/") {
			name = pu.Namespace + "/" + name
		}
		if p.Type == typeGo && (name == "go" || name == "golang.org/toolchain") {
			name = "stdlib"
		}
	case typePyPI:
		name = normalizePyPI(name)
	}
	return name
}

// packageVersion returns the version compared against OSV ranges. For
// Debian/Ubuntu and Alpine it is the installed binary package's version, as
// osv-scanner compares (not the source version): the binary's version is
// what the fix's version is written against in all but binNMU cases.
func packageVersion(p *inventory.Package, eco string) string {
	v := p.Version
	if p.Type == inventory.TypeRPM && rhelFamily(eco) && p.Epoch != nil && *p.Epoch > 0 && !hasEpoch(v) {
		v = strconv.Itoa(*p.Epoch) + ":" + v
	}
	if p.Type == typeGo {
		// Go module versions are "v1.2.3"; OSV Go ranges are "1.2.3".
		v = strings.TrimPrefix(v, "v")
		v = strings.TrimPrefix(v, "go")
	}
	return v
}

func hasEpoch(v string) bool {
	i := strings.IndexByte(v, ':')
	if i <= 0 {
		return false
	}
	_, err := strconv.Atoi(v[:i])
	return err == nil
}
