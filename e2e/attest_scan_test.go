package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestImageAttestAndSBOMFromAttestation scans the demo image in a registry,
// attaches the CycloneDX result as a signed attestation in one go
// (image --attest), checks cosign verifies it, then scans the SBOM taken
// from the verified attestation (sbom --from-attestation) and gets the same
// findings. A wrong key is refused.
func TestImageAttestAndSBOMFromAttestation(t *testing.T) {
	e := newSignEnv(t)
	ref := e.reg.push(t, demoImage(t), "attest/demo:1")

	direct := mustBulkhead(t, "image", ref, "--quiet", "--format", "json", "--db-max-age", "0",
		"--attest", "cyclonedx", "--attest-key", e.bkKey, "--tlog-upload=false")
	mustCosign(t, e.cosign["v2"], e.dir, "verify-attestation", "--key", e.bkPub, "--type", "cyclonedx",
		"--insecure-ignore-tlog=true", "--allow-insecure-registry", ref)

	viaAtt := mustBulkhead(t, "sbom", "--from-attestation", "--key", e.bkPub, "--insecure-ignore-tlog", "--allow-insecure-registry",
		"--quiet", "--format", "json", "--db-max-age", "0", ref)
	ids := func(doc string) []string {
		var d struct {
			Findings []struct {
				ID      string `json:"id"`
				Package struct{ Name, Version string }
			} `json:"findings"`
		}
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("decode: %v", err)
		}
		var out []string
		for _, f := range d.Findings {
			out = append(out, f.Package.Name+"@"+f.Package.Version+" "+f.ID)
		}
		return out
	}
	a, b := ids(direct), ids(viaAtt)
	onlyA, onlyB := diffSets(a, b)
	if len(onlyA)+len(onlyB) > 0 || len(a) == 0 {
		t.Errorf("findings differ between the image scan and its attested SBOM:\nimage only: %v\nSBOM only: %v", onlyA, onlyB)
	}
	if !strings.Contains(strings.Join(a, "\n"), "minimist@1.2.5 GHSA-xvch-5gv4-984h") {
		t.Errorf("expected the minimist advisory in %v", a)
	}
	if _, errOut, code := bulkhead("sbom", "--from-attestation", "--key", e.csPub, "--insecure-ignore-tlog", "--allow-insecure-registry", "--quiet", ref); code == 0 {
		t.Errorf("an SBOM attested with another key was accepted: %s", errOut)
	}
}
