package kubetest

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InNamespace selects the namespace named ns (by the kubernetes.io/metadata.name
// label the API server puts on every namespace): the namespaceSelector that
// keeps a test's webhook out of the other tests' namespaces.
func InNamespace(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
}

// WaitWebhooks returns once the API server calls the admission webhooks
// registered before the call. It reads webhook configurations from a watch,
// so a configuration takes effect a moment after it is created; watch events
// arrive in order, so once a sentinel configuration created last is in force,
// so are all the earlier ones. The sentinel is a fail-closed webhook on a
// closed loopback port, scoped to a namespace of its own and probed with
// dry-run pod creations; it is deleted again.
func (e *Env) WaitWebhooks(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	ns := e.Namespace(t, "webhook-sentinel", nil)
	vwc := sentinelLike("sentinel.kubetest.bulkhead.dev", ns)
	vwcs := e.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	vwc, err := vwcs.Create(ctx, vwc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: registering the sentinel webhook: %v", err)
	}
	defer vwcs.Delete(ctx, vwc.Name, metav1.DeleteOptions{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "probe.invalid/x"}}},
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), `"sentinel.kubetest.bulkhead.dev"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubetest: the API server did not call a webhook registered 30 s ago (last answer: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PodCreate is the rule matching pod creations.
func PodCreate() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
		},
	}
}

// sentinelLike is a fail-closed webhook named name on a closed loopback
// port (nothing listens on port 1), for pods created in ns.
func sentinelLike(name, ns string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	url := "https://127.0.0.1:1/sentinel"
	timeout := int32(1)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kubetest-"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules:                   []admissionregistrationv1.RuleWithOperations{PodCreate()},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       InNamespace(ns),
		}},
	}
}
