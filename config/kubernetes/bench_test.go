package kubernetes

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/cel"
)

// benchStream is every committed example and PSA fixture as one stream.
func benchStream(b *testing.B) ([]byte, int) {
	b.Helper()
	var data []byte
	files, _ := filepath.Glob("testdata/examples/*.yaml")
	more, _ := filepath.Glob("testdata/psa/*/v1.37/*/*.yaml")
	files = append(files, more...)
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, "\n---\n"...)
		data = append(data, d...)
	}
	objs, err := ParseBytes("bench", data)
	if err != nil {
		b.Fatal(err)
	}
	return data, len(objs)
}

// BenchmarkScan parses and checks a stream of real manifests; the
// manifests/s metric is what bench/k8s.sh reports.
func BenchmarkScan(b *testing.B) {
	data, n := benchStream(b)
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		objs, err := ParseBytes("bench", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Scan(objs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "manifests/s")
}

// BenchmarkGoChecks and BenchmarkCELBuiltin compare the same checks
// written in Go and in CEL, on parsed objects.
func BenchmarkGoChecks(b *testing.B) {
	data, n := benchStream(b)
	objs, _ := ParseBytes("bench", data)
	ids := map[string]bool{}
	pol, _ := cel.Builtin()
	for _, c := range pol.Checks {
		ids[c.ID] = true
	}
	var checks []*Check
	for _, c := range Checks {
		if ids[c.ID] && c.run != nil {
			checks = append(checks, c)
		}
	}
	s, _ := New(Options{})
	var pss []pssCheck
	for _, c := range s.pss {
		if ids[s.byPSS[c.id].ID] {
			pss = append(pss, c)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range objs {
			for _, c := range checks {
				c.run(o, nil)
			}
			if o.Pod != nil {
				pssHits(o, pss)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "manifests/s")
}

func BenchmarkCELBuiltin(b *testing.B) {
	data, n := benchStream(b)
	objs, _ := ParseBytes("bench", data)
	pol, err := cel.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	c := NewCELChecks(pol)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range objs {
			if _, err := c.CheckObject(o); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "manifests/s")
}
