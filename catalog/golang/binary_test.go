package golang

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// streamOnly hides any io.ReaderAt behind a plain reader, as the walk gives
// a layer's tar stream, and counts what was read.
type streamOnly struct {
	r io.Reader
	n int64
}

func (s *streamOnly) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	return n, err
}

func parseStream(t testing.TB, path string) ([]inventory.Package, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s := &streamOnly{r: f}
	pkgs, err := NewBinary().Parse(context.Background(), catalog.Input{Path: "/" + filepath.Base(path), Reader: s, Size: st.Size()})
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return pkgs, s.n
}

func lines(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		l := p.Name + " " + p.Version
		if p.Main {
			l += " main"
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// goVersionM reads `go version -m` output the way a person would: each dep
// line, and the => line under it when the module was replaced; the
// replacement's path wins unless it is a directory.
func goVersionM(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	var res []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	first := true
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), "\t")
		if first {
			// "bin: go1.26.8"
			v := strings.TrimPrefix(f[0][strings.LastIndex(f[0], " ")+1:], "go")
			res = append(res, "stdlib "+v)
			first = false
			continue
		}
		switch f[0] {
		case "mod":
			res = append(res, f[1]+" "+f[2]+" main")
		case "dep":
			res = append(res, f[1]+" "+f[2])
		case "=>":
			last := strings.Fields(res[len(res)-1])
			if strings.HasPrefix(f[1], ".") || strings.HasPrefix(f[1], "/") {
				res[len(res)-1] = last[0] + " " + f[2]
			} else {
				res[len(res)-1] = f[1] + " " + f[2]
			}
		}
	}
	slices.Sort(res)
	return res
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// builds compiles testdata/hello, a program with real dependencies from the
// module proxy, for several targets and flags; the binaries are shared by
// the tests and benchmarks of one run.
func builds(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "bulkhead-golang-*")
		if buildErr != nil {
			return
		}
		src := filepath.Join(buildDir, "src")
		if buildErr = os.CopyFS(src, os.DirFS("testdata/hello")); buildErr != nil {
			return
		}
		for _, b := range []struct {
			name string
			env  []string
			args []string
		}{
			{"plain", nil, nil},
			{"trimpath", nil, []string{"-trimpath"}},
			{"stripped", nil, []string{"-trimpath", "-ldflags=-s -w"}},
			{"linux-386", []string{"GOOS=linux", "GOARCH=386"}, []string{"-trimpath"}},
			{"darwin-arm64", []string{"GOOS=darwin", "GOARCH=arm64"}, []string{"-trimpath"}},
			{"windows-amd64.exe", []string{"GOOS=windows", "GOARCH=amd64"}, []string{"-trimpath"}},
		} {
			if b.env != nil && testing.Short() {
				continue // compiling the standard library for other targets takes minutes
			}
			cmd := exec.Command("go", append(append([]string{"build", "-o", filepath.Join(buildDir, b.name)}, b.args...), ".")...)
			cmd.Dir = src
			cmd.Env = append(os.Environ(), append([]string{"GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0"}, b.env...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{b.name, string(out), err}
				return
			}
		}
	})
	if buildErr != nil {
		if be, ok := buildErr.(*buildError); ok && strings.Contains(be.out, "proxy.golang.org") {
			t.Skipf("module proxy not reachable: %v", buildErr)
		}
		t.Fatal(buildErr)
	}
	return buildDir
}

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string {
	return "go build " + e.name + ": " + e.err.Error() + "\n" + e.out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestBinaries(t *testing.T) {
	dir := builds(t)
	stdlib := "stdlib " + strings.TrimPrefix(runtime.Version(), "go")
	// Written from testdata/hello/go.mod, not from the parser.
	want := []string{
		"example.com/hello (devel) main",
		"example.com/local (devel)", // replaced by ./local: path kept
		"github.com/golang-jwt/jwt v3.2.1+incompatible",
		"github.com/google/uuid v1.6.0",
		"github.com/pkg/errors v0.8.1",
		"golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1",
		stdlib,
	}
	slices.Sort(want)
	for _, name := range []string{"plain", "trimpath", "stripped", "linux-386", "darwin-arm64", "windows-amd64.exe"} {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Skip("cross-compiled binaries are not built in -short mode")
			}
			bin := filepath.Join(dir, name)
			pkgs, read := parseStream(t, bin)
			got := lines(pkgs)
			if !slices.Equal(got, want) {
				t.Errorf("packages:\n got %q\nwant %q", got, want)
			}
			if gm := goVersionM(t, bin); !slices.Equal(got, gm) {
				t.Errorf("differs from go version -m:\n got %q\n go  %q", got, gm)
			}
			data, _ := os.ReadFile(bin)
			m := bytes.Index(data, buildInfoMagic)
			if read > int64(m)+2*chunkSize {
				t.Errorf("read %d bytes, build information at %d: the scan should stop there", read, m)
			}
			t.Logf("read %d of %d bytes, build information at %d", read, len(data), m)
			for _, p := range pkgs {
				if p.Type != inventory.TypeGo || p.PURL == "" {
					t.Errorf("bad package %+v", p)
				}
			}
		})
	}
}

