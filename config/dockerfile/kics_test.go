package dockerfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
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

// kicsDivergence is a KICS test file where bulkhead knowingly reports other
// lines than KICS expects. Case is <query>/<file>; Bulkhead and KICS are the
// sorted lines each flags for the query.
type kicsDivergence struct {
	Case     string
	Check    string
	Bulkhead []int
	KICS     []int
	Why      string
}

// kicsDivergences is the reviewed list (docs/kics-dockerfile-mapping.md).
// It is empty: on every test file of the mapped queries bulkhead reports
// exactly KICS's lines. A new difference is a bulkhead bug to fix or, with
// its reason, an entry here; an entry that stops occurring fails the test.
var kicsDivergences = []kicsDivergence{}

// TestKICSAgreement runs every mapped check over the KICS query's positive
// and negative Dockerfiles. A case (one file) agrees when bulkhead reports
// exactly the lines KICS expects (none for a negative file). Every case must
// agree, except those kicsDivergences lists.
func TestKICSAgreement(t *testing.T) {
	kicsAgreement(t, func(q string) string { return filepath.Join("testdata/kics", q) })
}

// TestKICSCorpus runs the same over the shared corpus's copy of the KICS
// queries (<query>/test/), when it is there.
func TestKICSCorpus(t *testing.T) {
	root := testcorpus.Dir("dockerfiles", "kics-queries")
	if root == "" {
		t.Skip("no shared corpus dockerfiles/kics-queries beside the repository")
	}
	kicsAgreement(t, func(q string) string { return filepath.Join(root, q, "test") })
}

func kicsAgreement(t *testing.T, dirOf func(query string) string) {
	listed := map[string]*kicsDivergence{}
	for i := range kicsDivergences {
		listed[kicsDivergences[i].Case] = &kicsDivergences[i]
	}
	seen := map[string]bool{}
	queries := make([]string, 0, len(kicsMapping))
	for q := range kicsMapping {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	totalCases, totalAgree, totalDiverge := 0, 0, 0
	for _, q := range queries {
		id := kicsMapping[q]
		dir := dirOf(q)
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
		cases, agree, diverge := 0, 0, 0
		for _, file := range files {
			base := filepath.Base(file)
			key := q + "/" + base
			seen[key] = true
			f, err := ParseFile(file)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			got := []int{}
			for _, fd := range Lint(f, Options{}) {
				if fd.ID == id {
					got = append(got, fd.Location.StartLine)
				}
			}
			want := append([]int{}, expected[base]...)
			sort.Ints(got)
			sort.Ints(want)
			cases++
			d := listed[key]
			same := fmt.Sprint(got) == fmt.Sprint(want)
			switch {
			case same && d != nil:
				t.Errorf("%s: listed as a divergence but bulkhead now agrees with KICS (lines %v): remove it from kicsDivergences and the docs", key, got)
			case same:
				agree++
			case d != nil && fmt.Sprint(got) == fmt.Sprint(orEmpty(d.Bulkhead)) && fmt.Sprint(want) == fmt.Sprint(orEmpty(d.KICS)):
				diverge++
				t.Logf("known divergence %s: bulkhead lines %v, KICS lines %v: %s", key, got, want, d.Why)
			case d != nil:
				t.Errorf("%s: listed divergence changed: bulkhead lines %v (listed %v), KICS lines %v (listed %v)", key, got, d.Bulkhead, want, d.KICS)
			default:
				t.Errorf("%s (%s): bulkhead lines %v, KICS lines %v: fix bulkhead or, if bulkhead is right, list it with the reason in kicsDivergences", key, id, got, want)
			}
		}
		if cases == 0 {
			t.Errorf("%s: no cases", q)
			continue
		}
		t.Logf("%-45s %-10s %2d/%2d cases agree exactly, %d known divergences", q, id, agree, cases, diverge)
		totalCases += cases
		totalAgree += agree
		totalDiverge += diverge
	}
	for _, d := range kicsDivergences {
		if !seen[d.Case] {
			t.Errorf("divergence %s: no such KICS test file: remove it from kicsDivergences", d.Case)
		}
	}
	t.Logf("overall: %d/%d cases agree exactly, %d known divergences", totalAgree, totalCases, totalDiverge)
}

func orEmpty(l []int) []int {
	if l == nil {
		return []int{}
	}
	return l
}
