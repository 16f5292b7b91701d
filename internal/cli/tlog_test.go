package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/bulkhead-sec/bulkhead/admission"
	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestTLogSameEverywhere: one image signed by the trusted key without a
// transparency-log entry (bulkhead signs offline), judged by bulkhead
// verify --key, bulkhead verify --policy, bulkhead gate and the admission
// webhook. All four refuse it when the log is required (no field, or
// required written out, no flag) and accept it when ignore is written
// explicitly (the flag, or transparencyLog: ignore), and an accepted
// image says the log was not checked.
func TestTLogSameEverywhere(t *testing.T) {
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	k2priv, _, _ := key.Generate([]byte("pw"))
	host, _, _ := regtest.SignedRegistry(t, "127.0.0.1:0", k1priv, k2priv)
	image := host + "/t/app:good"
	dir := t.TempDir()
	pub := filepath.Join(dir, "k1.pub")
	os.WriteFile(pub, k1pub, 0o644)
	t.Setenv("COSIGN_PASSWORD", "")

	// run executes a fresh command (newVerifyCmd, newGateCmd) with args
	// and returns what it printed.
	run := func(newCmd func(stdout, stderr io.Writer) *cobra.Command, args []string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := newCmd(&stdout, &stderr)
		cmd.SetArgs(args)
		cmd.SetOut(&stdout)
		cmd.SetErr(&stderr)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		return stdout.String() + stderr.String(), err
	}

	for _, c := range []struct {
		name  string
		field string // the policies' transparencyLog ("" = none)
		flag  bool   // --insecure-ignore-tlog for bulkhead verify
		ok    bool
	}{
		{"nothing said", "", false, false},
		{"required written", "required", false, false},
		{"ignore written", "ignore", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			field := ""
			if c.field != "" {
				field = ", transparencyLog: " + c.field
			}
			cdir := t.TempDir()
			trust := filepath.Join(cdir, "trust.yaml")
			os.WriteFile(trust, []byte("policies:\n  - {name: release, images: ['**'], keys: ["+pub+"]"+field+"}\n"), 0o644)
			gatePol := filepath.Join(cdir, "bulkhead-policy.yaml")
			os.WriteFile(gatePol, []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - name: release-signed\n    signatures: {keys: ["+pub+"]"+field+"}\n"), 0o644)
			flag := []string{}
			if c.flag {
				flag = []string{"--insecure-ignore-tlog"}
			}

			// bulkhead verify --key, and --policy (with the flag only
			// where the policy says nothing against it).
			for _, args := range [][]string{
				append([]string{"--key", pub, "--insecure", image}, flag...),
				{"--policy", trust, "--insecure", image},
			} {
				out, err := run(newVerifyCmd, args)
				if c.ok {
					if err != nil || !strings.Contains(out, "No transparency log was checked") || !strings.Contains(out, `"transparencyLog": "ignore`) {
						t.Errorf("verify %v: want accepted, saying the log was not checked: %v\n%s", args, err, out)
					}
				} else if err == nil || !strings.Contains(err.Error(), "the transparency log is required") {
					t.Errorf("verify %v: want refused for the transparency log, got %v\n%s", args, err, out)
				}
			}

			// bulkhead gate.
			out, err := run(newGateCmd, []string{"--policy", gatePol, "--insecure", "--json", filepath.Join(cdir, "gate.json"), "--db", filepath.Join(dir, "db"), image})
			var ee *exitError
			if c.ok {
				if err != nil || !strings.Contains(out, "ALLOWED") || !strings.Contains(out, "NOTE  rule \"release-signed\" (line 4) accepts signatures without a transparency-log check") {
					t.Errorf("gate: want allowed with a note: %v\n%s", err, out)
				}
			} else if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "the transparency log is required") {
				t.Errorf("gate: want denied (exit 1) for the transparency log, got %v\n%s", err, out)
			}

			// The admission webhook.
			facts := &policy.Registry{Insecure: true, TempDir: cdir}
			defer facts.Close()
			srv, err := admission.New(admission.Options{PolicyPath: gatePol, Facts: facts})
			if err != nil {
				t.Fatal(err)
			}
			resp := srv.Review(context.Background(), podReview(t, image))
			warned := strings.Contains(strings.Join(resp.Warnings, "\n"), "accepts signatures without a transparency-log check")
			if resp.Allowed != c.ok || warned != c.ok {
				t.Errorf("webhook: allowed %v warned %v, want %v: %+v %q", resp.Allowed, warned, c.ok, resp.Result, resp.Warnings)
			}
			if !c.ok && (resp.Result == nil || !strings.Contains(resp.Result.Message, "the transparency log is required")) {
				t.Errorf("webhook: the denial does not name the transparency log: %+v", resp.Result)
			}
		})
	}
}

// podReview is an AdmissionRequest for a one-container pod.
func podReview(t *testing.T, image string) *admissionv1.AdmissionRequest {
	t.Helper()
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": image}}}})
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
			"namespace": "prod", "operation": "CREATE", "object": json.RawMessage(pod),
		},
	})
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &rev); err != nil {
		t.Fatal(err)
	}
	return rev.Request
}
