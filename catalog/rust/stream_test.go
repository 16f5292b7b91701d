package rust

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
)

// layout describes a small ELF64 executable built by tinyELF: the real
// .dep-v0 JSON from testdata, in the places linkers and tools put sections.
type layout struct {
	depInLoad    bool // .dep-v0 inside the loaded segment (rust-audit's allocated section)
	shdrsBetween bool // section table and sections in a hole before a second loaded segment (patchelf)
	goNote       bool // a Go build-ID note in the first page and a .go.buildinfo section
	noDep        bool // no dependency section
	big          int  // a non-loaded section of this many bytes before .dep-v0
	loaded       int  // bytes of the first loaded segment after the first page
}

// tinyELF builds the executable. Sections are written in file order; the
// section header table follows them.
func tinyELF(t testing.TB, dep []byte, l layout) []byte {
	t.Helper()
	le := binary.LittleEndian
	const page = 0x1000
	var buf bytes.Buffer
	buf.Write(make([]byte, page)) // header, program headers, notes: filled in below
	for i := 0; buf.Len() < page+l.loaded; i++ {
		buf.WriteString("code and data of the loaded segment ")
	}
	type sec struct {
		name       string
		typ        elf.SectionType
		flags      elf.SectionFlag
		off, size  uint64
		nameOffset uint32
	}
	var secs []sec
	add := func(name string, typ elf.SectionType, flags elf.SectionFlag, data []byte) {
		secs = append(secs, sec{name: name, typ: typ, flags: flags, off: uint64(buf.Len()), size: uint64(len(data))})
		buf.Write(data)
	}
	if !l.noDep && l.depInLoad {
		add(".dep-v0", elf.SHT_PROGBITS, elf.SHF_ALLOC, dep)
	}
	if l.goNote {
		add(".go.buildinfo", elf.SHT_PROGBITS, elf.SHF_ALLOC|elf.SHF_WRITE, []byte("\xff Go buildinf:\x08\x02"))
	}
	loadEnd := uint64(buf.Len())
	if l.big > 0 {
		add(".debug_big", elf.SHT_PROGBITS, 0, bytes.Repeat([]byte("debug information "), l.big/18+1)[:l.big])
	}
	if !l.noDep && !l.depInLoad {
		add(".dep-v0", elf.SHT_PROGBITS, 0, dep)
	}
	var names bytes.Buffer
	names.WriteByte(0)
	for i := range secs {
		secs[i].nameOffset = uint32(names.Len())
		names.WriteString(secs[i].name + "\x00")
	}
	shstrndx := len(secs) + 1
	secs = append(secs, sec{name: ".shstrtab", typ: elf.SHT_STRTAB, nameOffset: uint32(names.Len())})
	names.WriteString(".shstrtab\x00")
	secs[len(secs)-1].off, secs[len(secs)-1].size = uint64(buf.Len()), uint64(names.Len())
	buf.Write(names.Bytes())
	for buf.Len()%8 != 0 {
		buf.WriteByte(0)
	}
	shoff := uint64(buf.Len())
	binary.Write(&buf, le, elf.Section64{}) // SHN_UNDEF
	for _, s := range secs {
		binary.Write(&buf, le, elf.Section64{Name: s.nameOffset, Type: uint32(s.typ), Flags: uint64(s.flags), Off: s.off, Size: s.size, Addralign: 1})
	}
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0, Vaddr: 0x400000, Filesz: loadEnd, Memsz: loadEnd, Align: page}}
	if l.shdrsBetween {
		// patchelf's layout: a new loaded segment at the end, after the
		// section table.
		for buf.Len()%page != 0 {
			buf.WriteByte(0)
		}
		off := uint64(buf.Len())
		buf.WriteString("/opt/lib/rpath added by patchelf\x00")
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R), Off: off, Vaddr: 0x800000 + off, Filesz: uint64(buf.Len()) - off, Memsz: uint64(buf.Len()) - off, Align: page})
	}
	out := buf.Bytes()
	var note []byte
	if l.goNote {
		note = binary.LittleEndian.AppendUint32(nil, 4)
		note = binary.LittleEndian.AppendUint32(note, 8)
		note = binary.LittleEndian.AppendUint32(note, 4)
		note = append(note, "Go\x00\x00buildid!"...)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R), Off: 0xf00, Vaddr: 0x400f00, Filesz: uint64(len(note)), Memsz: uint64(len(note)), Align: 4})
		copy(out[0xf00:], note)
	}
	var hdr bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	binary.Write(&hdr, le, elf.Header64{
		Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Entry: 0x401000, Phoff: 64, Shoff: shoff, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)),
		Shentsize: 64, Shnum: uint16(len(secs) + 1), Shstrndx: uint16(shstrndx),
	})
	for _, p := range progs {
		binary.Write(&hdr, le, p)
	}
	copy(out, hdr.Bytes())
	if _, err := elf.NewFile(bytes.NewReader(out)); err != nil {
		t.Fatalf("tinyELF made an unreadable file: %v", err)
	}
	return out
}

