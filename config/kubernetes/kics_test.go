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
}

// kicsDivergences are KICS cases where bulkhead deliberately answers
// otherwise, because the cluster does: each is explained in
// docs/kics-kubernetes-mapping.md. They are listed, not counted.
var kicsDivergences = map[string]string{
	"cluster_allows_unsafe_sysctls/negative2.yaml":     "net/ipv4/tcp_syncookies: the admission plugin compares sysctl names as written and rejects the slash form at baseline; KICS normalises it",
	"containers_running_as_root/positive1.yaml:28":     "the pod's runAsUser: 1000 applies to the container (kubelet merge), so it does not run as root; KICS ignores the pod-level UID",
	"seccomp_profile_is_not_configured/negative1.yaml": "seccomp.security.alpha.kubernetes.io/defaultProfileName is a PodSecurityPolicy annotation; on a Pod it sets no profile",
}

type kicsExpected struct {
	QueryName string `json:"queryName"`
	Line      int    `json:"line"`
	FileName  string `json:"fileName"`
	// some KICS queries misspell the key
	FineName string `json:"fineName"`
}

type kicsTally struct {
	cases, agree int // expected results (matched on the object) + negative files
	lines, exact int // expected results matched on the exact line
	misses       []string
	skipped      []string // out of scope or documented divergences
}

// kicsAgreement runs the mapped queries' test cases under root.
func kicsAgreement(t *testing.T, root string) map[string]*kicsTally {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*kicsTally{}
	for q, ids := range kicsMapping {
		dir := filepath.Join(root, q, "test")
		if _, err := os.Stat(dir); err != nil {
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
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			base := filepath.Base(f)
			if !strings.HasPrefix(base, "positive") && !strings.HasPrefix(base, "negative") || strings.HasSuffix(base, ".json") && !isManifestJSON(f) {
				continue
			}
			objs, fs := scanFile(t, s, f)
			var got []finding.Finding
			for _, x := range fs {
				if want[x.ID] {
					got = append(got, x)
				}
			}
			if strings.HasPrefix(base, "negative") {
				if why, ok := kicsDivergences[q+"/"+base]; ok {
					tl.skipped = append(tl.skipped, base+": "+why)
					continue
				}
				tl.cases++
				if len(got) == 0 {
					tl.agree++
				} else {
					tl.misses = append(tl.misses, fmt.Sprintf("%s: %d unexpected (%s line %d)", base, len(got), got[0].ID, got[0].Location.StartLine))
				}
				continue
			}
			for _, e := range expected {
				if e.FileName != base {
					continue
				}
				eo := objectAt(objs, e.Line)
				if eo == nil || eo.Kind == "PodSecurityPolicy" {
					tl.skipped = append(tl.skipped, fmt.Sprintf("%s:%d: PodSecurityPolicy (removed in Kubernetes 1.25) is not checked", base, e.Line))
					continue
				}
				if why, ok := kicsDivergences[fmt.Sprintf("%s/%s:%d", q, base, e.Line)]; ok {
					tl.skipped = append(tl.skipped, fmt.Sprintf("%s:%d: %s", base, e.Line, why))
					continue
				}
				tl.cases++
				tl.lines++
				exact, same := false, false
				for _, x := range got {
					if x.Location.StartLine == e.Line {
						exact = true
					}
					if eo != nil && objectAt(objs, x.Location.StartLine) == eo {
						same = true
					}
				}
				if exact {
					tl.exact++
				}
				if exact || same {
					tl.agree++
				} else {
					tl.misses = append(tl.misses, fmt.Sprintf("%s:%d not found", base, e.Line))
				}
			}
		}
	}
	return out
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

// objectAt finds the object whose text holds line: the last one starting at
// or before it in the same stream.
func objectAt(objs []*Object, line int) *Object {
	var best *Object
	for _, o := range objs {
		if o.Line <= line && (best == nil || o.Line >= best.Line) {
			best = o
		}
	}
	return best
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
	t.Logf("%-46s %-22s %9s %11s", "KICS query", "bulkhead", "agree", "exact line")
	var agree, cases int
	for _, q := range qs {
		tl := tally[q]
		t.Logf("%-46s %-22s %4d/%-4d %5d/%-4d", q, strings.Join(kicsMapping[q], ","), tl.agree, tl.cases, tl.exact, tl.lines)
		for _, m := range tl.misses {
			t.Logf("    miss: %s", m)
		}
		for _, m := range tl.skipped {
			t.Logf("    not counted: %s", m)
		}
		agree += tl.agree
		cases += tl.cases
		if float64(tl.agree) < 0.95*float64(tl.cases) {
			t.Errorf("%s: agreement %d/%d below 95%%", q, tl.agree, tl.cases)
		}
	}
	t.Logf("%-46s %-22s %4d/%-4d", "TOTAL", "", agree, cases)
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
