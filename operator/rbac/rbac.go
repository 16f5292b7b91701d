// Package rbac is the RBAC assessment of a live cluster: its Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings, and the service
// accounts its workloads run as, judged by bulkhead config's RBAC checks
// (config/kubernetes, BH-K8S-201..209, one copy of the rules) and split
// into one report per role: the risky permissions written on it or on the
// bindings to it, and the subjects that hold it with their workloads.
package rbac

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
)

// Assessment is the per-role outcome of a cluster's RBAC assessment.
type Assessment struct {
	// Roles are the report inputs, one per Role and ClusterRole, sorted by
	// kind, namespace and name.
	Roles []reports.RBAC
	// Unattributed are findings on bindings whose role does not exist
	// (a roleRef to a missing role grants nothing until it is created).
	Unattributed []finding.Finding
	// Set is the assessed set (for callers that want the whole picture).
	Set *kubernetes.RBACSet
	All kubernetes.RBACAssessment
}

const rbacVersion = "rbac.authorization.k8s.io/v1"

// Collect reads the RBAC objects and workloads through r: ClusterRoles and
// ClusterRoleBindings cluster-wide, Roles, RoleBindings and workloads in
// namespaces (none: all).
func Collect(ctx context.Context, r client.Reader, namespaces []string) (*kubernetes.RBACSet, map[string]string, error) {
	set := &kubernetes.RBACSet{}
	uids := map[string]string{} // role Ref -> UID
	add := func(kind, ns, name string, obj any) error {
		raw, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		m["apiVersion"], m["kind"] = rbacVersion, kind
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "managedFields")
		}
		if raw, err = json.Marshal(m); err != nil {
			return err
		}
		file := kind + " " + qualify(ns, name)
		objs, err := kubernetes.ParseBytes(file, raw)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, o := range objs {
			if err := set.Add(o); err != nil {
				return err
			}
		}
		return nil
	}
	var crs rbacv1.ClusterRoleList
	if err := r.List(ctx, &crs); err != nil {
		return nil, nil, fmt.Errorf("list clusterroles: %w", err)
	}
	for i := range crs.Items {
		o := &crs.Items[i]
		uids["ClusterRole "+o.Name] = string(o.UID)
		if err := add("ClusterRole", "", o.Name, o); err != nil {
			return nil, nil, err
		}
	}
	var crbs rbacv1.ClusterRoleBindingList
	if err := r.List(ctx, &crbs); err != nil {
		return nil, nil, fmt.Errorf("list clusterrolebindings: %w", err)
	}
	for i := range crbs.Items {
		if err := add("ClusterRoleBinding", "", crbs.Items[i].Name, &crbs.Items[i]); err != nil {
			return nil, nil, err
		}
	}
	scopes := namespaces
	if len(scopes) == 0 {
		scopes = []string{""}
	}
	for _, ns := range scopes {
		var rs rbacv1.RoleList
		if err := r.List(ctx, &rs, client.InNamespace(ns)); err != nil {
			return nil, nil, fmt.Errorf("list roles: %w", err)
		}
		for i := range rs.Items {
			o := &rs.Items[i]
			uids["Role "+o.Namespace+"/"+o.Name] = string(o.UID)
			if err := add("Role", o.Namespace, o.Name, o); err != nil {
				return nil, nil, err
			}
		}
		var rbs rbacv1.RoleBindingList
		if err := r.List(ctx, &rbs, client.InNamespace(ns)); err != nil {
			return nil, nil, fmt.Errorf("list rolebindings: %w", err)
		}
		for i := range rbs.Items {
			if err := add("RoleBinding", rbs.Items[i].Namespace, rbs.Items[i].Name, &rbs.Items[i]); err != nil {
				return nil, nil, err
			}
		}
		// The service accounts the workloads run as: read-only lists of
		// the cache, not copied.
		for _, kind := range cluster.Kinds {
			l := cluster.NewList(kind)
			if err := r.List(ctx, l, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
				return nil, nil, fmt.Errorf("list %ss: %w", kind, err)
			}
			for _, obj := range cluster.Items(l) {
				if cluster.TopLevel(kind, obj) {
					set.Workloads = append(set.Workloads, kubernetes.WorkloadRef{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), ServiceAccount: cluster.ServiceAccount(obj)})
				}
			}
		}
	}
	return set, uids, nil
}

