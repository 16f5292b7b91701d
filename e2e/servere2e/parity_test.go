package servere2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// run runs the built binary and returns its exit code, stdout and stderr.
func runBulkhead(t *testing.T, env []string, args ...string) (int, []byte, string) {
	t.Helper()
	cmd := exec.Command(bulkheadBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.Bytes(), errb.String()
}

// TestImageServerParityBinary: with the real binaries, an image pulled
// from the registry, and the server on SQLite and PostgreSQL, `bulkhead
// image --server` prints the findings, summary and exit code of a local
// `bulkhead image` with the server's database (internal/cli's
// TestImageServerParity covers the flags in process).
func TestImageServerParityBinary(t *testing.T) {
	r := registry(t)
	ref := pushDemo(t, r, "e2e/parity-demo")
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dbPath := testVulnDB(t)
			p := startServer(t, dsnFor(t, backend), dbPath, "", nil)
			base := []string{"image", "--quiet", "--format", "json", "--exit-code", "3", "--insecure", "--scanners", "vuln,secret,misconfig", "--temp-dir", t.TempDir()}
			lcode, lout, lerr := runBulkhead(t, nil, append(append(base, "--db", dbPath, "--db-max-age", "0"), ref)...)
			rcode, rout, rerr := runBulkhead(t, []string{"BULKHEAD_TOKEN=" + adminToken}, append(append(base, "--server", p.url), ref)...)
			if lcode != 3 || rcode != lcode {
				t.Fatalf("exit codes: local %d (%s), --server %d (%s); want 3 for both", lcode, lerr, rcode, rerr)
			}
			var l, s struct {
				Findings []json.RawMessage `json:"findings"`
				Summary  map[string]int    `json:"summary"`
				Packages []json.RawMessage `json:"packages"`
			}
			if err := json.Unmarshal(lout, &l); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(rout, &s); err != nil {
				t.Fatal(err)
			}
			if len(l.Findings) == 0 || asJSON(l.Findings) != asJSON(s.Findings) || asJSON(l.Summary) != asJSON(s.Summary) || len(l.Packages) != len(s.Packages) {
				t.Errorf("local and --server differ:\nlocal  %s\nserver %s", lout, rout)
			}
		})
	}
}
