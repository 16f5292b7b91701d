// Package cluster finds the workloads of a cluster and the pods they run,
// through a controller-runtime client.Reader: the operator's cache, or a
// direct client for bulkhead k8s. Both front ends share it, so they see the
// same workloads.
//
// A workload is a top-level object: a Deployment, StatefulSet, DaemonSet or
// CronJob, a ReplicaSet or Job no Deployment or CronJob controls, or a Pod
// no workload controls.
package cluster

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kinds are the workload kinds, in the order they are listed.
var Kinds = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob", "ReplicaSet", "Job", "Pod"}

// NewObject returns an empty object of a workload kind (nil for others).
func NewObject(kind string) client.Object {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	case "DaemonSet":
		return &appsv1.DaemonSet{}
	case "ReplicaSet":
		return &appsv1.ReplicaSet{}
	case "Job":
		return &batchv1.Job{}
	case "CronJob":
		return &batchv1.CronJob{}
	case "Pod":
		return &corev1.Pod{}
	}
	return nil
}

// NewList returns an empty list of a workload kind.
func NewList(kind string) client.ObjectList {
	switch kind {
	case "Deployment":
		return &appsv1.DeploymentList{}
	case "StatefulSet":
		return &appsv1.StatefulSetList{}
	case "DaemonSet":
		return &appsv1.DaemonSetList{}
	case "ReplicaSet":
		return &appsv1.ReplicaSetList{}
	case "Job":
		return &batchv1.JobList{}
	case "CronJob":
		return &batchv1.CronJobList{}
	case "Pod":
		return &corev1.PodList{}
	}
	return nil
}

// APIVersion is the apiVersion of a workload kind.
func APIVersion(kind string) string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}

// ParseKind reads a kind as given on a command line ("deployment",
// "deploy", "sts", "Pod") into its canonical name.
func ParseKind(s string) (string, error) {
	switch strings.ToLower(s) {
	case "deployment", "deployments", "deploy":
		return "Deployment", nil
	case "statefulset", "statefulsets", "sts":
		return "StatefulSet", nil
	case "daemonset", "daemonsets", "ds":
		return "DaemonSet", nil
	case "replicaset", "replicasets", "rs":
		return "ReplicaSet", nil
	case "job", "jobs":
		return "Job", nil
	case "cronjob", "cronjobs", "cj":
		return "CronJob", nil
	case "pod", "pods", "po":
		return "Pod", nil
	}
	return "", fmt.Errorf("unknown workload kind %q (use one of %s)", s, strings.Join(Kinds, ", "))
}

// Workload is one top-level workload and the pods it runs.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
	// Object is the typed object (its TypeMeta set).
	Object client.Object
	// Template is the pod the workload runs (for a Pod, the Pod itself).
	Template corev1.PodTemplateSpec
	// Pods are the pods it runs that the reader holds (their status
	// imageIDs give digests without asking the registry).
	Pods []corev1.Pod
}

// Key is "namespace/Kind/name".
func (w *Workload) Key() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// owners maps an owned kind to the kinds that may control it as a
// workload.
var owners = map[string][]string{
	"Pod":        {"ReplicaSet", "Job", "StatefulSet", "DaemonSet"},
	"ReplicaSet": {"Deployment"},
	"Job":        {"CronJob"},
}

// Controller returns the controlling owner reference of obj when it is a
// workload kind that may control obj's kind.
func Controller(kind string, obj metav1.Object) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || !slices.Contains(owners[kind], ref.Kind) {
		return nil
	}
	return ref
}

// TopLevel says whether obj, of kind, is a workload of its own.
func TopLevel(kind string, obj metav1.Object) bool { return Controller(kind, obj) == nil }

// Top follows obj's controllers up to the workload that runs it (a Pod's
// ReplicaSet's Deployment), reading the intermediate objects from r. An
// owner r does not hold ends the walk at the last object found.
func Top(ctx context.Context, r client.Reader, kind string, obj client.Object) (string, string, error) {
	name := obj.GetName()
	for range 3 {
		ref := Controller(kind, obj)
		if ref == nil {
			return kind, name, nil
		}
		owner := NewObject(ref.Kind)
		if err := r.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: ref.Name}, owner); err != nil {
			if apierrors.IsNotFound(err) {
				return ref.Kind, ref.Name, nil
			}
			return "", "", err
		}
		kind, name, obj = ref.Kind, ref.Name, owner
	}
	return kind, name, nil
}