func TestPURLs(t *testing.T) {
	for _, tc := range []struct{ name, version, want string }{
		{"stdlib", "1.22.3", "pkg:golang/stdlib@1.22.3"},
		{"github.com/cli/cli/v2", "v2.63.0", "pkg:golang/github.com/cli/cli/v2@v2.63.0"},
		{"github.com/golang-jwt/jwt", "v3.2.1+incompatible", "pkg:golang/github.com/golang-jwt/jwt@v3.2.1%2Bincompatible"},
		{"example.com/hello", "(devel)", "pkg:golang/example.com/hello@%28devel%29"},
		{"example.com/hello", "", "pkg:golang/example.com/hello"},
	} {
		if got := PURL(tc.name, tc.version); got != tc.want {
			t.Errorf("PURL(%q, %q) = %q, want %q", tc.name, tc.version, got, tc.want)
		}
	}
}

func TestStdlibVersion(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"go1.22.3", "1.22.3", true},
		{"go1.17", "1.17", true},
		{"go1.21.0 X:boringcrypto", "1.21.0", true},
		{"go1.23rc1", "1.23rc1", true},
		{"devel go1.23-e8ee1dc4f9 Wed Jun 5 2024", "", false},
		{"", "", false},
	} {
		got, ok := StdlibVersion(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("StdlibVersion(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// The Go 1.17 binary from Go's own debug/buildinfo tests has the pre-1.18
// pointer format. The stream scan resolves it from strings it passed.
func TestGo117(t *testing.T) {
	b64, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src/debug/buildinfo/testdata/go117/go117.base64"))
	if err != nil {
		t.Skipf("Go source tree not installed: %v", err)
	}
	bin, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatal(err)
	}
	s := &streamOnly{r: bytes.NewReader(bin)}
	bi, err := ReadBuildInfo(s)
	if err != nil || bi == nil {
		t.Fatalf("ReadBuildInfo: %v, %v", bi, err)
	}
	ref, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	if bi.String() != ref.String() {
		t.Errorf("stream scan:\n%s\ndebug/buildinfo:\n%s", bi, ref)
	}
	got := lines(Packages(bi))
	want := []string{"example.com/go117 (devel) main", "stdlib 1.17"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Every Go tool binary of the toolchain running the tests, compared with
// debug/buildinfo.
func TestToolchainBinaries(t *testing.T) {
	bins, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "bin", "*"))
	tools, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH, "*"))
	bins = append(bins, tools...)
	if len(bins) == 0 {
		t.Skip("no toolchain binaries")
	}
	for _, bin := range bins {
		ref, err := buildinfo.ReadFile(bin)
		if err != nil {
			continue
		}
		f, err := os.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		bi, err := ReadBuildInfo(&streamOnly{r: f})
		f.Close()
		if err != nil || bi == nil || bi.String() != ref.String() {
			t.Errorf("%s: got %v, %v; want\n%s", bin, bi, err, ref)
		}
	}
}