// Assess judges the cluster r reads and splits the result per role.
func Assess(ctx context.Context, r client.Reader, namespaces []string, now time.Time) (*Assessment, error) {
	set, uids, err := Collect(ctx, r, namespaces)
	if err != nil {
		return nil, err
	}
	return Split(set, uids, now), nil
}

// Split assesses set and gives each role its findings and subjects. uids
// holds the roles' UIDs by reference ("ClusterRole edit", "Role ns/name").
func Split(set *kubernetes.RBACSet, uids map[string]string, now time.Time) *Assessment {
	all := kubernetes.AssessRBAC(set)
	out := &Assessment{Set: set, All: all}
	byRef := map[string]*reports.RBAC{}
	var refs []string
	for _, role := range set.Roles {
		ref := role.Ref()
		if byRef[ref] != nil {
			continue
		}
		ns := ""
		if role.Kind == "Role" {
			ns = role.Namespace
		}
		byRef[ref] = &reports.RBAC{Kind: role.Kind, Namespace: ns, Name: role.Name, UID: uids[ref], UpdatedAt: now}
		refs = append(refs, ref)
	}
	// A binding's findings go to the role it binds.
	bindingRole := map[string]string{}
	for _, b := range set.Bindings {
		bindingRole[b.Ref()] = roleRef(b)
	}
	for _, f := range all.Findings {
		path := ""
		if f.Location != nil {
			path = f.Location.Path
		}
		if rr, ok := bindingRole[path]; ok {
			path = rr
		}
		if r := byRef[path]; r != nil {
			r.Findings = append(r.Findings, f)
		} else {
			out.Unattributed = append(out.Unattributed, f)
		}
	}
	// The subjects of each binding, with what they hold through it.
	subj := map[string]*kubernetes.SubjectPermissions{}
	for i := range all.Subjects {
		subj[all.Subjects[i].Subject.String()] = &all.Subjects[i]
	}
	for _, b := range set.Bindings {
		r := byRef[roleRef(b)]
		if r == nil {
			continue
		}
		for _, s := range b.Subjects {
			sr := kubernetes.SubjectRef{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace}
			if sr.Kind == rbacv1.ServiceAccountKind && sr.Namespace == "" {
				sr.Namespace = b.Namespace
			}
			rs := v1alpha1Subject(sr, b.Ref())
			if sp := subj[sr.String()]; sp != nil {
				sev := finding.Unknown
				for _, risk := range sp.Risks {
					if risk.Binding == b.Ref() && risk.Severity > sev {
						sev = risk.Severity
					}
				}
				rs.Severity = strings.ToLower(sev.String())
				for _, w := range sp.Workloads {
					rs.Workloads = append(rs.Workloads, w.Kind+" "+qualify(w.Namespace, w.Name))
				}
			}
			r.Subjects = append(r.Subjects, rs)
		}
	}
	slices.Sort(refs)
	for _, ref := range refs {
		out.Roles = append(out.Roles, *byRef[ref])
	}
	return out
}

// roleRef names the role a binding binds, as RBACRole.Ref does.
func roleRef(b *kubernetes.RBACBinding) string {
	if b.RoleRef.Kind == "Role" {
		return "Role " + b.Namespace + "/" + b.RoleRef.Name
	}
	return b.RoleRef.Kind + " " + b.RoleRef.Name
}

func qualify(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func v1alpha1Subject(s kubernetes.SubjectRef, binding string) v1alpha1.RBACSubject {
	return v1alpha1.RBACSubject{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace, Binding: binding, Broad: s.Broad(), Severity: "unknown"}
}
