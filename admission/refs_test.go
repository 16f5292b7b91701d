package admission

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestRewrittenReferences: a rule requires key K1 for t/ of the registry.
// t/app is signed by another key; spelt as the registry does not write it
// (leading-zero port, upper case, :443, a misleading tag next to the
// digest, dot and empty segments) the webhook must still deny it, naming
// the canonical reference; t/app:good, signed by K1, is allowed however
// it is spelt.
func TestRewrittenReferences(t *testing.T) {
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	k2priv, _, _ := key.Generate([]byte("pw"))
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:443"} {
		t.Run(addr, func(t *testing.T) {
			host, app, good := regtest.SignedRegistry(t, addr, k1priv, k2priv)
			_, port, _ := net.SplitHostPort(host)
			canonHost, canonLocal := "127.0.0.1:"+port, "localhost:"+port
			if port == "443" {
				canonHost, canonLocal = "127.0.0.1", "localhost"
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "k1.pub"), k1pub, 0o644)
			pol := fmt.Sprintf(`apiVersion: bulkhead.dev/v1
kind: Policy
rules:
  - name: release-signed
    match: {images: ["%s/t/**", "LocalHost:0%s/t/**"]}
    signatures: {keys: [%s], transparencyLog: ignore}
`, host, port, filepath.Join(dir, "k1.pub"))
			facts := &policy.Registry{Insecure: true, TempDir: dir}
			defer facts.Close()
			srv, err := New(Options{PolicyPath: writePolicy(t, dir, pol), Facts: facts})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewTLSServer(srv.Handler())
			defer ts.Close()
			f := &fixture{srv: srv, ts: ts, client: ts.Client(), dir: dir}

			deny := func(canonical string) []string {
				return []string{`rule "release-signed" (signatures): ` + canonical, "no valid signature by a trusted key"}
			}
			denyApp := deny(canonHost + "/t/app")
			type tcase struct {
				image   string
				allowed bool
				want    []string
			}
			var extra []tcase
			if port == "443" {
				// :443 written out, with leading zeros, or not at all.
				extra = []tcase{
					{"127.0.0.1/t/app", false, deny("127.0.0.1/t/app:latest (written 127.0.0.1/t/app)")},
					{"127.0.0.1:0443/t/app", false, deny("127.0.0.1/t/app:latest (written 127.0.0.1:0443/t/app)")},
					{"127.0.0.1/t/app:good", true, nil},
				}
			}
			for _, tc := range append(extra, []tcase{
				{host + "/t/app@" + app.String(), false, denyApp},
				{"127.0.0.1:0" + port + "/t/app@" + app.String(), false, denyApp},
				{"127.0.0.1:000" + port + "/t/app", false, deny(canonHost + "/t/app:latest (written 127.0.0.1:000" + port + "/t/app)")},
				{"LOCALHOST:" + port + "/t/app", false, deny(canonLocal + "/t/app:latest (written LOCALHOST:" + port + "/t/app)")},
				{host + "/t/app:good@" + app.String(), false, deny(canonHost + "/t/app@" + app.String() + " (written " + host + "/t/app:good@")},
				{host + "/other/../t/app@" + app.String(), false, []string{`rule "release-signed"`, `".." segment`}},
				{host + "/t/./app:good", false, []string{`"." segment`}},
				{host + "//t/app:good", false, []string{"empty segment"}},
				{host + "/t/%61pp:good", false, []string{"percent-encoding"}},
				{host + "/t/app:good", true, nil},
				{"127.0.0.1:0" + port + "/t/app:good", true, nil},
				{"LocalHost:" + port + "/t/app@" + good.String(), true, nil},
			}...) {
				resp, rev := f.post(t, review(t, "Pod", "prod", podsDir+"restricted-pass.yaml", tc.image), "application/json")
				if rev == nil || rev.Response == nil {
					t.Fatalf("%s: status %d", tc.image, resp.StatusCode)
				}
				r := rev.Response
				if r.Allowed != tc.allowed {
					t.Errorf("%s: allowed %v: %+v", tc.image, r.Allowed, r.Result)
					continue
				}
				for _, w := range tc.want {
					if r.Result == nil || !strings.Contains(r.Result.Message, w) {
						t.Errorf("%s: message lacks %q: %+v", tc.image, w, r.Result)
					}
				}
				if strings.Contains(tc.image, ":good@") && !strings.Contains(strings.Join(r.Warnings, "\n"), `the tag "good" next to the digest is ignored`) {
					t.Errorf("%s: no warning about the ignored tag: %q", tc.image, r.Warnings)
				}
			}
		})
	}
}
