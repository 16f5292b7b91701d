package kubernetes

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
)

// kicsMapping says which bulkhead checks answer a KICS Kubernetes query.
// docs/kics-kubernetes-mapping.md is this table with the reasons; a query
// absent here has no bulkhead counterpart (cluster-component flags, RBAC,
// PodSecurityPolicy, network policies...).
var kicsMapping = map[string][]string{
	"container_is_privileged":                       {"BH-K8S-003"},
	"privilege_escalation_allowed":                  {"BH-K8S-021"},
	"shared_host_ipc_namespace":                     {"BH-K8S-002"},
	"shared_host_network_namespace":                 {"BH-K8S-002"},
	"shared_host_pid_namespace":                     {"BH-K8S-002"},
	"containers_with_sys_admin_capabilities":        {"BH-K8S-004"},
	"net_raw_capabilities_not_being_dropped":        {"BH-K8S-025"},
	"cpu_limits_not_set":                            {"BH-K8S-102"},
	"memory_limits_not_defined":                     {"BH-K8S-103"},
	"image_without_digest":                          {"BH-K8S-106"},
	"invalid_image":                                 {"BH-K8S-105"},
	"root_container_not_mounted_as_read_only":       {"BH-K8S-101"},
	"containers_running_as_root":                    {"BH-K8S-109"},
	"seccomp_profile_is_not_configured":             {"BH-K8S-024", "BH-K8S-010"},
	"service_account_token_automount_not_disabled":  {"BH-K8S-104"},
	"docker_daemon_socket_is_exposed_to_containers": {"BH-K8S-110"},
	"cluster_allows_unsafe_sysctls":                 {"BH-K8S-011"},
	"workload_host_port_not_specified":              {"BH-K8S-006"},
	// RBAC and Secrets hygiene
	"rbac_wildcard_in_rule":                                  {RBACWildcard},
	"rbac_roles_allow_privilege_escalation":                  {RBACEscalate},
	"rbac_roles_with_impersonate_permission":                 {RBACImpersonate},
	"rbac_roles_with_exec_permission":                        {RBACExecAttach},
	"rbac_roles_with_attach_permission":                      {RBACExecAttach},
	"rbac_roles_with_read_secrets_permissions":               {RBACReadSecrets},
	"service_account_allows_access_secrets":                  {RBACReadSecrets},
	"cluster_admin_role_binding_with_super_user_permissions": {RBACClusterAdmin},
	"role_binding_to_default_service_account":                {RBACDefaultSA},
	"secrets_as_environment_variables":                       {SecretEnvCheckID},
}

type kicsExpected struct {
	QueryName string `json:"queryName"`
	Line      int    `json:"line"`
	FileName  string `json:"fileName"`
	// some KICS queries misspell the key
	FineName string `json:"fineName"`
}

type kicsTally struct {
	files, agree, diverge int
}

