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

// The Pod Security agreement tests run the pod-security-admission fixtures
// (<level>/<version>/<pass|fail>/*.yaml) through bulkhead's Scanner and
// through the admission plugin's own evaluator, and require the same answer
// on every fixture, except the ones psaDivergences lists.
//
// A fixture agrees when
//   - bulkhead reports a PSS finding exactly when the evaluator (every
//     check at the fixture's level and version) forbids the pod, and that
//     is what the fixture's directory says;
//   - the PSS controls bulkhead reports are exactly those the reference
//     fails, control by control (each control evaluated alone by
//     policy.NewEvaluator at that level and version), save one reporting
//     rule documented in docs/kics-kubernetes-mapping.md: where a restricted
//     control overrides a baseline one and fails only on the fields the
//     baseline one already reports (hostPath: restrictedVolumes over
//     hostPathVolumes), bulkhead names the baseline control alone;
//   - every PSS finding points at a field, not just at the pod spec, when
//     the fixture is a fail fixture.

// psaDivergence is a fixture where bulkhead knowingly answers otherwise
// than the admission plugin. Case is <level>/<version>/<pass|fail>/<file>;
// Bulkhead and Reference are the sorted PSS control IDs each fails.
type psaDivergence struct {
	Case      string
	Bulkhead  []string
	Reference []string
	Why       string
}

// psaDivergences is the reviewed list (docs/kics-kubernetes-mapping.md,
// "Pod Security Standards"). bulkhead's PSS verdicts are the admission
// plugin's own code, so there is none; a divergence that appears is a
// bulkhead bug to fix, not to list, unless the plugin itself is wrong.
var psaDivergences = []psaDivergence{}

type psaResult struct {
	cases, agree, diverge, located, failing int
}

// psaAgreement runs every fixture under root and reports each disagreement
// not listed in psaDivergences, and each listed one that did not occur
// (when its fixture is under root).
func psaAgreement(t *testing.T, root string) psaResult {
	t.Helper()
	listed := map[string]*psaDivergence{}
	for i := range psaDivergences {
		listed[psaDivergences[i].Case] = &psaDivergences[i]
	}
	var res psaResult
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", "*", "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no fixtures under %s", root)
	}
	full, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	single := map[policy.CheckID]policy.Evaluator{}
	overrides := map[policy.CheckID][]policy.CheckID{}
	for _, c := range policy.DefaultChecks() {
		ev, err := policy.NewEvaluator([]policy.Check{c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		single[c.ID] = ev
		for _, v := range c.Versions {
			overrides[c.ID] = append(overrides[c.ID], v.OverrideCheckIDs...)
		}
	}
	scanners := map[string]*Scanner{}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		level, version, verdict := parts[0], parts[1], parts[2]
		if level != "baseline" && level != "restricted" {
			continue
		}
		lv, err := api.ParseLevel(level)
		if err != nil {
			t.Fatal(err)
		}
		v, err := api.ParseVersion(version)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		s := scanners[level+"/"+version]
		if s == nil {
			if s, err = New(Options{Level: Level(level), Version: version}); err != nil {
				t.Fatal(err)
			}
			scanners[level+"/"+version] = s
		}
		res.cases++
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := ParseBytes(f, data)
		if err != nil || len(objs) != 1 || objs[0].Pod == nil {
			t.Errorf("%s: parse: %v (%d objects)", rel, err, len(objs))
			continue
		}
		p := objs[0].Pod
		lvv := api.LevelVersion{Level: lv, Version: v}

		// the reference
		allowed := policy.AggregateCheckResults(full.EvaluatePod(lvv, &p.Meta, &p.Spec)).Allowed
		if allowed != (verdict == "pass") {
			t.Errorf("%s: the evaluator says allowed=%v, the fixture's directory %s", rel, allowed, verdict)
		}
		refSet := map[string]bool{}
		for id, ev := range single {
			if !policy.AggregateCheckResults(ev.EvaluatePod(lvv, &p.Meta, &p.Spec)).Allowed {
				refSet[string(id)] = true
			}
		}

		// bulkhead
		fs, err := s.Scan(objs)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		bhSet := map[string]bool{}
		for _, x := range fs {
			if id := pssControl(x.ID); id != "" {
				bhSet[id] = true
			}
		}

		// a restricted control bulkhead folds into the baseline one it
		// overrides is not a difference
		want := map[string]bool{}
		for id := range refSet {
			folded := false
			for _, o := range overrides[policy.CheckID(id)] {
				if bhSet[string(o)] && !bhSet[id] {
					folded = true
				}
			}
			if !folded {
				want[id] = true
			}
		}
		got, ref := sortedSet(bhSet), sortedSet(want)
		same := strings.Join(got, ",") == strings.Join(ref, ",") && (len(got) == 0) == allowed
		d := listed[filepath.ToSlash(rel)]
		switch {
		case same && d != nil:
			t.Errorf("%s: listed as a divergence (%s) but bulkhead now agrees (%v): remove it from psaDivergences and the docs", rel, d.Why, got)
		case same:
			res.agree++
		case d != nil && strings.Join(d.Bulkhead, ",") == strings.Join(got, ",") && strings.Join(d.Reference, ",") == strings.Join(ref, ","):
			res.diverge++
			t.Logf("%s: known divergence: bulkhead %v, reference %v: %s", rel, got, ref, d.Why)
		case d != nil:
			t.Errorf("%s: listed divergence has changed: bulkhead %v (listed %v), reference %v (listed %v)", rel, got, d.Bulkhead, ref, d.Reference)
		default:
			t.Errorf("%s: bulkhead reports %v, pod-security-admission %v (allowed=%v)", rel, got, ref, allowed)
		}

		if verdict == "fail" {
			res.failing++
			// every finding names a field, not only the pod spec
			loc := true
			for _, hs := range pssHits(objs[0], s.pss) {
				for _, h := range hs {
					if h.Path == p.SpecPath {
						loc = false
						t.Errorf("%s: finding %q is not located to a field", rel, h.Message)
					}
				}
			}
			if loc {
				res.located++
			}
		}
	}
	// a listed divergence whose fixture is here must have been seen above;
	// one whose fixture is missing is stale
	for _, d := range psaDivergences {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(d.Case))); err != nil && root != "testdata/psa" {
			t.Errorf("divergence %s: no such fixture under %s: remove it from psaDivergences", d.Case, root)
		}
	}
	t.Logf("%d fixtures: %d agree exactly, %d known divergences; %d/%d fail fixtures located to a field",
		res.cases, res.agree, res.diverge, res.located, res.failing)
	return res
}

// pssControl returns the pod-security-admission control a finding ID
// reports, or "".
func pssControl(id string) string {
	if c, ok := strings.CutPrefix(id, "BH-K8S-PSS-"); ok {
		return c
	}
	for _, c := range Checks {
		if c.ID == id {
			return string(c.PSS)
		}
	}
	return ""
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestPSAFixtures(t *testing.T) {
	psaAgreement(t, "testdata/psa")
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
	psaAgreement(t, dir)
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
