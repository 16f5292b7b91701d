package e2e

// Signing interop with the real cosign (v2 and v3, built from the Go module
// proxy, pinned) on a real registry (Debian's docker-registry, which has no
// referrers API, so bundles go through the sha256-<hex> tag fallback).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/sign/signtest"
)

// cosignModules are the pinned cosign releases the tests build.
var cosignModules = map[string]string{
	"v2": "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5",
	"v3": "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3",
}

var cosignMu sync.Mutex

// cosignBin returns cosign-<version> from $(go env GOPATH)/bin, building it
// once (several minutes on 2 cores) when missing.
func cosignBin(t *testing.T, major string) string {
	t.Helper()
	cosignMu.Lock()
	defer cosignMu.Unlock()
	mod := cosignModules[major]
	ver := mod[strings.LastIndex(mod, "@")+1:]
	gopath := strings.TrimSpace(run(t, "go", "env", "GOPATH"))
	bin := filepath.Join(gopath, "bin", "cosign-"+ver)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building cosign %s (once; minutes)...", ver)
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", mod)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", mod, err, out)
	}
	os.MkdirAll(filepath.Dir(bin), 0o755)
	if err := exec.Command("mv", filepath.Join(gobin, "cosign"), bin).Run(); err != nil {
		t.Fatal(err)
	}
	return bin
}

const signPassword = "e2e-sign-pass"

// cosignRun runs cosign with the test password in dir; it returns the
// combined output and the error.
func cosignRun(bin, dir string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+signPassword)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