// kicsAgreement runs the mapped queries' test files under root. A file
// agrees when bulkhead's mapped checks flag exactly the lines KICS expects
// (none for a negative file). A file that does not agree must be listed in
// kicsDivergences with exactly the lines seen; a listed file that agrees,
// or whose lines changed, or that is missing, fails the test.
func kicsAgreement(t *testing.T, root string) map[string]*kicsTally {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*kicsDivergence{}
	for i := range kicsDivergences {
		listed[kicsDivergences[i].Case] = &kicsDivergences[i]
	}
	seen := map[string]bool{}
	out := map[string]*kicsTally{}
	for q, ids := range kicsMapping {
		dir := filepath.Join(root, q, "test")
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: no test cases under %s", q, root)
			continue
		}
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		tl := &kicsTally{}
		out[q] = tl
		var expected []kicsExpected
		if b, err := os.ReadFile(filepath.Join(dir, "positive_expected_result.json")); err == nil {
			if err := json.Unmarshal(b, &expected); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			positives, _ := filepath.Glob(filepath.Join(dir, "positive*.yaml"))
			for i := range expected {
				if expected[i].FileName == "" {
					expected[i].FileName = expected[i].FineName
				}
				if expected[i].FileName == "" && len(positives) == 1 {
					// older queries name no file when there is one
					expected[i].FileName = filepath.Base(positives[0])
				}
				if expected[i].FileName == "" {
					t.Fatalf("%s: an expected result names no file", q)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			base := filepath.Base(f)
			if !strings.HasPrefix(base, "positive") && !strings.HasPrefix(base, "negative") || strings.HasSuffix(base, ".json") && !isManifestJSON(f) {
				continue
			}
			key := q + "/" + base
			seen[key] = true
			tl.files++
			_, fs := scanFile(t, s, f)
			gotSet, wantSet := map[int]bool{}, map[int]bool{}
			for _, x := range fs {
				if want[x.ID] && x.Location != nil {
					gotSet[x.Location.StartLine] = true
				}
			}
			for _, e := range expected {
				if e.FileName == base {
					wantSet[e.Line] = true
				}
			}
			got, kics := sortedLines(gotSet), sortedLines(wantSet)
			d := listed[key]
			switch {
			case fmt.Sprint(got) == fmt.Sprint(kics) && d != nil:
				t.Errorf("%s: listed as a divergence but bulkhead now agrees with KICS (lines %v): remove it from kicsDivergences and docs/kics-kubernetes-mapping.md", key, got)
			case fmt.Sprint(got) == fmt.Sprint(kics):
				tl.agree++
			case d != nil && fmt.Sprint(got) == fmt.Sprint(linesOrEmpty(d.Bulkhead)) && fmt.Sprint(kics) == fmt.Sprint(linesOrEmpty(d.KICS)):
				tl.diverge++
				t.Logf("    known divergence %s: bulkhead lines %v, KICS lines %v: %s", key, got, kics, d.Why)
			case d != nil:
				t.Errorf("%s: listed divergence changed: bulkhead lines %v (listed %v), KICS lines %v (listed %v)", key, got, d.Bulkhead, kics, d.KICS)
			default:
				t.Errorf("%s (%s): bulkhead lines %v, KICS lines %v: fix bulkhead or, if bulkhead is right, list it with the reason in kicsDivergences", key, strings.Join(ids, ","), got, kics)
			}
		}
	}
	for _, d := range kicsDivergences {
		if !seen[d.Case] {
			t.Errorf("divergence %s: no such KICS test file under %s: remove it from kicsDivergences", d.Case, root)
		}
	}
	return out
}

func sortedLines(m map[int]bool) []int {
	out := []int{}
	for l := range m {
		out = append(out, l)
	}
	sort.Ints(out)
	return out
}

func linesOrEmpty(l []int) []int {
	if l == nil {
		return []int{}
	}
	return l
}

func isManifestJSON(f string) bool {
	return !strings.HasSuffix(f, "_expected_result.json")
}

func scanFile(t *testing.T, s *Scanner, f string) ([]*Object, []finding.Finding) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseBytes(filepath.Base(f), data)
	if err != nil {
		t.Logf("%s: %v", f, err)
	}
	fs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	return objs, fs
}

func reportKICS(t *testing.T, tally map[string]*kicsTally) {
	t.Helper()
	var qs []string
	for q := range tally {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	if len(qs) == 0 {
		t.Fatal("no KICS cases found")
	}
	t.Logf("%-46s %-22s %7s %9s", "KICS query", "bulkhead", "files", "exact")
	var files, agree, diverge int
	for _, q := range qs {
		tl := tally[q]
		t.Logf("%-46s %-22s %7d %5d+%d known", q, strings.Join(kicsMapping[q], ","), tl.files, tl.agree, tl.diverge)
		files += tl.files
		agree += tl.agree
		diverge += tl.diverge
	}
	t.Logf("%-46s %-22s %7d %5d+%d known", "TOTAL", "", files, agree, diverge)
}

func TestKICSFixtures(t *testing.T) {
	reportKICS(t, kicsAgreement(t, "testdata/kics"))
}

func TestKICSCorpus(t *testing.T) {
	root := corpusDir(t, "k8s/kics-queries")
	reportKICS(t, kicsAgreement(t, root))
}

// corpusDir finds ../shared/corpus/<sub> above the working directory, or
// skips.
func corpusDir(t *testing.T, sub string) string {
	t.Helper()
	p := testcorpus.Dir(sub)
	if p == "" {
		t.Skipf("no shared corpus %s beside the repository", sub)
	}
	return p
}
