package java

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// manifest is a parsed META-INF/MANIFEST.MF: the main section and the
// per-entry sections, attribute names lower-cased (the JAR specification
// makes them case-insensitive).
type manifest struct {
	sections []map[string]string
}

func parseManifest(b []byte) manifest {
	var m manifest
	var cur map[string]string
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxMetaFile)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			cur, last = nil, ""
			continue
		}
		if line[0] == ' ' {
			// A continuation line: 72-byte lines are wrapped with one
			// leading space.
			if cur != nil && last != "" {
				cur[last] += line[1:]
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			continue
		}
		if cur == nil {
			if len(m.sections) >= 4096 {
				break
			}
			cur = map[string]string{}
			m.sections = append(m.sections, cur)
		}
		cur[k] = strings.TrimSpace(v)
		last = k
	}
	return m
}

// main returns an attribute of the main section.
func (m manifest) main(key string) string {
	if len(m.sections) == 0 {
		return ""
	}
	return strings.TrimSpace(m.sections[0][strings.ToLower(key)])
}

// any returns an attribute of the main section, else of the first other
// section that has it.
func (m manifest) any(key string) string {
	for _, s := range m.sections {
		if v := strings.TrimSpace(s[strings.ToLower(key)]); v != "" {
			return v
		}
	}
	return ""
}

// Name and version fields, in syft's order of preference.
var (
	nameFields    = []string{"Name", "Bundle-Name", "Short-Name", "Extension-Name", "Implementation-Title"}
	versionFields = []string{"Implementation-Version", "Specification-Version", "Plugin-Version", "Bundle-Version"}
	// Group IDs come from these fields when their value looks like a
	// reverse domain name (syft's cpegenerate lists).
	primaryGroupFields   = []string{"Group-Id", "Bundle-SymbolicName", "Extension-Name", "Specification-Vendor", "Implementation-Vendor", "Implementation-Vendor-Id", "Implementation-Title", "Bundle-Activator"}
	secondaryGroupFields = []string{"Automatic-Module-Name", "Main-Class", "Package"}
)

// pkg describes the archive itself from its manifest, following syft's
// precedence: the name from the Maven bundle plugin's Bundle-SymbolicName,
// then the file name, then the manifest's name fields; the version from the
// file name, then the manifest's version fields. A manifest that states
// neither a name nor a version field is not metadata, and the archive is
// left unidentified (the file name alone is a guess). Instrumentation jars
// (Weave-Classes) describe their targets, not themselves, and are skipped.
func (m manifest) pkg(fileName string) (inventory.Package, bool) {
	if len(m.sections) == 0 || m.any("Weave-Classes") != "" {
		return inventory.Package{}, false
	}
	var declName, declVersion string
	for _, f := range nameFields {
		if v := m.main(f); v != "" {
			declName = v
			break
		}
	}
	for _, f := range versionFields {
		if v := m.any(f); v != "" {
			declVersion = v
			break
		}
	}
	if declName == "" && declVersion == "" && m.main("Bundle-SymbolicName") == "" {
		return inventory.Package{}, false
	}
	fn := parseArchiveFilename(fileName)
	name := m.bundlePluginName()
	if name == "" {
		name = fn.artifact()
	}
	if name == "" {
		name = declName
	}
	if name == "" {
		name = cleanGroupID(m.main("Bundle-SymbolicName"))
	}
	version := fn.version
	if version == "" {
		version = declVersion
	}
	if name == "" || version == "" || strings.ContainsAny(version, " \t") {
		return inventory.Package{}, false
	}
	p := newPackage(m.group(), name, version)
	p.Licenses = m.licenses()
	return p, true
}

// licenses are the manifest's Bundle-License and Plugin-License-Name
// (Jenkins plugins), as syft reads them.
func (m manifest) licenses() []string {
	var out []string
	for _, f := range []string{"Bundle-License", "Plugin-License-Name"} {
		if v := m.any(f); v != "" && len(v) <= 256 {
			out = append(out, v)
		}
	}
	return out
}

// bundlePluginName is the last part of Bundle-SymbolicName in manifests the
// Apache Maven Bundle Plugin wrote, unless it equals the vendor ID.
func (m manifest) bundlePluginName() string {
	if !strings.Contains(m.main("Created-By"), "Apache Maven Bundle Plugin") {
		return ""
	}
	sym := m.main("Bundle-SymbolicName")
	if sym == "" || sym == m.main("Implementation-Vendor-Id") {
		return ""
	}
	fields := strings.Split(cleanGroupID(sym), ".")
	return fields[len(fields)-1]
}

func (m manifest) group() string {
	for _, fields := range [][]string{primaryGroupFields, secondaryGroupFields} {
		var ids []string
		for _, f := range fields {
			for _, s := range m.sections {
				if v := s[strings.ToLower(f)]; startsWithDomain(v) {
					ids = append(ids, cleanGroupID(v))
				}
			}
		}
		if len(ids) > 0 {
			sort.Strings(ids)
			return ids[0]
		}
	}
	return ""
}