func depSection(t testing.TB) []byte {
	t.Helper()
	js, err := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	return compress(t, js)
}

// countingReader counts the bytes read and hides any io.ReaderAt.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseStream runs the cataloger on a stream, as the Collector's fan-out
// does: no random access.
func parseStream(t testing.TB, data []byte, size int64, tempDir string) (*countingReader, []string, error) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(data)}
	in := catalog.Input{Path: "/usr/bin/app", Reader: cr, Size: size, TempDir: tempDir, ReaderAt: func() (io.ReaderAt, error) {
		t.Error("a streaming cataloger asked for random access")
		return nil, errors.New("no random access")
	}}
	pkgs, err := NewBinary().Parse(context.Background(), in)
	return cr, nameVersions(pkgs), err
}

var serdeCrates = []string{
	"itoa 1.0.14", "memchr 2.7.4", "proc-macro2 1.0.92", "quote 1.0.38", "ryu 1.0.18", "serde 1.0.217",
	"serde_derive 1.0.217", "serde_json 1.0.135", "syn 2.0.95", "unicode-ident 1.0.14", "uses_json 0.1.0",
}

func TestStreamLayouts(t *testing.T) {
	dep := depSection(t)
	for _, tc := range []struct {
		name     string
		l        layout
		want     []string
		err      error
		maxRead  int64 // 0: the whole file
		noRandom bool  // random access finds what the stream cannot
	}{
		{name: "at the end", l: layout{loaded: 64 << 10}, want: serdeCrates},
		{name: "no section", l: layout{loaded: 64 << 10, noDep: true}},
		{name: "patchelf", l: layout{loaded: 16 << 10, shdrsBetween: true}, want: serdeCrates},
		{name: "big debug section spooled", l: layout{loaded: 4 << 10, big: tailMemLimit + 1<<20}, want: serdeCrates},
		{name: "go binary", l: layout{loaded: 64 << 10, goNote: true}, maxRead: headSize},
		{name: "allocated section", l: layout{loaded: 64 << 10, depInLoad: true}, err: ErrLoadedSection, noRandom: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tinyELF(t, dep, tc.l)
			tmp := t.TempDir()
			cr, got, err := parseStream(t, data, int64(len(data)), tmp)
			if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if tc.maxRead > 0 && cr.n > tc.maxRead {
				t.Errorf("read %d bytes, want at most %d", cr.n, tc.maxRead)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
			// Random access agrees wherever the stream can read.
			v, rerr := ReadDependencies(bytes.NewReader(data))
			if tc.noRandom {
				if rerr != nil || v == nil {
					t.Errorf("random access: %v, %v", v, rerr)
				}
				return
			}
			var rgot []string
			if v != nil {
				rgot = nameVersions(v.Packages())
			}
			if rerr != nil || !slices.Equal(rgot, got) {
				t.Errorf("random access: %q, %v", rgot, rerr)
			}
		})
	}
}