// Files that are not Go binaries give nothing, and a non-executable costs
// only the first read.
func TestNotGo(t *testing.T) {
	script := bytes.Repeat([]byte("#!/bin/sh\necho hello\n"), 10000)
	s := &streamOnly{r: bytes.NewReader(script)}
	bi, err := ReadBuildInfo(s)
	if bi != nil || err != nil {
		t.Errorf("script: %v, %v", bi, err)
	}
	if s.n > headSize {
		t.Errorf("read %d bytes of a script; want at most %d", s.n, headSize)
	}
	// A C binary of the system: an ELF file without Go build information.
	for _, p := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		pkgs, _ := parseStream(t, p)
		if len(pkgs) != 0 {
			t.Errorf("%s: %v", p, pkgs)
		}
	}
	// A copy of the magic where the linker puts the blob, and no valid
	// blob anywhere: reported as malformed (a Go program that links
	// debug/buildinfo has the string, but also its own valid blob).
	fake := make([]byte, 8192)
	copy(fake, "\x7fELF\x02\x01\x01")
	copy(fake[4096:], buildInfoMagic)
	fake[4096+14] = 8
	fake[4096+15] = 2
	fake[4096+32] = 3
	copy(fake[4096+33:], "abc")
	var me *MalformedError
	if bi, err := ReadBuildInfo(bytes.NewReader(fake)); bi != nil || !errors.As(err, &me) || me.Offset != 4096 {
		t.Errorf("fake blob: %v, %v", bi, err)
	}
	// Unaligned copies are data, not blobs: nothing to say.
	copy(fake[4096:], make([]byte, 64))
	copy(fake[4100:], buildInfoMagic)
	if bi, err := ReadBuildInfo(bytes.NewReader(fake)); bi != nil || err != nil {
		t.Errorf("unaligned copy: %v, %v", bi, err)
	}
}

// TestMalformedBuildInfo damages the build information of a real Go
// binary in the ways a hostile image could to hide its modules, and checks
// that each is a warning naming the file, never a silent "not Go".
func TestMalformedBuildInfo(t *testing.T) {
	dir := builds(t)
	bin, err := os.ReadFile(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(bin, buildInfoMagic); n != 1 {
		t.Fatalf("%d copies of the magic in the test binary, want 1", n)
	}
	m := bytes.Index(bin, buildInfoMagic)
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(bin)
		f(b)
		return b
	}
	dep := bytes.Index(bin[m:], []byte("\ndep\t"))
	uuid := bytes.Index(bin[m:], []byte("github.com/google/uuid\tv1.6.0\t"))
	if dep < 0 || uuid < 0 {
		t.Fatal("no dep line in the module information")
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the warning
		pkgs int    // kept
	}{
		{"pointer size", edit(func(b []byte) { b[m+14] = 0x7f }), fmt.Sprintf("malformed Go build information at offset %d (pointer size 127)", m), 0},
		{"version length", edit(func(b []byte) { b[m+32] = 0xff; b[m+33] = 0xff; b[m+34] = 0x7f }), "unreadable toolchain version", 0},
		{"version text", edit(func(b []byte) { b[m+33] = 'X' }), "toolchain version", 0},
		{"magic flipped", edit(func(b []byte) { b[m+1] ^= 0xff }), "carries a Go build ID", 0},
		{"whole magic zeroed", edit(func(b []byte) { copy(b[m:], make([]byte, len(buildInfoMagic))) }), "without Go build information", 0},
		// Go's parser skips a line it does not know: the others are kept,
		// the hidden module is warned about.
		{"dep line damaged", edit(func(b []byte) { b[m+dep+2] = 'X' }), "1 lines of an unknown kind", 6},
		// The version is read, the module list is not: stdlib is kept.
		{"module list unreadable", edit(func(b []byte) { copy(b[m+uuid:], "github.com/google/uuid v1.6.0 ") }), "module information", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := layerOf(t, map[string][]byte{"usr/bin/hello": tc.data})
			col := catalog.NewCollector(context.Background(), []catalog.Cataloger{NewBinary()}, []inventory.Layer{{Index: 0}}, t.TempDir())
			if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			w := col.Warnings()
			if len(w) != 1 || !strings.HasPrefix(w[0], "go-binary: /usr/bin/hello: ") || !strings.Contains(w[0], tc.want) {
				t.Errorf("warnings %q, want one naming /usr/bin/hello and %q", w, tc.want)
			}
			if got := col.Packages(); len(got) != tc.pkgs || (tc.pkgs == 1 && got[0].Name != "stdlib") {
				t.Errorf("packages %+v, want %d", got, tc.pkgs)
			}
		})
	}
}

