package kmsinterop

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/internal/kmstest"
)

func TestMain(m *testing.M) { os.Exit(kmstest.Main(m)) }

// bulkhead runs the command line in this process (its AWS SDK uses the
// environment kmstest.Main set) and returns stdout, stderr and the code.
func bulkhead(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

func mustBulkhead(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := bulkhead(args...)
	if code != 0 {
		t.Fatalf("bulkhead %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out + errOut
}

// startRegistry is go-containerregistry's registry over plain HTTP on
// loopback; push puts a new small image in a fresh repository.
func startRegistry(t *testing.T) (push func() string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	var n atomic.Int32
	return func() string {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/kms/case%d:1", host, n.Add(1))
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		return ref
	}
}

var aliasN atomic.Int32

// newAlias is an alias name no other test uses.
func newAlias(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), aliasN.Add(1))
}

// Keys made through the KMS work wherever bulkhead takes a key: sign (both
// layouts), verify (by the URI and by the exported public key), attest and
// verify-attestation, the trust policy, the policy file's keys (gate) and
// image --attest; another KMS key is refused everywhere.
func TestKMSKeyEverywhere(t *testing.T) {
	kms := kmstest.Start(t)
	push := startRegistry(t)
	dir := t.TempDir()
	ref := kms.Ref(newAlias("release"))
	other := kms.Ref(newAlias("other"))

	out := mustBulkhead(t, "generate-key-pair", "--kms", ref, "--output-key-prefix", filepath.Join(dir, "release"))
	if !strings.Contains(out, "Public key written to") {
		t.Fatalf("generate-key-pair --kms said:\n%s", out)
	}
	pub1, err := os.ReadFile(filepath.Join(dir, "release.pub"))
	if err != nil || !bytes.Contains(pub1, []byte("BEGIN PUBLIC KEY")) {
		t.Fatalf("exported public key: %v %q", err, pub1)
	}
	if _, err := os.Stat(filepath.Join(dir, "release.key")); err == nil {
		t.Fatal("generate-key-pair --kms wrote a private key file")
	}
	// A second run finds the key the alias names, as cosign does, and
	// exports the same public key; without --force it keeps the file.
	if _, errOut, code := bulkhead("generate-key-pair", "--kms", ref, "--output-key-prefix", filepath.Join(dir, "release")); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second generate-key-pair without --force: exit %d %s", code, errOut)
	}
	mustBulkhead(t, "generate-key-pair", "--kms", ref, "--force", "--output-key-prefix", filepath.Join(dir, "release"))
	if pub2, _ := os.ReadFile(filepath.Join(dir, "release.pub")); !bytes.Equal(pub1, pub2) {
		t.Fatalf("the same alias gave another key:\n%s\n%s", pub1, pub2)
	}
	mustBulkhead(t, "generate-key-pair", "--kms", other, "--output-key-prefix", filepath.Join(dir, "other"))

	reg := []string{"--allow-insecure-registry"}
	ver := []string{"--insecure-ignore-tlog", "--allow-insecure-registry"}
	for _, layout := range []string{"legacy", "bundle"} {
		t.Run(layout, func(t *testing.T) {
			img := push()
			args := append([]string{"sign", "--key", ref, "--tlog-upload=false", "-a", "team=sec"}, reg...)
			if layout == "bundle" {
				args = append(args, "--new-bundle-format")
			}
			mustBulkhead(t, append(args, img)...)
			for _, k := range []string{ref, filepath.Join(dir, "release.pub")} {
				out := mustBulkhead(t, append([]string{"verify", "--key", k, "--layout", layout, "-a", "team=sec"}, append(ver, img)...)...)
				if !strings.Contains(out, `"team": "sec"`) && !strings.Contains(out, `"team":"sec"`) {
					t.Errorf("verify --key %s: no annotation in\n%s", k, out)
				}
			}
			for _, k := range []string{other, filepath.Join(dir, "other.pub")} {
				if _, _, code := bulkhead(append([]string{"verify", "--key", k}, append(ver, img)...)...); code == 0 {
					t.Errorf("verify --key %s accepted a signature by another key", k)
				}
			}
		})
	}

	t.Run("attest", func(t *testing.T) {
		img := push()
		pred := filepath.Join(dir, "vuln.json")
		os.WriteFile(pred, []byte(`{"scanner":{"uri":"https://example.com/scanner","version":"1","result":{"findings":[]}}}`), 0o644)
		mustBulkhead(t, append([]string{"attest", "--key", ref, "--type", "vuln", "--predicate", pred, "--tlog-upload=false"}, append(reg, img)...)...)
		out := mustBulkhead(t, append([]string{"verify-attestation", "--key", ref, "--type", "vuln"}, append(ver, img)...)...)
		if !strings.Contains(out, "example.com/scanner") {
			t.Errorf("verify-attestation printed\n%s", out)
		}
		if _, _, code := bulkhead(append([]string{"verify-attestation", "--key", other, "--type", "vuln"}, append(ver, img)...)...); code == 0 {
			t.Error("verify-attestation accepted another KMS key")
		}
	})

	t.Run("trust policy and policy file", func(t *testing.T) {
		img := push()
		mustBulkhead(t, append([]string{"sign", "--key", ref, "--tlog-upload=false"}, append(reg, img)...)...)
		for _, c := range []struct {
			key string
			ok  bool
		}{{ref, true}, {other, false}} {
			trust := filepath.Join(t.TempDir(), "trust.yaml")
			os.WriteFile(trust, []byte("policies:\n  - {name: release, images: ['**'], keys: ['"+c.key+"'], transparencyLog: ignore}\n"), 0o644)
			_, errOut, code := bulkhead(append([]string{"verify", "--policy", trust}, append(reg, img)...)...)
			if (code == 0) != c.ok {
				t.Errorf("verify --policy with key %s: exit %d, want ok=%v\n%s", c.key, code, c.ok, errOut)
			}
			pdir := t.TempDir()
			pol := filepath.Join(pdir, "bulkhead-policy.yaml")
			os.WriteFile(pol, []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - name: release-signed\n    signatures: {keys: ['"+c.key+"'], transparencyLog: ignore}\n"), 0o644)
			out, errOut, code := bulkhead("gate", "--policy", pol, "--insecure", "--json", filepath.Join(pdir, "gate.json"), "--db", filepath.Join(pdir, "db"), img)
			if (code == 0) != c.ok || (c.ok && !strings.Contains(out+errOut, "ALLOWED")) {
				t.Errorf("gate with key %s: exit %d, want ok=%v\n%s%s", c.key, code, c.ok, out, errOut)
			}
		}
	})

	t.Run("image --attest", func(t *testing.T) {
		img := push()
		_, errOut, code := bulkhead("image", img, "--insecure", "--quiet", "--format", "json", "--db", filepath.Join(dir, "db"), "--db-max-age", "0",
			"--attest", "cyclonedx", "--attest-key", ref, "--tlog-upload=false")
		if code != 0 {
			t.Fatalf("image --attest: exit %d\n%s", code, errOut)
		}
		mustBulkhead(t, append([]string{"verify-attestation", "--key", ref, "--type", "cyclonedx"}, append(ver, img)...)...)
	})
}

// cosignBin is the cosign scripts/setup-test-env.sh builds into
// $(go env GOPATH)/bin (e2e/sign_test.go uses the same); missing, the test
// is skipped (failed under CI).
func cosignBin(t *testing.T) string {
	t.Helper()
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			t.Fatal(err)
		}
		gopath = strings.TrimSpace(string(out))
	}
	bin := filepath.Join(gopath, "bin", "cosign-v3.1.3")
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no %s; build it with scripts/setup-test-env.sh", bin)
		if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

