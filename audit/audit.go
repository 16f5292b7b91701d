// Package audit checks an image's configuration and final filesystem
// against the CIS Docker Benchmark image items, as Dockle checks them, plus
// a few of Dockle's own (docs/image-audit.md maps every ID): the runtime
// user, HEALTHCHECK, secrets in ENV and labels, ADD and sudo in the
// history, setuid/setgid files, package-manager caches left behind, an SSH
// daemon, empty passwords and duplicate IDs, and shells or package managers
// in an image that claims to be minimal.
//
// It is the "misconfig" scan.Scanner of `bulkhead image`: it rides the
// single walk only for the account files it reads, and looks at the rest in
// the image config and the final view after the walk.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/config/dockerfile"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Check describes one audit check.
type Check struct {
	ID       string
	Severity finding.Severity
	Title    string
	Fix      string
	Link     string
	// Dockle is the Dockle/CIS checkpoint this corresponds to.
	Dockle string
}

const cis = "https://www.cisecurity.org/benchmark/docker"

// Checks are the audit's checks, in ID order.
var Checks = []Check{
	{"BH-IMG-001", finding.High, "Image runs as root (USER unset or root)", "Set a non-root USER in the image (USER 10001) or run with --user", cis, "CIS-DI-0001"},
	{"BH-IMG-002", finding.Low, "Image has no HEALTHCHECK", "Add a HEALTHCHECK instruction", cis, "CIS-DI-0006"},
	{"BH-IMG-003", finding.Low, "setuid/setgid file", "Remove the bit unless the program must elevate privileges: chmod u-s,g-s FILE", cis, "CIS-DI-0008"},
	{"BH-IMG-004", finding.Critical, "Secret in an ENV variable or label", "Remove it from the image config and rotate it; inject secrets at runtime", cis, "CIS-DI-0010"},
	{"BH-IMG-005", finding.High, "Credential-like ENV variable with a literal value", "Do not bake credentials into the image config; inject them at runtime", cis, "CIS-DI-0010"},
	{"BH-IMG-006", finding.Low, "ADD instruction in the image history", "Use COPY for local files; download remote files in a RUN with checksum verification", cis, "CIS-DI-0009"},
	{"BH-IMG-007", finding.Low, "Package manager index update alone in a layer", "Combine apt-get update with apt-get install in the same RUN", cis, "CIS-DI-0007"},
	{"BH-IMG-008", finding.Medium, "sudo used in the image history", "Drop sudo; switch USER around steps that need root", "https://docs.docker.com/build/building/best-practices/#user", "DKL-DI-0001"},
	{"BH-IMG-009", finding.High, "VOLUME mounts a sensitive host directory", "Do not declare /proc, /sys or /dev as volumes", "https://github.com/goodwithtech/dockle/blob/master/CHECKPOINT.md", "DKL-DI-0002"},
	{"BH-IMG-010", finding.Low, "Package-manager cache left in the image", "Clean in the same RUN: rm -rf /var/lib/apt/lists/*, apk add --no-cache, pip --no-cache-dir", "https://docs.docker.com/build/building/best-practices/#apt-get", "DKL-DI-0004/DKL-DI-0005"},
	{"BH-IMG-011", finding.Medium, "SSH daemon in the image", "Remove the SSH server; use docker exec / kubectl exec", "https://docs.docker.com/build/building/best-practices/", ""},
	{"BH-IMG-012", finding.High, "Account with an empty password", "Lock the account (passwd -l) or set '*' / '!' in /etc/shadow", "https://nvd.nist.gov/vuln/detail/CVE-2019-5021", "DKL-LI-0001"},
	{"BH-IMG-013", finding.Medium, "Duplicate UID or GID", "Give every account and group its own ID", "https://github.com/goodwithtech/dockle/blob/master/CHECKPOINT.md", "DKL-LI-0002"},
	{"BH-IMG-014", finding.Medium, "Shell or package manager in a minimal image", "Build the final stage FROM a distroless or scratch base without a shell and package manager, or remove them", "https://github.com/GoogleContainerTools/distroless", ""},
	{"BH-IMG-015", finding.Low, "apt-get upgrade or dist-upgrade in the image history", "Update the base image instead of upgrading packages inside it", "https://docs.docker.com/build/building/best-practices/#apt-get", "DKL-DI-0003"},
}

func check(id string) Check {
	for _, c := range Checks {
		if c.ID == id {
			return c
		}
	}
	panic("audit: unknown check " + id)
}

// accountFiles are read during the walk (small text files).
var accountFiles = map[string]bool{"etc/passwd": true, "etc/shadow": true, "etc/group": true}

