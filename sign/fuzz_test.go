package sign

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var fuzzDigest = v1.Hash{Algorithm: "sha256", Hex: "c2867219f062bc00ec8759bea5561079b9759800335716a0c17c36cbdfc4e5d4"}

func fuzzRef() name.Digest {
	d, _ := name.NewDigest("127.0.0.1:5000/app@" + fuzzDigest.String())
	return d
}

// readFixtures returns the files of testdata/cosign (payloads, envelopes
// and bundles cosign made) matching a glob.
func readFixtures(f *testing.F, glob string) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("testdata", "cosign", glob))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzParseSimpleSigning(f *testing.F) {
	p, _ := SimpleSigningPayload(fuzzRef(), map[string]string{"a": "b"})
	f.Add(p)
	for _, b := range readFixtures(f, "*.payload.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		anns, err := ParseSimpleSigning(b, fuzzDigest)
		if err == nil {
			_ = checkAnnotations(anns, map[string]string{"a": "b"})
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	pred, _ := os.ReadFile(filepath.Join("testdata", "demo.vex.json"))
	st, _, _ := Statement(fuzzRef(), StatementOptions{Type: "openvex", Predicate: pred})
	f.Add(st)
	st, _ = signStatement(fuzzRef(), map[string]string{"k": "v"})
	f.Add(st)
	for _, b := range readFixtures(f, "*.statement.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := ParseStatement(b, fuzzDigest); err == nil {
			_ = st.subjectAnnotations(fuzzDigest)
		}
	})
}

func FuzzVerifyDSSE(f *testing.F) {
	s, v := cosignKey(f)
	pred, _ := os.ReadFile(filepath.Join("testdata", "demo.vex.json"))
	st, _, _ := Statement(fuzzRef(), StatementOptions{Type: "openvex", Predicate: pred})
	env, err := SignDSSE(context.Background(), s, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	for _, b := range readFixtures(f, "*.dsse.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = VerifyDSSE(context.Background(), b, v)
	})
}

func FuzzVerifyBundle(f *testing.F) {
	s, v := cosignKey(f)
	st, _ := signStatement(fuzzRef(), nil)
	b, err := NewBundle(s, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, b := range readFixtures(f, "*.bundle.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = verifyBundle(b, v, fuzzDigest)
	})
}

func FuzzParsePolicy(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"policies":[{"images":["**"],"keys":["env://K"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b, "")
		if err == nil {
			_ = p.Match("127.0.0.1:5000/release/app")
		}
	})
}
