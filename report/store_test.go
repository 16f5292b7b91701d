package report

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// TestStoreRoundTrip: findings come back out of a Store as they went in
// (sorted as match.Sort sorts findings without a package), and the writers
// give the same bytes for a Store as for the slice.
func TestStoreRoundTrip(t *testing.T) {
	var in []finding.Finding
	for i := 0; i < 5000; i++ {
		f := finding.Finding{ID: fmt.Sprintf("BH-K8S-%03d", i%7), Kind: finding.KindMisconfiguration, Severity: finding.Severity(i % 5),
			SeveritySource: "bulkhead", Title: fmt.Sprintf("check %d", i%7), Description: fmt.Sprintf("Pod p%d: container c%d: bad", i/7, i%3),
			Target: fmt.Sprintf("f%d.yaml", i%2), Location: &finding.Location{Path: fmt.Sprintf("f%d.yaml", i%2), StartLine: 5000 - i},
			Fix: "fix it", References: []string{"https://example.com/" + fmt.Sprint(i%7)}}
		switch i % 11 {
		case 0:
			f.Description = "no colon here"
		case 1:
			f.Suppressed = &finding.Suppression{Kind: "ignore", Statement: "why"}
		case 2:
			f.Package = &finding.Package{Name: "p", Version: "1"}
			f.Kind = finding.KindVulnerability
		case 3:
			f.Location = nil
		}
		in = append(in, f)
	}
	s := NewStore()
	s.AddAll(in)
	want := append([]finding.Finding(nil), in...)
	target := map[string]int{"f0.yaml": 0, "f1.yaml": 1}
	line := func(f finding.Finding) int {
		if f.Location == nil {
			return 0
		}
		return f.Location.StartLine
	}
	sortStable(want, func(a, b finding.Finding) bool {
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if target[a.Target] != target[b.Target] {
			return target[a.Target] < target[b.Target]
		}
		return line(a) < line(b)
	})
	s.Sort()
	var got []finding.Finding
	s.Each(func(f *finding.Finding) error { got = append(got, *f); return nil })
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("finding %d:\n%+v\n%+v", i, got[i], want[i])
			}
		}
		t.Fatalf("%d findings, want %d", len(got), len(want))
	}
	if n := len(Summary(want)); s.Active() != Summary(want)["CRITICAL"]+Summary(want)["HIGH"]+Summary(want)["MEDIUM"]+Summary(want)["LOW"]+Summary(want)["UNKNOWN"] || n != 5 {
		t.Errorf("active %d", s.Active())
	}
	inv := &inventory.Inventory{Target: inventory.Target{Name: "x", Source: "config"}}
	for name, w := range map[string]func(*bytes.Buffer, *Result) error{
		"json":  func(b *bytes.Buffer, r *Result) error { return ResultJSON(b, r) },
		"table": func(b *bytes.Buffer, r *Result) error { return ResultTable(b, r, Options{}) },
		"sarif": func(b *bytes.Buffer, r *Result) error { return SARIF(b, r, "test") },
	} {
		var a, b bytes.Buffer
		if err := w(&a, &Result{Inventory: inv, Scanners: []string{"misconfig"}, Findings: want}); err != nil {
			t.Fatal(err)
		}
		if err := w(&b, &Result{Inventory: inv, Scanners: []string{"misconfig"}, Store: s}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s differs for a Store", name)
		}
	}
}

func sortStable(fs []finding.Finding, less func(a, b finding.Finding) bool) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && less(fs[j], fs[j-1]); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}