// maxAccountFile bounds what is read of one account file.
const maxAccountFile = 4 << 20

// Scanner is the image-configuration audit.
type Scanner struct {
	mu    sync.Mutex
	files map[layerPath][]byte
}

type layerPath struct {
	path  string
	layer int
}

// New returns the audit scanner.
func New() *Scanner { return &Scanner{files: map[layerPath][]byte{}} }

var _ scan.Scanner = (*Scanner)(nil)

// Name is the --scanners value.
func (*Scanner) Name() string { return "misconfig" }

// Visitor reads the account files.
func (s *Scanner) Visitor() walk.Visitor { return s }

// Wants only /etc/passwd, /etc/shadow and /etc/group.
func (s *Scanner) Wants(e *walk.Entry) bool {
	return e.Kind == walk.KindFile && accountFiles[e.Path]
}

// Visit keeps the account file of this layer.
func (s *Scanner) Visit(e *walk.Entry, c *walk.Content) error {
	b, err := io.ReadAll(io.LimitReader(c, maxAccountFile))
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", e.Path, err)
	}
	s.mu.Lock()
	s.files[layerPath{e.Path, e.Layer}] = b
	s.mu.Unlock()
	return nil
}

// final returns the content of the visible instance of an account file.
func (s *Scanner) final(t *walk.Tree, p string) ([]byte, *walk.Entry) {
	if t == nil {
		return nil, nil
	}
	e, ok := t.Lookup(p)
	if !ok || e.Kind != walk.KindFile {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[layerPath{p, e.Layer}], e
}

type builder struct {
	target string
	layers []inventory.Layer
	out    []finding.Finding
}

func (b *builder) add(id, detail, path string, layer int) {
	c := check(id)
	f := finding.Finding{
		ID: id, Kind: finding.KindMisconfiguration, Severity: c.Severity, SeveritySource: "bulkhead image audit",
		Title: c.Title, Description: detail, Target: b.target, Fix: c.Fix,
		Location: &finding.Location{Path: path},
	}
	if c.Link != "" {
		f.References = []string{c.Link}
	}
	if c.Dockle != "" {
		f.Aliases = strings.Split(c.Dockle, "/")
	}
	if layer >= 0 && layer < len(b.layers) {
		l := b.layers[layer]
		f.Location.Layer = &l
	}
	b.out = append(b.out, f)
}

// configPath names the image config in locations.
const configPath = "image config"

// Findings runs every check.
func (s *Scanner) Findings(_ context.Context, r *scan.Result) ([]finding.Finding, error) {
	b := &builder{}
	if r.Inventory != nil {
		b.target = r.Inventory.Target.Name
		b.layers = r.Inventory.Target.Layers
	}
	var cfg *v1.ConfigFile
	if r.Image != nil {
		cfg = r.Image.Config()
	}
	if cfg != nil {
		auditConfig(b, cfg)
		auditHistory(b, cfg.History)
	}
	if r.Tree != nil {
		auditTree(b, r.Tree, r.Inventory)
		s.auditAccounts(b, r.Tree)
	}
	sort.SliceStable(b.out, func(i, j int) bool {
		if b.out[i].ID != b.out[j].ID {
			return b.out[i].ID < b.out[j].ID
		}
		return b.out[i].Location.Path < b.out[j].Location.Path
	})
	return b.out, nil
}

func isRoot(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u == "" || u == "root" || u == "0"
}

func auditConfig(b *builder, cfg *v1.ConfigFile) {
	c := cfg.Config
	if isRoot(c.User) {
		u := c.User
		if u == "" {
			u = "(unset)"
		}
		b.add("BH-IMG-001", "config User is "+u, configPath, -1)
	}
	if c.Healthcheck == nil || len(c.Healthcheck.Test) == 0 || strings.EqualFold(c.Healthcheck.Test[0], "NONE") {
		b.add("BH-IMG-002", "the image config has no healthcheck", configPath, -1)
	}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		if m, ok := secret.MatchValue(k, v); ok {
			b.add("BH-IMG-004", fmt.Sprintf("ENV %s holds a %s (%s)", k, m.Title, m.Redacted), configPath, -1)
		} else if secret.SensitiveName(k) && literal(v) {
			b.add("BH-IMG-005", fmt.Sprintf("ENV %s=%s", k, secret.Redact(v)), configPath, -1)
		}
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if m, ok := secret.MatchValue(k, c.Labels[k]); ok {
			b.add("BH-IMG-004", fmt.Sprintf("label %s holds a %s (%s)", k, m.Title, m.Redacted), configPath, -1)
		}
	}
	vols := make([]string, 0, len(c.Volumes))
	for v := range c.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for _, v := range vols {
		switch strings.TrimRight(v, "/") {
		case "/proc", "/sys", "/dev":
			b.add("BH-IMG-009", "VOLUME "+v, configPath, -1)
		}
	}
}

