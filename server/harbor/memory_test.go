package harbor_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
)

// discardResponse is an http.ResponseWriter over HeapGrowth's probe.
type discardResponse struct {
	io.Writer
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header { return d.h }
func (d *discardResponse) WriteHeader(s int)   { d.status = s }

// While a report of a large scan is served, the live heap grows by far
// less than the report: the vulnerability report is written one item at a
// time and the SBOM straight from the streaming writers, not marshalled
// whole. (10,000 padded packages, one padded finding each.)
func TestReportMemory(t *testing.T) {
	inv := sbomtest.Padded(10_000)
	inv.Sort()
	fs := make([]finding.Finding, 0, len(inv.Packages))
	for i, p := range inv.Packages {
		fs = append(fs, finding.Finding{ID: fmt.Sprintf("CVE-2026-%05d", i), Kind: finding.KindVulnerability, Severity: finding.High,
			Description: strings.Repeat("d", 600), Target: "big", Package: &finding.Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL},
			FixedVersions: []string{"9.9.9"}, References: []string{"https://example.com/" + p.Name},
			CVSS: []finding.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}}})
	}
	b := newBackend(t)
	id := b.put(&harbor.Result{Artifact: harbor.Artifact{Repository: "big", Digest: "sha256:" + strings.Repeat("b", 64)}, ScannedAt: time.Now(), Inventory: inv, Findings: fs})
	h := harbor.New(b, harbor.Options{Logger: slog.New(slog.DiscardHandler)})
	// The bound is the writers' own (sbom/spdx's TestEncodeMemory allows
	// a quarter: its skeleton holds the licences and relationships).
	for _, tc := range []struct {
		accept, query string
		frac          int64
	}{
		{harbor.MediaTypeVulnReport, "", 8},
		{harbor.MediaTypeSBOMReport, "sbom_media_type=application%2Fspdx%2Bjson", 4},
		{harbor.MediaTypeSBOMReport, "sbom_media_type=application%2Fvnd.cyclonedx%2Bjson", 8},
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/scan/"+id+"/report?"+tc.query, nil)
		req.Header.Set("Accept", tc.accept)
		var status int
		n, grew, err := sbomtest.HeapGrowth(func(w io.Writer) error {
			rw := &discardResponse{Writer: w, h: http.Header{}}
			h.ServeHTTP(rw, req)
			status = rw.status
			return nil
		})
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s %s: %d %v", tc.accept, tc.query, status, err)
		}
		t.Logf("%s %s: %d MiB written, live heap grew by %d KiB", tc.accept, tc.query, n>>20, grew>>10)
		if n < 5<<20 {
			t.Fatalf("only %d bytes written", n)
		}
		if grew > n/tc.frac {
			t.Errorf("%s %s: live heap grew by %d MiB while writing %d MiB: the report is held in memory", tc.accept, tc.query, grew>>20, n>>20)
		}
	}
}
