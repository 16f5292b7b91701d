package kubernetes

// kicsDivergences is the reviewed list of KICS test files where bulkhead
// knowingly reports other lines than KICS expects. Every other file of a
// mapped query must agree exactly (the same set of lines); an entry that
// no longer matches what bulkhead reports fails the test, so the list
// stays true. docs/kics-kubernetes-mapping.md has this table.
//
// Case is <query>/<file>; Bulkhead and KICS are the sorted lines each
// flags in the file for the query (bulkhead: its mapped checks).
type kicsDivergence struct {
	Case     string
	Check    string
	Bulkhead []int
	KICS     []int
	Why      string
}

// Reasons shared by several entries.
const (
	whyRootField = "same containers, other line: KICS names the securityContext key, bulkhead the field that makes the container root (runAsUser: 0, runAsNonRoot: false), which is the line to change"
)

var kicsDivergences = []kicsDivergence{
	{Case: "cluster_allows_unsafe_sysctls/negative2.yaml", Check: "BH-K8S-011", Bulkhead: []int{20}, KICS: nil,
		Why: "net/ipv4/tcp_syncookies: pod-security-admission (the reference for the PSS controls) compares sysctl names as written, so the slash form is not in the baseline safe set and the API server rejects the pod at baseline; KICS normalises the name to net.ipv4.tcp_syncookies"},
	{Case: "cluster_allows_unsafe_sysctls/positive1.yaml", Check: "BH-K8S-011", Bulkhead: []int{11, 13}, KICS: []int{11, 13, 24},
		Why: "line 24 is allowedUnsafeSysctls in a PodSecurityPolicy; PSP was removed in Kubernetes 1.25 and bulkhead checks pods, not PSP objects"},
	{Case: "containers_running_as_root/positive1.yaml", Check: "BH-K8S-109", Bulkhead: []int{13, 44}, KICS: []int{12, 28, 43},
		Why: "line 28: the pod sets runAsUser: 1000 and the container no UID, so the kubelet runs it as 1000, not root (KICS ignores the pod-level UID; BH-K8S-022, the PSS runAsNonRoot control, does report the pod's runAsNonRoot: false); lines 12/43: " + whyRootField},
	{Case: "containers_running_as_root/positive2.yaml", Check: "BH-K8S-109", Bulkhead: []int{13, 18}, KICS: []int{12, 17}, Why: whyRootField},
	{Case: "containers_running_as_root/positive3.yaml", Check: "BH-K8S-109", Bulkhead: []int{13}, KICS: []int{12}, Why: whyRootField},
	{Case: "containers_running_as_root/positive4.yaml", Check: "BH-K8S-109", Bulkhead: []int{7, 12}, KICS: []int{7, 11}, Why: whyRootField},
	{Case: "containers_running_as_root/positive5.yaml", Check: "BH-K8S-109", Bulkhead: []int{21, 43}, KICS: []int{20, 42}, Why: whyRootField},
	{Case: "containers_running_as_root/positive6.yaml", Check: "BH-K8S-109", Bulkhead: []int{20, 40}, KICS: []int{17, 37},
		Why: "same pods, other line: the pod's securityContext sets runAsNonRoot: false and the container sets nothing; KICS names the pod's securityContext, bulkhead the container that runs as root (one finding per container, as for the other cases)"},
	{Case: "memory_limits_not_defined/positive1.yaml", Check: "BH-K8S-103", Bulkhead: []int{10, 25, 38, 57}, KICS: []int{8, 23, 38, 57},
		Why: "same containers, other line: where the container has a resources block without limits, bulkhead names resources: (where the limit goes), KICS the container's name; without a resources block both name the container"},
	{Case: "seccomp_profile_is_not_configured/negative1.yaml", Check: "BH-K8S-024", Bulkhead: []int{9}, KICS: nil,
		Why: "seccomp.security.alpha.kubernetes.io/defaultProfileName is a PodSecurityPolicy annotation; on a Pod it sets no profile, so the container has none and pod-security-admission forbids the pod at restricted (KICS takes the annotation as a profile)"},
	{Case: "seccomp_profile_is_not_configured/positive1.yaml", Check: "BH-K8S-024", Bulkhead: []int{7, 18, 29, 46}, KICS: []int{7, 18, 26, 43},
		Why: "same pods, other line: for the pods whose only seccomp setting is the PodSecurityPolicy defaultProfileName annotation (which sets nothing on a Pod), KICS names the annotation, bulkhead the container that has no profile"},
	{Case: "service_account_token_automount_not_disabled/positive2.yaml", Check: "BH-K8S-104", Bulkhead: []int{5, 21}, KICS: []int{5},
		Why: "bulkhead also names the Deployment's pod spec (line 21): it sets no automountServiceAccountToken, so its pods get the token of redistest-sa, which sets true (kubelet: the pod's field wins, unset the ServiceAccount's); the workload is where the token is mounted and where a per-workload opt-out goes"},
	{Case: "rbac_wildcard_in_rule/positive.yaml", Check: "BH-K8S-201", Bulkhead: []int{7, 18, 29}, KICS: []int{7, 9, 18, 19, 20, 29, 31},
		Why: "same rules: KICS reports each field holding a wildcard (apiGroups, resources and verbs apart), bulkhead one finding per rule, on its first wildcard field, naming every wildcard field in the message"},
	{Case: "service_account_allows_access_secrets/negative.yaml", Check: "BH-K8S-205", Bulkhead: []int{10, 21, 95, 106}, KICS: nil,
		Why: "these roles read secrets but are unbound, or bound to a subject of kind NotServiceAccount (which the API server rejects); KICS's query only flags roles bound to a service account, bulkhead's BH-K8S-205 judges every role (the cluster may bind it) and names the holders when the manifests bind it"},
	{Case: "workload_host_port_not_specified/positive.yaml", Check: "BH-K8S-006", Bulkhead: []int{12, 27}, KICS: []int{9, 24},
		Why: "same containers, other line: KICS names the ports: key, bulkhead each hostPort field (a container may list several ports, only some with a hostPort)"},
}