func startsWithDomain(v string) bool {
	for _, d := range []string{"com.", "org.", "net.", "io.", "be."} {
		if strings.HasPrefix(v, d) {
			return true
		}
	}
	return false
}

// cleanGroupID drops OSGi directives ("org.bar;singleton:=true") and
// fragments.
func cleanGroupID(s string) string {
	s, _, _ = strings.Cut(s, ";")
	s, _, _ = strings.Cut(s, "#")
	return strings.TrimSpace(s)
}

// archiveFilename is syft's reading of "name-version.jar".
type archiveFilename struct{ name, version string }

var (
	nameAndVersion = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?Ui)^(?P<name>(?:[[:alpha:]][[:word:].]*(?:\.[[:alpha:]][[:word:].]*)*-?)+)(?:-(?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[[:alpha:]].*)?))))?$`)
	})
	secondaryVersion = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:[._-](?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[[:alpha:]].*)?))))?$`)
	})
)

func parseArchiveFilename(fileName string) archiveFilename {
	base := path.Base(fileName)
	base = strings.TrimSuffix(base, path.Ext(base))
	if len(base) > 256 {
		return archiveFilename{}
	}
	var a archiveFilename
	if m := nameAndVersion().FindStringSubmatch(base); m != nil {
		a.name = m[nameAndVersion().SubexpIndex("name")]
		a.version = m[nameAndVersion().SubexpIndex("version")]
	}
	if a.version == "" {
		if m := secondaryVersion().FindStringSubmatch(a.name); m != nil {
			if v := m[secondaryVersion().SubexpIndex("version")]; v != "" {
				a.version = v
				a.name = a.name[:len(a.name)-len(v)-1]
			}
		}
	}
	return a
}

// artifact is the name with a group-like prefix dropped
// ("org.foo.bar" -> "bar"), as syft does; Eclipse bundles keep it.
func (a archiveFilename) artifact() string {
	if !strings.Contains(a.name, ".") || strings.HasPrefix(a.name, "org.eclipse.") {
		return a.name
	}
	fields := strings.Split(a.name, ".")
	for _, f := range fields {
		if f == "" || !isLetter(f[0]) {
			return a.name
		}
	}
	return fields[len(fields)-1]
}

func isLetter(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' || b == '$' || b >= 0x80
}

// parseProperties reads a Java properties file: key=value, key:value or
// "key value" lines, # and ! comments, backslash continuations.
func parseProperties(b []byte) map[string]string {
	out := map[string]string{}
	var logical strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxMetaFile)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if logical.Len() == 0 && (strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!")) {
			continue
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			logical.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		logical.WriteString(line)
		s := logical.String()
		logical.Reset()
		i := strings.IndexAny(s, "=: \t")
		if i <= 0 {
			continue
		}
		k := strings.TrimSpace(s[:i])
		v := strings.TrimSpace(s[i+1:])
		if s[i] == ' ' || s[i] == '\t' {
			v = strings.TrimSpace(strings.TrimLeft(v, "=:"))
		}
		if len(out) < 1024 {
			out[k] = v
		}
	}
	return out
}

// Coordinates are a Maven artifact's group, artifact and version.
type Coordinates struct {
	Group, Artifact, Version string
}

// SHA1IndexEnv names the environment variable New reads the path of a
// SHA-1 index from.
const SHA1IndexEnv = "BULKHEAD_JAVA_SHA1_INDEX"

// maxIndexFile bounds the index file: Maven Central's full index of jar
// SHA-1s is some tens of millions of lines; users are expected to supply
// the artifacts they care about.
const maxIndexFile = 1 << 30

// LoadSHA1Index reads a CSV file of "sha1,group,artifact,version" lines (a
// header line and # comments are allowed) into an index for WithSHA1Index.
func LoadSHA1Index(file string) (map[string]Coordinates, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("load SHA-1 index (%s): %w", SHA1IndexEnv, err)
	}
	defer f.Close()
	idx, err := ReadSHA1Index(io.LimitReader(f, maxIndexFile))
	if err != nil {
		return nil, fmt.Errorf("load SHA-1 index %s (%s): %w", file, SHA1IndexEnv, err)
	}
	return idx, nil
}

// ReadSHA1Index parses the CSV form LoadSHA1Index reads.
func ReadSHA1Index(r io.Reader) (map[string]Coordinates, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 4
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	idx := map[string]Coordinates{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return idx, nil
		}
		if err != nil {
			return nil, fmt.Errorf("want lines of sha1,group,artifact,version: %w", err)
		}
		sum := strings.ToLower(strings.TrimSpace(rec[0]))
		if line == 1 && sum == "sha1" {
			continue // header
		}
		if len(sum) != 40 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("line %d: %q is not a SHA-1 in hex", line, rec[0])
		}
		c := Coordinates{Group: strings.TrimSpace(rec[1]), Artifact: strings.TrimSpace(rec[2]), Version: strings.TrimSpace(rec[3])}
		if c.Artifact == "" || c.Version == "" {
			return nil, fmt.Errorf("line %d: artifact and version are required", line)
		}
		idx[sum] = c
	}
}
