//go:build linux && amd64

package sensor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// The C header and the Go decoder must agree on the layout.
func TestHeaderLayout(t *testing.T) {
	if got := unsafe.Sizeof(sensorHdr{}); got != hdrSize {
		t.Fatalf("sizeof(struct hdr) = %d, decoder expects %d", got, hdrSize)
	}
	var h sensorHdr
	for _, c := range []struct {
		name string
		off  uintptr
		want uintptr
	}{
		{"ret", unsafe.Offsetof(h.Ret), 64}, {"start", unsafe.Offsetof(h.Start), 96}, {"kind", unsafe.Offsetof(h.Kind), 104},
		{"flags", unsafe.Offsetof(h.Flags), 140}, {"comm", unsafe.Offsetof(h.Comm), 152}, {"fd", unsafe.Offsetof(h.Fd), 168},
		{"saddr", unsafe.Offsetof(h.Saddr), 184}, {"nstr", unsafe.Offsetof(h.Nstr), 216},
	} {
		if c.off != c.want {
			t.Errorf("offset of %s = %d, decoder expects %d", c.name, c.off, c.want)
		}
	}
}

// TestLive runs the sensor on this kernel (root only) while a child shell
// execs, opens a file by a relative path, creates a symlink, connects and
// renames, and checks the events the rules see. With -update it stores the
// child's raw records as decoder fixtures.
func TestLive(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	var mu sync.Mutex
	var raws [][]byte
	var child atomic.Int64
	s.onRaw = func(b []byte) {
		var r record
		if decode(b, &r) == nil && (int64(r.pid) == child.Load() || int64(r.ppid) == child.Load()) {
			mu.Lock()
			raws = append(raws, append([]byte(nil), b...))
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := map[string]*event.Event{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(ev *event.Event) {
			mine := ev.Proc.PID == child.Load() || ev.Proc.PPID == child.Load()
			if !mine {
				return
			}
			key := ev.Type + " " + ev.Proc.Name
			if ev.Type == "openat" && ev.FD != nil && filepath.Base(ev.FD.Name) != "target" {
				return
			}
			e := *ev
			e.Proc.Ancestors = append([]event.Ancestor(nil), ev.Proc.Ancestors...)
			if ev.FD != nil {
				fd := *ev.FD
				e.FD = &fd
			}
			got[key] = &e
		})
	}()
	os.WriteFile(filepath.Join(dir, "target"), []byte("x"), 0o644)
	script := fmt.Sprintf("cd %s && cat target >/dev/null; ln -s /etc/shadow link; mv link link2; busybox nc -w1 127.0.0.1 9 </dev/null; true", dir)
	cmd := exec.Command("sh", "-c", "sleep 0.3; "+script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Store(int64(cmd.Process.Pid))
	cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-done

	cat := got["openat cat"]
	if cat == nil {
		t.Fatalf("no openat of target by cat; events: %v", keys(got))
	}
	if want := filepath.Join(dir, "target"); cat.FD.Name != want || cat.FD.NameRaw != "target" || cat.FD.Type != "file" || cat.FD.Num < 0 {
		t.Errorf("cat's open: fd %+v, want name %s raw target", cat.FD, want)
	}
	if cat.Proc.Cwd != dir+"/" || len(cat.Proc.Ancestors) == 0 || cat.Proc.Ancestors[0].PID != child.Load() {
		t.Errorf("cat: cwd %q ancestors %+v", cat.Proc.Cwd, cat.Proc.Ancestors)
	}
	if ex := got["execve cat"]; ex == nil || ex.Proc.ExePath == "" || len(ex.Proc.Args) != 1 || ex.Proc.Args[0] != "target" {
		t.Errorf("cat's execve: %+v", ex)
	}
	if sl := got["symlinkat ln"]; sl == nil {
		t.Errorf("no symlinkat; events: %v", keys(got))
	} else if v, _ := sl.Args.Get("target"); v != "/etc/shadow" {
		t.Errorf("symlinkat args %v", sl.Args)
	}
	if rn := got["renameat2 mv"]; rn == nil && got["rename mv"] == nil && got["renameat mv"] == nil {
		t.Errorf("no rename by mv; events: %v", keys(got))
	}
	c := got["connect busybox"]
	if c == nil {
		t.Errorf("no connect; events: %v", keys(got))
	} else if c.FD.Type != "ipv4" || c.FD.SIP.String() != "127.0.0.1" || c.FD.SPort != 9 || c.FD.L4Proto != "tcp" {
		t.Errorf("connect fd %+v", c.FD)
	}
	st := s.Stats()
	if st.Events == 0 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
	if *update {
		out := filepath.Join("testdata", "records")
		old, _ := filepath.Glob(filepath.Join(out, "*.bin"))
		for _, p := range old {
			os.Remove(p)
		}
		n := 0
		seen := map[uint32]int{}
		for _, b := range raws {
			var r record
			decode(b, &r)
			if seen[r.kind] >= 2 {
				continue
			}
			seen[r.kind]++
			n++
			os.WriteFile(filepath.Join(out, fmt.Sprintf("%03d-%s.bin", n, kindNames[r.kind])), b, 0o644)
		}
		t.Logf("wrote %d records", n)
	}
}

func keys(m map[string]*event.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
