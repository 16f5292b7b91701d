package drift

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testImage writes a two-layer image to an OCI layout: the second layer
// replaces bin/app, deletes bin/old (a whiteout) and adds bin/new.
func testImage(t *testing.T) *image.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		regtest.Layer(t, map[string]string{"bin/app": "app v1", "bin/old": "old tool", "etc/conf": "x=1"}),
		regtest.Layer(t, map[string]string{"bin/app": "app v2", "bin/.wh.old": "", "bin/new": "new tool"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	opened, err := image.Open(t.Context(), "oci:"+dir, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opened.Close() })
	return opened
}

func TestBuildIndexFinalView(t *testing.T) {
	img := testImage(t)
	ix, err := Build(t.Context(), img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	if ix.Image != id.String() {
		t.Errorf("index image %s, want the config digest %s", ix.Image, id)
	}
	want := map[string]string{"/bin/app": sum("app v2"), "/bin/new": sum("new tool"), "/etc/conf": sum("x=1")}
	if len(ix.Files) != len(want) {
		t.Errorf("files %v, want %v (the whiteout must remove /bin/old)", ix.Files, want)
	}
	for p, h := range want {
		if ix.Files[p].SHA256 != h {
			t.Errorf("%s: sha256 %q, want %q (the last layer's content)", p, ix.Files[p].SHA256, h)
		}
	}

	// The store keeps it by image id; a missing one is fs.ErrNotExist; a
	// damaged one is an error naming the file and what to do.
	st := &Store{Dir: t.TempDir()}
	file, err := st.Save(ix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file, strings.TrimPrefix(ix.Image, "sha256:")) {
		t.Errorf("index file %s is not named by the image id", file)
	}
	back, err := st.Load(ix.Image)
	if err != nil || back.Files["/bin/app"] != ix.Files["/bin/app"] {
		t.Fatalf("load: %v %+v", err, back)
	}
	other := "sha256:" + strings.Repeat("a", 64)
	if _, err := st.Load(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("load of an image never indexed: %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(file, []byte("not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(ix.Image); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "index the image again") {
		t.Errorf("damaged index: %v", err)
	}
	if _, err := st.Load("sha256:../../etc"); !errors.Is(err, ErrBadID) {
		t.Errorf("bad id: %v, want ErrBadID", err)
	}
}

// fixture is a container root and a proc directory whose PID/exe links
// point into it, as /proc/PID/exe does for a running process.
type fixture struct {
	t    *testing.T
	root string
	proc string
	d    *Detector
	ct   *event.Container
}

func newFixture(t *testing.T, files map[string]string) *fixture {
	dir := t.TempDir()
	f := &fixture{t: t, root: filepath.Join(dir, "root"), proc: filepath.Join(dir, "proc")}
	ix := &Index{Image: "sha256:" + strings.Repeat("b", 64), Files: map[string]File{}}
	for p, c := range files {
		ix.Files[p] = File{SHA256: sum(c), Size: int64(len(c)), Mode: 0o755}
		f.write(p, c)
	}
	st := &Store{Dir: filepath.Join(dir, "index")}
	if _, err := st.Save(ix); err != nil {
		t.Fatal(err)
	}
	f.d = New(Options{Store: st, ProcDir: f.proc})
	t.Cleanup(f.d.Close)
	if err := f.d.Preload(ix.Image); err != nil {
		t.Fatal(err)
	}
	f.ct = &event.Container{ID: "0123456789ab", Name: "web", ImageID: ix.Image}
	return f
}

func (f *fixture) write(p, content string) {
	full := filepath.Join(f.root, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// exec runs an exec event of pid for path, with /proc/PID/exe pointing
// at the file, and returns the drift found.
func (f *fixture) exec(pid int64, p string, flags string) *event.Drift {
	os.MkdirAll(filepath.Join(f.proc, itoa(pid)), 0o755)
	os.Symlink(filepath.Join(f.root, p), filepath.Join(f.proc, itoa(pid), "exe"))
	ev := &event.Event{Type: "execve", Container: f.ct, Proc: event.Process{PID: pid, Name: filepath.Base(p), ExePath: p,
		IsExeUpperLayer: strings.Contains(flags, "EXE_UPPER_LAYER")}, Args: event.Args{{Name: "flags", Value: flags}}}
	f.d.Enrich(ev)
	return ev.Drift
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (f *fixture) open(pid int64, name, p, flags string) {
	f.d.Enrich(&event.Event{Type: "openat", Container: f.ct, Res: 3,
		Proc: event.Process{PID: pid, Name: name, Exe: name, Args: []string{"-O", p}, ExePath: "/bin/busybox"},
		FD:   &event.FD{Num: 3, Type: event.FDFile, Name: p}, Args: event.Args{{Name: "flags", Value: flags}}})
}

func TestDetectorExec(t *testing.T) {
	f := newFixture(t, map[string]string{"/bin/busybox": "busybox", "/usr/bin/app": "app"})

	// A file of the image, from a lower overlay layer or (no overlay) with
	// the image's content: no drift.
	if d := f.exec(10, "/bin/busybox", "EXE_LOWER_LAYER"); d != nil {
		t.Errorf("image file in a lower layer: %+v", d)
	}
	if d := f.exec(11, "/usr/bin/app", ""); d != nil {
		t.Errorf("image file with the image's content: %+v", d)
	}
	// Copied up (chmod) but unchanged: no drift.
	if d := f.exec(12, "/usr/bin/app", "EXE_WRITABLE|EXE_UPPER_LAYER"); d != nil {
		t.Errorf("copied-up image file with the image's content: %+v", d)
	}

	// Downloaded by wget, then run: not in the image, hash and writer.
	f.open(20, "wget", "/opt/miner", "O_WRONLY|O_CREAT|O_TRUNC")
	f.write("/opt/miner", "evil payload")
	d := f.exec(21, "/opt/miner", "EXE_WRITABLE|EXE_UPPER_LAYER")
	if d == nil {
		t.Fatal("a file written at runtime ran without drift")
	}
	if d.Path != "/opt/miner" || d.Reason != event.DriftNotInImage || d.SHA256 != sum("evil payload") {
		t.Errorf("drift %+v, want /opt/miner not_in_image %s", d, sum("evil payload"))
	}
	if d.Writer == nil || d.Writer.Name != "wget" || d.Writer.PID != 20 || d.Writer.Cmdline != "wget -O /opt/miner" {
		t.Errorf("writer %+v, want wget pid 20", d.Writer)
	}

	// Written, then renamed into place: the writer follows the file.
	f.open(30, "curl", "/tmp/dl.part", "O_WRONLY|O_CREAT")
	f.d.Enrich(&event.Event{Type: "rename", Container: f.ct, Proc: event.Process{PID: 31, Name: "mv", Cwd: "/"},
		Args: event.Args{{Name: "res", Value: "0"}, {Name: "oldpath", Value: "/tmp/dl.part"}, {Name: "newpath", Value: "usr/local/bin/tool"}}})
	f.write("/usr/local/bin/tool", "tool")
	if d := f.exec(32, "/usr/local/bin/tool", "EXE_UPPER_LAYER"); d == nil || d.Writer == nil || d.Writer.Name != "curl" {
		t.Errorf("renamed download: %+v", d)
	}

	// An image binary overwritten at runtime: modified, with both digests.
	f.write("/usr/bin/app", "trojaned app")
	d = f.exec(40, "/usr/bin/app", "EXE_UPPER_LAYER")
	if d == nil || d.Reason != event.DriftModified || d.SHA256 != sum("trojaned app") || d.ImageSHA256 != sum("app") {
		t.Errorf("modified image binary: %+v", d)
	}

	// Outside containers nothing is judged; memfd execs are the memfd
	// rule's.
	host := &event.Event{Type: "execve", Proc: event.Process{PID: 50, ExePath: "/opt/miner"}}
	f.d.Enrich(host)
	if host.Drift != nil {
		t.Error("host exec judged")
	}
	memfd := &event.Event{Type: "execve", Container: f.ct, Proc: event.Process{PID: 51, ExePath: "/memfd:x (deleted)", IsExeFromMemfd: true}}
	f.d.Enrich(memfd)
	if memfd.Drift != nil {
		t.Error("memfd exec judged as drift")
	}
}

// Without the image's file list (not indexed yet), only an executable in
// the container's writable overlay layer is reported, as upper_layer.
func TestDetectorWithoutIndex(t *testing.T) {
	dir := t.TempDir()
	d := New(Options{Store: &Store{Dir: filepath.Join(dir, "none")}, ProcDir: filepath.Join(dir, "proc")})
	defer d.Close()
	ct := &event.Container{ID: "c", ImageID: "sha256:" + strings.Repeat("c", 64)}
	ev := &event.Event{Type: "execve", Container: ct, Proc: event.Process{PID: 7, ExePath: "/bin/x"}}
	d.Enrich(ev)
	if ev.Drift != nil {
		t.Errorf("no index, not upper layer: %+v", ev.Drift)
	}
	ev = &event.Event{Type: "execve", Container: ct, Proc: event.Process{PID: 8, ExePath: "/tmp/x", IsExeUpperLayer: true}}
	d.Enrich(ev)
	if ev.Drift == nil || ev.Drift.Reason != event.DriftUpperLayer {
		t.Errorf("no index, upper layer: %+v", ev.Drift)
	}
}

// The cost the detector adds to one exec event, per path it takes:
// go test -run ^$ -bench EnrichExec ./runtime/drift/
func BenchmarkEnrichExec(b *testing.B) {
	for _, c := range []struct {
		name, path, flags string
	}{
		{"lower-layer", "/bin/busybox", "EXE_LOWER_LAYER"},
		{"in-image-no-overlay", "/bin/busybox", ""},
		{"not-in-image", "/tmp/x", "EXE_UPPER_LAYER"},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			root, proc := filepath.Join(dir, "root"), filepath.Join(dir, "proc")
			ix := &Index{Image: "sha256:" + strings.Repeat("b", 64), Files: map[string]File{}}
			for i := range 5000 {
				ix.Files["/usr/lib/f"+strconv.Itoa(i)] = File{SHA256: sum(strconv.Itoa(i))}
			}
			ix.Files["/bin/busybox"] = File{SHA256: sum("busybox")}
			for p, c := range map[string]string{"/bin/busybox": "busybox", "/tmp/x": "x"} {
				os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(root, p), []byte(c), 0o755)
			}
			os.MkdirAll(filepath.Join(proc, "9"), 0o755)
			os.Symlink(filepath.Join(root, c.path), filepath.Join(proc, "9", "exe"))
			st := &Store{Dir: filepath.Join(dir, "index")}
			st.Save(ix)
			d := New(Options{Store: st, ProcDir: proc})
			defer d.Close()
			d.Preload(ix.Image)
			ct := &event.Container{ID: "c", ImageID: ix.Image}
			ev := event.Event{Type: "execve", Container: ct, Proc: event.Process{PID: 9, ExePath: c.path,
				IsExeUpperLayer: strings.Contains(c.flags, "UPPER")}, Args: event.Args{{Name: "flags", Value: c.flags}}}
			b.ReportAllocs()
			for b.Loop() {
				ev.Drift = nil
				d.Enrich(&ev)
			}
			if (ev.Drift != nil) != (c.path == "/tmp/x") {
				b.Fatalf("drift %+v", ev.Drift)
			}
		})
	}
}

// runc's `runc init` runs in the container's cgroup from a binary outside
// its root; the sensor gives its path as "/". It is not drift.
func TestDetectorRuntimeInit(t *testing.T) {
	f := newFixture(t, map[string]string{"/bin/sh": "sh"})
	ev := &event.Event{Type: "execve", Container: f.ct, Proc: event.Process{PID: 3, Name: "runc:[2:INIT]", ExePath: "/", Exe: "runc", Args: []string{"init"}}}
	f.d.Enrich(ev)
	if ev.Drift != nil {
		t.Errorf("runc init judged as drift: %+v", ev.Drift)
	}
}
