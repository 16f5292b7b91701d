package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestGateRewrittenReferences: bulkhead gate with a rule requiring key K1
// for t/: the image signed by another key is denied however its reference
// is spelt, the decision names the canonical reference, and references a
// registry would route elsewhere are denied as rejected.
func TestGateRewrittenReferences(t *testing.T) {
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	k2priv, _, _ := key.Generate([]byte("pw"))
	host, app, good := regtest.SignedRegistry(t, "127.0.0.1:0", k1priv, k2priv)
	_, port, _ := net.SplitHostPort(host)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k1.pub"), k1pub, 0o644)
	pol := filepath.Join(dir, "bulkhead-policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: bulkhead.dev/v1
kind: Policy
rules:
  - name: release-signed
    match: {images: ["127.0.0.1:%s/t/**", "LOCALHOST:%s/t/**"]}
    signatures: {keys: [k1.pub], transparencyLog: ignore}
`, port, port)), 0o644)

	gate := func(images ...string) (string, map[string]any, error) {
		var stdout, stderr bytes.Buffer
		cmd := newGateCmd(&stdout, &stderr)
		jsonOut := filepath.Join(dir, "gate.json")
		cmd.SetArgs(append([]string{"--policy", pol, "--insecure", "--json", jsonOut, "--db", filepath.Join(dir, "db")}, images...))
		cmd.SetOut(&stdout)
		cmd.SetErr(&stderr)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		var rep map[string]any
		b, _ := os.ReadFile(jsonOut)
		json.Unmarshal(b, &rep)
		return stdout.String(), rep, err
	}
	denied := func(canonical string) string {
		return `DENY  rule "release-signed" (signatures): ` + canonical
	}
	for _, tc := range []struct {
		image string
		want  string // "" allowed
	}{
		{host + "/t/app@" + app.String(), denied(host + "/t/app@" + app.String() + ": no valid signature")},
		{"127.0.0.1:0" + port + "/t/app@" + app.String(), denied(host + "/t/app@" + app.String() + " (written 127.0.0.1:0" + port + "/t/app@")},
		{"LocalHost:" + port + "/t/app", denied("localhost:" + port + "/t/app:latest (written LocalHost:" + port + "/t/app)")},
		{host + "/t/app:good@" + app.String(), denied(host + "/t/app@" + app.String() + " (written " + host + "/t/app:good@")},
		{host + "/other/../t/app@" + app.String(), `".." segment`},
		{host + "/t//app:good", "empty segment"},
		{host + "/t/app:good", ""},
		{"127.0.0.1:00" + port + "/t/app@" + good.String(), ""},
		{"LOCALHOST:" + port + "/t/app:good", ""},
	} {
		out, rep, err := gate(tc.image)
		if tc.want == "" {
			if err != nil || !strings.Contains(out, "ALLOWED") {
				t.Errorf("%s: %v\n%s", tc.image, err, out)
			}
			continue
		}
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 1 {
			t.Errorf("%s: want a denial (exit 1), got %v\n%s", tc.image, err, out)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: summary lacks %q:\n%s", tc.image, tc.want, out)
		}
		// The JSON report names the canonical reference as the result's image.
		if c, ok := strings.CutPrefix(tc.want, `DENY  rule "release-signed" (signatures): `); ok {
			canonical := strings.TrimSuffix(strings.Fields(c)[0], ":")
			if b, _ := json.Marshal(rep); !strings.Contains(string(b), `"image":"`+canonical+`"`) {
				t.Errorf("%s: JSON report lacks image %s: %s", tc.image, canonical, b)
			}
		}
	}
}
