package sign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/sign/signtest"
)

// TestTLogChoice: a key-based signature and attestation with no
// transparency-log entry (bulkhead signs offline) are rejected with a
// *TLogError when the zero VerifyOptions leave the log required, and
// accepted only with TLogInsecureIgnore written out; in both layouts.
func TestTLogChoice(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	host, _ := testRegistry(t, true)
	for _, layout := range []Layout{Legacy, Bundle} {
		t.Run(string(layout), func(t *testing.T) {
			tg := pushImage(t, host, "tlog/"+string(layout), "demo.vex.json")
			if err := SignImage(ctx, tg, s, SignOptions{Layout: layout}); err != nil {
				t.Fatal(err)
			}
			sbom, _ := os.ReadFile(filepath.Join("testdata", "cyclonedx-cern-lhc-vdm-editor.bom.json"))
			if err := AttestImage(ctx, tg, s, AttestOptions{Layout: layout, StatementOptions: StatementOptions{Type: "cyclonedx", Predicate: sbom}}); err != nil {
				t.Fatal(err)
			}
			pt, _ := PredicateType("cyclonedx")
			for _, c := range []struct {
				name string
				o    VerifyOptions
				ok   bool
			}{
				{"zero value", VerifyOptions{}, false},
				{"required", VerifyOptions{TLog: TLogRequired}, false},
				{"insecure ignore", VerifyOptions{TLog: TLogInsecureIgnore}, true},
			} {
				sigs, serr := VerifySignatures(ctx, tg, v, c.o)
				ao := c.o
				ao.PredicateType = pt
				atts, aerr := VerifyAttestations(ctx, tg, v, ao)
				for what, r := range map[string]struct {
					got []Verified
					err error
				}{"signatures": {sigs, serr}, "attestations": {atts, aerr}} {
					if c.ok {
						if r.err != nil || len(r.got) != 1 || r.got[0].TransparencyLog != "ignored" {
							t.Errorf("%s: %s: %v %+v", c.name, what, r.err, r.got)
						}
						continue
					}
					var te *TLogError
					var ve *VerifyError
					if !errors.As(r.err, &ve) || len(ve.Rejections) != 1 || !errors.As(ve.Rejections[0].Err, &te) || te.HasEntry {
						t.Fatalf("%s: %s: want one TLogError rejection, got %v", c.name, what, r.err)
					}
					if msg := r.err.Error(); !strings.Contains(msg, "no transparency-log entry") || !strings.Contains(msg, "--insecure-ignore-tlog=true") || !strings.Contains(msg, "transparencyLog: ignore") {
						t.Errorf("%s: %s: the error does not say what to do: %s", c.name, what, msg)
					}
				}
			}
		})
	}
}

// TestTLogUncheckedEntry: a legacy signature that carries a Rekor bundle
// annotation is still rejected when the log is required, since bulkhead
// cannot check the entry, and the rejection says so.
func TestTLogUncheckedEntry(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	host, _ := testRegistry(t, true)
	tg := pushImage(t, host, "tlog/entry", "demo.vex.json")
	if err := SignImage(ctx, tg, s, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	signtest.RewriteTagLayer(t, signtest.Tag(tg.Digest, "sig"), nil, 0, func(b []byte, anns map[string]string) ([]byte, map[string]string) {
		anns[cosignRekorAnnotation] = `{"SignedEntryTimestamp":"MEUCIQ==","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"00"}}`
		return b, anns
	})
	_, err := VerifySignatures(ctx, tg, v, VerifyOptions{})
	var te *TLogError
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Rejections) != 1 || !errors.As(ve.Rejections[0].Err, &te) || !te.HasEntry || !strings.Contains(err.Error(), "cannot check yet") {
		t.Fatalf("want a TLogError for an unchecked entry, got %v", err)
	}
	if got, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore}); err != nil || len(got) != 1 {
		t.Fatalf("ignore: %v", err)
	}
}

// TestPolicyTLog: the trust policy's transparencyLog field, per rule: absent
// is required, ignore accepts, anything else is a load error; the command
// line's TLogInsecureIgnore ignores the log for every rule.
func TestPolicyTLog(t *testing.T) {
	ctx := context.Background()
	s, _ := cosignKey(t)
	host, _ := testRegistry(t, true)
	tg := pushImage(t, host, "tlog/policy", "demo.vex.json")
	if err := SignImage(ctx, tg, s, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	keyPath, _ := filepath.Abs(filepath.Join("key", "testdata", "cosign-sigstore.pub"))
	rule := "policies:\n  - {name: r, images: ['**'], keys: [" + keyPath + "]%s}\n"
	for _, c := range []struct {
		name, field string
		o           VerifyOptions
		ok          bool
		want        string
	}{
		{"no field", "", VerifyOptions{}, false, "transparency log is required"},
		{"required", ", transparencyLog: required", VerifyOptions{}, false, "transparency log is required"},
		{"ignore", ", transparencyLog: ignore", VerifyOptions{}, true, "ignore"},
		{"no field, flag", "", VerifyOptions{TLog: TLogInsecureIgnore}, true, "ignore"},
		{"required, flag", ", transparencyLog: required", VerifyOptions{TLog: TLogInsecureIgnore}, true, "ignore"},
	} {
		pol, err := ParsePolicy([]byte(strings.Replace(rule, "%s", c.field, 1)), "")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		res, err := pol.Verify(ctx, tg, c.o, nil)
		switch {
		case c.ok && (err != nil || res[0].TransparencyLog != c.want):
			t.Errorf("%s: %v %+v", c.name, err, res)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	for _, bad := range []string{"Ignore", "off", "false", "true"} {
		_, err := ParsePolicy([]byte(strings.Replace(rule, "%s", ", transparencyLog: "+bad, 1)), "")
		if err == nil || !strings.Contains(err.Error(), "use required (the default) or ignore") {
			t.Errorf("transparencyLog %s: %v", bad, err)
		}
	}
}
