package dockerfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// kicsMapping maps each KICS Dockerfile query that a bulkhead check covers
// to that check (docs/kics-dockerfile-mapping.md has the table and the
// queries left unmapped).
var kicsMapping = map[string]string{
	"missing_user_instruction":                    "BH-DF-001",
	"last_user_is_root":                           "BH-DF-002",
	"run_using_sudo":                              "BH-DF-003",
	"curl_or_wget_instead_of_add":                 "BH-DF-004",
	"add_instead_of_copy":                         "BH-DF-005",
	"image_version_not_explicit":                  "BH-DF-006",
	"image_version_using_latest":                  "BH-DF-007",
	"apt_get_missing_flags_to_avoid_manual_input": "BH-DF-013",
	"apt_get_not_avoiding_additional_packages":    "BH-DF-014",
	"apt_get_install_lists_were_not_deleted":      "BH-DF-015",
	"apk_add_using_local_cache_path":              "BH-DF-016",
	"pip_install_keeping_cached_packages":         "BH-DF-017",
	"healthcheck_instruction_missing":             "BH-DF-018",
	"exposing_port_22":                            "BH-DF-019",
}

type kicsExpected struct {
	Line     int    `json:"line"`
	FileName string `json:"fileName"`
	// Some KICS files spell it in lower case.
	FileNameLower string `json:"filename"`
}

// TestKICSAgreement runs every mapped check over the KICS query's positive
// and negative Dockerfiles. A case (one file) agrees when bulkhead reports
// exactly the lines KICS expects (none for a negative file). Agreement must
// be at least 95% per query.
func TestKICSAgreement(t *testing.T) {
	root := "testdata/kics"
	queries := make([]string, 0, len(kicsMapping))
	for q := range kicsMapping {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	totalCases, totalAgree := 0, 0
	for _, q := range queries {
		id := kicsMapping[q]
		dir := filepath.Join(root, q)
		expected := map[string][]int{}
		raw, err := os.ReadFile(filepath.Join(dir, "positive_expected_result.json"))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var exp []kicsExpected
		if err := json.Unmarshal(raw, &exp); err != nil {
			t.Fatalf("%s: expected results: %v", q, err)
		}
		for _, e := range exp {
			name := e.FileName
			if name == "" {
				name = e.FileNameLower
			}
			expected[name] = append(expected[name], e.Line)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.dockerfile"))
		others, _ := filepath.Glob(filepath.Join(dir, "positive[0-9]"))
		files = append(files, others...)
		cases, agree := 0, 0
		for _, file := range files {
			base := filepath.Base(file)
			f, err := ParseFile(file)
			if err != nil {
				t.Errorf("%s/%s: %v", q, base, err)
				continue
			}
			var got []int
			for _, fd := range Lint(f, Options{}) {
				if fd.ID == id {
					got = append(got, fd.Location.StartLine)
				}
			}
			want := expected[base]
			sort.Ints(got)
			sort.Ints(want)
			cases++
			if fmt.Sprint(got) == fmt.Sprint(want) {
				agree++
			} else {
				t.Logf("%s/%s (%s): bulkhead lines %v, KICS lines %v", q, base, id, got, want)
			}
		}
		if cases == 0 {
			t.Errorf("%s: no cases", q)
			continue
		}
		pct := 100 * float64(agree) / float64(cases)
		t.Logf("%-45s %-10s %2d/%2d cases agree (%.0f%%)", q, id, agree, cases, pct)
		if pct < 95 {
			t.Errorf("%s: agreement %.1f%% < 95%%", q, pct)
		}
		totalCases += cases
		totalAgree += agree
	}
	t.Logf("overall: %d/%d cases agree (%.1f%%)", totalAgree, totalCases, 100*float64(totalAgree)/float64(totalCases))
	if !strings.Contains(fmt.Sprint(kicsMapping), "BH-DF-001") {
		t.Fatal("mapping lost")
	}
}