func cosign(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// The real cosign and bulkhead interoperate on KMS keys both ways: cosign
// makes the key in the KMS and signs with --key awskms://..., bulkhead
// verifies with the same URI; bulkhead signs, cosign verifies with the
// URI. Each check is also made with another KMS key, which must fail.
func TestCosignInteropKMS(t *testing.T) {
	kms := kmstest.Start(t)
	bin := cosignBin(t)
	push := startRegistry(t)
	env := kms.Env()
	dir := t.TempDir()
	csRef, bkRef := kms.Ref(newAlias("cosign")), kms.Ref(newAlias("bulkhead"))
	cosignOK := func(args ...string) string {
		t.Helper()
		out, err := cosign(bin, env, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// cosign creates its key in the KMS; bulkhead creates its own.
	cmd := exec.Command(bin, "generate-key-pair", "--kms", csRef)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair --kms: %v\n%s", err, out)
	}
	mustBulkhead(t, "generate-key-pair", "--kms", bkRef, "--output-key-prefix", filepath.Join(dir, "bk"))
	// cosign exported the same public key bulkhead reads from the KMS.
	csPub, _ := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	mustBulkhead(t, "generate-key-pair", "--kms", csRef, "--output-key-prefix", filepath.Join(dir, "cs-by-bulkhead"))
	if b, _ := os.ReadFile(filepath.Join(dir, "cs-by-bulkhead.pub")); len(csPub) == 0 || !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(csPub)) {
		t.Fatalf("bulkhead reads another public key for cosign's KMS key:\n%s\n%s", b, csPub)
	}

	off := []string{"--tlog-upload=false", "--allow-insecure-registry", "--use-signing-config=false"}
	cver := []string{"--insecure-ignore-tlog=true", "--allow-insecure-registry"}
	bver := []string{"--insecure-ignore-tlog", "--allow-insecure-registry"}

	t.Run("cosign signs, bulkhead verifies", func(t *testing.T) {
		for _, layout := range []string{"legacy", "bundle"} {
			img := push()
			nb := "--new-bundle-format=false"
			if layout == "bundle" {
				nb = "--new-bundle-format=true"
			}
			args := append([]string{"sign", "--key", csRef, "-a", "team=sec", nb, "-y"}, off...)
			if layout == "bundle" {
				// cosign v3 wants a trusted root for bundles even with a key.
				root := filepath.Join(dir, "trusted_root.json")
				os.WriteFile(root, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
				args = append(args, "--trusted-root", root)
			}
			cosignOK(append(args, img)...)
			out := mustBulkhead(t, append([]string{"verify", "--key", csRef, "--layout", layout, "-a", "team=sec"}, append(bver, img)...)...)
			if !strings.Contains(out, "team") {
				t.Errorf("%s: bulkhead verify output lacks the annotation:\n%s", layout, out)
			}
			if _, errOut, code := bulkhead(append([]string{"verify", "--key", bkRef}, append(bver, img)...)...); code == 0 {
				t.Errorf("%s: bulkhead verified cosign's signature with another KMS key: %s", layout, errOut)
			}
		}
	})

	t.Run("bulkhead signs, cosign verifies", func(t *testing.T) {
		img := push()
		mustBulkhead(t, "sign", "--key", bkRef, "--tlog-upload=false", "--allow-insecure-registry", "-a", "team=sec", img)
		out := cosignOK(append([]string{"verify", "--key", bkRef, "-a", "team=sec"}, append(cver, img)...)...)
		if !strings.Contains(out, `"team":"sec"`) {
			t.Errorf("cosign verify output lacks the annotation:\n%s", out)
		}
		if _, err := cosign(bin, env, append([]string{"verify", "--key", csRef}, append(cver, img)...)...); err == nil {
			t.Error("cosign verified bulkhead's signature with another KMS key")
		}
		// And the attestation: bulkhead attests with the KMS key, cosign
		// verifies it.
		pred := filepath.Join(dir, "custom.json")
		os.WriteFile(pred, []byte(`{"hello":"kms"}`), 0o644)
		mustBulkhead(t, "attest", "--key", bkRef, "--type", "custom", "--predicate", pred, "--tlog-upload=false", "--allow-insecure-registry", img)
		cosignOK(append([]string{"verify-attestation", "--key", bkRef, "--type", "custom"}, append(cver, img)...)...)
	})
}

// A failing KMS call never puts the credentials in what bulkhead prints or
// logs: sign and verify with an alias the KMS does not have, with the
// secret access key set, and look for it in stdout, stderr and the
// standard logger's output.
func TestKMSErrorsCarryNoSecrets(t *testing.T) {
	kms := kmstest.Start(t)
	push := startRegistry(t)
	img := push()
	var logs bytes.Buffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	missing := kms.Ref(newAlias("missing"))
	var all strings.Builder
	for _, args := range [][]string{
		{"sign", "--key", missing, "--tlog-upload=false", "--allow-insecure-registry", img},
		{"verify", "--key", missing, "--insecure-ignore-tlog", "--allow-insecure-registry", img},
		// An endpoint nothing listens on: a transport error.
		{"sign", "--key", "awskms://127.0.0.1:1/alias/nothing-here", "--tlog-upload=false", "--allow-insecure-registry", img},
	} {
		out, errOut, code := bulkhead(args...)
		if code == 0 {
			t.Fatalf("bulkhead %v succeeded with a key the KMS does not have", args)
		}
		if !strings.Contains(errOut, "KMS key awskms://") {
			t.Errorf("bulkhead %v: the error does not name the key:\n%s", args, errOut)
		}
		all.WriteString(out + errOut)
	}
	all.WriteString(logs.String())
	for _, secret := range []string{kmstest.SecretAccessKey} {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("the secret access key appears in the output:\n%s", all.String())
		}
	}
	if !strings.Contains(all.String(), "NotFoundException") && !strings.Contains(all.String(), "not found") {
		t.Errorf("the error does not say the key was not found:\n%s", all.String())
	}
}
