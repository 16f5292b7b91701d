package kubernetes

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// The RBAC assessment judges the Roles, ClusterRoles, RoleBindings and
// ClusterRoleBindings of one manifest set together: a binding's roleRef
// resolves to the role in the set, or to a built-in ClusterRole of the
// API server's bootstrap policy (cluster-admin, admin, edit, view,
// system:*), aggregated ClusterRoles included. Whether a rule grants a
// permission is decided by k8s.io/component-helpers' rbac validation
// (Covers, the comparator the API server's escalation check uses), so
// wildcards and "*/subresource" match as the authorizer matches them.
//
// Each risky permission is reported once where it is written (the rule of
// a Role or ClusterRole in the set, or the roleRef of a binding to a
// built-in role), with the subjects that hold it and the workloads that
// run as those service accounts. Severity rises with reach: a grant
// bound cluster-wide (a ClusterRoleBinding), or held by a broad subject
// (system:authenticated, system:unauthenticated, system:anonymous, all
// service accounts), is worse than the same rule bound in one namespace.

// RBAC check IDs.
const (
	RBACWildcard      = "BH-K8S-201"
	RBACEscalate      = "BH-K8S-202"
	RBACImpersonate   = "BH-K8S-203"
	RBACExecAttach    = "BH-K8S-204"
	RBACReadSecrets   = "BH-K8S-205"
	RBACNodesProxy    = "BH-K8S-206"
	RBACClusterAdmin  = "BH-K8S-207"
	RBACBroadSubject  = "BH-K8S-208"
	RBACDefaultSA     = "BH-K8S-209"
	rbacLink          = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
	rbacAPIGroup      = "rbac.authorization.k8s.io"
	builtinRoleSource = "Kubernetes bootstrap policy"
)

// RBACChecks is the catalogue of the RBAC checks, in ID order. Their
// Severity is the base one: see the package comment on reach.
var RBACChecks = []*Check{
	{ID: RBACWildcard, Severity: finding.High, Title: "RBAC rule with a wildcard in verbs, resources or API groups",
		Fix: "List the verbs, resources and API groups the subject needs; a wildcard also grants what later API versions and CRDs add.", Link: rbacLink + "#least-privilege"},
	{ID: RBACEscalate, Severity: finding.High, Title: "RBAC rule allows escalate or bind on roles",
		Fix: "Remove escalate and bind (and * verbs) on roles and clusterroles: they let the subject grant itself any permission.", Link: rbacLink + "#escalate-verb"},
	{ID: RBACImpersonate, Severity: finding.High, Title: "RBAC rule allows impersonation",
		Fix: "Remove impersonate on users, groups, serviceaccounts and uids: the subject acts as whoever it names.", Link: rbacLink + "#impersonate-verb"},
	{ID: RBACExecAttach, Severity: finding.High, Title: "RBAC rule allows exec or attach into pods",
		Fix: "Remove create on pods/exec and pods/attach: they run commands in other workloads, with their service accounts and secrets.", Link: rbacLink + "#pods-exec"},
	{ID: RBACReadSecrets, Severity: finding.Medium, Title: "RBAC rule allows reading Secrets",
		Fix: "Grant get on the named Secrets the subject needs (resourceNames), in its namespace; list and watch return every Secret's data.", Link: rbacLink + "#listing-secrets"},
	{ID: RBACNodesProxy, Severity: finding.High, Title: "RBAC rule allows nodes/proxy",
		Fix: "Remove access to nodes/proxy: it reaches the kubelet API, which runs commands in every pod of the node and bypasses audit and admission.", Link: rbacLink + "#nodes-proxy"},
	{ID: RBACClusterAdmin, Severity: finding.Critical, Title: "Binding to cluster-admin",
		Fix: "Bind a role with the permissions the subject needs; cluster-admin is every permission on every resource.", Link: rbacLink + "#least-privilege"},
	{ID: RBACBroadSubject, Severity: finding.High, Title: "Binding grants permissions to a broad group",
		Fix: "Bind named users, groups or service accounts, not system:authenticated, system:unauthenticated, system:anonymous or all service accounts.", Link: rbacLink + "#least-privilege"},
	{ID: RBACDefaultSA, Severity: finding.Medium, Title: "Binding grants permissions to a default service account",
		Fix: "Create a service account for the workload that needs the permission and bind that: every pod of the namespace that names no service account runs as default.", Link: rbacLink + "#least-privilege"},
}

