package walk

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

// tarEntry describes one entry of a test layer.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) tarEntry { return tarEntry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) tarEntry        { return tarEntry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, link: target, typ: tar.TypeSymlink}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, link: target, typ: tar.TypeLink}
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Linkname: e.link, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layersOf(tars ...[]byte) []Layer {
	out := make([]Layer, len(tars))
	for i, b := range tars {
		b := b
		out[i] = Layer{Info: LayerInfo{Index: i}, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}}
	}
	return out
}

// recorder keeps the content of every file whose path it wants.
type recorder struct {
	want func(*Entry) bool
	mu   sync.Mutex
	got  map[string]string // "layer:path" -> content
	ra   bool
}

func (r *recorder) Wants(e *Entry) bool { return r.want(e) }
func (r *recorder) Visit(e *Entry, c *Content) error {
	var b []byte
	var err error
	if r.ra {
		ra, err := c.ReaderAt()
		if err != nil {
			return err
		}
		b = make([]byte, c.Size())
		if _, err := ra.ReadAt(b, 0); err != nil && err != io.EOF {
			return err
		}
	} else if b, err = io.ReadAll(c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]string{}
	}
	r.got[string(rune('0'+e.Layer))+":"+e.Path] = string(b)
	return nil
}

func visible(t *testing.T, tr *Tree) []string {
	var out []string
	_ = tr.Walk(func(e *Entry) error {
		out = append(out, e.Path+"@"+string(rune('0'+e.Layer)))
		return nil
	})
	return out
}

