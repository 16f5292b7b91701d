package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func nameVersions(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+" "+p.Version)
	}
	slices.Sort(out)
	return out
}

func find(pkgs []inventory.Package, name, version string) *inventory.Package {
	for i := range pkgs {
		if pkgs[i].Name == name && pkgs[i].Version == version {
			return &pkgs[i]
		}
	}
	return nil
}

func parseLockFile(t testing.TB, path string) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The fixture is named for its origin; the cataloger reads Cargo.lock.
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/src/Cargo.lock", Reader: f})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// Counts are the [[package]] tables (grep -c); syft v1.57.1 finds the same
// packages in each file (`syft scan dir:` over copies named Cargo.lock).
func TestLockFixtures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int
		local []string // no source: no purl
		spot  []string // name version purl
	}{
		{"testdata/in-toto-attestation-v1.2.0.Cargo.lock", 53, []string{"in_toto_attestation 0.1.0"}, []string{
			"regex 1.11.1 pkg:cargo/regex@1.11.1",
			"protobuf 3.7.2 pkg:cargo/protobuf@3.7.2",
		}},
		// regex 1.11.1 twice: from crates.io and from git, as the file says.
		{"testdata/syft-with-git-deps.Cargo.lock", 12, []string{"hello_world 0.1.0"}, []string{
			"nom-regex 0.2.0 pkg:cargo/nom-regex@0.2.0",
		}},
		{"testdata/syft-image-audit.Cargo.lock", 10, []string{"hello_world 0.1.0"}, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			pkgs := parseLockFile(t, tc.file)
			if len(pkgs) != tc.count {
				t.Errorf("%d packages, want %d", len(pkgs), tc.count)
			}
			for _, l := range tc.local {
				f := strings.Fields(l)
				p := find(pkgs, f[0], f[1])
				if p == nil || p.PURL != "" {
					t.Errorf("local crate %s: %+v", l, p)
				}
			}
			for _, s := range tc.spot {
				f := strings.Fields(s)
				p := find(pkgs, f[0], f[1])
				if p == nil || p.PURL != f[2] || p.Type != inventory.TypeCargo {
					t.Errorf("%s: %+v", s, p)
				}
			}
		})
	}
}

func TestLockErrors(t *testing.T) {
	for _, in := range []string{"[[package]\nname = 1", "not toml at all =", "[[package]]\nname = 3\n"} {
		if _, err := ParseLock(strings.NewReader(in)); err == nil {
			t.Errorf("no error for %q", in)
		}
	}
	big := io.MultiReader(strings.NewReader("# "), io.LimitReader(zeros{}, MaxLockSize+10))
	if _, err := ParseLock(big); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func compress(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	z := zlib.NewWriter(&buf)
	z.Write(b)
	z.Close()
	return buf.Bytes()
}

// withSection copies bin and adds a section holding data, with objcopy.
func withSection(t testing.TB, bin, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	sec := filepath.Join(dir, "section")
	if err := os.WriteFile(sec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bin")
	cmd := exec.Command("objcopy", "--add-section", name+"="+sec, "--set-section-flags", name+"=noload,readonly", bin, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	return out
}

// rustBinary compiles a small Rust program with rustc (cargo-auditable
// itself cannot be installed offline).
func rustBinary(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("rustc"); err != nil {
		t.Skip("rustc not installed")
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("objcopy not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.rs")
	os.WriteFile(src, []byte("fn main() { println!(\"hello\"); }\n"), 0o644)
	bin := filepath.Join(dir, "hello")
	if b, err := exec.Command("rustc", "-O", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("rustc: %v\n%s", err, b)
	}
	return bin
}

func parseBinary(t testing.TB, path string) ([]inventory.Package, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return NewBinary().Parse(context.Background(), catalog.Input{Path: "/" + path, Reader: f, Size: st.Size()})
}

// The JSON in testdata was dumped from a binary built with cargo auditable
// (osv-scalibr's uses_serde_json); it goes into a real Rust ELF binary the
// way cargo-auditable puts it there: zlib-compressed, in .dep-v0.
func TestAuditableELF(t *testing.T) {
	bin := rustBinary(t)
	js, err := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"itoa 1.0.14", "memchr 2.7.4", "proc-macro2 1.0.92", "quote 1.0.38", "ryu 1.0.18", "serde 1.0.217",
		"serde_derive 1.0.217", "serde_json 1.0.135", "syn 2.0.95", "unicode-ident 1.0.14", "uses_json 0.1.0",
	}
	for _, name := range []string{".dep-v0", ".rust-deps-v0"} {
		pkgs, err := parseBinary(t, withSection(t, bin, name, compress(t, js)))
		if err != nil {
			t.Fatal(err)
		}
		if got := nameVersions(pkgs); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
		root := find(pkgs, "uses_json", "0.1.0")
		if root == nil || !root.Main || root.PURL != "" {
			t.Errorf("root crate: %+v", root)
		}
		if p := find(pkgs, "serde_json", "1.0.135"); p == nil || p.PURL != "pkg:cargo/serde_json@1.0.135" {
			t.Errorf("serde_json: %+v", p)
		}
	}
	// Without the section: nothing.
	if pkgs, err := parseBinary(t, bin); err != nil || len(pkgs) != 0 {
		t.Errorf("plain rust binary: %v, %v", pkgs, err)
	}
	// Build dependencies are not in the binary.
	pkgs, err := parseBinary(t, withSection(t, bin, ".dep-v0", compress(t, []byte(
		`{"packages":[{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"},{"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[0]}]}`))))
	if err != nil || !slices.Equal(nameVersions(pkgs), []string{"app 0.1.0"}) {
		t.Errorf("build dependency: %v, %v", pkgs, err)
	}
}

func TestAuditableHostile(t *testing.T) {
	bin := rustBinary(t)
	// A zlib bomb: stops at MaxJSONSize.
	bomb := compress(t, bytes.Repeat([]byte{' '}, MaxJSONSize+1024))
	if _, err := parseBinary(t, withSection(t, bin, ".dep-v0", bomb)); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("bomb: %v", err)
	}
	if _, err := parseBinary(t, withSection(t, bin, ".dep-v0", []byte("not zlib"))); err == nil {
		t.Error("no error for a section that is not zlib")
	}
	if _, err := parseBinary(t, withSection(t, bin, ".dep-v0", compress(t, []byte("{not json")))); err == nil {
		t.Error("no error for bad JSON")
	}
}

// Go binaries are the Go cataloger's, even with a section of that name.
func TestAuditableSkipsGo(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "gofmt")
	if _, err := os.Stat(goBin); err != nil {
		t.Skip("no Go binary at hand")
	}
	js, _ := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("objcopy not installed")
	}
	pkgs, err := parseBinary(t, withSection(t, goBin, ".dep-v0", compress(t, js)))
	if err != nil || len(pkgs) != 0 {
		t.Errorf("Go binary: %v, %v", pkgs, err)
	}
}

