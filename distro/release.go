package distro

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// errUnknown is returned by a release-file parser that does not recognise
// the file's content.
var errUnknown = errors.New("unrecognised release file")

// firstLine returns the first non-blank line of b, trimmed.
func firstLine(b []byte) string {
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if l := strings.TrimSpace(string(line)); l != "" {
			return l
		}
	}
	return ""
}

// ParseAlpineRelease reads etc/alpine-release ("3.20.3").
func ParseAlpineRelease(b []byte) (*inventory.OS, error) {
	v := firstLine(b)
	if v == "" || strings.ContainsAny(v, " \t") {
		return nil, errUnknown
	}
	return &inventory.OS{ID: "alpine", VersionID: v, Name: "Alpine Linux"}, nil
}

// ParseDebianVersion reads etc/debian_version: "12.4" on a stable release,
// "trixie/sid" on testing. VersionID is the major release ("12"), as Debian's
// os-release writes VERSION_ID; a codename is kept as Codename.
func ParseDebianVersion(b []byte) (*inventory.OS, error) {
	v := firstLine(b)
	if v == "" || strings.ContainsAny(v, " \t") {
		return nil, errUnknown
	}
	os := &inventory.OS{ID: "debian", Name: "Debian GNU/Linux"}
	if v[0] >= '0' && v[0] <= '9' {
		major, _, _ := strings.Cut(v, ".")
		os.VersionID = major
		return os, nil
	}
	codename, _, _ := strings.Cut(v, "/")
	os.Codename = codename
	return os, nil
}

// ParseLSBRelease reads etc/lsb-release (DISTRIB_ID=Ubuntu,
// DISTRIB_RELEASE=18.04, DISTRIB_CODENAME=bionic).
func ParseLSBRelease(b []byte) (*inventory.OS, error) {
	kv := ParseKeyValues(b)
	id := strings.ToLower(kv["DISTRIB_ID"])
	if id == "" {
		return nil, errUnknown
	}
	return &inventory.OS{
		ID:         id,
		VersionID:  kv["DISTRIB_RELEASE"],
		Codename:   kv["DISTRIB_CODENAME"],
		Name:       kv["DISTRIB_ID"],
		PrettyName: kv["DISTRIB_DESCRIPTION"],
	}, nil
}

// redHatRelease matches the one-line release files of the Red Hat family:
// "CentOS Linux release 7.9.2009 (Core)", "Rocky Linux release 9.2 (Blue
// Onyx)", "Amazon Linux release 2 (Karoo)", "Fedora release 35 (Thirty Five)".
var redHatRelease = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.+?)\s+release\s+(\S+)(?:\s+\(([^)]*)\))?`) })

// redHatIDs maps the distribution names of those files, lower-cased, to
// their os-release IDs; the first matching prefix wins.
var redHatIDs = []struct{ prefix, id string }{
	{"red hat enterprise linux", "rhel"},
	{"centos", "centos"},
	{"rocky", "rocky"},
	{"almalinux", "almalinux"},
	{"fedora", "fedora"},
	{"amazon linux", "amzn"},
	{"oracle linux", "ol"},
	{"scientific linux", "scientific"},
}

// ParseRedHatRelease reads etc/redhat-release and its siblings
// (centos-release, rocky-release, almalinux-release, fedora-release,
// system-release). The version is kept as the file writes it ("7.9.2009").
func ParseRedHatRelease(b []byte) (*inventory.OS, error) {
	line := firstLine(b)
	m := redHatRelease().FindStringSubmatch(line)
	if m == nil {
		return nil, errUnknown
	}
	name := strings.ToLower(m[1])
	for _, r := range redHatIDs {
		if strings.HasPrefix(name, r.prefix) {
			return &inventory.OS{ID: r.id, VersionID: m[2], Codename: m[3], Name: m[1], PrettyName: line}, nil
		}
	}
	return nil, errUnknown
}

// ParseSuSERelease reads etc/SuSE-release, which SUSE shipped before
// os-release: a description line, then "VERSION = 12" and "PATCHLEVEL = 4".
func ParseSuSERelease(b []byte) (*inventory.OS, error) {
	head := firstLine(b)
	lower := strings.ToLower(head)
	var id string
	switch {
	case strings.HasPrefix(lower, "opensuse"):
		id = "opensuse"
	case strings.Contains(lower, "enterprise server"):
		id = "sles"
	case strings.Contains(lower, "enterprise desktop"):
		id = "sled"
	default:
		return nil, errUnknown
	}
	var version, patch string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "VERSION":
			version = strings.TrimSpace(v)
		case "PATCHLEVEL":
			patch = strings.TrimSpace(v)
		}
	}
	if version != "" && patch != "" && patch != "0" {
		version += "." + patch
	}
	name := head
	if i := strings.Index(name, " ("); i > 0 {
		name = name[:i] // drop the "(x86_64)" suffix
	}
	return &inventory.OS{ID: id, VersionID: version, Name: name, PrettyName: head}, nil
}