// layerOf is a one-layer tar of executables.
func layerOf(t testing.TB, files map[string][]byte) walk.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	tw.Close()
	return walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}}
}

// A blob split across reads of any size is found.
func TestChunkBoundaries(t *testing.T) {
	dir := builds(t)
	bin, err := os.ReadFile(filepath.Join(dir, "stripped"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	m := bytes.Index(bin, buildInfoMagic)
	for _, cut := range []int{1, 7, 13, 16, 31, 33, 200} {
		// Place a chunk boundary just before, inside and after the blob.
		for _, at := range []int{m - cut, m + cut} {
			r := io.MultiReader(&oneByteAt{bytes.NewReader(bin[:at])}, bytes.NewReader(bin[at:]))
			bi, err := ReadBuildInfo(r)
			if err != nil || bi == nil || bi.String() != ref.String() {
				t.Fatalf("boundary at %d: %v, %v", at, bi, err)
			}
		}
	}
}

// oneByteAt returns short reads to stress the windowing.
type oneByteAt struct{ r io.Reader }

func (o *oneByteAt) Read(p []byte) (int, error) {
	if len(p) > 3 {
		p = p[:3]
	}
	return o.r.Read(p)
}

func TestMatchEntry(t *testing.T) {
	c := NewBinary()
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		size int64
		want bool
	}{
		{"usr/local/bin/app", 0o755, 5 << 20, true},
		{"app/server", 0o700, 5 << 20, true},
		{"usr/local/bin/app", 0o644, 5 << 20, true}, // bin dir, mode lost
		{"opt/app/app.exe", 0o644, 5 << 20, true},
		{"etc/passwd", 0o644, 5 << 20, false},
		{"usr/bin/tiny", 0o755, 100, false},
		{"usr/bin/huge", 0o755, catalog.MaxBinarySize + 1, false},
		{"usr/bin/dir", fs.ModeDir | 0o755, 5 << 20, false},
		{"usr/bin/link", fs.ModeSymlink | 0o777, 5 << 20, false},
	} {
		if got := c.MatchEntry(tc.path, tc.mode, tc.size); got != tc.want {
			t.Errorf("MatchEntry(%q, %v, %d) = %v", tc.path, tc.mode, tc.size, got)
		}
	}
}

// Measures the stream scan against debug/buildinfo reading the whole file
// into memory first (what Input.ReaderAt does for a file in a layer).
func BenchmarkReadBuildInfo(b *testing.B) {
	dir := builds(b)
	cases := map[string]string{"go-stripped": filepath.Join(dir, "stripped"), "go-plain": filepath.Join(dir, "plain")}
	if _, err := os.Stat("/bin/bash"); err == nil {
		cases["c-elf"] = "/bin/bash"
	}
	for name, path := range cases {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/stream", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := ReadBuildInfo(&streamOnly{r: bytes.NewReader(data)}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/buffer+debug-buildinfo", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				buf, _ := io.ReadAll(&streamOnly{r: bytes.NewReader(data)})
				buildinfo.Read(bytes.NewReader(buf))
			}
		})
	}
}

