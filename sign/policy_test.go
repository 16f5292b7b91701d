package sign

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := cosignKey(t)
	pol, err := LoadPolicy(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := testRegistry(t, false)
	rel := pushImage(t, host, "release/app", "demo.vex.json")
	dev := pushImage(t, host, "dev/app", "SPDXJSONExample-v2.3.spdx.json")
	other := pushImage(t, host, "other/app", "demo.vex.json")

	expectErr := func(tg *Target, want string) {
		t.Helper()
		_, err := pol.Verify(ctx, tg, VerifyOptions{}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want %q", tg.Digest, err, want)
		}
	}
	expectErr(rel, "not signed by any of its keys")
	expectErr(other, "no policy covers")
	if err := SignImage(ctx, rel, s, SignOptions{Annotations: map[string]string{"env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	expectErr(rel, "env=prod")
	if err := SignImage(ctx, rel, s, SignOptions{Layout: Bundle, Annotations: map[string]string{"env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	expectErr(rel, "required cyclonedx attestation missing")
	sbom, _ := os.ReadFile(filepath.Join("testdata", "cyclonedx-cern-lhc-vdm-editor.bom.json"))
	if err := AttestImage(ctx, rel, s, AttestOptions{StatementOptions: StatementOptions{Type: "cyclonedx", Predicate: sbom}}); err != nil {
		t.Fatal(err)
	}
	res, err := pol.Verify(ctx, rel, VerifyOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Rule != "release" || len(res[0].Attestations) != 1 {
		t.Fatalf("%+v", res)
	}
	// dev: any of two keys; the second one signed.
	if err := SignImage(ctx, dev, s, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := pol.Verify(ctx, dev, VerifyOptions{}, nil); err != nil || !strings.HasSuffix(res[0].Key, "cosign-sigstore.pub") {
		t.Fatalf("dev: %v %+v", err, res)
	}
}

func TestPolicyErrors(t *testing.T) {
	cases := map[string]string{
		"":                              "empty policy",
		"policies: []":                  "no policies",
		"policies:\n  - images: ['**']": "no keys",
		"policies:\n  - keys: [a.pub]":  "no images",
		"policies:\n  - images: ['[']\n    keys: [a]":                                "image glob",
		"policies:\n  - images: ['**']\n    keys: [a]\n    attestations: [sbom]":     "unknown attestation type",
		"policies:\n  - images: ['**']\n    keys: [a]\n    attestation: [cyclonedx]": "field attestation not found",
		"policies: {": "decode",
	}
	for in, want := range cases {
		if _, err := ParsePolicy([]byte(in), ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestPolicyGlobs(t *testing.T) {
	p, err := ParsePolicy([]byte("policies:\n  - images: ['registry.example.com/release/*', 'index.docker.io/library/**']\n    keys: [env://K]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]bool{
		"registry.example.com/release/app":     true,
		"registry.example.com/release/app/sub": false,
		"registry.example.com/dev/app":         false,
		"index.docker.io/library/alpine":       true,
	} {
		if got := len(p.Match(repo)) > 0; got != want {
			t.Errorf("%s: match %v, want %v", repo, got, want)
		}
	}
}
