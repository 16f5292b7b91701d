package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/initgc"
)

func TestMain(m *testing.M) {
	initgc.Done() // as main does
	os.Exit(m.Run())
}

// TestNoGCDuringInit runs this test binary again (it links what the
// bulkhead command links) with GODEBUG=gctrace=1,inittrace=1: no
// collection may start before the last package init. Without initgc the
// first one started after about 4 MB, about a third of the way through.
func TestNoGCDuringInit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1,inittrace=1", "GOGC=100")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	inits, gcs := 0, 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "init "):
			inits++
			if gcs > 0 {
				t.Fatalf("a collection ran during package init, before %q (inits so far %d)", line, inits)
			}
		case strings.HasPrefix(line, "gc "):
			gcs++
		}
	}
	if inits < 100 {
		t.Fatalf("only %d inittrace lines: is GODEBUG=inittrace honoured?\n%s", inits, stderr.Bytes())
	}
	t.Logf("%d package inits, no collection during them", inits)
}

// TestGCBackOn checks that Done (called by TestMain, as by main) turned
// the collector back on: a run of garbage gets collected.
func TestGCBackOn(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAllocates$")
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1", "GOGC=100", "BULKHEAD_TEST_ALLOCATE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	if !strings.Contains(stderr.String(), "gc 1 @") {
		t.Fatalf("no collection while allocating 256 MB after main started: the collector stayed off\n%s", stderr.Bytes())
	}
}

var sink []byte

// TestAllocates is TestGCBackOn's child: it allocates 256 MB, 1 MB at a time.
func TestAllocates(t *testing.T) {
	if os.Getenv("BULKHEAD_TEST_ALLOCATE") == "" {
		t.Skip("run by TestGCBackOn")
	}
	for range 256 {
		sink = make([]byte, 1<<20)
	}
}
