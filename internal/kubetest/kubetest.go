// Package kubetest runs a real Kubernetes API server (kube-apiserver and etcd,
// through controller-runtime's envtest) for the tests of one test binary.
//
// The binaries are built from the Go module proxy by scripts/kube-assets.sh
// and cached outside the clone; KUBEBUILDER_ASSETS names their directory, and
// without it the cache directory of the k8s.io release in go.mod is used
// (/var/cache/bulkhead-kube/v1.<minor>.<patch>, or $BULKHEAD_KUBE_CACHE/...).
// When they are missing the tests are skipped, except under CI, where that is
// a failure that says to run the script.
//
// One API server serves the whole test binary: the package's TestMain calls
// Main, the first test that needs the server calls Start (later calls share
// it), and Main stops it when the tests are done. Tests keep out of each
// other's way with their own namespaces (Namespace) and by scoping what they
// register cluster-wide to them.
//
// There is no controller-manager and no kubelet: namespaces get no default
// ServiceAccount by themselves (Namespace creates it; the ServiceAccount
// admission plugin is on, as in a real cluster, so a pod needs it), and pods
// stay Pending.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultCacheRoot is where scripts/kube-assets.sh caches the binaries.
const DefaultCacheRoot = "/var/cache/bulkhead-kube"

// fallbackVersion is used when the build information names no k8s.io/api.
const fallbackVersion = "v1.37.2"

// Binaries are the files an assets directory must hold.
var Binaries = []string{"kube-apiserver", "etcd", "kubectl"}

// ErrNoAssets is wrapped by AssetsDir's error when the binaries are missing.
var ErrNoAssets = errors.New("the Kubernetes test binaries are missing")

// Version is the Kubernetes release the tests are built against: the one of
// k8s.io/api in go.mod (v0.37.2 is Kubernetes v1.37.2).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "k8s.io/api" {
				if rest, ok := strings.CutPrefix(d.Version, "v0."); ok {
					return "v1." + rest
				}
			}
		}
	}
	return fallbackVersion
}

// AssetsDir returns the directory that holds kube-apiserver, etcd and
// kubectl: $KUBEBUILDER_ASSETS, or the cache directory of Version. The error
// wraps ErrNoAssets and says how to build them.
func AssetsDir() (string, error) {
	dir, from := os.Getenv("KUBEBUILDER_ASSETS"), "KUBEBUILDER_ASSETS"
	if dir == "" {
		root := os.Getenv("BULKHEAD_KUBE_CACHE")
		if root == "" {
			root = DefaultCacheRoot
		}
		dir, from = filepath.Join(root, Version()), "the cache"
	}
	var missing []string
	for _, b := range Binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return dir, fmt.Errorf("%w: no %s in %s (%s); build them with scripts/kube-assets.sh (K8S_VERSION=%s) and set KUBEBUILDER_ASSETS to the directory it prints",
			ErrNoAssets, strings.Join(missing, ", "), dir, from, Version())
	}
	return dir, nil
}

// Env is the running API server.
type Env struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Client is a clientset over Config.
	Client kubernetes.Interface
	// AssetsDir holds the binaries it runs.
	AssetsDir string
	// StartTime is how long etcd and kube-apiserver took to become ready.
	StartTime time.Duration
	// LogDir holds the API server's and etcd's output.
	LogDir string

	te *envtest.Environment
}

var (
	mu       sync.Mutex
	inMain   bool
	shared   *Env
	startErr error
)

// Main runs the tests of a package and stops the API server if a test
// started one. Call it from TestMain in place of m.Run:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: stopping the API server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared = nil
	}
	return code
}

// ciStrict reports whether missing assets are a failure (CI set, and not
// to "false" or "0").
func ciStrict() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Start returns the test binary's API server, starting it on the first call.
// Without the binaries it skips the test (under CI it fails it). A failed
// start fails this and every later test that asks for the server.
func Start(t testing.TB) *Env {
	t.Helper()
	dir, err := AssetsDir()
	if err != nil {
		if ciStrict() {
			t.Fatalf("kubetest: %v", err)
		}
		t.Skipf("kubetest: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("kubetest: call kubetest.Main from the package's TestMain, so the API server is stopped at the end")
	}
	if shared == nil && startErr == nil {
		shared, startErr = start(dir)
		if startErr == nil {
			t.Logf("kubetest: kube-apiserver %s and etcd from %s ready in %v (logs in %s)",
				Version(), dir, shared.StartTime.Round(time.Millisecond), shared.LogDir)
		}
	}
	if startErr != nil {
		t.Fatalf("kubetest: %v", startErr)
	}
	return shared
}

func start(dir string) (*Env, error) {
	logDir, err := os.MkdirTemp("", "bulkhead-kubetest-")
	if err != nil {
		return nil, err
	}
	apiLog, err := os.Create(filepath.Join(logDir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	etcdLog, err := os.Create(filepath.Join(logDir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{BinaryAssetsDirectory: dir}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(dir, "etcd"), Out: etcdLog, Err: etcdLog}
	api := te.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(dir, "kube-apiserver")
	api.Out, api.Err = apiLog, apiLog
	te.ControlPlane.KubectlPath = filepath.Join(dir, "kubectl")
	// Keep the API server's own calls on the machine: it reaches Services
	// through their Endpoints rather than through <svc>.<ns>.svc names the
	// resolver would send off the machine.
	api.Configure().Set("enable-aggregator-routing", "true")
	// envtest turns the ServiceAccount admission plugin off; keep it on, as
	// in a real cluster (pods get their service account and its token
	// volume). Namespace creates the account it needs.
	api.Configure().Disable("disable-admission-plugins")
	began := time.Now()
	cfg, err := te.Start()
	if err != nil {
		te.Stop()
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w (logs in %s:\n%s)", dir, err, logDir, tailFile(apiLog.Name(), 2048))
	}
	e := &Env{Config: cfg, AssetsDir: dir, StartTime: time.Since(began), LogDir: logDir, te: te}
	if e.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		te.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) stop() error {
	err := e.te.Stop()
	if err == nil {
		os.RemoveAll(e.LogDir)
	}
	return err
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Namespace creates a namespace named prefix plus a random suffix, with
// labels, and its "default" ServiceAccount (no controller-manager runs to
// create it), and returns its name. Namespaces are not deleted: nothing
// would finalize them, and the API server goes away with the test binary.
func (e *Env) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: creating namespace %s-*: %v", prefix, err)
	}
	_, err = e.Client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubetest: creating the default ServiceAccount in %s: %v", ns.Name, err)
	}
	return ns.Name
}
