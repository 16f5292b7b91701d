// Package distro detects the operating system of an image or file tree from
// os-release and the older distribution release files, as one visitor of the
// streaming walk.
package distro

import (
	"bytes"
	"errors"
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// ErrNoID is returned for an os-release file without an ID field: such a
// file cannot tell which distribution it describes.
var ErrNoID = errors.New("no ID field")

// ParseOSRelease reads an os-release file (os-release(5)): KEY=VALUE lines
// with shell-style quoting. It returns the OS it names, or ErrNoID.
// Distroless is set for Google's distroless images, whose os-release says
// PRETTY_NAME="Distroless" while ID stays "debian".
func ParseOSRelease(b []byte) (*inventory.OS, error) {
	kv := ParseKeyValues(b)
	id := strings.ToLower(kv["ID"])
	if id == "" {
		return nil, ErrNoID
	}
	os := &inventory.OS{
		ID:         id,
		VersionID:  kv["VERSION_ID"],
		Codename:   kv["VERSION_CODENAME"],
		Name:       kv["NAME"],
		PrettyName: kv["PRETTY_NAME"],
	}
	if os.Codename == "" {
		os.Codename = kv["UBUNTU_CODENAME"] // Ubuntu before 16.04 wrote only this
	}
	for _, l := range strings.Fields(kv["ID_LIKE"]) {
		os.IDLike = append(os.IDLike, strings.ToLower(l))
	}
	os.Distroless = strings.Contains(strings.ToLower(os.PrettyName), "distroless")
	return os, nil
}

// ParseKeyValues reads the KEY=VALUE lines of os-release and lsb-release
// files. Values may be quoted with " or ' and use backslash escapes, as the
// shell reads them (the format is meant to be sourced by sh); variable
// expansion is not done. Comments, blank lines and malformed lines are
// skipped.
func ParseKeyValues(b []byte) map[string]string {
	kv := map[string]string{}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		eq := bytes.IndexByte(line, '=')
		if eq <= 0 {
			continue
		}
		key := string(line[:eq])
		if !validKey(key) {
			continue
		}
		kv[key] = unquote(line[eq+1:])
	}
	return kv
}

func validKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return k != ""
}

// unquote reads one shell word: quoted parts are joined, a backslash outside
// single quotes escapes the next character (inside double quotes only
// $ ` " \ and newline are escapable, as in sh), and an unquoted blank ends
// the word. An unterminated quote runs to the end of the line.
func unquote(v []byte) string {
	var sb strings.Builder
	const (
		bare = iota
		single
		double
	)
	state := bare
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch state {
		case bare:
			switch c {
			case '\'':
				state = single
			case '"':
				state = double
			case '\\':
				if i+1 < len(v) {
					i++
					sb.WriteByte(v[i])
				}
			case ' ', '\t':
				return sb.String()
			default:
				sb.WriteByte(c)
			}
		case single:
			if c == '\'' {
				state = bare
			} else {
				sb.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				state = bare
			case c == '\\' && i+1 < len(v) && strings.IndexByte("$`\"\\\n", v[i+1]) >= 0:
				i++
				sb.WriteByte(v[i])
			default:
				sb.WriteByte(c)
			}
		}
	}
	return sb.String()
}