func mustCosign(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	out, err := cosignRun(bin, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustBulkhead(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := bulkhead(args...)
	if code != 0 {
		t.Fatalf("bulkhead %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// signImage is a tiny busybox image built once; pushed to many
// repositories, each test gets a digest with no signatures yet.
func signImage(t *testing.T, n int) string {
	t.Helper()
	ref := fmt.Sprintf("localhost/e2e-sign-mini:%d", n)
	buildMu.Lock()
	defer buildMu.Unlock()
	if imageExists(ref) {
		return ref
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not installed (apt-get install busybox-static)")
	}
	run(t, "cp", bb, filepath.Join(root, "bin", "busybox"))
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	os.WriteFile(filepath.Join(root, "marker"), []byte(fmt.Sprintf("bulkhead sign e2e %d\n", n)), 0o644)
	tarPath := filepath.Join(t.TempDir(), "root.tar")
	run(t, "tar", "-C", root, "-cf", tarPath, ".")
	run(t, "podman", "import", "-q", tarPath, ref)
	return ref
}

// signEnv is a registry, the image, and key pairs made by each tool.
type signEnv struct {
	reg    *registry
	image  string
	dir    string
	bkKey  string // made by bulkhead generate-key-pair
	bkPub  string
	csKey  string // made by cosign generate-key-pair
	csPub  string
	root   string // an empty trusted root: cosign wants one for bundles even with a key
	cosign map[string]string
	n      int
}

func newSignEnv(t *testing.T) *signEnv {
	t.Helper()
	requireEnv(t)
	t.Setenv("COSIGN_PASSWORD", signPassword)
	e := &signEnv{reg: startRegistry(t, false), image: signImage(t, 1), dir: t.TempDir(), cosign: map[string]string{}}
	e.cosign["v2"] = cosignBin(t, "v2")
	e.bkKey, e.bkPub = filepath.Join(e.dir, "bk.key"), filepath.Join(e.dir, "bk.pub")
	mustBulkhead(t, "generate-key-pair", "--output-key-prefix", filepath.Join(e.dir, "bk"))
	mustCosign(t, e.cosign["v2"], e.dir, "generate-key-pair", "--output-key-prefix", "cs")
	e.csKey, e.csPub = filepath.Join(e.dir, "cs.key"), filepath.Join(e.dir, "cs.pub")
	e.root = filepath.Join(e.dir, "trusted_root.json")
	os.WriteFile(e.root, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	return e
}

// bin is the cosign of a major version, built on first use.
func (e *signEnv) bin(t *testing.T, major string) string {
	t.Helper()
	if b, ok := e.cosign[major]; ok {
		return b
	}
	e.cosign[major] = cosignBin(t, major)
	return e.cosign[major]
}

// push puts the image into a fresh repository and returns the tag.
func (e *signEnv) push(t *testing.T) string {
	t.Helper()
	e.n++
	return e.reg.push(t, e.image, fmt.Sprintf("sign/case%d:1", e.n))
}

func TestSignInteropCosign(t *testing.T) {
	e := newSignEnv(t)
	vex := filepath.Join(repoRoot, "sign", "testdata", "demo.vex.json")
	bom := filepath.Join(repoRoot, "sign", "testdata", "cyclonedx-cern-lhc-vdm-editor.bom.json")
	for _, major := range []string{"v2", "v3"} {
		major := major
		// cosign flags for offline use.
		off := []string{"--tlog-upload=false", "--allow-insecure-registry"}
		ver := []string{"--insecure-ignore-tlog=true", "--allow-insecure-registry"}
		legacy := []string{"--new-bundle-format=false"}
		if major == "v3" {
			// v3 signs through a signing config naming Rekor unless told
			// not to.
			off = append(off, "--use-signing-config=false")
		}
		t.Run(major+"/bulkhead legacy signature, cosign verifies", func(t *testing.T) {
			ref := e.push(t)
			mustBulkhead(t, "sign", "--key", e.bkKey, "--tlog-upload=false", "-a", "team=sec", ref)
			out := mustCosign(t, e.bin(t, major), e.dir, append([]string{"verify", "--key", e.bkPub, "-a", "team=sec", ref}, ver...)...)
			if !strings.Contains(out, `"team":"sec"`) {
				t.Fatalf("cosign output lacks the annotation:\n%s", out)
			}
			// The check can fail: another key, another annotation.
			if _, err := cosignRun(e.bin(t, major), e.dir, append([]string{"verify", "--key", e.csPub, ref}, ver...)...); err == nil {
				t.Fatal("cosign verified with the wrong key")
			}
			if _, err := cosignRun(e.bin(t, major), e.dir, append([]string{"verify", "--key", e.bkPub, "-a", "team=ops", ref}, ver...)...); err == nil {
				t.Fatal("cosign accepted a missing annotation")
			}
		})
		t.Run(major+"/bulkhead bundle signature, cosign verifies", func(t *testing.T) {
			ref := e.push(t)
			mustBulkhead(t, "sign", "--new-bundle-format", "--key", e.bkKey, "--tlog-upload=false", ref)
			mustCosign(t, e.bin(t, major), e.dir, append([]string{"verify", "--key", e.bkPub, "--trusted-root", e.root, ref}, ver...)...)
			if _, err := cosignRun(e.bin(t, major), e.dir, append([]string{"verify", "--key", e.csPub, "--trusted-root", e.root, ref}, ver...)...); err == nil {
				t.Fatal("cosign verified the bundle with the wrong key")
			}
		})
		t.Run(major+"/cosign legacy signature, bulkhead verifies", func(t *testing.T) {
			ref := e.push(t)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"sign", "--yes", "--key", e.csKey, "-a", "who=cosign"}, append(off, legacy...)...), ref)...)
			out := mustBulkhead(t, "verify", "--key", e.csPub, "--insecure-ignore-tlog", "--layout", "legacy", "-a", "who=cosign", ref)
			if !strings.Contains(out, `"layout": "legacy"`) {
				t.Fatalf("bulkhead output:\n%s", out)
			}
			if _, errOut, code := bulkhead("verify", "--key", e.bkPub, "--insecure-ignore-tlog", ref); code == 0 || !strings.Contains(errOut, "signature does not match") {
				t.Fatalf("wrong key: exit %d: %s", code, errOut)
			}
		})
		t.Run(major+"/cosign bundle signature, bulkhead verifies", func(t *testing.T) {
			ref := e.push(t)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"sign", "--yes", "--key", e.csKey, "--new-bundle-format=true", "--trusted-root", e.root}, off...), ref)...)
			out := mustBulkhead(t, "verify", "--key", e.csPub, "--insecure-ignore-tlog", "--layout", "bundle", ref)
			if !strings.Contains(out, "https://sigstore.dev/cosign/sign/v1") {
				t.Fatalf("bulkhead output:\n%s", out)
			}
		})
		t.Run(major+"/cosign attestations, bulkhead verifies", func(t *testing.T) {
			ref := e.push(t)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"attest", "--yes", "--key", e.csKey, "--type", "openvex", "--predicate", vex}, append(off, legacy...)...), ref)...)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"attest", "--yes", "--key", e.csKey, "--type", "cyclonedx", "--predicate", bom, "--new-bundle-format=true", "--trusted-root", e.root}, off...), ref)...)
			for typ, file := range map[string]string{"openvex": vex, "cyclonedx": bom} {
				out := mustBulkhead(t, "verify-attestation", "--key", e.csPub, "--insecure-ignore-tlog", "--type", typ, ref)
				want, _ := os.ReadFile(file)
				if !sameJSON(t, []byte(strings.TrimSpace(out)), want) {
					t.Fatalf("%s predicate from cosign's attestation differs from %s", typ, file)
				}
			}
		})
		t.Run(major+"/bulkhead attestations, cosign verifies", func(t *testing.T) {
			// One image per layout: cosign picks the bundle layout alone
			// as soon as an image has a bundle referrer.
			ref, ref2 := e.push(t), e.push(t)
			mustBulkhead(t, "attest", "--key", e.bkKey, "--tlog-upload=false", "--type", "cyclonedx", "--predicate", bom, ref)
			mustBulkhead(t, "attest", "--key", e.bkKey, "--tlog-upload=false", "--new-bundle-format", "--type", "openvex", "--predicate", vex, ref2)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"verify-attestation", "--key", e.bkPub, "--type", "cyclonedx"}, append(ver, legacy...)...), ref)...)
			mustCosign(t, e.bin(t, major), e.dir, append([]string{"verify-attestation", "--key", e.bkPub, "--type", "openvex", "--new-bundle-format=true", "--trusted-root", e.root}, append(ver, ref2)...)...)
			if _, err := cosignRun(e.bin(t, major), e.dir, append([]string{"verify-attestation", "--key", e.csPub, "--type", "openvex", "--new-bundle-format=true", "--trusted-root", e.root}, append(ver, ref2)...)...); err == nil {
				t.Fatal("cosign verified the attestation with the wrong key")
			}
		})
		t.Run(major+"/keys made by either tool work in the other", func(t *testing.T) {
			ref := e.push(t)
			mustBulkhead(t, "sign", "--key", e.csKey, "--tlog-upload=false", ref)
			mustCosign(t, e.bin(t, major), e.dir, append([]string{"verify", "--key", e.csPub, ref}, ver...)...)
			ref2 := e.push(t)
			mustCosign(t, e.bin(t, major), e.dir, append(append([]string{"sign", "--yes", "--key", e.bkKey}, append(off, legacy...)...), ref2)...)
			mustBulkhead(t, "verify", "--key", e.bkPub, "--insecure-ignore-tlog", ref2)
		})
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %.200s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// TestSignTamperRegistry: altered signatures and attestations on the real
// registry are rejected by bulkhead, with the reason.
func TestSignTamperRegistry(t *testing.T) {
	e := newSignEnv(t)
	vex := filepath.Join(repoRoot, "sign", "testdata", "demo.vex.json")
	type tamper func(t *testing.T, ref string, d name.Digest) (key, verifyRef string)
	editSig := func(edit func(b []byte, a map[string]string) ([]byte, map[string]string)) tamper {
		return func(t *testing.T, ref string, d name.Digest) (string, string) {
			signtest.RewriteTagLayer(t, signtest.Tag(d, "sig"), nil, 0, edit)
			return e.bkPub, ref
		}
	}
	editAtt := func(edit func(env map[string]any)) tamper {
		return func(t *testing.T, ref string, d name.Digest) (string, string) {
			signtest.RewriteTagLayer(t, signtest.Tag(d, "att"), nil, 0, func(b []byte, a map[string]string) ([]byte, map[string]string) {
				var env map[string]any
				json.Unmarshal(b, &env)
				edit(env)
				nb, _ := json.Marshal(env)
				return nb, a
			})
			return e.bkPub, ref
		}
	}
	editBundle := func(edit func(env map[string]any)) tamper {
		return func(t *testing.T, ref string, d name.Digest) (string, string) {
			signtest.RewriteBundles(t, d, nil, func(b []byte) []byte {
				return signtest.EditBundleEnvelope(t, b, edit)
			})
			return e.bkPub, ref
		}
	}
	editPredicate := func(env map[string]any) {
		signtest.EditStatement(t, env, func(st map[string]any) { st["predicate"].(map[string]any)["author"] = "mallory" })
	}
	retag := func(t *testing.T, ref string, d name.Digest) (string, string) {
		// Another image under the same tag.
		run(t, "podman", "push", "-q", "--tls-verify=false", signImage(t, 2), ref)
		return e.bkPub, ref
	}
	cases := []struct {
		name   string
		bundle bool
		attest bool
		tamper tamper
		want   string
	}{
		{"payload byte changed", false, false, editSig(func(b []byte, a map[string]string) ([]byte, map[string]string) {
			return bytes.Replace(b, []byte("image signature"), []byte("image signaturE"), 1), a
		}), "signature does not match"},
		{"digest in payload changed", false, false, editSig(func(b []byte, a map[string]string) ([]byte, map[string]string) {
			i := bytes.Index(b, []byte("sha256:")) + 7
			b[i] ^= 1
			return b, a
		}), "signature does not match"},
		{"signature annotation changed", false, false, editSig(func(b []byte, a map[string]string) ([]byte, map[string]string) {
			s := []byte(a["dev.cosignproject.cosign/signature"])
			s[10] = map[bool]byte{true: 'B', false: 'A'}[s[10] == 'A']
			a["dev.cosignproject.cosign/signature"] = string(s)
			return b, a
		}), "signature"},
		{"wrong key", false, false, func(t *testing.T, ref string, d name.Digest) (string, string) { return e.csPub, ref }, "signature does not match"},
		{"wrong key", true, false, func(t *testing.T, ref string, d name.Digest) (string, string) { return e.csPub, ref }, "does not verify with this key"},
		{"re-tagged to another digest", false, false, retag, "no signature found"},
		{"re-tagged to another digest", true, false, retag, "no signature found"},
		{"attestation predicate edited", false, true, editAtt(editPredicate), "DSSE signature does not verify"},
		{"attestation predicate edited", true, true, editBundle(editPredicate), "does not verify"},
		{"DSSE payload type changed", false, true, editAtt(func(env map[string]any) { env["payloadType"] = "text/plain" }), `payload type is "text/plain"`},
		{"DSSE payload type changed", true, true, editBundle(func(env map[string]any) { env["payloadType"] = "text/plain" }), `payload type is "text/plain"`},
	}
	for _, c := range cases {
		layout := map[bool]string{true: "bundle", false: "legacy"}[c.bundle]
		t.Run(c.name+"/"+layout, func(t *testing.T) {
			ref := e.push(t)
			args := []string{"--key", e.bkKey, "--tlog-upload=false"}
			if c.bundle {
				args = append(args, "--new-bundle-format")
			}
			check := []string{"verify"}
			if c.attest {
				mustBulkhead(t, append(append([]string{"attest", "--type", "openvex", "--predicate", vex}, args...), ref)...)
				check = []string{"verify-attestation", "--type", "openvex"}
			} else {
				mustBulkhead(t, append(append([]string{"sign"}, args...), ref)...)
			}
			mustBulkhead(t, append(check, "--key", e.bkPub, "--insecure-ignore-tlog", ref)...)
			r, _ := name.ParseReference(ref)
			desc, err := remote.Head(r)
			if err != nil {
				t.Fatal(err)
			}
			k, vref := c.tamper(t, ref, r.Context().Digest(desc.Digest.String()))
			out, errOut, code := bulkhead(append(check, "--key", k, "--insecure-ignore-tlog", vref)...)
			if code == 0 {
				t.Fatalf("tampered %s accepted:\n%s", layout, out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Fatalf("error does not say %q:\n%s", c.want, errOut)
			}
		})
	}
}

// faultProxy is a loopback reverse proxy in front of the registry that
// answers status for requests whose path contains match.
type faultProxy struct {
	status int32
	match  atomic.Value
	addr   string
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &faultProxy{}
	p.match.Store("\x00")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := atomic.LoadInt32(&p.status); st != 0 && strings.Contains(r.URL.Path, p.match.Load().(string)) {
			if st == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(st))
			fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected %d"}]}`, st)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func TestSignRegistryFaults(t *testing.T) {
	e := newSignEnv(t)
	proxy := newFaultProxy(t, e.reg.addr)
	ref := e.push(t)
	mustBulkhead(t, "sign", "--key", e.bkKey, "--tlog-upload=false", ref)
	mustBulkhead(t, "sign", "--new-bundle-format", "--key", e.bkKey, "--tlog-upload=false", ref)
	viaProxy := strings.Replace(ref, e.reg.addr, proxy.addr, 1)
	mustBulkhead(t, "verify", "--key", e.bkPub, "--insecure-ignore-tlog", viaProxy)
	cases := []struct {
		status int32
		match  string
		layout string
		want   string
	}{
		{401, "/manifests/", "", "access denied (401)"},
		{401, ".sig", "legacy", "access denied (401)"},
		{404, ".sig", "legacy", "no signature found"},
		{500, ".sig", "legacy", "registry answered 500"},
		{500, "/blobs/", "legacy", "registry answered 500"},
		{500, "/manifests/sha256-", "bundle", "registry answered 500"},
		{404, "/manifests/sha256-", "bundle", "no signature found"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d on %s", c.status, c.match), func(t *testing.T) {
			proxy.match.Store(c.match)
			atomic.StoreInt32(&proxy.status, c.status)
			defer atomic.StoreInt32(&proxy.status, 0)
			args := []string{"verify", "--key", e.bkPub, "--insecure-ignore-tlog", viaProxy}
			if c.layout != "" {
				args = append(args, "--layout", c.layout)
			}
			out, errOut, code := bulkhead(args...)
			if code == 0 {
				t.Fatalf("verify passed through an injected %d:\n%s", c.status, out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Fatalf("error does not say %q:\n%s", c.want, errOut)
			}
		})
	}
}