// An ELF executable that is not a Go program (no Go build ID) is searched
// where debug/buildinfo searches, its first writable segment, and read no
// further: the system's own C executables give what debug/buildinfo gives
// (nothing), and their reads stop at the end of their data segment.
func TestNonGoELFStopsAtDataSegment(t *testing.T) {
	bins, _ := filepath.Glob("/usr/bin/*")
	checked, saved := 0, int64(0)
	for _, bin := range bins {
		if checked == 40 {
			break
		}
		ef, err := elf.Open(bin)
		if err != nil {
			continue
		}
		if ef.Section(".note.go.buildid") != nil {
			ef.Close()
			continue // a Go program: read as before
		}
		var dataEnd uint64
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&(elf.PF_X|elf.PF_W) == elf.PF_W {
				dataEnd = p.Off + p.Filesz
				break
			}
		}
		ef.Close()
		st, _ := os.Stat(bin)
		ref, refErr := buildinfo.ReadFile(bin)
		pkgs, read := parseStream(t, bin)
		if (refErr == nil) != (len(pkgs) > 0) {
			t.Errorf("%s: %d packages; debug/buildinfo says %v, %v", bin, len(pkgs), ref, refErr)
		}
		if limit := max(int64(dataEnd), headSize); read > limit {
			t.Errorf("%s: read %d bytes, past the end of its data segment at %d", bin, read, dataEnd)
		}
		saved += st.Size() - read
		checked++
	}
	if checked == 0 {
		t.Skip("no ELF executables in /usr/bin")
	}
	t.Logf("%d C executables, %d bytes left unread", checked, saved)

	// A Go program that lost its build ID note: its blob is found in its
	// data segment all the same.
	dir := builds(t)
	bin, err := os.ReadFile(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range elfBuildIDNotes {
		if i := bytes.Index(bin[:headSize], m); i >= 0 {
			bin[i+4] = 'X' // "Xo": no longer the Go owner
		}
	}
	bi, err := ReadBuildInfo(&streamOnly{r: bytes.NewReader(bin)})
	ref, _ := buildinfo.Read(bytes.NewReader(bin))
	if err != nil || bi == nil || ref == nil || bi.String() != ref.String() {
		t.Errorf("without its build ID note: %v, %v; want %v", bi, err, ref)
	}
}

// In an ELF file without a Go build ID, a blob is build information where
// debug/buildinfo would read it, in the first writable segment, and
// nowhere else; the stream agrees with debug/buildinfo either way.
func TestDataSegmentOnly(t *testing.T) {
	mod := string(infoStart) + "path\texample.com/x\nmod\texample.com/x\t(devel)\t\n" + string(infoEnd)
	for _, tc := range []struct {
		name    string
		at      int // where the blob goes
		dataEnd int // end of the data segment
		found   bool
	}{
		{"in the segment", 4096 + 512, 8192, true},
		{"segment within the first page", 1024, 2048, true},
		{"after the segment", 8192 + 256, 8192, false},
		{"before the segment", 2048, 8192, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataOff := 4096
			if tc.dataEnd <= 4096 {
				dataOff = 512
			}
			b := elfWithData(4*4096, dataOff, tc.dataEnd-dataOff)
			copy(b[tc.at:], blob("go1.22.3", mod))
			s := &streamOnly{r: bytes.NewReader(b)}
			bi, err := ReadBuildInfo(s)
			ref, refErr := buildinfo.Read(bytes.NewReader(b))
			if err != nil || (bi != nil) != tc.found || (refErr == nil) != tc.found {
				t.Fatalf("stream: %v, %v; debug/buildinfo: %v, %v; want found=%v", bi, err, ref, refErr, tc.found)
			}
			if tc.found && bi.String() != ref.String() {
				t.Errorf("stream:\n%s\ndebug/buildinfo:\n%s", bi, ref)
			}
			if s.n > int64(max(tc.dataEnd, headSize)) {
				t.Errorf("read %d bytes, past the data segment's end at %d", s.n, tc.dataEnd)
			}
		})
	}
}