func literal(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "$") {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "0", "1":
		return false
	}
	return true
}

// historyScript extracts the shell command of a history created_by line
// ("/bin/sh -c ...", buildkit's "RUN /bin/sh -c ... # buildkit", with
// "|N ARG=v" build-arg prefixes).
func historyScript(createdBy string) (string, bool) {
	i := strings.Index(createdBy, "/bin/sh -c ")
	if i < 0 {
		return "", false
	}
	s := createdBy[i+len("/bin/sh -c "):]
	if strings.HasPrefix(strings.TrimSpace(s), "#(nop)") {
		return "", false
	}
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "# buildkit"))
	return s, true
}

func auditHistory(b *builder, hist []v1.History) {
	layer := -1
	for i, h := range hist {
		if !h.EmptyLayer {
			layer++
		}
		cb := strings.TrimSpace(h.CreatedBy)
		// The first entry adds the base root filesystem: that ADD is how
		// every base image starts (Dockle skips it too).
		if i > 0 && isAdd(cb) {
			b.add("BH-IMG-006", fmt.Sprintf("history %d: %s", i, clip(cb)), configPath, layerIf(h, layer))
		}
		script, ok := historyScript(cb)
		if !ok {
			continue
		}
		cmds := dockerfile.ShellCommands(script)
		var update, install, upgrade, sudo bool
		for _, c := range cmds {
			if len(c.Args) > 0 && (c.Args[0] == "sudo" || strings.HasSuffix(c.Args[0], "/sudo")) {
				sudo = true
			}
			p, args := c.Program()
			if p != "apt-get" && p != "apt" {
				continue
			}
			for _, a := range args {
				switch a {
				case "update":
					update = true
				case "install":
					install = true
				case "upgrade", "dist-upgrade", "full-upgrade":
					upgrade = true
				}
			}
		}
		if update && !install && !upgrade {
			b.add("BH-IMG-007", fmt.Sprintf("history %d: %s", i, clip(cb)), configPath, layerIf(h, layer))
		}
		if sudo {
			b.add("BH-IMG-008", fmt.Sprintf("history %d: %s", i, clip(cb)), configPath, layerIf(h, layer))
		}
		if upgrade {
			b.add("BH-IMG-015", fmt.Sprintf("history %d: %s", i, clip(cb)), configPath, layerIf(h, layer))
		}
	}
}

func layerIf(h v1.History, layer int) int {
	if h.EmptyLayer {
		return -1
	}
	return layer
}

func isAdd(cb string) bool {
	s := strings.TrimSpace(strings.TrimPrefix(cb, "/bin/sh -c #(nop)"))
	return strings.HasPrefix(s, "ADD ")
}

// clip shortens a history line for a finding's description, its secrets
// redacted (secret.RedactValue, as in the report's layer list).
func clip(s string) string {
	s = strings.Join(strings.Fields(secret.RedactValue("", s)), " ")
	if len(s) > 160 {
		return s[:159] + "…"
	}
	return s
}

// caches are package-manager caches: a directory and what in it counts.
var caches = []struct {
	dir, what string
	skip      func(name string) bool
}{
	{"var/lib/apt/lists", "apt package lists", func(n string) bool { return n == "lock" || strings.HasPrefix(n, "partial") || n == "auxfiles" }},
	{"var/cache/apt/archives", "downloaded .deb files", func(n string) bool { return !strings.HasSuffix(n, ".deb") }},
	{"var/cache/apk", "apk cache", nil},
	{"root/.cache/pip", "pip cache", nil},
	{"var/cache/yum", "yum cache", nil},
	{"var/cache/dnf", "dnf cache", nil},
	{"root/.npm/_cacache", "npm cache", nil},
}

// minimalTools are shells and package managers that a distroless or
// scratch image should not have.
var minimalTools = []string{"bin/sh", "bin/bash", "bin/ash", "bin/dash", "bin/busybox", "usr/bin/bash", "usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg", "sbin/apk", "usr/bin/dnf", "usr/bin/yum", "usr/bin/rpm", "usr/bin/microdnf", "usr/bin/pip", "usr/bin/pip3", "usr/local/bin/pip"}