func TestOverlay(t *testing.T) {
	l0 := makeTar(t, dir("a/"), file("a/x", "x0"), file("a/y", "y0"), file("b", "b0"), dir("d/"), file("d/f", "f0"), file("keep", "k"))
	l1 := makeTar(t, file("a/.wh.x", ""), file("b", "b1"), symlink("d", "a"))
	l2 := makeTar(t, dir("a/"), file("a/.wh..wh..opq", ""), file("a/z", "z2"))
	tr, err := Walk(context.Background(), layersOf(l0, l1, l2), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(visible(t, tr), " ")
	want := "a@2 a/z@2 b@1 d@1 keep@0"
	if got != want {
		t.Errorf("visible = %q, want %q", got, want)
	}
	states := []struct {
		path  string
		layer int
		want  State
	}{
		{"b", 0, Shadowed},
		{"b", 1, Visible},
		{"a/x", 0, Deleted},  // whiteout in layer 1
		{"a/y", 0, Deleted},  // opaque directory in layer 2
		{"d/f", 0, Deleted},  // parent replaced by a symlink in layer 1
		{"keep", 0, Visible}, // untouched
		{"a/z", 2, Visible},
	}
	for _, s := range states {
		if got := tr.State(s.path, s.layer); got != s.want {
			t.Errorf("State(%s, %d) = %v, want %v", s.path, s.layer, got, s.want)
		}
	}
}

func TestRecreatedAfterWhiteout(t *testing.T) {
	l0 := makeTar(t, file("etc/db", "v1"))
	l1 := makeTar(t, file("etc/.wh.db", ""))
	l2 := makeTar(t, file("etc/db", "v3"))
	rec := &recorder{want: func(e *Entry) bool { return e.Path == "etc/db" }}
	tr, err := Walk(context.Background(), layersOf(l0, l1, l2), []Visitor{rec}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := tr.State("etc/db", 0); st != Deleted {
		t.Errorf("layer 0 copy: %v, want deleted (a whiteout came before the re-creation)", st)
	}
	if st := tr.State("etc/db", 2); st != Visible {
		t.Errorf("layer 2 copy: %v, want visible", st)
	}
	if rec.got["0:etc/db"] != "v1" || rec.got["2:etc/db"] != "v3" {
		t.Errorf("visitor got %v", rec.got)
	}
}

func TestResolve(t *testing.T) {
	l0 := makeTar(t,
		dir("usr/lib/"), file("usr/lib/os-release", "ID=debian"),
		dir("etc/"), symlink("etc/os-release", "../usr/lib/os-release"),
		symlink("lib", "usr/lib"),
		symlink("abs", "/usr/lib/os-release"),
		symlink("escape", "../../../../usr/lib/os-release"),
		symlink("loop1", "loop2"), symlink("loop2", "/loop1"),
		symlink("dangling", "nowhere"),
	)
	tr, err := Walk(context.Background(), layersOf(l0), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, want string
		exists   bool
		loop     bool
	}{
		{in: "etc/os-release", want: "usr/lib/os-release", exists: true},
		{in: "/lib/os-release", want: "usr/lib/os-release", exists: true},
		{in: "abs", want: "usr/lib/os-release", exists: true},
		{in: "escape", want: "usr/lib/os-release", exists: true},
		{in: "dangling", want: "nowhere"},
		{in: "loop1", loop: true},
		{in: "lib/../etc", want: "etc", exists: true},
	}
	for _, c := range cases {
		got, ok, err := tr.Resolve(c.in)
		if c.loop {
			if !errors.Is(err, ErrSymlinkLoop) {
				t.Errorf("Resolve(%s) err = %v, want a loop error", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want || ok != c.exists {
			t.Errorf("Resolve(%s) = %q, %v, %v; want %q, %v", c.in, got, ok, err, c.want, c.exists)
		}
	}
	if !hasWarning(tr, "symlink /escape points outside the image") {
		t.Errorf("no warning for the escaping symlink: %v", tr.Warnings())
	}
}

func hasWarning(tr *Tree, sub string) bool {
	for _, w := range tr.Warnings() {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func TestHostileNames(t *testing.T) {
	l0 := makeTar(t, file("../../etc/passwd", "root"), file("/abs/file", "a"), file("./dot/./x", "d"))
	rec := &recorder{want: func(e *Entry) bool { return true }}
	tr, err := Walk(context.Background(), layersOf(l0), []Visitor{rec}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(visible(t, tr), " ")
	if got != "abs/file@0 dot/x@0 etc/passwd@0" {
		t.Errorf("visible = %q", got)
	}
	if !hasWarning(tr, `"../../etc/passwd" climbs`) {
		t.Errorf("no warning naming the climbing entry: %v", tr.Warnings())
	}
}

func TestHardlinkContent(t *testing.T) {
	l0 := makeTar(t, file("usr/bin/python3.11", "ELF..."), hardlink("usr/bin/python3", "usr/bin/python3.11"), hardlink("bad", "missing"))
	rec := &recorder{want: func(e *Entry) bool { return e.Path == "usr/bin/python3" || e.Path == "bad" }}
	tr, err := Walk(context.Background(), layersOf(l0), []Visitor{rec}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.got["0:usr/bin/python3"] != "ELF..." {
		t.Errorf("hard link content = %q", rec.got["0:usr/bin/python3"])
	}
	if !hasWarning(tr, "hard link /bad names /missing") {
		t.Errorf("no warning for the dangling hard link: %v", tr.Warnings())
	}
}

func TestSeveralVisitorsShareContent(t *testing.T) {
	big := strings.Repeat("0123456789", memLimit/10+100) // spooled to disk
	l0 := makeTar(t, file("small", "hello"), file("big", big))
	a := &recorder{want: func(*Entry) bool { return true }}
	b := &recorder{want: func(*Entry) bool { return true }, ra: true}
	dirTmp := t.TempDir()
	if _, err := Walk(context.Background(), layersOf(l0), []Visitor{a, b}, Options{TempDir: dirTmp}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{a, b} {
		if r.got["0:small"] != "hello" || r.got["0:big"] != big {
			t.Errorf("visitor got small=%q big=%d bytes", r.got["0:small"], len(r.got["0:big"]))
		}
	}
	if left, _ := filepathGlob(dirTmp); len(left) != 0 {
		t.Errorf("spool files left behind: %v", left)
	}
}

func TestLimits(t *testing.T) {
	l0 := makeTar(t, file("a", strings.Repeat("x", 10000)), file("b", "y"))
	_, err := Walk(context.Background(), layersOf(l0), nil, Options{MaxLayerBytes: 4096})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Errorf("byte limit: err = %v", err)
	}
	_, err = Walk(context.Background(), layersOf(l0), nil, Options{MaxEntries: 1})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Errorf("entry limit: err = %v", err)
	}
	// A visitor asking random access to a file over the limit gets a
	// warning, not a crash.
	rec := &recorder{want: func(*Entry) bool { return true }, ra: true}
	tr, err := Walk(context.Background(), layersOf(l0), []Visitor{rec}, Options{MaxFileSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(tr, "over the 100-byte limit") {
		t.Errorf("warnings = %v", tr.Warnings())
	}
}

func TestTruncatedLayer(t *testing.T) {
	l0 := makeTar(t, file("a", strings.Repeat("x", 5000)))
	_, err := Walk(context.Background(), layersOf(l0[:1000]), nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "layer 0") {
		t.Errorf("err = %v, want an error naming the layer", err)
	}
}

func TestEscapes(t *testing.T) {
	cases := []struct {
		p, target string
		want      bool
	}{
		{"dir1/attack", "../../secret.txt", true},
		{"dir1/ok", "../secret.txt", false},
		{"dir1/abs", "/../secret.txt", true},
		{"a/b/c", "../../x", false},
		{"top", "x", false},
	}
	for _, c := range cases {
		if got := escapes(c.p, c.target); got != c.want {
			t.Errorf("escapes(%s, %s) = %v", c.p, c.target, got)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func filepathGlob(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, err
}

// TestLargestLayerFirst: layers are started largest first (by stored size;
// index order among equal and unknown sizes), so that with fewer jobs than
// layers the largest is not read alone at the end; the view is the same
// as in index order.
func TestLargestLayerFirst(t *testing.T) {
	l0 := makeTar(t, file("a", "a0"), file("b", "b0"))
	l1 := makeTar(t, file("a", "a1"), file("big", strings.Repeat("x", 4096)))
	l2 := makeTar(t, file("b", "b2"))
	l3 := makeTar(t, file("c", "c3"))
	layers := layersOf(l0, l1, l2, l3)
	sizes := []int64{100, 5000, -1, 100}
	var opened []int
	var mu sync.Mutex
	for i := range layers {
		layers[i].Info.Size = sizes[i]
		open := layers[i].Open
		layers[i].Open = func() (io.ReadCloser, error) {
			mu.Lock()
			opened = append(opened, i)
			mu.Unlock()
			return open()
		}
	}
	tr, err := Walk(context.Background(), layers, nil, Options{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(opened), "[1 0 3 2]"; got != want {
		t.Errorf("layers opened in order %s, want %s (largest first, then index order; unknown size last)", got, want)
	}
	if got, want := strings.Join(visible(t, tr), " "), "a@1 b@2 big@1 c@3"; got != want {
		t.Errorf("visible = %q, want %q", got, want)
	}
}
