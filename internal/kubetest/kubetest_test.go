package kubetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestServer: the API server is the release of k8s.io/api in go.mod, pods
// are stored (and stay Pending: no kubelet), and namespaces come with their
// default ServiceAccount.
func TestServer(t *testing.T) {
	e := Start(t)
	v, err := e.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version() {
		t.Errorf("server version %s, want %s (the k8s.io/api release in go.mod; rebuild with scripts/kube-assets.sh)", v.GitVersion, Version())
	}
	ctx := context.Background()
	ns := e.Namespace(t, "kubetest", map[string]string{"team": "a"})
	if _, err := e.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default ServiceAccount: %v", err)
	}
	got, err := e.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Labels["team"] != "a" || got.Labels[corev1.LabelMetadataName] != ns {
		t.Errorf("namespace labels %v: %v", got.Labels, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "127.0.0.1:5000/x:1"}}},
	}
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := e.Client.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodPending || p.Spec.ServiceAccountName != "default" {
		t.Errorf("pod phase %q service account %q: %v", p.Status.Phase, p.Spec.ServiceAccountName, err)
	}
	// The same server for every test of the binary.
	if Start(t) != e {
		t.Error("a second Start gave another server")
	}
}

// TestWaitWebhooks: a fail-closed webhook on a closed port is in force once
// WaitWebhooks returns, and only in its own namespace.
func TestWaitWebhooks(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	ns, other := e.Namespace(t, "wh", nil), e.Namespace(t, "wh-other", nil)
	vwc := sentinelLike("closed-port.kubetest.bulkhead.dev", ns)
	if _, err := e.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer e.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, vwc.Name, metav1.DeleteOptions{})
	t0 := time.Now()
	e.WaitWebhooks(t)
	t.Logf("webhook configuration in force after %v", time.Since(t0).Round(time.Millisecond))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	_, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err == nil || !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), `failed calling webhook "closed-port.kubetest.bulkhead.dev"`) {
		t.Errorf("pod in %s: %v", ns, err)
	}
	if _, err := e.Client.CoreV1().Pods(other).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("pod in %s (not selected): %v", other, err)
	}
}

// TestAssetsDir: a directory without the binaries is reported with what to
// run.
func TestAssetsDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755)
	_, err := AssetsDir()
	if !errors.Is(err, ErrNoAssets) || !strings.Contains(err.Error(), "no kube-apiserver, kubectl in "+dir) ||
		!strings.Contains(err.Error(), "scripts/kube-assets.sh") {
		t.Errorf("error %v", err)
	}
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("BULKHEAD_KUBE_CACHE", dir)
	if d, _ := AssetsDir(); d != filepath.Join(dir, Version()) {
		t.Errorf("cache dir %s", d)
	}
}
