package cyclonedx

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// Each problem met reading a CycloneDX document is a diagnostic with its
// code; the warning strings stay the diagnostics' messages.
func TestDecodeDiagnosticCodes(t *testing.T) {
	nested := `{"type":"library","name":"leaf","version":"1"}`
	for range maxDepth + 2 {
		nested = `{"type":"library","name":"n","version":"1","components":[` + nested + `]}`
	}
	cases := []struct {
		name, components string
		code             diag.Code
		object           string
	}{
		{"bad purl", `[{"type":"library","name":"x","version":"1","purl":"not-a-purl"}]`, diag.SBOMBadPURL, "x"},
		{"odd component", `[{"type":"library","name":"odd","version":"1","hashes":"not a list"}]`, diag.SBOMPartialComponent, "odd"},
		{"too deep", "[" + nested + "]", diag.SBOMTooDeep, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":%s}`, c.components)
			inv, err := Decode(strings.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(inv.Warnings, "\n") != strings.Join(diag.Messages(inv.Diagnostics), "\n") {
				t.Errorf("warnings %q, diagnostics %+v", inv.Warnings, inv.Diagnostics)
			}
			for _, d := range inv.Diagnostics {
				if d.Code == c.code {
					if c.object != "" && (d.Location == nil || d.Location.Object != c.object) {
						t.Errorf("%s at %+v, want %s", d.Code, d.Location, c.object)
					}
					return
				}
			}
			t.Errorf("no %s among %+v", c.code, inv.Diagnostics)
		})
	}
}