// scalibrDir is osv-scalibr's cargo-auditable test binaries in the module
// cache, or "" (they are not copied here: no binaries in the repo).
func scalibrDir() string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com/google/osv-scalibr@v0.5.3/extractor/filesystem/language/rust/cargoauditable/testdata")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// Real cargo-auditable binaries from osv-scalibr's tests, when the module
// cache holds them.
func TestScalibrBinaries(t *testing.T) {
	dir := scalibrDir()
	if dir == "" {
		t.Skip("osv-scalibr v0.5.3 not in the module cache")
	}
	for file, want := range map[string]int{"uses_serde_json/uses_serde_json": 11, "no_deps/no_deps": 1, "not_binary/not_binary": 0} {
		pkgs, err := parseBinary(t, filepath.Join(dir, file))
		if err != nil || len(pkgs) != want {
			t.Errorf("%s: %d packages (%v), want %d", file, len(pkgs), err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	b := NewBinary()
	if !b.MatchEntry("app/server", 0o755, 1<<20) || b.MatchEntry("etc/x.conf", 0o644, 1<<20) || b.MatchEntry("usr/bin/x", fs.ModeSymlink|0o777, 1<<20) {
		t.Error("MatchEntry")
	}
	l := NewLock()
	if !l.Match("src/Cargo.lock") || l.Match("Cargo.toml") {
		t.Error("Match")
	}
}

func BenchmarkParseLock(b *testing.B) {
	data, err := os.ReadFile("testdata/in-toto-attestation-v1.2.0.Cargo.lock")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseLock(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDependencies(b *testing.B) {
	bin := rustBinary(b)
	js, _ := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	data, err := os.ReadFile(withSection(b, bin, ".dep-v0", compress(b, js)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if v, err := ReadDependencies(bytes.NewReader(data)); err != nil || v == nil {
			b.Fatal(err)
		}
	}
}

// In the walk, a file is a stream (shared with the Go binary cataloger):
// Parse reads it front to back and never asks for random access.
func TestParseStreamWithoutReaderAt(t *testing.T) {
	bin := rustBinary(t)
	js, _ := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	data, err := os.ReadFile(withSection(t, bin, ".dep-v0", compress(t, js)))
	if err != nil {
		t.Fatal(err)
	}
	called := false
	in := catalog.Input{
		Path:   "/usr/bin/app",
		Reader: struct{ io.Reader }{bytes.NewReader(data)},
		Size:   int64(len(data)),
		ReaderAt: func() (io.ReaderAt, error) {
			called = true
			return bytes.NewReader(data), nil
		},
		TempDir: t.TempDir(),
	}
	pkgs, err := NewBinary().Parse(context.Background(), in)
	if err != nil || len(pkgs) != 11 || called {
		t.Errorf("%d packages, %v, ReaderAt called %v", len(pkgs), err, called)
	}
}