// RBACCheckByID finds an RBAC check.
func RBACCheckByID(id string) *Check {
	for _, c := range RBACChecks {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// RBACRole is a Role or ClusterRole, kept compact: what the assessment
// needs of it and the lines of its rules.
type RBACRole struct {
	Kind      string // Role or ClusterRole
	Namespace string
	Name      string
	File      string
	Line      int
	Labels    map[string]string
	// Aggregation is the ClusterRole's aggregationRule selectors.
	Aggregation []metav1.LabelSelector
	Rules       []rbacv1.PolicyRule
	// RuleLines are the lines of Rules, one each.
	RuleLines []RuleLines
	// BuiltIn marks a role of the API server's bootstrap policy.
	BuiltIn bool
	ignore  map[string]bool
}

// Ref names the role as "ClusterRole edit" or "Role ns/name".
func (r *RBACRole) Ref() string {
	if r.Namespace != "" && r.Kind == "Role" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// RuleLines are where a rule and its fields are written.
type RuleLines struct {
	Rule, APIGroups, Resources, Verbs int
}

// lineFor is the line a check's finding on the rule points at: the verbs
// for the checks a verb decides (escalate, impersonate, reading secrets),
// the resources for exec/attach and nodes/proxy, the first field with a
// wildcard for wildcards.
func (l RuleLines) lineFor(check string, r rbacv1.PolicyRule) int {
	line := 0
	switch check {
	case RBACEscalate, RBACImpersonate, RBACReadSecrets:
		line = l.Verbs
	case RBACExecAttach, RBACNodesProxy:
		line = l.Resources
	case RBACWildcard:
		switch {
		case has(r.APIGroups, "*"):
			line = l.APIGroups
		case has(r.Resources, "*"):
			line = l.Resources
		default:
			line = l.Verbs
		}
	}
	if line == 0 {
		return l.Rule
	}
	return line
}

// RBACBinding is a RoleBinding or ClusterRoleBinding, kept compact.
type RBACBinding struct {
	Kind        string // RoleBinding or ClusterRoleBinding
	Namespace   string
	Name        string
	File        string
	Line        int
	RoleRef     rbacv1.RoleRef
	RoleRefLine int
	Subjects    []rbacv1.Subject
	// SubjectLines are the lines of Subjects, one each.
	SubjectLines []int
	ignore       map[string]bool
}

// Ref names the binding as "ClusterRoleBinding name" or "RoleBinding ns/name".
func (b *RBACBinding) Ref() string {
	if b.Namespace != "" && b.Kind == "RoleBinding" {
		return b.Kind + " " + b.Namespace + "/" + b.Name
	}
	return b.Kind + " " + b.Name
}

// WorkloadRef is a workload of the set and the service account its pods
// run as.
type WorkloadRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// ServiceAccount is the pod spec's serviceAccountName ("default" when
	// unset).
	ServiceAccount string `json:"serviceAccount"`
	File           string `json:"file,omitempty"`
	Line           int    `json:"line,omitempty"`
}

// RBACSet is the RBAC objects and workloads of one manifest set. Add
// takes the objects of interest from a parsed stream; others are ignored.
type RBACSet struct {
	Roles     []*RBACRole
	Bindings  []*RBACBinding
	Workloads []WorkloadRef
}

// Empty says whether the set has no roles and no bindings.
func (s *RBACSet) Empty() bool { return len(s.Roles) == 0 && len(s.Bindings) == 0 }

// Add records o when it is a Role, ClusterRole, RoleBinding,
// ClusterRoleBinding or a workload (a pod template's service account).
// A malformed RBAC object is an error that names it.
func (s *RBACSet) Add(o *Object) error {
	if o.Pod != nil && o.Kind != "PodTemplate" {
		sa := o.Pod.Spec.ServiceAccountName
		if sa == "" {
			sa = o.Pod.Spec.DeprecatedServiceAccount
		}
		if sa == "" {
			sa = "default"
		}
		s.Workloads = append(s.Workloads, WorkloadRef{Kind: o.Kind, Namespace: o.Meta.Namespace, Name: o.Meta.Name, ServiceAccount: sa, File: o.File, Line: o.Line})
		return nil
	}
	if !strings.HasPrefix(o.APIVersion, rbacAPIGroup+"/") {
		return nil
	}
	where := func(err error) error {
		return fmt.Errorf("%s: %s %s: %w; fix the field's type (kubectl apply --dry-run=server shows the same error)", o.File, o.Kind, objectName(o), err)
	}
	switch o.Kind {
	case "Role", "ClusterRole":
		var r rbacv1.ClusterRole
		if err := remarshal(o.Raw, &r); err != nil {
			return where(err)
		}
		role := &RBACRole{Kind: o.Kind, Namespace: o.Meta.Namespace, Name: o.Meta.Name, File: o.File, Line: o.Line,
			Labels: o.Meta.Labels, Rules: r.Rules, ignore: ignored(o.Meta.Annotations)}
		if o.Kind == "Role" {
			role.Aggregation = nil
		} else if r.AggregationRule != nil {
			role.Aggregation = r.AggregationRule.ClusterRoleSelectors
		}
		for i := range r.Rules {
			rp := Index(Field(o.Path, "rules"), i)
			ln := func(f string) int {
				if o.HasField(Field(rp, f)) {
					return o.LineOf(Field(rp, f))
				}
				return 0
			}
			role.RuleLines = append(role.RuleLines, RuleLines{Rule: o.LineOf(rp), APIGroups: ln("apiGroups"), Resources: ln("resources"), Verbs: ln("verbs")})
		}
		s.Roles = append(s.Roles, role)
	case "RoleBinding", "ClusterRoleBinding":
		var b rbacv1.RoleBinding
		if err := remarshal(o.Raw, &b); err != nil {
			return where(err)
		}
		bd := &RBACBinding{Kind: o.Kind, Namespace: o.Meta.Namespace, Name: o.Meta.Name, File: o.File, Line: o.Line,
			RoleRef: b.RoleRef, RoleRefLine: o.LineOf(Field(Field(o.Path, "roleRef"), "name")), Subjects: b.Subjects, ignore: ignored(o.Meta.Annotations)}
		if o.Kind == "ClusterRoleBinding" {
			bd.Namespace = "" // cluster-scoped: a namespace written here means nothing
		}
		for i := range b.Subjects {
			// the subject's name: the line to change
			bd.SubjectLines = append(bd.SubjectLines, o.LineOf(Field(Index(Field(o.Path, "subjects"), i), "name")))
		}
		s.Bindings = append(s.Bindings, bd)
	}
	return nil
}

//go:embed builtin/cluster-roles.yaml
var builtinClusterRolesYAML []byte

var builtinRoles = sync.OnceValue(func() map[string]*RBACRole {
	objs, err := ParseBytes("builtin/cluster-roles.yaml", builtinClusterRolesYAML)
	if err != nil {
		panic("embedded bootstrap ClusterRoles: " + err.Error())
	}
	var set RBACSet
	for _, o := range objs {
		if err := set.Add(o); err != nil {
			panic("embedded bootstrap ClusterRoles: " + err.Error())
		}
	}
	out := map[string]*RBACRole{}
	for _, r := range set.Roles {
		r.BuiltIn, r.File, r.Line, r.RuleLines = true, "", 0, nil
		out[r.Name] = r
	}
	return out
})

//go:embed builtin/cluster-role-bindings.yaml
var builtinBindingsYAML []byte

var builtinBindings = sync.OnceValue(func() map[string]*RBACBinding {
	objs, err := ParseBytes("builtin/cluster-role-bindings.yaml", builtinBindingsYAML)
	if err != nil {
		panic("embedded bootstrap ClusterRoleBindings: " + err.Error())
	}
	var set RBACSet
	for _, o := range objs {
		if err := set.Add(o); err != nil {
			panic("embedded bootstrap ClusterRoleBindings: " + err.Error())
		}
	}
	out := map[string]*RBACBinding{}
	for _, b := range set.Bindings {
		out[b.Name] = b
	}
	return out
})

// IsBootstrapBinding says whether b reproduces a ClusterRoleBinding of the
// API server's bootstrap policy: same name and roleRef, and no subject the
// default does not have. It grants nothing a cluster does not already
// grant, so the assessment reports nothing on it.
func IsBootstrapBinding(b *RBACBinding) bool {
	d := builtinBindings()[b.Name]
	if d == nil || b.Kind != "ClusterRoleBinding" || d.RoleRef.Kind != b.RoleRef.Kind || d.RoleRef.Name != b.RoleRef.Name {
		return false
	}
	for _, s := range b.Subjects {
		found := false
		for _, ds := range d.Subjects {
			if ds.Kind == s.Kind && ds.Name == s.Name && ds.Namespace == s.Namespace {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// BuiltinClusterRole returns a ClusterRole of the API server's bootstrap
// policy (Kubernetes v1.37: cluster-admin, admin, edit, view, system:*),
// or nil.
func BuiltinClusterRole(name string) *RBACRole { return builtinRoles()[name] }

// SubjectRef names a subject of a binding.
type SubjectRef struct {
	Kind      string `json:"kind"` // User, Group or ServiceAccount
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

func (s SubjectRef) String() string {
	if s.Kind == rbacv1.ServiceAccountKind {
		return "ServiceAccount " + s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// Broad says whether the subject stands for many identities:
// system:authenticated, system:unauthenticated, system:anonymous, all
// service accounts (system:serviceaccounts) or all of one namespace's.
func (s SubjectRef) Broad() bool {
	switch s.Kind {
	case rbacv1.GroupKind:
		return s.Name == "system:authenticated" || s.Name == "system:unauthenticated" ||
			s.Name == "system:serviceaccounts" || strings.HasPrefix(s.Name, "system:serviceaccounts:")
	case rbacv1.UserKind:
		return s.Name == "system:anonymous"
	}
	return false
}

// RBACRisk is one risky permission a subject holds.
type RBACRisk struct {
	Check    string           `json:"check"`
	Severity finding.Severity `json:"severity"`
	// What the permission is, in words ("get, list, watch on secrets").
	What string `json:"what"`
	// Scope is "cluster" or the namespace the grant applies in.
	Scope   string `json:"scope"`
	Role    string `json:"role"`
	Binding string `json:"binding"`
}

// SubjectPermissions is what one subject holds through the set's
// bindings: the per-subject summary of the assessment (the cluster
// report's shape).
type SubjectPermissions struct {
	Subject SubjectRef `json:"subject"`
	Broad   bool       `json:"broad,omitempty"`
	// Workloads run as this service account (ServiceAccount subjects).
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	// Roles are the roles bound to the subject ("ClusterRole edit (built-in)").
	Roles []string `json:"roles"`
	// Unresolved are roleRefs the set and the built-in roles do not have.
	Unresolved []string   `json:"unresolved,omitempty"`
	Risks      []RBACRisk `json:"risks,omitempty"`
	// Severity is the highest of Risks (Unknown when none).
	Severity finding.Severity `json:"severity"`
}

// RBACAssessment is the result of AssessRBAC.
type RBACAssessment struct {
	Findings []finding.Finding
	// Subjects are sorted by severity (highest first), then name.
	Subjects []SubjectPermissions
}

// grant is one subject holding a role through one binding.
type grant struct {
	b     *RBACBinding
	subj  SubjectRef
	scope string // "" cluster-wide, else the namespace
}

// riskyHit is one risky permission found in one rule.
type riskyHit struct {
	check string
	what  string
	// full: the rule is every verb on every resource of every group.
	full bool
	// named: restricted by resourceNames.
	named bool
}

// probe is an action a check asks the rules about.
type probe struct {
	check     string
	what      string
	verbs     []string
	groups    []string
	resources []string
}

var probes = []probe{
	{RBACEscalate, "escalate/bind on roles", []string{"escalate", "bind"}, []string{rbacAPIGroup}, []string{"roles", "clusterroles"}},
	{RBACImpersonate, "impersonate users, groups or service accounts", []string{"impersonate"}, []string{"", "authentication.k8s.io"}, []string{"users", "groups", "serviceaccounts", "uids", "userextras/scopes"}},
	{RBACExecAttach, "create on pods/exec or pods/attach", []string{"create"}, []string{""}, []string{"pods/exec", "pods/attach"}},
	{RBACReadSecrets, "get, list or watch on secrets", []string{"get", "list", "watch"}, []string{""}, []string{"secrets"}},
	{RBACNodesProxy, "access to nodes/proxy", []string{"get", "create", "update", "patch", "delete"}, []string{""}, []string{"nodes/proxy"}},
}

// ruleRisks says which risky permissions a rule grants: any one verb on
// any one resource of a probe counts (a rule with only get on secrets
// reads secrets).
func ruleRisks(r rbacv1.PolicyRule) []riskyHit {
	var out []riskyHit
	if len(r.Resources) > 0 && (has(r.Verbs, "*") || has(r.Resources, "*") || has(r.APIGroups, "*")) {
		var what []string
		for _, f := range []struct {
			name string
			v    []string
		}{{"verbs", r.Verbs}, {"resources", r.Resources}, {"apiGroups", r.APIGroups}} {
			if has(f.v, "*") {
				what = append(what, f.name)
			}
		}
		full := has(r.Verbs, "*") && has(r.Resources, "*") && has(r.APIGroups, "*") && len(r.ResourceNames) == 0
		out = append(out, riskyHit{check: RBACWildcard, what: "* in " + strings.Join(what, ", "), full: full})
		if full {
			return out // every permission: the other checks would repeat it
		}
	}
	for _, p := range probes {
		var verbs []string
		named := false
		for _, v := range p.verbs {
			hit := false
			for _, g := range p.groups {
				for _, res := range p.resources {
					want := []rbacv1.PolicyRule{{Verbs: []string{v}, APIGroups: []string{g}, Resources: []string{res}}}
					if ok, _ := rbacvalidation.Covers([]rbacv1.PolicyRule{r}, want); ok {
						hit = true
					} else if len(r.ResourceNames) > 0 {
						nr := r
						nr.ResourceNames = nil
						if ok, _ := rbacvalidation.Covers([]rbacv1.PolicyRule{nr}, want); ok {
							hit, named = true, true
						}
					}
				}
			}
			if hit {
				verbs = append(verbs, v)
			}
		}
		if len(verbs) == 0 {
			continue
		}
		what := p.what
		if p.check == RBACReadSecrets {
			what = strings.Join(verbs, ", ") + " on secrets"
		}
		if named {
			what += " (only resourceNames " + strings.Join(r.ResourceNames, ", ") + ")"
		}
		out = append(out, riskyHit{check: p.check, what: what, named: named})
	}
	return out
}

func has(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// harmlessRule: only what every authenticated identity already has
// (discovery and health URLs, self reviews).
func harmlessRule(r rbacv1.PolicyRule) bool {
	if len(r.NonResourceURLs) > 0 && len(r.Resources) == 0 {
		for _, v := range r.Verbs {
			if v != "get" && v != "head" {
				return false
			}
		}
		return true
	}
	for _, res := range r.Resources {
		switch res {
		case "selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews":
		default:
			return false
		}
	}
	return len(r.Resources) > 0 && len(r.Verbs) == 1 && r.Verbs[0] == "create"
}

// ownedRule is a rule with the role that writes it.
type ownedRule struct {
	role *RBACRole
	i    int
}

// assessor resolves roles and collects findings.
type assessor struct {
	set   *RBACSet
	risks map[ownedRule][]riskyHit
	eff   map[*RBACRole][]ownedRule
	// findings keyed by where the permission is written
	byKey map[string]*pendingRBAC
	order []string
}

type pendingRBAC struct {
	check    *Check
	sev      finding.Severity
	file     string
	line     int
	subject  string // the role or binding the finding is on
	what     string
	holders  []string
	ignore   map[string]bool
	builtin  string
	resolved bool
}

// roleFor resolves a binding's roleRef: a Role in the binding's
// namespace, a ClusterRole of the set, or a built-in ClusterRole.
func (a *assessor) roleFor(b *RBACBinding) *RBACRole {
	ref := b.RoleRef
	for _, r := range a.set.Roles {
		if r.Kind != ref.Kind || r.Name != ref.Name {
			continue
		}
		if r.Kind == "Role" && !sameNamespace(r.Namespace, b.Namespace) {
			continue
		}
		return r
	}
	if ref.Kind == "ClusterRole" {
		return BuiltinClusterRole(ref.Name)
	}
	return nil
}

// sameNamespace matches namespaces; an unset one (applied with kubectl -n)
// matches any.
func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// effectiveRules are a role's rules, with an aggregated ClusterRole's
// taken from the ClusterRoles (of the set and built-in) its selectors
// match, as the aggregation controller does.
func (a *assessor) effectiveRules(r *RBACRole) []ownedRule {
	if e, ok := a.eff[r]; ok {
		return e
	}
	a.eff[r] = nil // a cycle of aggregations ends here
	out := a.effectiveRulesOf(r)
	a.eff[r] = out
	return out
}

func (a *assessor) effectiveRulesOf(r *RBACRole) []ownedRule {
	var out []ownedRule
	for i := range r.Rules {
		out = append(out, ownedRule{r, i})
	}
	if len(r.Aggregation) == 0 {
		return out
	}
	seen := map[*RBACRole]bool{r: true}
	var cands []*RBACRole
	for _, c := range a.set.Roles {
		if c.Kind == "ClusterRole" {
			cands = append(cands, c)
		}
	}
	names := make([]string, 0, len(builtinRoles()))
	for n := range builtinRoles() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cands = append(cands, builtinRoles()[n])
	}
	for _, sel := range r.Aggregation {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil || s.Empty() {
			continue
		}
		for _, c := range cands {
			if seen[c] || !s.Matches(labels.Set(c.Labels)) {
				continue
			}
			seen[c] = true
			// an aggregated role may itself aggregate (admin takes edit,
			// which takes view)
			out = append(out, a.effectiveRules(c)...)
		}
	}
	return out
}

// maxHolders bounds the subjects a finding names (the rest are counted):
// a hostile binding may list thousands.
const maxHolders = 20

// ruleHit is a risky permission of one rule.
type ruleHit struct {
	or ownedRule
	h  riskyHit
}

// AssessRBAC judges the set's roles and bindings: each risky permission
// is a finding where it is written, with the subjects that hold it; the
// bindings to cluster-admin, to broad groups and to default service
// accounts are findings on the binding. Subjects summarises what each
// subject holds. The work is linear in rules plus subjects for each
// binding, so a hostile set of many subjects or rules stays cheap.
func AssessRBAC(set *RBACSet) RBACAssessment {
	a := &assessor{set: set, byKey: map[string]*pendingRBAC{}, risks: map[ownedRule][]riskyHit{}, eff: map[*RBACRole][]ownedRule{}}
	subjects := map[string]*SubjectPermissions{}
	var keys []string
	var extra []finding.Finding
	workloads := map[string][]WorkloadRef{}
	for _, w := range set.Workloads {
		workloads[w.ServiceAccount] = append(workloads[w.ServiceAccount], w)
	}

	// every rule of a role in the set is judged, bound or not
	for _, r := range set.Roles {
		for i := range r.Rules {
			for _, h := range a.ruleRisks(ownedRule{r, i}) {
				a.note(r, nil, i, h)
			}
		}
	}
	for _, b := range set.Bindings {
		role := a.roleFor(b)
		roleName := b.RoleRef.Kind + " " + b.RoleRef.Name
		var hits []ruleHit
		harmless := false
		if role != nil {
			roleName = role.Ref()
			if role.BuiltIn {
				roleName += " (built-in)"
			}
			harmless = true
			for _, or := range a.effectiveRules(role) {
				for _, h := range a.ruleRisks(or) {
					hits = append(hits, ruleHit{or, h})
				}
				if !harmlessRule(or.role.Rules[or.i]) {
					harmless = false
				}
			}
		}
		scope := b.Namespace
		// the built-in role, or the cluster's own copy of it (read from a
		// live cluster, where the API server keeps it as bootstrapped)
		clusterAdmin := role != nil && role.Kind == "ClusterRole" && role.Name == "cluster-admin"
		// a default of the API server is reported on nothing, but its
		// subjects are summarised
		quiet := IsBootstrapBinding(b)
		summary := a.summarise(hits, b, scope)
		var holders []string
		anyBroad := false
		for i, s := range b.Subjects {
			subj := SubjectRef{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace}
			if subj.Kind == rbacv1.ServiceAccountKind && subj.Namespace == "" {
				subj.Namespace = b.Namespace
			}
			key := subj.String()
			sp := subjects[key]
			if sp == nil {
				sp = &SubjectPermissions{Subject: subj, Broad: subj.Broad()}
				if subj.Kind == rbacv1.ServiceAccountKind {
					for _, w := range workloads[subj.Name] {
						if sameNamespace(w.Namespace, subj.Namespace) {
							sp.Workloads = append(sp.Workloads, w)
						}
					}
				}
				subjects[key] = sp
				keys = append(keys, key)
			}
			if role == nil {
				sp.Unresolved = appendUnique(sp.Unresolved, roleName+" (via "+b.Ref()+")")
			} else {
				sp.Roles = appendUnique(sp.Roles, roleName)
			}
			g := grant{b: b, subj: subj, scope: scope}
			if subj.Broad() {
				anyBroad = true
			}
			if len(holders) < maxHolders {
				holders = append(holders, holderWords(g, sp))
			} else if len(holders) == maxHolders {
				holders = append(holders, fmt.Sprintf("and %d more subjects of %s", len(b.Subjects)-maxHolders, b.Ref()))
			}
			line := b.Line
			if i < len(b.SubjectLines) {
				line = b.SubjectLines[i]
			}
			// findings on the binding itself
			if clusterAdmin {
				sp.Risks = append(sp.Risks, RBACRisk{Check: RBACClusterAdmin, Severity: finding.Critical, What: "every permission (cluster-admin)", Scope: scopeName(scope), Role: roleName, Binding: b.Ref()})
			}

			if subj.Broad() && !harmless && !quiet {
				sev := finding.High
				why := "the role is not in the manifests nor built in"
				if role != nil {
					why = "the role grants more than discovery"
				}
				if len(hits) > 0 || clusterAdmin {
					sev, why = finding.Critical, "the role holds risky permissions (see the role's findings)"
				}
				extra = append(extra, a.bindingFinding(b, RBACBroadSubject, sev, line,
					fmt.Sprintf("%s grants %s to %s%s: %s", b.Ref(), roleName, subj, scopeWords(scope), why)))
			}
			if subj.Kind == rbacv1.ServiceAccountKind && subj.Name == "default" && !harmless && !quiet {
				extra = append(extra, a.bindingFinding(b, RBACDefaultSA, RBACCheckByID(RBACDefaultSA).Severity, line,
					fmt.Sprintf("%s grants %s to %s%s: every pod of namespace %s that names no service account holds it%s", b.Ref(), roleName, subj, scopeWords(scope), orUnset(subj.Namespace), usedBy(sp))))
			}
			if clusterAdmin {
				continue // its rules are every permission: one finding says it
			}
			// the subject's risks, one per check of this binding
			for _, cr := range summary {
				sev := cr.sev
				if subj.Broad() {
					sev = cr.sevBroad
				}
				sp.Risks = append(sp.Risks, RBACRisk{Check: cr.check, Severity: sev, What: cr.what, Scope: scopeName(scope), Role: roleName, Binding: b.Ref()})
			}
		}
		if clusterAdmin && !quiet && len(b.Subjects) > 0 {
			extra = append(extra, a.bindingFinding(b, RBACClusterAdmin, finding.Critical, b.RoleRefLine,
				fmt.Sprintf("%s binds ClusterRole cluster-admin%s to %s", b.Ref(), scopeWords(scope), strings.Join(holders, "; "))))
		}
		if clusterAdmin || quiet || len(b.Subjects) == 0 {
			continue
		}
		// the findings where the permissions are written: their severity
		// is that of the widest grant, and they name the holders
		for _, rh := range hits {
			g := grant{b: b, scope: scope}
			if anyBroad {
				g.subj = SubjectRef{Kind: rbacv1.GroupKind, Name: "system:authenticated"}
			}
			sev := a.severity(rh.h, g)
			pf := a.note(rh.or.role, b, rh.or.i, rh.h)
			if sev > pf.sev {
				pf.sev = sev
			}
			for _, h := range holders {
				if len(pf.holders) > maxHolders {
					break
				}
				pf.holders = appendUnique(pf.holders, h)
			}
		}
	}
	out := RBACAssessment{}
	for _, k := range a.order {
		out.Findings = append(out.Findings, a.byKey[k].finding())
	}
	out.Findings = append(out.Findings, extra...)
	SortFindings(out.Findings)
	for _, k := range keys {
		sp := subjects[k]
		sortRisks(sp.Risks)
		for _, r := range sp.Risks {
			if r.Severity > sp.Severity {
				sp.Severity = r.Severity
			}
		}
		out.Subjects = append(out.Subjects, *sp)
	}
	sort.SliceStable(out.Subjects, func(i, j int) bool {
		if out.Subjects[i].Severity != out.Subjects[j].Severity {
			return out.Subjects[i].Severity > out.Subjects[j].Severity
		}
		return out.Subjects[i].Subject.String() < out.Subjects[j].Subject.String()
	})
	return out
}

// checkRisk is what one binding grants under one check, for the
// per-subject summary: its severity for a named subject and for a broad
// one, and what it is.
type checkRisk struct {
	check         string
	sev, sevBroad finding.Severity
	what          string
}

// summarise folds a binding's risky rules into one checkRisk per check.
func (a *assessor) summarise(hits []ruleHit, b *RBACBinding, scope string) []checkRisk {
	var out []checkRisk
	idx := map[string]int{}
	named := grant{b: b, scope: scope}
	broad := grant{b: b, scope: scope, subj: SubjectRef{Kind: rbacv1.GroupKind, Name: "system:authenticated"}}
	for _, rh := range hits {
		sev, sevBroad := a.severity(rh.h, named), a.severity(rh.h, broad)
		j, ok := idx[rh.h.check]
		if !ok {
			idx[rh.h.check] = len(out)
			out = append(out, checkRisk{check: rh.h.check, sev: sev, sevBroad: sevBroad, what: rh.h.what})
			continue
		}
		c := &out[j]
		c.sev, c.sevBroad = max(c.sev, sev), max(c.sevBroad, sevBroad)
		if len(c.what) < 200 && !strings.Contains(c.what, rh.h.what) {
			c.what += "; " + rh.h.what
		}
	}
	return out
}

// ruleRisks memoises the package-level ruleRisks per rule.
func (a *assessor) ruleRisks(or ownedRule) []riskyHit {
	if h, ok := a.risks[or]; ok {
		return h
	}
	h := ruleRisks(or.role.Rules[or.i])
	a.risks[or] = h
	return h
}

func usedBy(sp *SubjectPermissions) string {
	if len(sp.Workloads) == 0 {
		return ""
	}
	var ws []string
	for i, w := range sp.Workloads {
		if i == maxHolders {
			ws = append(ws, fmt.Sprintf("and %d more", len(sp.Workloads)-maxHolders))
			break
		}
		ws = append(ws, w.Kind+" "+qualified(w.Namespace, w.Name))
	}
	return "; used by " + strings.Join(ws, ", ")
}

// severity of a risky permission held through a grant: bound
// cluster-wide raises reading secrets to High; a broad subject raises
// every risky permission to Critical.
func (a *assessor) severity(h riskyHit, g grant) finding.Severity {
	sev := RBACCheckByID(h.check).Severity
	if h.full {
		sev = finding.Critical
	}
	if h.named {
		sev = finding.Low
	}
	if g.scope == "" && h.check == RBACReadSecrets && !h.named && sev < finding.High {
		sev = finding.High
	}
	if g.subj.Broad() && !h.named {
		sev = finding.Critical
	}
	return sev
}

// note records a risky permission where it is written: the rule of a
// role of the set, or (a built-in role) the binding's roleRef.
func (a *assessor) note(r *RBACRole, b *RBACBinding, i int, h riskyHit) *pendingRBAC {
	var key string
	if r.BuiltIn {
		key = fmt.Sprintf("b\x00%s\x00%d\x00%s\x00%s", b.File, b.RoleRefLine, b.Ref(), h.check)
	} else {
		key = fmt.Sprintf("r\x00%p\x00%d\x00%s", r, i, h.check)
	}
	if p := a.byKey[key]; p != nil {
		if r.BuiltIn && !strings.Contains(p.what, h.what) {
			p.what += "; " + h.what
		}
		return p
	}
	c := RBACCheckByID(h.check)
	p := &pendingRBAC{check: c, sev: c.Severity, what: h.what}
	if h.full {
		p.sev = finding.Critical
		p.what += ": every verb on every resource (as cluster-admin)"
	}
	if h.named {
		p.sev = finding.Low
	}
	if r.BuiltIn {
		p.file, p.line, p.subject, p.ignore, p.builtin = b.File, b.RoleRefLine, b.Ref(), b.ignore, r.Ref()
	} else {
		p.file, p.subject, p.ignore = r.File, fmt.Sprintf("%s rule %d", r.Ref(), i+1), r.ignore
		p.line = r.Line
		if i < len(r.RuleLines) {
			p.line = r.RuleLines[i].lineFor(h.check, r.Rules[i])
		}
	}
	a.byKey[key] = p
	a.order = append(a.order, key)
	return p
}

func (p *pendingRBAC) finding() finding.Finding {
	desc := p.subject + ": " + p.what
	if p.builtin != "" {
		desc = fmt.Sprintf("%s binds built-in %s, which grants %s", p.subject, p.builtin, p.what)
	}
	if len(p.holders) == 0 {
		desc += "; no binding in these manifests grants it (the cluster may)"
	} else {
		desc += "; held by " + strings.Join(p.holders, "; ")
	}
	return rbacFinding(p.check, p.sev, p.file, p.line, desc, p.ignore)
}

func (a *assessor) bindingFinding(b *RBACBinding, id string, sev finding.Severity, line int, desc string) finding.Finding {
	return rbacFinding(RBACCheckByID(id), sev, b.File, line, desc, b.ignore)
}

func rbacFinding(c *Check, sev finding.Severity, file string, line int, desc string, ignore map[string]bool) finding.Finding {
	f := finding.Finding{
		ID: c.ID, Kind: finding.KindMisconfiguration, Severity: sev, SeveritySource: "bulkhead",
		Title: c.Title, Description: desc, Target: file,
		Location: &finding.Location{Path: file, StartLine: line}, Fix: c.Fix,
	}
	if c.Link != "" {
		f.References = []string{c.Link}
	}
	if ignore[c.ID] || ignore["*"] {
		f.Suppressed = &finding.Suppression{Kind: "ignore", Statement: "annotation " + IgnoreAnnotation, Source: file}
	}
	return f
}

func holderWords(g grant, sp *SubjectPermissions) string {
	return g.subj.String() + scopeWords(g.scope) + " via " + g.b.Ref() + usedBy(sp)
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func scopeWords(scope string) string {
	if scope == "" {
		return " cluster-wide"
	}
	return " in namespace " + scope
}

func scopeName(scope string) string {
	if scope == "" {
		return "cluster"
	}
	return scope
}

func orUnset(ns string) string {
	if ns == "" {
		return "(unset)"
	}
	return ns
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func sortRisks(rs []RBACRisk) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Severity != rs[j].Severity {
			return rs[i].Severity > rs[j].Severity
		}
		return rs[i].Check < rs[j].Check
	})
}

// boundServiceAccounts are the service accounts the set binds to a role
// that grants more than discovery (an unresolved role counts): their pods
// call the API and need their token. The map is name -> namespaces.
func (s *RBACSet) boundServiceAccounts() map[string]map[string]bool {
	a := &assessor{set: s, risks: map[ownedRule][]riskyHit{}, eff: map[*RBACRole][]ownedRule{}}
	out := map[string]map[string]bool{}
	for _, b := range s.Bindings {
		if role := a.roleFor(b); role != nil {
			harmless := true
			for _, or := range a.effectiveRules(role) {
				if !harmlessRule(or.role.Rules[or.i]) {
					harmless = false
					break
				}
			}
			if harmless {
				continue
			}
		}
		for _, sub := range b.Subjects {
			if sub.Kind != rbacv1.ServiceAccountKind {
				continue
			}
			ns := sub.Namespace
			if ns == "" {
				ns = b.Namespace
			}
			if out[sub.Name] == nil {
				out[sub.Name] = map[string]bool{}
			}
			out[sub.Name][ns] = true
		}
	}
	return out
}

// bindsServiceAccount says whether bound holds namespace/name (an unset
// namespace on either side matches any).
func bindsServiceAccount(bound map[string]map[string]bool, ns, name string) bool {
	nss := bound[name]
	if nss[ns] || nss[""] || (ns == "" && len(nss) > 0) {
		return true
	}
	return false
}
