package sign

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/sign/key"
	"github.com/bulkhead-sec/bulkhead/sign/signtest"
)

func pass(pw string) key.PassFunc { return func(bool) ([]byte, error) { return []byte(pw), nil } }

// cosignKey is a key cosign made (sign/key/testdata/SOURCES.md).
func cosignKey(t testing.TB) (*key.Signer, *key.Verifier) {
	t.Helper()
	s, err := key.LoadPrivate(context.Background(), filepath.Join("key", "testdata", "cosign-sigstore.key"), pass("hello"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func otherKey(t testing.TB) *key.Verifier {
	t.Helper()
	s, err := key.LoadPrivate(context.Background(), filepath.Join("key", "testdata", "cosign-v1-ec.key"), pass("hello"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.Verifier()
	return v
}

// fault makes the test registry answer a status for matching requests.
type fault struct {
	status int32
	match  atomic.Value // string: substring of the path
}

// testRegistry is go-containerregistry's in-memory registry behind a
// fault injector; referrers says whether it has the referrers API.
func testRegistry(t testing.TB, referrers bool) (string, *fault) {
	t.Helper()
	f := &fault{}
	f.match.Store("")
	reg := registry.New(registry.WithReferrersSupport(referrers), registry.Logger(nopLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := atomic.LoadInt32(&f.status); st != 0 && strings.Contains(r.URL.Path, f.match.Load().(string)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(st))
			w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"injected"}]}`))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), f
}

// pushImage pushes a one-layer image made from a fixture file.
func pushImage(t testing.TB, host, repo, fixture string) *Target {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: static.NewLayer(b, types.OCILayer)})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/" + repo + ":latest")
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	tg, err := Resolve(context.Background(), ref.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	for _, referrers := range []bool{true, false} {
		for _, layout := range []Layout{Legacy, Bundle} {
			t.Run(string(layout)+map[bool]string{true: "/referrers-api", false: "/tag-fallback"}[referrers], func(t *testing.T) {
				host, _ := testRegistry(t, referrers)
				tg := pushImage(t, host, "app", "demo.vex.json")
				anns := map[string]string{"team": "sec", "build": "42"}
				if err := SignImage(ctx, tg, s, SignOptions{Layout: layout, Annotations: anns}); err != nil {
					t.Fatal(err)
				}
				got, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Annotations: map[string]string{"team": "sec"}})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0].Layout != layout || got[0].Annotations["build"] != "42" {
					t.Fatalf("verified %+v", got)
				}
				// A second signature is appended, never replacing the first.
				if err := SignImage(ctx, tg, s, SignOptions{Layout: layout, Annotations: map[string]string{"team": "ops"}}); err != nil {
					t.Fatal(err)
				}
				got, err = VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore})
				if err != nil || len(got) != 2 {
					t.Fatalf("after a second signature: %d verified, %v", len(got), err)
				}
				// Signing the same payload again adds nothing (legacy dedup).
				if layout == Legacy {
					if err := SignImage(ctx, tg, s, SignOptions{Layout: layout, Annotations: anns}); err != nil {
						t.Fatal(err)
					}
					if got, _ := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore}); len(got) != 3 && len(got) != 2 {
						t.Fatalf("%d signatures", len(got))
					}
				}
				// Required annotations: absent ones fail with the reason.
				_, err = VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Annotations: map[string]string{"team": "legal"}})
				if err == nil || !strings.Contains(err.Error(), "team=legal") {
					t.Fatalf("missing annotation: %v", err)
				}
				// Only the other layout: nothing there.
				other := Bundle
				if layout == Bundle {
					other = Legacy
				}
				_, err = VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Layouts: []Layout{other}})
				if err == nil || !strings.Contains(err.Error(), "no signature found") {
					t.Fatalf("other layout: %v", err)
				}
			})
		}
	}
}

func TestUnsigned(t *testing.T) {
	_, v := cosignKey(t)
	host, _ := testRegistry(t, false)
	tg := pushImage(t, host, "app", "demo.vex.json")
	_, err := VerifySignatures(context.Background(), tg, v, VerifyOptions{TLog: TLogInsecureIgnore})
	var verr *VerifyError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "no signature found") {
		t.Fatalf("got %v", err)
	}
}

// TestTamper is the tamper matrix: every alteration is rejected and says
// why.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	type tc struct {
		name   string
		layout Layout
		attest bool
		// tamper alters the stored signature; it may return the verifier
		// and target to use instead.
		tamper func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target)
		want   string
	}
	legacyPayload := func(edit func(b []byte) []byte) func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
		return func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			signtest.RewriteTagLayer(t, tagFor(tg.Digest, "sig"), nil, 0, func(b []byte, a map[string]string) ([]byte, map[string]string) { return edit(b), a })
			return v, tg
		}
	}
	attPayload := func(edit func(env map[string]any)) func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
		return func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			signtest.RewriteTagLayer(t, tagFor(tg.Digest, "att"), nil, 0, func(b []byte, a map[string]string) ([]byte, map[string]string) {
				var env map[string]any
				json.Unmarshal(b, &env)
				edit(env)
				nb, _ := json.Marshal(env)
				return nb, a
			})
			return v, tg
		}
	}
	bundleEnv := func(edit func(t *testing.T, env map[string]any)) func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
		return func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			signtest.RewriteBundles(t, tg.Digest, nil, func(b []byte) []byte {
				return signtest.EditBundleEnvelope(t, b, func(env map[string]any) { edit(t, env) })
			})
			return v, tg
		}
	}
	editPredicate := func(t *testing.T, env map[string]any) {
		signtest.EditStatement(t, env, func(st map[string]any) {
			st["predicate"].(map[string]any)["author"] = "mallory"
		})
	}
	retag := func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
		// The tag now points at another image; the signature stays with
		// the old digest.
		other := pushImage(t, host, "app", "SPDXJSONExample-v2.3.spdx.json")
		return v, other
	}
	cases := []tc{
		{"payload byte changed", Legacy, false, legacyPayload(func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "image signature", "image signaturE", 1))
		}), "signature does not match"},
		{"digest in payload changed (re-signed)", Legacy, false, func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			other := pushImage(t, host, "other", "SPDXJSONExample-v2.3.spdx.json")
			p, _ := SimpleSigningPayload(other.Digest, nil)
			sig, _ := s.SignMessage(strings.NewReader(string(p)))
			signtest.RewriteTagLayer(t, tagFor(tg.Digest, "sig"), nil, 0, func(b []byte, a map[string]string) ([]byte, map[string]string) {
				a[SignatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
				return p, a
			})
			return v, tg
		}, "payload signs digest"},
		{"signature annotation changed", Legacy, false, func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			signtest.RewriteTagLayer(t, tagFor(tg.Digest, "sig"), nil, 0, func(b []byte, a map[string]string) ([]byte, map[string]string) {
				sig, _ := base64.StdEncoding.DecodeString(a[SignatureAnnotation])
				sig[len(sig)/2] ^= 1
				a[SignatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
				return b, a
			})
			return v, tg
		}, "signature does not match"},
		{"wrong key", Legacy, false, func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) { return otherKey(t), tg }, "signature does not match"},
		{"wrong key", Bundle, false, func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) { return otherKey(t), tg }, "does not verify with this key"},
		{"re-tagged", Legacy, false, retag, "no signature found"},
		{"re-tagged", Bundle, false, retag, "no signature found"},
		{"signature copied to another image", Legacy, false, func(t *testing.T, host string, tg *Target) (*key.Verifier, *Target) {
			other := pushImage(t, host, "app", "SPDXJSONExample-v2.3.spdx.json")
			img, err := remote.Image(tagFor(tg.Digest, "sig"))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(tagFor(other.Digest, "sig"), img); err != nil {
				t.Fatal(err)
			}
			return v, other
		}, "payload signs digest"},
		{"statement subject changed", Bundle, false, bundleEnv(func(t *testing.T, env map[string]any) {
			signtest.EditStatement(t, env, func(st map[string]any) {
				st["subject"].([]any)[0].(map[string]any)["digest"].(map[string]any)["sha256"] = strings.Repeat("ab", 32)
			})
		}), "does not verify"},
		{"attestation predicate edited", Legacy, true, attPayload(func(env map[string]any) { editPredicate(t, env) }), "DSSE signature does not verify"},
		{"attestation predicate edited", Bundle, true, bundleEnv(editPredicate), "does not verify"},
		{"DSSE payload type changed", Legacy, true, attPayload(func(env map[string]any) { env["payloadType"] = "application/json" }), "payload type is \"application/json\""},
		{"DSSE payload type changed", Bundle, true, bundleEnv(func(t *testing.T, env map[string]any) { env["payloadType"] = "application/json" }), "payload type is \"application/json\""},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+string(c.layout), func(t *testing.T) {
			host, _ := testRegistry(t, false)
			tg := pushImage(t, host, "app", "demo.vex.json")
			if c.attest {
				pred, _ := os.ReadFile(filepath.Join("testdata", "demo.vex.json"))
				if err := AttestImage(ctx, tg, s, AttestOptions{Layout: c.layout, StatementOptions: StatementOptions{Type: "openvex", Predicate: pred}}); err != nil {
					t.Fatal(err)
				}
				if _, err := VerifyAttestations(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, PredicateType: predicateTypes["openvex"]}); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
			} else {
				if err := SignImage(ctx, tg, s, SignOptions{Layout: c.layout}); err != nil {
					t.Fatal(err)
				}
				if _, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore}); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
			}
			vv, tt := c.tamper(t, host, tg)
			var err error
			if c.attest {
				_, err = VerifyAttestations(ctx, tt, vv, VerifyOptions{TLog: TLogInsecureIgnore, PredicateType: predicateTypes["openvex"]})
			} else {
				_, err = VerifySignatures(ctx, tt, vv, VerifyOptions{TLog: TLogInsecureIgnore})
			}
			if err == nil {
				t.Fatal("tampered signature accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestAttestations(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	cases := []struct {
		typ, fixture string
	}{
		{"cyclonedx", "cyclonedx-cern-lhc-vdm-editor.bom.json"},
		{"spdxjson", "SPDXJSONExample-v2.3.spdx.json"},
		{"openvex", "demo.vex.json"},
		{"vuln", "demo.vex.json"},
		{"custom", "demo.vex.json"},
	}
	for _, layout := range []Layout{Legacy, Bundle} {
		host, _ := testRegistry(t, layout == Bundle)
		tg := pushImage(t, host, "app", "demo.vex.json")
		for _, c := range cases {
			pred, err := os.ReadFile(filepath.Join("testdata", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if err := AttestImage(ctx, tg, s, AttestOptions{Layout: layout, StatementOptions: StatementOptions{Type: c.typ, Predicate: pred, ScannerURI: "bulkhead"}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			pt, _ := PredicateType(c.typ)
			got, err := VerifyAttestations(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, PredicateType: pt})
			if err != nil {
				t.Fatalf("%s %s: %v", layout, c.typ, err)
			}
			if len(got) != 1 {
				t.Fatalf("%s %s: %d attestations", layout, c.typ, len(got))
			}
			pred, _ := os.ReadFile(filepath.Join("testdata", c.fixture))
			switch c.typ {
			case "cyclonedx", "spdxjson", "openvex":
				// The predicate comes back as the same JSON.
				if !jsonEqual(t, got[0].Predicate, pred) {
					t.Fatalf("%s %s: predicate differs", layout, c.typ)
				}
			case "custom":
				var p struct{ Data string }
				json.Unmarshal(got[0].Predicate, &p)
				if p.Data != string(pred) {
					t.Fatalf("custom predicate Data differs")
				}
			case "vuln":
				var p vulnPredicate
				json.Unmarshal(got[0].Predicate, &p)
				if p.Scanner.URI != "bulkhead" || !jsonEqual(t, p.Scanner.Result, pred) {
					t.Fatalf("vuln predicate: %s", got[0].Predicate[:100])
				}
			}
		}
		// Attestations are not signatures and signatures are not
		// attestations.
		if _, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore}); err == nil {
			t.Fatal("attestations counted as signatures")
		}
	}
}

func TestReplaceAttestation(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	host, _ := testRegistry(t, false)
	tg := pushImage(t, host, "app", "demo.vex.json")
	pred, _ := os.ReadFile(filepath.Join("testdata", "demo.vex.json"))
	for i := 0; i < 2; i++ {
		if err := AttestImage(ctx, tg, s, AttestOptions{StatementOptions: StatementOptions{Type: "openvex", Predicate: pred}}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := VerifyAttestations(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore})
	if len(got) != 2 {
		t.Fatalf("appended: %d", len(got))
	}
	if err := AttestImage(ctx, tg, s, AttestOptions{Replace: true, StatementOptions: StatementOptions{Type: "openvex", Predicate: pred}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := VerifyAttestations(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore}); len(got) != 1 {
		t.Fatalf("replaced: %d", len(got))
	}
}

// Registry faults never pass.
func TestRegistryFaults(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	cases := []struct {
		status int32
		match  string
		want   string
	}{
		{401, "/manifests/sha256-", "access denied (401)"},
		{500, "/manifests/sha256-", "registry answered 500"},
		{500, "/referrers/", "registry answered 500"},
		{404, "/manifests/sha256-", "no signature found"},
		{500, "/blobs/", "registry answered 500"},
	}
	for _, c := range cases {
		t.Run(c.match+"/"+http.StatusText(int(c.status)), func(t *testing.T) {
			host, f := testRegistry(t, true)
			tg := pushImage(t, host, "app", "demo.vex.json")
			if err := SignImage(ctx, tg, s, SignOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := SignImage(ctx, tg, s, SignOptions{Layout: Bundle}); err != nil {
				t.Fatal(err)
			}
			f.match.Store(c.match)
			atomic.StoreInt32(&f.status, c.status)
			_, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Options: Options{Remote: []remote.Option{remote.WithRetryStatusCodes()}}, Layouts: layoutsFor(c.match)})
			if err == nil {
				t.Fatal("verify passed through a registry fault")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func layoutsFor(match string) []Layout {
	if match == "/referrers/" {
		return []Layout{Bundle}
	}
	return []Layout{Legacy}
}

func TestResolveErrors(t *testing.T) {
	host, f := testRegistry(t, false)
	pushImage(t, host, "app", "demo.vex.json")
	if _, err := Resolve(context.Background(), host+"/app:missing", Options{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing tag: %v", err)
	}
	f.match.Store("/manifests/")
	atomic.StoreInt32(&f.status, 401)
	if _, err := Resolve(context.Background(), host+"/app:latest", Options{}); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("401: %v", err)
	}
	if _, err := Resolve(context.Background(), "UPPER/case:x", Options{}); err == nil {
		t.Fatal("bad reference accepted")
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// BenchmarkSignVerify is a sign + verify round trip against an in-memory
// registry, per layout.
func BenchmarkSignVerify(b *testing.B) {
	ctx := context.Background()
	s, v := cosignKey(b)
	for _, layout := range []Layout{Legacy, Bundle} {
		b.Run(string(layout), func(b *testing.B) {
			host, _ := testRegistry(b, true)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// A fresh image each round, so signatures do not pile up.
				img, _ := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: static.NewLayer([]byte(strings.Repeat("x", i+1)), types.OCILayer)})
				ref, _ := name.ParseReference(host + "/bench:latest")
				remote.Write(ref, img)
				b.StartTimer()
				tg, err := Resolve(ctx, ref.String(), Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := SignImage(ctx, tg, s, SignOptions{Layout: layout}); err != nil {
					b.Fatal(err)
				}
				if _, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Layouts: []Layout{layout}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var _ = v1.Hash{}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