// template returns the pod template and selector of a workload object.
func template(obj client.Object) (corev1.PodTemplateSpec, *metav1.LabelSelector) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template, o.Spec.Selector
	case *appsv1.StatefulSet:
		return o.Spec.Template, o.Spec.Selector
	case *appsv1.DaemonSet:
		return o.Spec.Template, o.Spec.Selector
	case *appsv1.ReplicaSet:
		return o.Spec.Template, o.Spec.Selector
	case *batchv1.Job:
		return o.Spec.Template, o.Spec.Selector
	case *batchv1.CronJob:
		return o.Spec.JobTemplate.Spec.Template, nil
	case *corev1.Pod:
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: o.Labels, Annotations: o.Annotations}, Spec: o.Spec}, nil
	}
	return corev1.PodTemplateSpec{}, nil
}

// build makes a Workload of obj, taking its pods from pods (those of its
// namespace).
func build(kind string, obj client.Object, pods []corev1.Pod) *Workload {
	obj.GetObjectKind().SetGroupVersionKind(schemaGVK(kind))
	tpl, sel := template(obj)
	w := &Workload{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), Object: obj, Template: tpl}
	if p, ok := obj.(*corev1.Pod); ok {
		w.Pods = []corev1.Pod{*p}
		return w
	}
	if sel == nil {
		return w
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return w
	}
	for _, p := range pods {
		if p.Namespace == w.Namespace && s.Matches(labels.Set(p.Labels)) {
			w.Pods = append(w.Pods, p)
		}
	}
	return w
}

// Load reads one workload and its pods. It returns nil, nil when the
// object is gone or is not top-level (another workload runs it).
func Load(ctx context.Context, r client.Reader, kind, namespace, name string) (*Workload, error) {
	obj := NewObject(kind)
	if obj == nil {
		return nil, fmt.Errorf("unknown workload kind %q", kind)
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if !TopLevel(kind, obj) {
		return nil, nil
	}
	var pods []corev1.Pod
	if _, sel := template(obj); sel != nil && kind != "Pod" {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err == nil && !s.Empty() {
			var pl corev1.PodList
			if err := r.List(ctx, &pl, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: s}); err != nil {
				return nil, err
			}
			pods = pl.Items
		}
	}
	return build(kind, obj, pods), nil
}

// List returns every workload in the namespaces (none: all), sorted by
// namespace, kind and name.
func List(ctx context.Context, r client.Reader, namespaces []string) ([]*Workload, error) {
	scopes := namespaces
	if len(scopes) == 0 {
		scopes = []string{""}
	}
	var out []*Workload
	for _, ns := range scopes {
		var pl corev1.PodList
		if err := r.List(ctx, &pl, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		for _, kind := range Kinds {
			l := NewList(kind)
			if err := r.List(ctx, l, client.InNamespace(ns)); err != nil {
				return nil, fmt.Errorf("list %ss: %w", kind, err)
			}
			for _, obj := range items(l) {
				if TopLevel(kind, obj) {
					out = append(out, build(kind, obj, pl.Items))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *Workload) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		if c := slices.Index(Kinds, a.Kind) - slices.Index(Kinds, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func items(l client.ObjectList) []client.Object {
	objs, err := meta.ExtractList(l)
	if err != nil {
		return nil
	}
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		if co, ok := o.(client.Object); ok {
			out = append(out, co)
		}
	}
	return out
}

// ServiceAccount is the service account a workload object's pods run as
// ("default" when its pod template names none).
func ServiceAccount(obj client.Object) string {
	tpl, _ := template(obj)
	sa := tpl.Spec.ServiceAccountName
	if sa == "" {
		sa = tpl.Spec.DeprecatedServiceAccount
	}
	if sa == "" {
		sa = "default"
	}
	return sa
}

// Items are the objects of a list.
func Items(l client.ObjectList) []client.Object { return items(l) }
