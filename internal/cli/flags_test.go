package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// eachCommand calls fn on every command of the tree, root first.
func eachCommand(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		eachCommand(sub, fn)
	}
}

// flagsDiffering are the flags whose spelling is shared by commands that
// mean different things by it; every other flag a command shares must have
// one help text, default and shorthand everywhere.
var flagsDiffering = map[string]string{
	"format":            "each command lists the formats it writes",
	"exit-code":         "the help says when; the default follows the exit-code table (README)",
	"policy":            "gate/admission: a bulkhead policy; image/config: a file of CEL checks",
	"scanners":          "image/fs/rootfs/sbom and config run different scanners",
	"type":              "config: the kind of input; verify-attestation, attest: the predicate type",
	"output":            "gate pairs repeatable --output with --format",
	"key":               "sign: the private key; verify: the public key; encrypt: recipients; decrypt: private keys",
	"replace":           "attest: replace earlier attestations; db import: start from an empty database",
	"annotations":       "sign: annotations to sign; verify: annotations the payload must carry (cosign's)",
	"min-priority":      "runtime: drop less severe rules; runtime rules: count them as not active",
	"new-bundle-format": "sign: instead of the .sig tag; attest and image --attest: instead of the .att tag",
	"tlog-upload":       "image: only with --attest",
}

// TestFlagsSameEverywhere: a flag shared by several commands is one flag.
func TestFlagsSameEverywhere(t *testing.T) {
	type spec struct{ usage, def, short, cmd string }
	seen := map[string]spec{}
	eachCommand(newRoot(io.Discard, io.Discard), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if _, ok := flagsDiffering[f.Name]; ok || f.Hidden {
				return
			}
			s := spec{f.Usage, f.DefValue, f.Shorthand, c.CommandPath()}
			prev, ok := seen[f.Name]
			if !ok {
				seen[f.Name] = s
				return
			}
			if prev.usage != s.usage || prev.def != s.def || prev.short != s.short {
				t.Errorf("--%s differs between %q (%q, default %q, -%s) and %q (%q, default %q, -%s): declare it once in flags.go",
					f.Name, prev.cmd, prev.usage, prev.def, prev.short, s.cmd, s.usage, s.def, s.short)
			}
		})
	})
}

// TestInsecureOneSpelling: every command that reaches a registry takes
// --insecure; the old spellings are hidden and say they are deprecated.
func TestInsecureOneSpelling(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	for _, path := range []string{"image", "compare", "recommend", "base index", "sbom validate", "gate", "admission", "sign", "verify", "attest", "verify-attestation"} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.Flags().Lookup("insecure") == nil {
			t.Errorf("bulkhead %s has no --insecure (%v)", path, err)
		}
	}
	// Cosign's spellings stay on sign and verify, visible.
	for _, path := range []string{"sign", "verify"} {
		c, _, _ := root.Find([]string{path})
		if f := c.Flags().Lookup("allow-insecure-registry"); f == nil || f.Hidden {
			t.Errorf("bulkhead %s lost cosign's --allow-insecure-registry", path)
		}
	}

	var stdout, stderr bytes.Buffer
	cmd := newAdmissionCmd(&stdout, &stderr)
	cmd.SetErr(&stderr)
	if err := cmd.ParseFlags([]string{"--insecure-registry"}); err != nil {
		t.Fatal(err)
	}
	if on, _ := cmd.Flags().GetBool("insecure"); !on {
		t.Error("--insecure-registry did not set --insecure")
	}
	if !strings.Contains(stderr.String(), "--insecure-registry is deprecated") || !strings.Contains(stderr.String(), "use --insecure") || stdout.Len() != 0 {
		t.Errorf("no deprecation notice on stderr: stderr %q stdout %q", stderr.String(), stdout.String())
	}
	if f := cmd.Flags().Lookup("insecure-registry"); !f.Hidden {
		t.Error("--insecure-registry is not hidden")
	}
	// =false works too.
	cmd = newAdmissionCmd(io.Discard, io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.ParseFlags([]string{"--insecure-registry=false"}); err != nil {
		t.Fatal(err)
	}
	if on, _ := cmd.Flags().GetBool("insecure"); on {
		t.Error("--insecure-registry=false set --insecure")
	}
}

// TestExitCodeRange: --exit-code takes an exit status, nothing else.
func TestExitCodeRange(t *testing.T) {
	for _, bad := range []string{"256", "-1", "x"} {
		var errb bytes.Buffer
		if code := Main([]string{"config", "--exit-code", bad, t.TempDir()}, io.Discard, &errb); code == 0 || !strings.Contains(errb.String(), "exit status (0 to 255)") {
			t.Errorf("--exit-code %s: exit %d, %q", bad, code, errb.String())
		}
	}
}

