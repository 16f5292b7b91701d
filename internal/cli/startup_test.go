package cli

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// maxOwnInitBytes bounds what bulkhead's own packages allocate in package
// init, together. Every command pays for package init before it starts
// (bulkhead --version included), so tables of compiled regular
// expressions, templates, CEL environments and schemas are built on first
// use (sync.OnceValue), not in init. All of them together allocated about
// 2 MB at start-up (issue 18); what is left is small maps and slices.
const maxOwnInitBytes = 256 << 10

// TestStartupInitIsSmall runs this test binary again (it links every
// package of the bulkhead command) with GODEBUG=inittrace=1 and adds up
// what bulkhead's own packages allocate in their init.
func TestStartupInitIsSmall(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	// "init github.com/x/y @1.2 ms, 0.1 ms clock, 1234 bytes, 5 allocs"
	const own = "github.com/bulkhead-sec/bulkhead/"
	total, seen := 0, 0
	var heavy []string
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		seen++
		if !strings.HasPrefix(f[1], own) {
			continue
		}
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("inittrace line %q: %v", sc.Text(), err)
		}
		total += n
		if n > 32<<10 {
			heavy = append(heavy, f[1]+" "+f[7]+" bytes")
		}
	}
	if seen == 0 {
		t.Fatalf("no inittrace lines in the child's stderr:\n%s", stderr.Bytes())
	}
	t.Logf("bulkhead's own packages allocate %d bytes in init", total)
	if total > maxOwnInitBytes {
		t.Errorf("bulkhead's own packages allocate %d bytes in package init (at most %d): build tables on first use (sync.OnceValue) instead; the heaviest: %s",
			total, maxOwnInitBytes, strings.Join(heavy, ", "))
	}
}
