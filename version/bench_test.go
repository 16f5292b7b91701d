package version

import "testing"

func BenchmarkCompareDebian(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("Debian:12", "1:2.3.3op2-16+deb12u1", "1:2.3.3op2-16+deb12u2~bpo1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkComparePyPI(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("PyPI", "1.0b2.post345.dev456", "1.0rc1"); err != nil {
			b.Fatal(err)
		}
	}
}
