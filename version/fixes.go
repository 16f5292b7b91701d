package version

// fix holds corrections for cases where semantic disagrees with an
// ecosystem's own published vectors (see version_test.go and the
// testdata/*.txt files). It returns ok=false when semantic is right.
//
// Keep each correction narrow and documented with the vector that shows it,
// so that matching stays identical to osv-scanner everywhere else.
func fix(eco, a, b string) (int, bool) {
	return 0, false
}
