package e2e

// The admission webhook behind a real kube-apiserver (internal/kubetest):
// bulkhead admission is registered through a ValidatingWebhookConfiguration
// and pods are created through the API server, so the API server's own call
// to the webhook, its timeout and its failurePolicy are the real ones.

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// registerWebhook registers url as the validating webhook name for pod
// creations in namespace ns only.
func (e *admissionEnv) registerWebhook(t *testing.T, kube *kubetest.Env, name, ns, url string, policy admissionregistrationv1.FailurePolicyType, timeoutSeconds int32) {
	t.Helper()
	none := admissionregistrationv1.SideEffectClassNone
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bulkhead-e2e-"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: e.caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{kubetest.PodCreate()},
			FailurePolicy:           &policy,
			SideEffects:             &none,
			TimeoutSeconds:          &timeoutSeconds,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       kubetest.InNamespace(ns),
		}},
	}
	vwcs := kube.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	got, err := vwcs.Create(context.Background(), vwc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("registering webhook %s: %v", name, err)
	}
	t.Cleanup(func() { vwcs.Delete(context.Background(), got.Name, metav1.DeleteOptions{}) })
}

// warningRecorder keeps the warnings the API server sends back (the
// webhook's warnings arrive as Warning headers).
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// createPod creates the manifest's pod through the API server and returns
// the error, the warnings and how long the call took.
func createPod(t *testing.T, kube *kubetest.Env, manifest []byte) (error, []string, time.Duration) {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		t.Fatal(err)
	}
	rec := &warningRecorder{}
	cfg := rest.CopyConfig(kube.Config)
	cfg.WarningHandler = rec
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = client.CoreV1().Pods(pod.Namespace).Create(context.Background(), &pod, metav1.CreateOptions{})
	took := time.Since(t0)
	// Whatever the answer, the pod exists exactly when it was admitted.
	_, getErr := kube.Client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if (err == nil) != (getErr == nil) || (getErr != nil && !apierrors.IsNotFound(getErr)) {
		t.Errorf("create answered %v, but get answers %v", err, getErr)
	}
	return err, rec.list, took
}

// slowProxy forwards TCP connections to addr after holding each one for
// delay: the webhook, slow to answer. It stops at the end of the test.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				select {
				case <-time.After(delay):
				case <-done:
					return
				}
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// TestAdmissionThroughAPIServer: every admission case gets the same verdict
// when its pod is created through a real API server that calls bulkhead's
// webhook (a denial is the API server's 403 "admission webhook ... denied
// the request"); and with the webhook down or slower than timeoutSeconds,
// failurePolicy Fail refuses the pod and Ignore admits it, after the
// timeout and not after the webhook's delay.
func TestAdmissionThroughAPIServer(t *testing.T) {
	requireEnv(t) // before starting an API server for nothing
	kube := kubetest.Start(t)
	e := newAdmissionEnv(t)
	e.startWebhook(t, "--tag-ttl", "0")
	webhookAddr := strings.TrimPrefix(e.url, "https://")

	const slow = 6 * time.Second // the slow webhook's delay
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	type outage struct {
		name    string
		url     string
		policy  admissionregistrationv1.FailurePolicyType
		timeout int32
		ns      string
	}
	// Each outage has a URL of its own, so that no connection the API
	// server keeps for one webhook serves another.
	down := func() string { return "https://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/validate" } // nothing listens there
	slowURL := func(d time.Duration) string { return "https://" + slowProxy(t, webhookAddr, d) + "/validate" }
	outages := []*outage{
		{name: "down-fail", url: down(), policy: fail, timeout: 5},
		{name: "down-ignore", url: down(), policy: ignore, timeout: 5},
		{name: "slow-fail", url: slowURL(slow), policy: fail, timeout: 2},
		{name: "slow-ignore", url: slowURL(slow), policy: ignore, timeout: 2},
		// Within the timeout the slow webhook's verdict comes through.
		{name: "slow-in-time", url: slowURL(3 * time.Second), policy: fail, timeout: 15},
	}

	// Each registration selects its own namespace; they are all in force
	// once WaitWebhooks returns.
	ns := kube.Namespace(t, "prod", nil)
	e.registerWebhook(t, kube, "pods.bulkhead.dev", ns, e.url+"/validate", fail, 30)
	for _, o := range outages {
		o.ns = kube.Namespace(t, "prod-"+o.name, nil)
		e.registerWebhook(t, kube, o.name+".bulkhead.dev", o.ns, o.url, o.policy, o.timeout)
	}
	kube.WaitWebhooks(t)

	for _, tc := range admissionCases {
		t.Run(tc.name, func(t *testing.T) {
			err, warnings, took := createPod(t, kube, tc.pod(e, ns))
			t.Logf("API server in %v: %v; warnings %q", took.Round(time.Millisecond), err, warnings)
			msg := ""
			if err != nil {
				const prefix = `admission webhook "pods.bulkhead.dev" denied the request: `
				var st apierrors.APIStatus
				if !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("want a 403 %q..., got %v", prefix, err)
				}
				if errors.As(err, &st) && st.Status().Code != 403 {
					t.Errorf("code %d", st.Status().Code)
				}
				msg = strings.TrimPrefix(err.Error(), prefix)
			}
			tc.check(t, err == nil, msg, warnings)
		})
	}

	// The unsigned image: the webhook denies it whenever it answers in time.
	unsigned := admissionCases[1]
	if unsigned.image != "unsigned" {
		t.Fatalf("admissionCases[1] is %q, not the unsigned image", unsigned.name)
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			err, _, took := createPod(t, kube, unsigned.pod(e, o.ns))
			t.Logf("%s, timeoutSeconds %d: API server answered in %v: %v", o.policy, o.timeout, took.Round(time.Millisecond), err)
			hook := `"` + o.name + `.bulkhead.dev"`
			switch {
			case o.name == "slow-in-time":
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "admission webhook "+hook+" denied the request") ||
					!strings.Contains(err.Error(), unsigned.want) {
					t.Errorf("want the webhook's denial, got %v", err)
				}
				if took < 3*time.Second {
					t.Errorf("answered in %v, before the webhook could", took)
				}
			case o.policy == ignore:
				if err != nil {
					t.Errorf("failurePolicy Ignore: %v", err)
				}
			default:
				if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed calling webhook "+hook) {
					t.Errorf("failurePolicy Fail: want failed calling webhook %s, got %v", hook, err)
				}
				if strings.HasPrefix(o.name, "down") && !strings.Contains(err.Error(), "connection refused") {
					t.Errorf("down: %v", err)
				}
				if strings.HasPrefix(o.name, "slow") && !strings.Contains(err.Error(), "deadline exceeded") {
					t.Errorf("slow: %v", err)
				}
			}
			if strings.HasPrefix(o.name, "slow-") && o.name != "slow-in-time" {
				// The API server gives up at timeoutSeconds, not when the
				// webhook would have answered.
				if took < time.Duration(o.timeout)*time.Second || took >= slow {
					t.Errorf("answered in %v; want timeoutSeconds=%d (webhook delay %v)", took, o.timeout, slow)
				}
			}
		})
	}
}
