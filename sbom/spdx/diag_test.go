package spdx

import (
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// A package whose purl is not valid is kept without it, with a diagnostic
// of code sbom.bad-purl naming the package.
func TestDecodeBadPURLDiagnostic(t *testing.T) {
	doc := `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"x","documentNamespace":"https://example.com/x",
"creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: test"]},
"packages":[{"SPDXID":"SPDXRef-p","name":"pkg-a","versionInfo":"1","downloadLocation":"NOASSERTION",
"externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"not-a-purl"}]}]}`
	inv, err := Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Diagnostics) != 1 || len(inv.Warnings) != 1 || inv.Warnings[0] != inv.Diagnostics[0].Message {
		t.Fatalf("diagnostics %+v, warnings %q", inv.Diagnostics, inv.Warnings)
	}
	if d := inv.Diagnostics[0]; d.Code != diag.SBOMBadPURL || d.Location == nil || d.Location.Object != "pkg-a" {
		t.Errorf("%+v %+v", d, d.Location)
	}
}
