package version

import "testing"

func FuzzCompare(f *testing.F) {
	for _, vf := range vectorFiles {
		for i, v := range readVectors(f, vf.file) {
			if i%20 == 0 {
				f.Add(vf.eco, v.a, v.b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, eco, a, b string) {
		c, err := Compare(eco, a, b)
		if err == nil && (c < -1 || c > 1) {
			t.Fatalf("Compare = %d", c)
		}
	})
}
