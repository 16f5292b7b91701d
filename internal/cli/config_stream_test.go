package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writePods writes a manifest stream of n privileged pods with a hostPath
// volume, one document each (13 findings a pod).
func writePods(t testing.TB, path string, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d}\nspec:\n  containers: [{image: x, securityContext: {privileged: true}}]\n  volumes: [{hostPath: {path: /}}]\n", i)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func countID(t *testing.T, js []byte, id string) int {
	t.Helper()
	var doc struct {
		Findings []struct {
			ID string `json:"id"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("%v: %.300s", err, js)
	}
	n := 0
	for _, f := range doc.Findings {
		if f.ID == id {
			n++
		}
	}
	return n
}

// TestConfigMaxObjects: a file past --max-objects has its first objects
// checked and fails the run, naming the file and what to do; with
// --skip-unreadable it is a warning.
func TestConfigMaxObjects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.yaml")
	writePods(t, path, 30)
	var out, errb bytes.Buffer
	code := Main([]string{"config", "-f", "json", "--max-objects", "10", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	for _, want := range []string{"many.yaml", "more than 10 objects", "split", "--max-objects 10", "--skip-unreadable"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, errb.String())
		}
	}
	if n := countID(t, out.Bytes(), "BH-K8S-003"); n != 10 {
		t.Errorf("%d privileged findings, want the first 10 pods'", n)
	}

	out.Reset()
	errb.Reset()
	code = Main([]string{"config", "-f", "json", "--max-objects", "10", "--skip-unreadable", path}, &out, &errb)
	if code != 0 || !strings.Contains(errb.String(), "warning:") || !strings.Contains(errb.String(), "more than 10 objects") {
		t.Fatalf("--skip-unreadable: exit %d, stderr %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"config", "-f", "json", "--max-objects", "0", path}, &out, &errb); code != 0 || countID(t, out.Bytes(), "BH-K8S-003") != 30 {
		t.Fatalf("--max-objects 0: exit %d, stderr %s", code, errb.String())
	}
	if code := Main([]string{"config", "--max-objects", "-1", path}, io.Discard, &errb); code == 0 {
		t.Error("negative --max-objects accepted")
	}
}

// TestConfigUnreadableFails: an oversized file, a FIFO and a broken
// symlink fail the run (exit 1) after the report of what could be read;
// --skip-unreadable makes them warnings.
func TestConfigUnreadableFails(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM alpine:latest\nEXPOSE 22\n"), 0o644)
	big := filepath.Join(dir, "big.yaml")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("apiVersion: v1\nkind: Pod\n")
	if err := fh.Truncate(maxConfigFile + 1); err != nil { // sparse: no 16 MiB written
		t.Fatal(err)
	}
	fh.Close()
	fifo := filepath.Join(t.TempDir(), "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "gone.yaml")
	os.Symlink(filepath.Join(dir, "nothing"), broken)

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"oversized", []string{dir}, "big.yaml is over"},
		{"fifo", []string{dir, fifo}, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			done := make(chan int)
			go func() { done <- Main(append([]string{"config", "-f", "json"}, c.args...), &out, &errb) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("bulkhead config hangs")
			}
			if code != 1 || !strings.Contains(errb.String(), c.want) || !strings.Contains(errb.String(), "--skip-unreadable") {
				t.Fatalf("exit %d, stderr %s", code, errb.String())
			}
			if countID(t, out.Bytes(), "BH-DF-019") == 0 && countID(t, out.Bytes(), "BH-DF-007") == 0 {
				t.Errorf("the readable Dockerfile's findings are missing: %s", out.String())
			}
			out.Reset()
			errb.Reset()
			code = Main(append([]string{"config", "-f", "json", "--skip-unreadable"}, c.args...), &out, &errb)
			if code != 0 || !strings.Contains(errb.String(), "warning: ") || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("--skip-unreadable: exit %d, stderr %s", code, errb.String())
			}
		})
	}
	// A path that does not exist is an error whatever the flags.
	if code := Main([]string{"config", "--skip-unreadable", broken}, io.Discard, io.Discard); code != 1 {
		t.Errorf("broken symlink: exit %d", code)
	}
}

// TestConfigManyDocumentsMemory: a stream of many documents is checked and
// reported holding compact findings, not every object and finding (and the
// whole JSON text) at once. The old code peaked at several hundred MB here.
func TestConfigManyDocumentsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := filepath.Join(t.TempDir(), "pods.yaml")
	const n = 9000 // under the default --max-objects
	writePods(t, path, n)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak {
				peak = m.HeapAlloc
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	cw := &countWriter{}
	var errb bytes.Buffer
	code := Main([]string{"config", "-f", "json", path}, cw, &errb)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if cw.n < n*13*400 {
		t.Fatalf("report of %d bytes is too small for %d pods", cw.n, n)
	}
	grew := int64(peak) - int64(base.HeapAlloc)
	t.Logf("%d pods, %d-byte report, heap peak %d MB over the start", n, cw.n, grew>>20)
	if grew > 96<<20 {
		t.Errorf("heap grew %d MB checking %d pods; findings or documents are held in full", grew>>20, n)
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkConfigManyDocuments is bulkhead config over a stream of 1,000
// pod documents, JSON report.
func BenchmarkConfigManyDocuments(b *testing.B) {
	path := filepath.Join(b.TempDir(), "pods.yaml")
	writePods(b, path, 1000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if code := Main([]string{"config", "-f", "json", path}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "docs/s")
}

// TestConfigParseErrorFails: a manifest that breaks part-way was not checked
// in full (a privileged pod after the fault would go unseen), so it fails
// the run like an unreadable file, unless --skip-unreadable; the objects
// before the fault are still reported.
func TestConfigParseErrorFails(t *testing.T) {
	dir := t.TempDir()
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: first\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    securityContext:\n      privileged: true\n"
	broken := pod + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n---\n" + strings.Replace(pod, "first", "hidden", 1)
	p := filepath.Join(dir, "pods.yaml")
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main([]string{"config", "-f", "json", p}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "pods.yaml") || !strings.Contains(errb.String(), "--skip-unreadable") {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "first") {
		t.Errorf("the pod before the fault is not reported: %s", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"config", "-f", "json", "--skip-unreadable", p}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "warning: ") {
		t.Fatalf("--skip-unreadable: exit %d, stderr %s", code, errb.String())
	}
}
