package sensor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

var update = flag.Bool("update", false, "rewrite testdata/records (from a live run, as root) and their golden events")

// testConverter converts without looking at this machine: an empty proc
// directory, testdata's passwd, no container sockets.
func testConverter(t testing.TB) *converter {
	c := newConverter(t.TempDir(), time.Unix(1_700_000_000, 0).UTC(), nil)
	c.hostRoot = filepath.Join("testdata", "root")
	c.ctrs.podmanDB = ""
	return c
}

// TestRecords decodes real ring-buffer records captured from the kernel
// (testdata/records/*.bin, see TestLive) and compares the events they
// become with the golden JSON beside them.
func TestRecords(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "records", "*.bin"))
	if len(files) == 0 {
		t.Fatal("no record fixtures")
	}
	c := testConverter(t)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r record
		if err := decode(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".bin"), "-", 2)[1]; kindNames[r.kind] != want {
			t.Errorf("%s: kind %s", f, kindNames[r.kind])
		}
		// A dup's record carries the path only when the fd is a file.
		isDup := r.kind == kDup || r.kind == kDup2 || r.kind == kDup3
		if r.nstr != kindStrings[r.kind] && !(isDup && r.nstr <= 1) {
			t.Errorf("%s: %d strings, the %s layout has %d", f, r.nstr, kindNames[r.kind], kindStrings[r.kind])
		}
		var ev event.Event
		c.convert(&r, &ev)
		got, _ := json.MarshalIndent(&ev, "", "  ")
		golden := strings.TrimSuffix(f, ".bin") + ".json"
		if *update {
			os.WriteFile(golden, append(got, '\n'), 0o644)
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Errorf("%s: event differs from %s:\n%s", f, golden, got)
		}
		// The event survives the recording format.
		line, _ := event.Marshal(&ev)
		back, err := event.ReadAll(bytes.NewReader(line), f)
		if err != nil || len(back) != 1 || back[0].Type != ev.Type {
			t.Errorf("%s: recording round trip: %v", f, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "records", "011-symlinkat.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	for name, b := range map[string][]byte{
		"empty":        nil,
		"header only":  good[:hdrSize-1],
		"cut string":   good[:len(good)-3],
		"huge":         make([]byte, maxRecord+1),
		"unknown kind": append(append([]byte(nil), good[:104]...), append([]byte{99, 0, 0, 0}, good[108:]...)...),
	} {
		if err := decode(b, &r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{openFlags(0), "O_RDONLY"},
		{openFlags(01 | 0100 | 01000), "O_TRUNC|O_CREAT|O_WRONLY"},
		{openFlags(02 | 02000000), "O_CLOEXEC|O_RDWR"},
		{openFlags(04010001), "O_SYNC|O_WRONLY"},
		{flags(04755, modeNames), "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"},
		{flags(0, exeFlagNames), "0"},
		{flags(exeUpperLayer|exeWritable, exeFlagNames), "EXE_WRITABLE|EXE_UPPER_LAYER"},
		{family(17), "AF_PACKET"},
		{sockType(3 | 02000000), "SOCK_RAW|SOCK_CLOEXEC"},
		{ptraceRequest(16), "PTRACE_ATTACH"},
		{dirfd(uint64(0xffffff9c)), "AT_FDCWD"},
		{joinPath("shadow", "/etc"), "/etc/shadow"},
		{joinPath("../etc/./passwd", "/tmp/x"), "/tmp/etc/passwd"},
		{joinPath("/a//b/", ""), "/a/b"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for _, tt := range []struct {
		b    []byte
		want string
	}{
		{[]byte{2, 0, 0x01, 0xbb, 203, 0, 113, 10, 0, 0, 0, 0, 0, 0, 0, 0}, "203.0.113.10:443"},
		{append([]byte{10, 0, 0x00, 0x50, 0, 0, 0, 0}, append(make([]byte, 15), 1)...), "[::1]:80"},
		{append([]byte{1, 0}, []byte("/run/podman/podman.sock\x00")...), "/run/podman/podman.sock"},
		{[]byte{1, 0, 0, 'x', 'y'}, "@xy"},
	} {
		sa, ok := parseSockaddr(tt.b)
		if !ok || sa.String() != tt.want {
			t.Errorf("parseSockaddr = %q, %v; want %q", sa.String(), ok, tt.want)
		}
	}
	if _, ok := parseSockaddr([]byte{2, 0, 1}); ok {
		t.Error("short sockaddr accepted")
	}
}

// FuzzDecode feeds arbitrary records through the decoder and converter:
// a malformed record is an error, never a panic.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "records", "*.bin"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	c := testConverter(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r record
		if decode(b, &r) != nil {
			return
		}
		var ev event.Event
		c.convert(&r, &ev)
		if ev.Type == "" {
			t.Fatalf("kind %d converted without a type", r.kind)
		}
	})
}

// BenchmarkDecodeConvert is the user-space cost per kernel record.
func BenchmarkDecodeConvert(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "records", "*.bin"))
	var raws [][]byte
	for _, p := range files {
		data, _ := os.ReadFile(p)
		raws = append(raws, data)
	}
	c := testConverter(b)
	var r record
	var ev event.Event
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := decode(raws[i%len(raws)], &r); err != nil {
			b.Fatal(err)
		}
		c.convert(&r, &ev)
	}
}
