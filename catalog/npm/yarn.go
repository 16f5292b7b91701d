package npm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// ParseYarnLock reads a yarn.lock of yarn classic (v1, its own format) or
// yarn berry (2+, YAML with a __metadata entry). yarn.lock does not record
// which packages are development-only, so none is marked Dev; it does not
// name the project either, so none is Main.
//
// Local packages are skipped: workspaces, link: and portal: entries in
// berry ("app@workspace:." with version 0.0.0-use.local is the project
// itself, which syft reports as a package), file: and link: entries in
// classic.
func ParseYarnLock(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if isBerry(b) {
		return parseBerry(ctx, b)
	}
	return parseYarnClassic(ctx, b)
}

// isBerry reports whether the lockfile is YAML: its first entry is
// __metadata. Classic lockfiles start with "# yarn lockfile v1".
func isBerry(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		return bytes.HasPrefix(line, []byte("__metadata:"))
	}
	return false
}

// parseYarnClassic reads yarn v1's format: unindented entry headers listing
// the specifiers that resolved to the entry ("chalk@2.4.2, chalk@^2.4.2:"),
// then two-space indented fields, of which bulkhead needs "version".
func parseYarnClassic(ctx context.Context, b []byte) ([]inventory.Package, error) {
	c := newCollector()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), MaxLockSize)
	var (
		name, version string
		skip          bool
		n             int
	)
	flush := func() error {
		defer func() { name, version, skip = "", "", false }()
		if name == "" || skip {
			return nil
		}
		return c.add(name, version, false, false, nil)
	}
	for sc.Scan() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			if err := flush(); err != nil {
				return nil, err
			}
			name, skip = classicHeaderName(trimmed)
			continue
		}
		// Fields are indented by two spaces; deeper lines are the
		// dependency lists.
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") {
			if v, ok := strings.CutPrefix(trimmed, "version "); ok {
				version = unquote(strings.TrimSpace(v))
			} else if v, ok := strings.CutPrefix(trimmed, "version:"); ok {
				version = unquote(strings.TrimSpace(v))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read yarn.lock: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return sorted(c.pkgs), nil
}

// classicHeaderName returns the package an entry header describes, and
// whether the entry is a local package to skip.
func classicHeaderName(header string) (name string, local bool) {
	header = strings.TrimSuffix(header, ":")
	first, _, _ := strings.Cut(header, ",")
	name, ref := splitSpecifier(unquote(strings.TrimSpace(first)))
	if real, ok := strings.CutPrefix(ref, "npm:"); ok {
		// An alias: "string-width-cjs@npm:string-width@4.2.3".
		if n, v := splitSpecifier(real); n != "" && v != "" {
			name = n
		}
	}
	local = strings.HasPrefix(ref, "file:") || strings.HasPrefix(ref, "link:")
	return name, local
}

// splitSpecifier splits "name@range" or "@scope/name@range" at the '@' that
// ends the name.
func splitSpecifier(s string) (name, ref string) {
	if len(s) < 2 {
		return s, ""
	}
	i := strings.IndexByte(s[1:], '@')
	if i < 0 {
		return s, ""
	}
	return s[:i+1], s[i+2:]
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// berryEntry is one package of a yarn berry lockfile.
type berryEntry struct {
	Version    string `yaml:"version"`
	Resolution string `yaml:"resolution"`
}

// parseBerry reads yarn 2+'s YAML lockfile. The package name comes from
// the resolution ("string-width@npm:4.2.3"), which names the package really
// installed even when the key is an alias.
func parseBerry(ctx context.Context, b []byte) ([]inventory.Package, error) {
	var entries map[string]berryEntry
	if err := yaml.Unmarshal(b, &entries); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("invalid yarn berry lockfile YAML: %w", err)
		}
		// Fields of unexpected types are left empty; the rest decoded.
	}
	keys := sortedKeys(entries)
	c := newCollector()
	for i, k := range keys {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if k == "__metadata" {
			continue
		}
		e := entries[k]
		res := e.Resolution
		if res == "" {
			res, _, _ = strings.Cut(k, ",")
		}
		name, ref := splitSpecifier(strings.TrimSpace(res))
		proto, _, _ := strings.Cut(ref, ":")
		switch proto {
		case "workspace", "link", "portal":
			continue
		}
		if err := c.add(name, e.Version, false, false, nil); err != nil {
			return nil, err
		}
	}
	return sorted(c.pkgs), nil
}
