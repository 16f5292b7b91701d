package controller_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
	"github.com/bulkhead-sec/bulkhead/pipeline"
)

var dbDir string

func TestMain(m *testing.M) {
	var err error
	if dbDir, err = os.MkdirTemp("", "bulkhead-operator-test-"); err != nil {
		panic(err)
	}
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		if strings.Contains(args, "\"error\"") || strings.Contains(args, "error=") {
			fmt.Fprintln(os.Stderr, prefix, args)
		}
	}, funcr.Options{}))
	code := kubetest.Main(m)
	os.RemoveAll(dbDir)
	os.Exit(code)
}

var (
	once       sync.Once
	matcher    *pipeline.Matcher
	onceErr    error
	crdsLoaded bool
)

// env starts the API server, installs the CRDs and opens the shared
// matcher (the bundled database, built once for the test binary).
func env(t *testing.T) *kubetest.Env {
	t.Helper()
	e := kubetest.Start(t)
	once.Do(func() {
		if onceErr = controller.InstallCRDs(context.Background(), e.Config); onceErr != nil {
			return
		}
		matcher, onceErr = pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(dbDir, "osv.db")})
	})
	if onceErr != nil {
		t.Fatal(onceErr)
	}
	return e
}

// reg is go-containerregistry's registry on loopback, counting the
// manifest requests it answers.
type reg struct {
	host string
	mu   sync.Mutex
	gets map[string]int // GET manifests by reference
	head map[string]int // HEAD manifests by reference
}

func newRegistry(t *testing.T) *reg {
	r := &reg{gets: map[string]int{}, head: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if i := strings.Index(req.URL.Path, "/manifests/"); i >= 0 {
			ref := req.URL.Path[i+len("/manifests/"):]
			r.mu.Lock()
			switch req.Method {
			case http.MethodGet:
				r.gets[ref]++
			case http.MethodHead:
				r.head[ref]++
			}
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("cannot listen on loopback: %v", err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *reg) counts() (gets, heads map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gets, heads = map[string]int{}, map[string]int{}
	for k, v := range r.gets {
		gets[k] = v
	}
	for k, v := range r.head {
		heads[k] = v
	}
	return gets, heads
}

// push pushes an image holding lodash at version (4.17.4 has known
// vulnerabilities in the bundled database) and a marker file, as
// host/repo:tag, and returns its digest.
func (r *reg) push(t *testing.T, repo, tag, version, marker string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string]string{
		"etc/marker": marker,
		"usr/lib/node_modules/lodash/package.json": `{"name":"lodash","version":"` + version + `"}`,
	}
	for _, n := range []string{"etc/marker", "usr/lib/node_modules/lodash/package.json"} {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// operator runs the operator on namespaces until stop is called.
type operator struct {
	op      *controller.Operator
	metrics *scanner.Metrics
	reg     *prometheus.Registry
	stop    func()
	client  client.Client
}

// withRBAC makes startOperator add the RBAC assessment controller.
var withRBAC bool

func startOperator(t *testing.T, e *kubetest.Env, leaseNS string, namespaces []string, ttl time.Duration) *operator {
	t.Helper()
	mgr, err := controller.NewManager(e.Config, controller.ManagerOptions{
		Namespaces: namespaces, LeaderElection: true, LeaderElectionNamespace: leaseNS, LeaderElectionID: "bulkhead-" + leaseNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	preg := prometheus.NewRegistry()
	m, err := scanner.NewMetrics(preg)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := audit.New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, err := controller.Setup(mgr, controller.Options{
		Scan:      &scanner.Config{Matcher: matcher, Insecure: true, TempDir: t.TempDir()},
		Scheduler: scanner.SchedulerOptions{Workers: 2, TTL: ttl, Metrics: m},
		Resolver:  resolve.New(resolve.Options{Insecure: true, Secrets: mgr.GetAPIReader()}),
		Auditor:   aud,
		Pending:   2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if withRBAC {
		// the RBAC assessment in the same manager, as bulkhead operator
		// runs it (one cache)
		if _, err := controller.SetupRBAC(mgr, controller.RBACOptions{Namespaces: namespaces}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	o := &operator{op: op, metrics: m, reg: preg, client: mgr.GetClient()}
	var stopped bool
	o.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the operator did not stop within 30s")
		}
	}
	t.Cleanup(o.stop)
	return o
}

// waitFor polls cond every 100ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (%s)", what, timeout, last)
}

func pod(ns, name string, images ...string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Namespace, p.Name = ns, name
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

func directClient(t *testing.T, e *kubetest.Env) client.Client {
	t.Helper()
	s, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
