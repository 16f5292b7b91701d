package admission

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestTLogChoice: the webhook, on a real registry, denies a pod whose image
// is signed by the trusted key without a transparency-log entry unless the
// rule says transparencyLog: ignore; then it allows it and the response
// warns that the log was not checked.
func TestTLogChoice(t *testing.T) {
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	k2priv, _, _ := key.Generate([]byte("pw"))
	host, _, _ := regtest.SignedRegistry(t, "127.0.0.1:0", k1priv, k2priv)
	for _, c := range []struct {
		name, field string
		allowed     bool
	}{
		{"no field", "", false},
		{"required", ", transparencyLog: required", false},
		{"ignore", ", transparencyLog: ignore", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "k1.pub"), k1pub, 0o644)
			pol := fmt.Sprintf("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - name: release-signed\n    signatures: {keys: [k1.pub]%s}\n", c.field)
			facts := &policy.Registry{Insecure: true, TempDir: dir}
			defer facts.Close()
			srv, err := New(Options{PolicyPath: writePolicy(t, dir, pol), Facts: facts})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewTLSServer(srv.Handler())
			defer ts.Close()
			f := &fixture{srv: srv, ts: ts, client: ts.Client(), dir: dir}
			_, rev := f.post(t, review(t, "Pod", "prod", podsDir+"restricted-pass.yaml", host+"/t/app:good"), "application/json")
			if rev == nil || rev.Response == nil {
				t.Fatal("no response")
			}
			r := rev.Response
			warned := strings.Contains(strings.Join(r.Warnings, "\n"), "accepts signatures without a transparency-log check (transparencyLog: ignore)")
			if r.Allowed != c.allowed || warned != c.allowed {
				t.Fatalf("allowed %v, warned %v: %+v %q", r.Allowed, warned, r.Result, r.Warnings)
			}
			if !c.allowed && (r.Result == nil || !strings.Contains(r.Result.Message, "the transparency log is required") || !strings.Contains(r.Result.Message, "transparencyLog: ignore")) {
				t.Errorf("the denial does not name the transparency log: %+v", r.Result)
			}
		})
	}
}
