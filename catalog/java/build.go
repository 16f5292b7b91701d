package java

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"deps.dev/util/maven"
	"golang.org/x/net/html/charset"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on build files. The largest real poms (BOMs listing hundreds of
// artifacts) are some hundreds of kilobytes.
const (
	MaxPOM          = 8 << 20
	MaxGradleLock   = 64 << 20
	maxGradleLine   = 64 << 10
	maxPropertyLen  = 4096 // an interpolated value longer than this is not a version
	maxPropertyHops = 32
)

// LockfileCataloger is the name of the cataloger of Java build files: the
// FoundBy of their packages.
const LockfileCataloger = "java-lockfile"

// NewLock returns the cataloger of the declared dependencies of Java build
// files in source trees: syft's **/gradle.lockfile* and **/pom.xml, and the
// lockfile Gradle writes for the build script's own classpath.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "pom.xml", Match: catalog.BaseName("pom.xml"), MaxSize: MaxPOM, Parse: catalog.ReaderFunc(ParsePOM)},
		catalog.FileParser{What: "Gradle lockfile", Match: catalog.BaseName("gradle.lockfile*", "buildscript-gradle.lockfile"), MaxSize: MaxGradleLock, Parse: catalog.ContextFunc(ParseGradleLockfile)},
	)
}

// ParseGradleLockfile reads a Gradle dependency lockfile:
// "group:artifact:version=configuration,..." lines. A dependency locked
// only in test configurations is marked Dev.
func ParseGradleLockfile(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	sc := bufio.NewScanner(catalog.LimitReader(r, MaxGradleLock))
	sc.Buffer(make([]byte, 0, 4096), maxGradleLine)
	var pkgs []inventory.Package
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		coord, confs, _ := strings.Cut(line, "=")
		parts := strings.Split(coord, ":")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			continue // "empty=..." and anything else
		}
		if err := catalog.CheckPackageCount(len(pkgs), 0, "Gradle lockfile"); err != nil {
			return nil, err
		}
		p := newPackage(parts[0], parts[1], parts[2])
		p.Dev = testOnly(confs)
		pkgs = append(pkgs, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line over %d bytes: this is not a Gradle lockfile", maxGradleLine)
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	return pkgs, nil
}

// testOnly reports whether every configuration is a test one
// (testCompileClasspath, testRuntimeClasspath, androidTestImplementation,
// debugUnitTestRuntimeClasspath, ...).
func testOnly(confs string) bool {
	if strings.TrimSpace(confs) == "" {
		return false
	}
	for _, c := range strings.Split(confs, ",") {
		c = strings.TrimSpace(c)
		if !strings.HasPrefix(c, "test") && !strings.Contains(c, "Test") {
			return false
		}
	}
	return true
}

// ParsePOM reads a Maven pom.xml: the project itself (marked Main) and its
// dependencies whose version is a literal or a property the same pom
// defines (its <properties>, project.version and the like). Versions
// inherited from a parent pom or a BOM, and version ranges, are skipped:
// resolving them needs other files or a repository. Dependencies of scope
// test are marked Dev.
func ParsePOM(r io.Reader) ([]inventory.Package, error) {
	b, err := catalog.ReadLimited(r, MaxPOM)
	if err != nil {
		return nil, err
	}
	var proj maven.Project
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.CharsetReader = charset.NewReaderLabel
	if err := dec.Decode(&proj); err != nil {
		return nil, fmt.Errorf("parse XML: %w", err)
	}
	props := newProperties(&proj)
	var pkgs []inventory.Package
	group := props.resolve(string(proj.GroupID))
	if group == "" {
		group = props.resolve(string(proj.Parent.GroupID))
	}
	version := props.resolve(string(proj.Version))
	if version == "" {
		version = props.resolve(string(proj.Parent.Version))
	}
	if artifact := props.resolve(string(proj.ArtifactID)); group != "" && artifact != "" && literalVersion(version) {
		p := newPackage(group, artifact, version)
		p.Main = true
		pkgs = append(pkgs, p)
	}
	seen := map[string]bool{}
	for _, d := range proj.Dependencies {
		g, a, v := props.resolve(string(d.GroupID)), props.resolve(string(d.ArtifactID)), props.resolve(string(d.Version))
		if g == "" || a == "" || !literalVersion(v) {
			continue
		}
		scope := props.resolve(string(d.Scope))
		key := g + ":" + a + ":" + v + ":" + scope
		if seen[key] {
			continue
		}
		seen[key] = true
		p := newPackage(g, a, v)
		p.Dev = scope == "test"
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// literalVersion rejects empty versions, version ranges ("[1.0,2.0)") and
// unresolved properties.
func literalVersion(v string) bool {
	return v != "" && !strings.ContainsAny(v, "[](),${} \t\n")
}

// properties resolves ${name} references against one pom's properties.
// Each property is resolved once (memoised), references nest at most
// maxPropertyHops deep and values are cut at maxPropertyLen, so a hostile
// pom ("billion laughs" with properties) cannot blow up.
type properties struct {
	raw      map[string]string
	resolved map[string]string
	ok       map[string]bool
	active   map[string]bool
}

func newProperties(p *maven.Project) *properties {
	raw := map[string]string{}
	for _, prop := range p.Properties.Properties {
		raw[prop.Name] = prop.Value
	}
	// Maven's project properties (maven-model): the project's own
	// coordinates, with the pom.* and bare forms older poms use.
	add := func(k string, v maven.String) {
		if v == "" {
			return
		}
		if _, ok := raw[k]; !ok {
			raw[k] = string(v)
		}
		raw["pom."+k] = string(v)
		raw["project."+k] = string(v)
	}
	add("groupId", p.GroupID)
	add("artifactId", p.ArtifactID)
	add("version", p.Version)
	add("parent.groupId", p.Parent.GroupID)
	add("parent.artifactId", p.Parent.ArtifactID)
	add("parent.version", p.Parent.Version)
	if p.GroupID == "" {
		add("groupId", p.Parent.GroupID)
	}
	if p.Version == "" {
		add("version", p.Parent.Version)
	}
	return &properties{raw: raw, resolved: map[string]string{}, ok: map[string]bool{}, active: map[string]bool{}}
}

// resolve expands s, returning "" when a reference is undefined, cyclic
// or too deep.
func (p *properties) resolve(s string) string {
	v, ok := p.expand(strings.TrimSpace(s), 0)
	if !ok {
		return ""
	}
	return v
}

func (p *properties) expand(s string, depth int) (string, bool) {
	if !strings.Contains(s, "${") {
		return s, len(s) <= maxPropertyLen
	}
	if depth > maxPropertyHops {
		return "", false
	}
	var out strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		out.WriteString(s[:i])
		v, ok := p.lookup(s[i+2:i+j], depth+1)
		if !ok {
			return "", false
		}
		out.WriteString(v)
		if out.Len() > maxPropertyLen {
			return "", false
		}
		s = s[i+j+1:]
	}
	out.WriteString(s)
	return out.String(), out.Len() <= maxPropertyLen
}

func (p *properties) lookup(name string, depth int) (string, bool) {
	if v, done := p.resolved[name]; done {
		return v, p.ok[name]
	}
	raw, defined := p.raw[name]
	if !defined || p.active[name] {
		return "", false
	}
	p.active[name] = true
	v, ok := p.expand(raw, depth)
	delete(p.active, name)
	p.resolved[name], p.ok[name] = v, ok
	return v, ok
}
