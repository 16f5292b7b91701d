package audit

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
)

func workload(spec corev1.PodSpec) *cluster.Workload {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}, Spec: spec}
	return &cluster.Workload{Kind: "Pod", Namespace: "ns", Name: "p", Object: p, Template: corev1.PodTemplateSpec{Spec: spec}}
}

// The level a workload meets follows the Pod Security Standards checks of
// bulkhead config: a hardened pod meets restricted, a default one
// baseline, a privileged one nothing above privileged; findings are
// located at namespace/Kind/name.
func TestPodSecurityLevel(t *testing.T) {
	a, err := New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	no, yes, uid := false, true, int64(1000)
	hardened := corev1.PodSpec{
		AutomountServiceAccountToken: &no,
		SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "c", Image: "r/app@sha256:" + strings.Repeat("0", 64), SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			Resources: corev1.ResourceRequirements{}}},
	}
	plain := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "r/app:1"}}}
	priv := corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "c", Image: "r/app:1", SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}}
	for name, tc := range map[string]struct {
		spec corev1.PodSpec
		want string
	}{"hardened": {hardened, "restricted"}, "plain": {plain, "baseline"}, "privileged": {priv, "privileged"}} {
		res, err := a.Workload(workload(tc.spec))
		if err != nil {
			t.Fatal(err)
		}
		if res.PodSecurity != tc.want {
			var ids []string
			for _, f := range res.Findings {
				ids = append(ids, f.ID)
			}
			t.Errorf("%s: %s, want %s (%v)", name, res.PodSecurity, tc.want, ids)
		}
		for _, f := range res.Findings {
			if f.Target != "ns/Pod/p" {
				t.Errorf("%s: finding %s at %q", name, f.ID, f.Target)
			}
		}
	}
}
