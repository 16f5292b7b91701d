package event

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRecording(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "recording.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := ReadAll(f, "recording.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 14 {
		t.Fatalf("%d events, want 14", len(evs))
	}
	shell := evs[0]
	if shell.Type != "execve" || shell.Proc.Name != "bash" || shell.Proc.TTY != 34816 || shell.Container == nil ||
		shell.Container.ImageRepository != "docker.io/library/debian" || shell.Proc.Ancestors[0].Name != "runc:[1:CHILD]" {
		t.Errorf("first event %+v", shell)
	}
	open := evs[1]
	if v, ok := open.Args.Get("flags"); !ok || v != "O_RDONLY|O_CLOEXEC" || open.Args[0].Name != "fd" || open.FD.Name != "/etc/shadow" {
		t.Errorf("open event args %+v fd %+v", open.Args, open.FD)
	}
	ssh := evs[7]
	if ssh.FD.SIP.String() != "203.0.113.10" || ssh.FD.SPort != 443 || ssh.FD.L4Proto != "tcp" {
		t.Errorf("connect fd %+v", ssh.FD)
	}
	if evs[13].Container != nil || evs[13].Type != "procexit" {
		t.Errorf("last event %+v", evs[13])
	}
}

// TestRoundTrip: Marshal then read gives the same events, args in order.
func TestRoundTrip(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "recording.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ReadAll(bytes.NewReader(data), "in")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for i := range evs {
		b, err := Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	again, err := ReadAll(&buf, "out")
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		a, _ := Marshal(&evs[i])
		b, _ := Marshal(&again[i])
		if !bytes.Equal(a, b) {
			t.Errorf("event %d changed:\n%s\n%s", i, a, b)
		}
	}
	b, _ := Marshal(&evs[1])
	if !strings.Contains(string(b), `"args":{"fd":"3","dirfd":"AT_FDCWD","name":"/etc/shadow"`) {
		t.Errorf("args order lost: %s", b)
	}
}

func TestReaderErrors(t *testing.T) {
	for in, want := range map[string]string{
		"{\"type\":\"open\"}\n{bad json}\n":         "x:2: decode event",
		"\n\n{\"time\":\"2025-01-01T00:00:00Z\"}\n": "x:3: event has no \"type\"",
		`{"type":"open","args":[1,2]}`:              "x:1: decode event",
		`{"type":"open","args":{"a":{"b":1}}}`:      "value must be a string",
		`{"type":"open","res":"x"}`:                 "x:1: decode event",
		strings.Repeat("a", 300) + "\n":             "longer than the 256-byte limit",
	} {
		r := NewReader(strings.NewReader(in), "x", 256)
		var ev Event
		var err error
		for err == nil {
			err = r.Next(&ev)
		}
		if err == io.EOF || !strings.Contains(err.Error(), want) {
			t.Errorf("%.30q: err %v, want %q", in, err, want)
		}
	}
}

func TestKnownTypes(t *testing.T) {
	for _, ty := range []string{"execve", "execveat", "openat2", "connect", "procexit", "finit_module", "umount2", "capset", "ptrace", "symlinkat"} {
		if !IsKnownType(ty) {
			t.Errorf("%s unknown", ty)
		}
	}
	if IsKnownType("nosuchcall") {
		t.Error("nosuchcall known")
	}
}

func BenchmarkReader(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "recording.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		r := NewReader(bytes.NewReader(data), "bench", 0)
		var ev Event
		for r.Next(&ev) == nil {
		}
	}
}

func FuzzReader(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "recording.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), "fuzz", 4096)
		var ev Event
		for i := 0; i < 100; i++ {
			if err := r.Next(&ev); err != nil {
				return
			}
			if _, err := Marshal(&ev); err != nil {
				t.Fatalf("decoded event does not marshal: %v", err)
			}
		}
	})
}
