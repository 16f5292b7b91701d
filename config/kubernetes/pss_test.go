package kubernetes

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// psaAgreement runs the pod-security-admission fixtures under root
// (<level>/<version>/<pass|fail>/*.yaml) and returns, per control family,
// how many fixtures bulkhead judged as the fixtures say.
type psaTally struct{ agree, total, located, failing int }

func psaAgreement(t *testing.T, root string) map[string]*psaTally {
	t.Helper()
	tally := map[string]*psaTally{}
	levels, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, lv := range levels {
		versions, _ := os.ReadDir(filepath.Join(root, lv.Name()))
		for _, ver := range versions {
			s, err := New(Options{Level: Level(lv.Name()), Version: ver.Name()})
			if err != nil {
				t.Fatal(err)
			}
			for _, verdict := range []string{"pass", "fail"} {
				dir := filepath.Join(root, lv.Name(), ver.Name(), verdict)
				files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
				for _, f := range files {
					fam := family(strings.TrimRight(strings.TrimSuffix(filepath.Base(f), ".yaml"), "0123456789"))
					tl := tally[fam]
					if tl == nil {
						tl = &psaTally{}
						tally[fam] = tl
					}
					tl.total++
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					objs, err := ParseBytes(f, data)
					if err != nil || len(objs) != 1 || objs[0].Pod == nil {
						t.Errorf("%s: parse: %v (%d objects)", f, err, len(objs))
						continue
					}
					hits := pssHits(objs[0], s.pss)
					if verdict == "pass" {
						if len(hits) == 0 {
							tl.agree++
						} else {
							t.Logf("%s: expected pass, got %v", f, keys(hits))
						}
						continue
					}
					tl.failing++
					// a restricted control that overrides a baseline one
					// (restrictedVolumes over hostPathVolumes) is reported
					// as the baseline one where both fail on one field
					accept := map[string]bool{fam: true}
					for _, c := range s.pss {
						if family(string(c.id)) == fam {
							for _, o := range c.overrides {
								accept[family(string(o))] = true
							}
						}
					}
					for id, hs := range hits {
						if !accept[family(string(id))] {
							continue
						}
						tl.agree++
						// a located hit names a field, not just the pod spec
						for _, h := range hs {
							if h.Path != objs[0].Pod.SpecPath {
								tl.located++
								break
							}
						}
						break
					}
				}
			}
		}
	}
	return tally
}

// family folds a control's level variants together: capabilities_baseline
// and capabilities_restricted are one control.
func family(id string) string {
	id = strings.ToLower(id)
	id = strings.TrimSuffix(id, "_baseline")
	id = strings.TrimSuffix(id, "_restricted")
	return id
}

func keys(m map[policy.CheckID][]Hit) []string {
	var ks []string
	for k := range m {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	return ks
}

func reportPSA(t *testing.T, tally map[string]*psaTally) {
	t.Helper()
	var fams []string
	for f := range tally {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	var agree, total, located, failing int
	t.Logf("%-28s %8s %8s %9s", "control", "agree", "cases", "located")
	for _, f := range fams {
		tl := tally[f]
		t.Logf("%-28s %8d %8d %5d/%-4d", f, tl.agree, tl.total, tl.located, tl.failing)
		agree += tl.agree
		total += tl.total
		located += tl.located
		failing += tl.failing
		if float64(tl.agree) < 0.95*float64(tl.total) {
			t.Errorf("control %s: agreement %d/%d below 95%%", f, tl.agree, tl.total)
		}
		// every failing fixture's finding must point at a field, not just the pod
		if tl.located < tl.agree-(tl.total-tl.failing) {
			t.Errorf("control %s: %d of %d failing fixtures located to a field", f, tl.located, tl.failing)
		}
	}
	t.Logf("%-28s %8d %8d %5d/%-4d", "TOTAL", agree, total, located, failing)
	if total == 0 {
		t.Fatal("no fixtures")
	}
}

func TestPSAFixtures(t *testing.T) {
	tally := psaAgreement(t, "testdata/psa")
	reportPSA(t, tally)
}

// TestPSAFixturesAllVersions runs every level and version the module ships
// (its test/testdata, from the module cache).
func TestPSAFixturesAllVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "test", "testdata")
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("module k8s.io/pod-security-admission not in the module cache: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no fixtures: %v", err)
	}
	reportPSA(t, psaAgreement(t, dir))
}

// TestSelectPSSMatchesEvaluator checks that the per-control selection gives
// the same verdict as the admission plugin's own evaluator, on every
// fixture at every level and version.
func TestSelectPSSMatchesEvaluator(t *testing.T) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/psa/*/*/*/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		objs, err := ParseBytes(f, data)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v", f, err)
		}
		p := objs[0].Pod
		for _, lvl := range []api.Level{api.LevelBaseline, api.LevelRestricted} {
			for _, vs := range []string{"v1.0", "v1.22", "v1.24", "v1.25", "v1.30", "v1.35", "latest"} {
				v, _ := api.ParseVersion(vs)
				want := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: lvl, Version: v}, &p.Meta, &p.Spec)).Allowed
				got := true
				for _, c := range selectPSS(lvl, v) {
					if !c.fn(&p.Meta, &p.Spec).Allowed {
						got = false
					}
				}
				if got != want {
					t.Errorf("%s at %s %s: allowed=%v, evaluator says %v", f, lvl, vs, got, want)
				}
			}
		}
	}
}