// A tail over the memory limit is spooled to TempDir: an unusable TempDir
// makes that visible.
func TestStreamSpoolError(t *testing.T) {
	data := tinyELF(t, depSection(t), layout{loaded: 4 << 10, big: tailMemLimit + 1<<20})
	_, _, err := parseStream(t, data, int64(len(data)), filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "spool") || !strings.Contains(err.Error(), "TMPDIR") {
		t.Errorf("err = %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestStreamBounds(t *testing.T) {
	data := tinyELF(t, depSection(t), layout{loaded: 64 << 10})

	// A tail over the cap: refused from the program headers, after the
	// first page only.
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(data), zeroReader{})}
	_, err := ReadDependenciesStream(cr, int64(len(data))+MaxTailSize, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "limit") || cr.n > headSize {
		t.Errorf("huge tail: %v after %d bytes", err, cr.n)
	}
	// Of unknown size: stops past the cap.
	cr = &countingReader{r: io.MultiReader(bytes.NewReader(data), zeroReader{})}
	_, err = ReadDependenciesStream(cr, -1, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "limit") || cr.n > MaxTailSize+int64(len(data))+skipChunk {
		t.Errorf("endless stream: %v after %d bytes", err, cr.n)
	}

	// A stream that ends before the size the walk stated (a truncated
	// layer): an error, not silence.
	for _, cut := range []int{len(data) - 10, 40 << 10, 2000} {
		_, got, err := parseStream(t, data[:cut], int64(len(data)), t.TempDir())
		if err == nil || got != nil {
			t.Errorf("cut at %d: %q, %v", cut, got, err)
		}
	}
	// A file that is itself cut short (its section table gone): nothing,
	// as with random access.
	cut := data[:len(data)-100]
	_, got, err := parseStream(t, cut, int64(len(cut)), t.TempDir())
	v, rerr := ReadDependencies(bytes.NewReader(cut))
	if err != nil || got != nil || v != nil || rerr != nil {
		t.Errorf("truncated file: stream %q, %v; random %v, %v", got, err, v, rerr)
	}
	// A read error from the stream is the parser's error.
	boom := errors.New("layer read failed")
	_, err = ReadDependenciesStream(io.MultiReader(bytes.NewReader(data[:20<<10]), errReader{boom}), int64(len(data)), t.TempDir())
	if !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Real binaries: rustc's with the section added by objcopy, gofmt with one
// added (skipped as a Go binary after the first page), a C program, and
// osv-scalibr's cargo-auditable binaries when the module cache has them.
// The stream gives what random access gives.
func TestStreamRealBinaries(t *testing.T) {
	files := map[string][]string{}
	if _, err := os.Stat("/bin/sh"); err == nil {
		files["/bin/sh"] = nil
	}
	gofmt := filepath.Join(runtime.GOROOT(), "bin", "gofmt")
	goHead := []byte{}
	if b, err := os.ReadFile(gofmt); err == nil {
		goHead = b[:headSize]
	}
	if _, err := exec.LookPath("objcopy"); err == nil {
		if _, err := os.Stat(gofmt); err == nil {
			files[withSection(t, gofmt, ".dep-v0", depSection(t))] = nil
		}
		if _, err := exec.LookPath("rustc"); err == nil {
			bin := rustBinary(t)
			files[bin] = nil
			files[withSection(t, bin, ".dep-v0", depSection(t))] = serdeCrates
			files[withSection(t, bin, ".rust-deps-v0", depSection(t))] = serdeCrates
		}
	}
	if dir := scalibrDir(); dir != "" {
		files[filepath.Join(dir, "uses_serde_json/uses_serde_json")] = serdeCrates
		files[filepath.Join(dir, "no_deps/no_deps")] = []string{"no_deps 0.1.0"}
	}
	if len(files) == 0 {
		t.Skip("no binaries at hand")
	}
	for path, want := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cr, got, err := parseStream(t, data, int64(len(data)), t.TempDir())
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
		if bytes.Equal(data[:headSize], goHead) && cr.n > headSize {
			t.Errorf("%s: a Go binary read %d bytes", path, cr.n)
		}
		v, rerr := ReadDependencies(bytes.NewReader(data))
		var rgot []string
		if v != nil {
			rgot = nameVersions(v.Packages())
		}
		if rerr != nil || !reflect.DeepEqual(rgot, got) {
			t.Errorf("%s: random access %q, %v; stream %q", path, rgot, rerr, got)
		}
	}
}

func FuzzReadDependenciesStream(f *testing.F) {
	dep := depSection(f)
	for _, l := range []layout{{loaded: 1 << 10}, {loaded: 1 << 10, shdrsBetween: true}, {loaded: 512, goNote: true}, {loaded: 512, depInLoad: true}} {
		f.Add(tinyELF(f, dep, l))
	}
	f.Add([]byte("MZ\x90\x00\x03\x00\x00\x00"))
	tmp := f.TempDir() // one for all runs: making a directory per run is slower than the parse
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, size := range []int64{int64(len(in)), -1} {
			v, err := ReadDependenciesStream(bytes.NewReader(in), size, tmp)
			if err == nil && v != nil {
				v.Packages()
			}
		}
	})
}

func BenchmarkReadDependenciesStream(b *testing.B) {
	data := tinyELF(b, depSection(b), layout{loaded: 4 << 20, big: 1 << 20})
	b.SetBytes(int64(len(data)))
	tmp := b.TempDir()
	for b.Loop() {
		if v, err := ReadDependenciesStream(bytes.NewReader(data), int64(len(data)), tmp); err != nil || v == nil {
			b.Fatal(err)
		}
	}
}
