package sqlstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func testProvenance() *store.Provenance {
	return &store.Provenance{
		Base: &store.BaseImage{
			Detection: base.Detection{Method: base.MethodLayers, BaseRef: "alpine:3.20", Layers: 1, Of: 3, Reason: "the image's first 1 of 3 layers are exactly alpine:3.20's layers"},
			Recommendation: &base.Recommendation{Image: "registry.example/app:1",
				Current:    base.Summary{Ref: "alpine:3.20", OS: "Alpine Linux v3.20", Vulns: map[string]int{"HIGH": 2}},
				Candidates: []base.Candidate{{Summary: base.Summary{Ref: "cgr.dev/chainguard/static"}, VulnsDelta: map[string]int{"HIGH": -2}, Gains: []string{"2 fewer HIGH"}, Score: 10}}},
		},
		Signature: &store.SignatureStatus{Status: store.SignatureVerified, CheckedBy: store.CheckedByServer, CheckedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
			Rules: []store.SignatureRule{{Policy: "release", Key: "release.pub", TransparencyLog: "ignore",
				Signatures:   []store.SignatureRef{{Layout: "legacy", Where: "sha256-abc.sig"}},
				Attestations: []store.SignatureRef{{Layout: "legacy", Where: "sha256-abc.att", PredicateType: "https://cyclonedx.org/bom"}}}}},
	}
}

// TestProvenance: a scan's provenance is written in PutScan's transaction
// and read back as it was; bad provenance fails the whole scan.
func TestProvenance(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sc := genScan(1, 20)
		sc.Provenance = testProvenance()
		id := putT(t, s, sc, nil)
		got, err := s.Provenance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, sc.Provenance) {
			t.Errorf("provenance read back\n%+v\nwant\n%+v", got, sc.Provenance)
		}
		// Only the signature.
		sig := genScan(2, 20)
		sig.Provenance = &store.Provenance{Signature: &store.SignatureStatus{Status: store.SignatureFailed, Reason: "not signed", CheckedBy: store.CheckedByUpload}}
		id2 := putT(t, s, sig, nil)
		if got, err := s.Provenance(ctx, id2); err != nil || got.Base != nil || got.Signature.Reason != "not signed" {
			t.Errorf("signature only: %+v, %v", got, err)
		}
		// A scan without provenance.
		id3 := putT(t, s, genScan(3, 20), nil)
		if _, err := s.Provenance(ctx, id3); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("no provenance: %v, want ErrNotFound", err)
		}
		// Bad provenance: the scan is refused, nothing is written.
		before, _ := s.Images(ctx, store.ImageFilter{})
		bad := genScan(4, 20)
		bad.Provenance = &store.Provenance{Signature: &store.SignatureStatus{Status: "trust-me", CheckedBy: store.CheckedByUpload}}
		if _, err := s.PutScan(ctx, bad, nil); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "trust-me") {
			t.Errorf("bad status: %v", err)
		}
		huge := genScan(5, 20)
		huge.Provenance = &store.Provenance{Base: &store.BaseImage{Detection: base.Detection{Method: "none", Reason: strings.Repeat("x", maxProvenance)}}}
		if _, err := s.PutScan(ctx, huge, nil); !errors.Is(err, store.ErrTooLarge) {
			t.Errorf("huge base: %v", err)
		}
		if after, _ := s.Images(ctx, store.ImageFilter{}); len(after) != len(before) {
			t.Errorf("refused scans were stored: %d images, before %d", len(after), len(before))
		}
	})
}

// TestFleetTrend: a snapshot records the fleet's open findings by severity
// as Fleet counts them; the day's latest snapshot wins, an older one does
// not replace it; days come oldest first.
func TestFleetTrend(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d1 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
		putT(t, s, genScan(1, 40), nil)
		if err := s.SnapshotFleet(ctx, d1); err != nil {
			t.Fatal(err)
		}
		fl1, _ := s.Fleet(ctx)
		putT(t, s, genScan(2, 40), nil)
		putT(t, s, genScan(3, 80), nil)
		d2 := d1.Add(24*time.Hour + 5*time.Hour)
		if err := s.SnapshotFleet(ctx, d2); err != nil {
			t.Fatal(err)
		}
		fl2, _ := s.Fleet(ctx)
		// An earlier snapshot of day 2 arriving late changes nothing.
		putT(t, s, genScan(4, 40), nil)
		if err := s.SnapshotFleet(ctx, d2.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		pts, err := s.FleetTrend(ctx, d1.Add(-48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != 2 {
			t.Fatalf("%d points, want 2: %+v", len(pts), pts)
		}
		for i, c := range []struct {
			day time.Time
			fl  *store.Fleet
		}{{d1.Truncate(24 * time.Hour), fl1}, {d2.Truncate(24 * time.Hour), fl2}} {
			p := pts[i]
			if !p.Day.Equal(c.day) || p.Images != c.fl.Images {
				t.Errorf("point %d: day %s images %d, want %s %d", i, p.Day, p.Images, c.day, c.fl.Images)
			}
			for _, sev := range []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"} {
				if p.Findings[sev] != c.fl.Findings[sev] {
					t.Errorf("point %d %s: %d, fleet %d", i, sev, p.Findings[sev], c.fl.Findings[sev])
				}
			}
		}
		if pts[1].Findings["HIGH"] <= pts[0].Findings["HIGH"] {
			t.Errorf("day 2 should have more HIGH findings than day 1: %+v", pts)
		}
		if got, _ := s.FleetTrend(ctx, d2); len(got) != 1 {
			t.Errorf("since day 2: %d points", len(got))
		}
	})
}