var sshDaemons = []string{"usr/sbin/sshd", "usr/sbin/dropbear", "sbin/dropbear"}

func auditTree(b *builder, t *walk.Tree, inv *inventory.Inventory) {
	type agg struct {
		files int
		size  int64
		layer int
	}
	cacheHits := make([]agg, len(caches))
	var setid []*walk.Entry
	t.Walk(func(e *walk.Entry) error {
		if (e.Kind == walk.KindFile || e.Kind == walk.KindHardlink) && e.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			setid = append(setid, e)
		}
		if e.Kind != walk.KindFile {
			return nil
		}
		for i, c := range caches {
			if !strings.HasPrefix(e.Path, c.dir+"/") {
				continue
			}
			name := e.Path[len(c.dir)+1:]
			if c.skip != nil && c.skip(name) {
				continue
			}
			cacheHits[i].files++
			cacheHits[i].size += e.Size
			if e.Layer > cacheHits[i].layer {
				cacheHits[i].layer = e.Layer
			}
		}
		return nil
	})
	sort.Slice(setid, func(i, j int) bool { return setid[i].Path < setid[j].Path })
	for _, e := range setid {
		bits := []string{}
		if e.Mode&fs.ModeSetuid != 0 {
			bits = append(bits, "setuid")
		}
		if e.Mode&fs.ModeSetgid != 0 {
			bits = append(bits, "setgid")
		}
		b.add("BH-IMG-003", fmt.Sprintf("/%s is %s (owner %d:%d)", e.Path, strings.Join(bits, "+"), e.UID, e.GID), "/"+e.Path, e.Layer)
	}
	for i, h := range cacheHits {
		if h.files > 0 {
			b.add("BH-IMG-010", fmt.Sprintf("%s: %d files, %d bytes under /%s", caches[i].what, h.files, h.size, caches[i].dir), "/"+caches[i].dir, h.layer)
		}
	}
	for _, p := range sshDaemons {
		if e, ok := t.Lookup(p); ok && (e.Kind == walk.KindFile || e.Kind == walk.KindHardlink) {
			b.add("BH-IMG-011", "/"+p+" is present", "/"+p, e.Layer)
		}
	}
	minimal := inv == nil || inv.OS == nil || inv.OS.Distroless
	if minimal {
		what := "no OS package database (scratch-like)"
		if inv != nil && inv.OS != nil {
			what = "a distroless OS (" + inv.OS.PrettyName + ")"
		}
		for _, p := range minimalTools {
			if e, ok := t.Lookup(p); ok && e.Kind != walk.KindDir {
				b.add("BH-IMG-014", fmt.Sprintf("/%s in an image with %s", p, what), "/"+p, e.Layer)
			}
		}
	}
}

// auditAccounts checks /etc/shadow for empty passwords and /etc/passwd,
// /etc/group for duplicate IDs.
func (s *Scanner) auditAccounts(b *builder, t *walk.Tree) {
	if data, e := s.final(t, "etc/shadow"); data != nil {
		for _, f := range colonFile(data) {
			if len(f) >= 2 && f[1] == "" {
				b.add("BH-IMG-012", "account "+f[0]+" has an empty password field in /etc/shadow", "/etc/shadow", e.Layer)
			}
		}
	}
	if data, e := s.final(t, "etc/passwd"); data != nil {
		ids := map[string][]string{}
		for _, f := range colonFile(data) {
			if len(f) >= 3 {
				ids[f[2]] = append(ids[f[2]], f[0])
				// An empty password field in passwd itself also logs in
				// without one.
				if f[1] == "" {
					b.add("BH-IMG-012", "account "+f[0]+" has an empty password field in /etc/passwd", "/etc/passwd", e.Layer)
				}
			}
		}
		dupes(b, ids, "UID", "/etc/passwd", e.Layer)
	}
	if data, e := s.final(t, "etc/group"); data != nil {
		ids := map[string][]string{}
		for _, f := range colonFile(data) {
			if len(f) >= 3 {
				ids[f[2]] = append(ids[f[2]], f[0])
			}
		}
		dupes(b, ids, "GID", "/etc/group", e.Layer)
	}
}

func dupes(b *builder, ids map[string][]string, kind, path string, layer int) {
	keys := make([]string, 0, len(ids))
	for k, names := range ids {
		if len(names) > 1 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.add("BH-IMG-013", fmt.Sprintf("%s %s is shared by %s", kind, k, strings.Join(ids[k], ", ")), path, layer)
	}
}

// colonFile splits a passwd-style file into fields, skipping comments and
// NIS "+"/"-" lines.
func colonFile(data []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