// TestOutputCreatesDirsAndDash: --output makes its directories, and -
// is standard output, for every command (one helper).
func TestOutputCreatesDirsAndDash(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM alpine:3.20\nUSER root\n"), 0o644)
	out := filepath.Join(dir, "reports", "deep", "config.json")
	if code := Main([]string{"config", "-f", "json", "-o", out, dir}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("config -o %s: exit %d", out, code)
	}
	var doc map[string]any
	if b, err := os.ReadFile(out); err != nil || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("report not written to %s: %v", out, err)
	}
	var stdout bytes.Buffer
	if code := Main([]string{"config", "-f", "json", "-o", "-", dir}, &stdout, io.Discard); code != 0 || json.Unmarshal(stdout.Bytes(), &doc) != nil {
		t.Fatalf("config -o -: exit %d, stdout %q", code, stdout.String())
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("-o - created a file named -")
	}
	// A report that cannot be opened is an error that names the flag.
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	var errb bytes.Buffer
	if code := Main([]string{"config", "-o", filepath.Join(blocker, "x.json"), dir}, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "--output") {
		t.Errorf("unwritable --output: exit %d, %q", code, errb.String())
	}
}

const gatePolicy = `apiVersion: bulkhead.dev/v1
kind: Policy
rules:
  - name: pss
    podSecurity: {level: baseline}
`

const gateManifest = `apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: default}
spec:
  containers:
    - name: app
      image: ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      securityContext: {privileged: true}
`

func runGateArgs(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(append([]string{"gate"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestGateFormatOutput: gate writes several reports in one run with
// --format/--output pairs, the same bytes as the deprecated --json/--sarif.
func TestGateFormatOutput(t *testing.T) {
	dir := t.TempDir()
	pol, man := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "pod.yaml")
	os.WriteFile(pol, []byte(gatePolicy), 0o644)
	os.WriteFile(man, []byte(gateManifest), 0o644)
	db := filepath.Join(dir, "db")

	newJSON, newSARIF, newTable := filepath.Join(dir, "new", "gate.json"), filepath.Join(dir, "new", "gate.sarif"), filepath.Join(dir, "new", "gate.txt")
	out, errOut, code := runGateArgs(t, "--policy", pol, "--db", db, "--format", "json", "--output", newJSON, "-f", "sarif", "-o", newSARIF, "--format", "table", "--output", newTable, man)
	if code != 1 || !strings.Contains(out, "DENIED") || strings.Contains(errOut, "deprecated") {
		t.Fatalf("gate --format/--output: exit %d\n%s\n%s", code, out, errOut)
	}
	oldJSON, oldSARIF := filepath.Join(dir, "old", "gate.json"), filepath.Join(dir, "old", "gate.sarif")
	out2, errOut, code := runGateArgs(t, "--policy", pol, "--db", db, "--json", oldJSON, "--sarif", oldSARIF, man)
	if code != 1 || out2 != out {
		t.Fatalf("gate --json/--sarif: exit %d\n%s", code, errOut)
	}
	for _, old := range []string{"--json", "--sarif"} {
		if !strings.Contains(errOut, "warning: "+old+" is deprecated") {
			t.Errorf("no deprecation notice for %s: %q", old, errOut)
		}
	}
	for _, pair := range [][2]string{{newJSON, oldJSON}, {newSARIF, oldSARIF}} {
		a, errA := os.ReadFile(pair[0])
		b, errB := os.ReadFile(pair[1])
		if errA != nil || errB != nil || len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ (%v, %v)", pair[0], pair[1], errA, errB)
		}
	}
	var rep struct {
		Targets []struct {
			Decision struct {
				Allowed bool `json:"allowed"`
			} `json:"decision"`
		} `json:"targets"`
	}
	if b, _ := os.ReadFile(newJSON); json.Unmarshal(b, &rep) != nil || len(rep.Targets) != 1 || rep.Targets[0].Decision.Allowed {
		t.Errorf("JSON report: %+v", rep)
	}
	if b, _ := os.ReadFile(newTable); string(b) != out {
		t.Errorf("--format table --output wrote %q, the summary is %q", b, out)
	}
	var sarif struct {
		Version string `json:"version"`
	}
	if b, _ := os.ReadFile(newSARIF); json.Unmarshal(b, &sarif) != nil || sarif.Version != "2.1.0" {
		t.Errorf("SARIF report: %+v", sarif)
	}

	// A --format without --output goes to standard output, after the summary.
	out, _, code = runGateArgs(t, "--policy", pol, "--db", db, "--format", "json", man)
	if i := strings.Index(out, "\n{"); code != 1 || i < 0 || json.Unmarshal([]byte(out[i+1:]), &rep) != nil {
		t.Errorf("gate --format json: exit %d\n%s", code, out)
	}
	// An --output with no --format, or an unknown format, is a usage error (2).
	if _, errOut, code := runGateArgs(t, "--policy", pol, "--output", "x.json", man); code != 2 || !strings.Contains(errOut, "has no --format") {
		t.Errorf("--output alone: exit %d %q", code, errOut)
	}
	if _, errOut, code := runGateArgs(t, "--policy", pol, "--format", "xml", man); code != 2 || !strings.Contains(errOut, `unknown --format "xml"`) {
		t.Errorf("--format xml: exit %d %q", code, errOut)
	}
	// --exit-code replaces 1 for a denial.
	if _, _, code := runGateArgs(t, "--policy", pol, "--db", db, "--exit-code", "7", man); code != 7 {
		t.Errorf("--exit-code 7 on a denial: exit %d", code)
	}
}
