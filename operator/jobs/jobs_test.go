package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/jobs"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// cliEnv makes this test binary the bulkhead CLI: the scan Jobs' image
// holds it, and runs it with cliEnv=1 (the Jobs run the code under test).
const cliEnv = "BULKHEAD_JOBS_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		if strings.Contains(args, "\"error\"") || strings.Contains(args, "error=") {
			fmt.Fprintln(os.Stderr, prefix, args)
		}
	}, funcr.Options{}))
	os.Exit(kubetest.Main(m))
}

const (
	serverToken = "bkh_operator-jobs-test-admin-token-0123456789"
	pullUser    = "puller"
	pullPass    = "pull-secret-password"
)

// Job mode on a real API server, with this test as the kubelet and the
// Job controller: it watches the scan Jobs, runs each Job's pod spec with
// podman (image, args, env from the Secret, the security context, the
// volumes) and writes the Job's status as the Job controller would.
//
// Ten images (one behind basic auth, reached through a pod's
// imagePullSecret) at a concurrency limit of 3: never more than 3 Jobs
// exist (sampled at every watch event), each digest is scanned by
// exactly one Job that ran, the first Job of one digest fails and is
// recorded in its report and retried, no Job is left behind, and every
// report holds the findings bulkhead server made of the uploaded
// inventory.
func TestJobMode(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is needed to run the Jobs' pods")
	}
	e := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := controller.InstallCRDs(ctx, e.Config); err != nil {
		t.Fatal(err)
	}
	img := scanImage(t)

	// bulkhead server on loopback, matching with the npm test advisories.
	dir := t.TempDir()
	if _, err := vulndb.Import(ctx, filepath.Join(dir, "osv.db"), []string{"../../match/testdata/osv/npm"}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(dir, "osv.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	srv := servertest.Start(t, servertest.Options{Matcher: m, Token: serverToken})
	sc := srv.Client(t, server.RoleAdmin)

	// The registry: ten images with lodash 4.17.4; private/* needs basic
	// auth.
	host := startRegistry(t)
	const n = 10
	digests := make([]string, n)
	repos := make([]string, n)
	for i := range n {
		repos[i] = fmt.Sprintf("%s/app%d", host, i)
		if i == n-1 {
			repos[i] = host + "/private/app"
		}
		digests[i] = push(t, repos[i]+":v1", fmt.Sprint(t.Name(), i, time.Now().UnixNano()))
	}
	failFirst := digests[0] // its first Job fails

	work := e.Namespace(t, "jobs-work", nil)
	jobsNS := e.Namespace(t, "jobs-scan", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	kc := directClient(t, e)
	mustCreate := func(obj client.Object) {
		t.Helper()
		if err := kc.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: jobsNS, Name: "bulkhead-token"}, StringData: map[string]string{"token": serverToken}})
	auth, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"username": pullUser, "password": pullPass}}})
	mustCreate(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: work, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: auth}})

	// The test's kubelet and Job controller.
	k := &kubelet{t: t, c: kc, ns: jobsNS, image: img, runs: map[string]int{}, jobs: map[string]int{}, live: map[string]bool{}, failFirst: failFirst}
	k.start(ctx, e)

	// The operator, in Job mode, watching the workloads' namespace only.
	mgr, err := controller.NewManager(e.Config, controller.ManagerOptions{Namespaces: []string{work}, LeaderElection: true, LeaderElectionNamespace: jobsNS, LeaderElectionID: "bulkhead-" + jobsNS})
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := scanner.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	aud, err := audit.New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scanCfg := &scanner.Config{Insecure: true, TempDir: t.TempDir(), Server: sc, ServerURL: srv.URL}
	if _, err := jobs.Setup(mgr, scanCfg, jobs.Options{Namespace: jobsNS, Image: img, ServerURL: srv.URL, TokenSecret: "bulkhead-token",
		Concurrency: 3, PullSecrets: true, Insecure: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{
		Scan: scanCfg,
		// More scans wait than Jobs may run (as with two replicas, or a
		// restart): the limit is the API server's, not the worker pool's.
		Scheduler: scanner.SchedulerOptions{Workers: 8, TTL: time.Hour, RetryAfter: time.Second, Metrics: metrics},
		Resolver:  resolve.New(resolve.Options{Insecure: true, Secrets: mgr.GetAPIReader()}),
		Auditor:   aud,
		Pending:   time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() { stop(); <-done }()

	// Twenty pods over the ten images.
	start := time.Now()
	for i := range 2 * n {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: work, Name: fmt.Sprintf("p%d", i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: repos[i%n] + ":v1"}}}}
		if i%n == n-1 {
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		}
		mustCreate(p)
	}

	report := func(d string) (*v1alpha1.ImageReport, error) {
		var ir v1alpha1.ImageReport
		err := kc.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir)
		return &ir, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		var last string
		for _, d := range digests {
			ir, err := report(d)
			if err != nil || ir.Report.ScanID == 0 || ir.Report.Error != "" {
				missing++
				if err != nil {
					last = err.Error()
				} else {
					last = fmt.Sprintf("%s: error %q", d, ir.Report.Error)
				}
			}
		}
		if missing == 0 {
			break
		}
		if err := k.failure(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d images not reported after 60s (%s); kubelet: %s", missing, n, last, k.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	if err := k.failure(); err != nil {
		t.Fatal(err)
	}

	var left batchv1.JobList
	if err := kc.List(ctx, &left, client.InNamespace(jobsNS)); err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 0 {
		t.Errorf("%d Jobs left behind after every report was written", len(left.Items))
	}
	var secrets corev1.SecretList
	if err := kc.List(ctx, &secrets, client.InNamespace(jobsNS), client.MatchingLabels{jobs.LabelScan: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 0 {
		t.Errorf("%d pull secrets left behind", len(secrets.Items))
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	t.Logf("%d images, %d pods, concurrency 3: every report in %v; %d Jobs, peak %d existing at once", n, 2*n, took.Round(10*time.Millisecond), k.created, k.peak)
	if k.peak > 3 {
		t.Errorf("%d Jobs existed at once; the limit is 3", k.peak)
	}
	if k.peak < 2 {
		t.Errorf("at most %d Job existed at once: the scans did not run side by side", k.peak)
	}
	if !k.sawFailed {
		t.Error("the failed Job was not recorded in its ImageReport before the retry")
	}
	for i, d := range digests {
		want := 1
		if d == failFirst {
			want = 2
		}
		if k.runs[d] != 1 || k.jobs[d] != want {
			t.Errorf("image %d (%s): %d Jobs, %d ran to completion; want %d and 1", i, d, k.jobs[d], k.runs[d], want)
		}
		ir, err := report(d)
		if err != nil {
			t.Fatal(err)
		}
		c := meta.FindStatusCondition(ir.Status.Conditions, v1alpha1.ConditionScanned)
		if ir.Report.Server != srv.URL || ir.Report.Summary.Total() == 0 || c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "Job "+jobsNS+"/") {
			t.Errorf("image %d: report %+v, condition %+v", i, ir.Report, c)
		}
	}
	// The server holds one scan per digest: one upload each.
	for i, d := range digests {
		repo, _ := name.NewRepository(repos[i])
		var page []struct {
			Digest string `json:"digest"`
		}
		if err := sc.Get(ctx, "/api/v1/images", map[string][]string{"repository": {repo.Name()}}, &page); err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, p := range page {
			if p.Digest == d {
				got++
			}
		}
		if got != 1 {
			t.Errorf("image %d: the server lists %d scans of %s", i, got, d)
		}
	}
}

// kubelet runs the scan Jobs' pods with podman and writes their status.
type kubelet struct {
	t         *testing.T
	c         client.Client
	ns, image string
	failFirst string

	mu        sync.Mutex
	live      map[string]bool // the Jobs that exist, by UID
	peak      int
	created   int
	jobs      map[string]int // Jobs created per digest
	runs      map[string]int // pods run to success per digest
	sawFailed bool
	err       error
	checked   bool
}

func (k *kubelet) fail(format string, a ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = fmt.Errorf(format, a...)
	}
}

func (k *kubelet) failure() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

func (k *kubelet) summary() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return fmt.Sprintf("%d Jobs created, %d exist, runs %v", k.created, len(k.live), k.runs)
}

func (k *kubelet) start(ctx context.Context, e *kubetest.Env) {
	w, err := e.Client.BatchV1().Jobs(k.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	var wg sync.WaitGroup
	k.t.Cleanup(func() { w.Stop(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			d := j.Annotations[jobs.AnnotationDigest]
			k.mu.Lock()
			switch ev.Type {
			case watch.Added:
				k.live[string(j.UID)] = true
				k.created++
				k.jobs[d]++
				first := k.jobs[d] == 1
				wg.Add(1)
				go func() { defer wg.Done(); k.run(ctx, j.DeepCopy(), d, first) }()
			case watch.Deleted:
				delete(k.live, string(j.UID))
			}
			k.peak = max(k.peak, len(k.live))
			k.mu.Unlock()
		}
	}()
}

// run is the kubelet and the Job controller for one Job.
func (k *kubelet) run(ctx context.Context, j *batchv1.Job, d string, first bool) {
	k.check(ctx, j)
	if d == k.failFirst && !first {
		// The retry: the failure must be in the report by now.
		var ir v1alpha1.ImageReport
		if err := k.c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir); err != nil {
			k.fail("report of the failed digest: %v", err)
			return
		}
		c := meta.FindStatusCondition(ir.Status.Conditions, v1alpha1.ConditionScanned)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "JobFailed" || !strings.Contains(c.Message, "BackoffLimitExceeded") {
			k.fail("before the retry, the failed digest's report says %+v", c)
		} else {
			k.mu.Lock()
			k.sawFailed = true
			k.mu.Unlock()
		}
	}
	started := metav1.Now()
	j.Status = batchv1.JobStatus{StartTime: &started, Active: 1, Ready: ptrTo(int32(0)), Terminating: ptrTo(int32(0))}
	if err := k.c.Status().Update(ctx, j); err != nil {
		k.fail("job %s started: %v", j.Name, err)
		return
	}
	ok, out := true, ""
	if d == k.failFirst && first {
		ok, out = false, "the node went away"
	} else {
		ok, out = k.podman(ctx, j)
	}
	now := metav1.Now()
	j.Status.Active = 0
	if ok {
		j.Status.Succeeded, j.Status.CompletionTime = 1, &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now},
		}
		k.mu.Lock()
		k.runs[d]++
		k.mu.Unlock()
	} else {
		j.Status.Failed = 1
		msg := "Job has reached the specified backoff limit"
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: msg, LastProbeTime: now, LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: msg, LastProbeTime: now, LastTransitionTime: now},
		}
		if d != k.failFirst {
			k.fail("job %s (%s) failed: %s", j.Name, d, out)
		}
	}
	if err := k.c.Status().Update(ctx, j); err != nil && ctx.Err() == nil {
		k.fail("job %s finished: %v", j.Name, err)
	}
}

// check looks at the first Job's spec: the limits, the restricted pod
// security level (the operator's own audit), the token not inline.
func (k *kubelet) check(ctx context.Context, j *batchv1.Job) {
	k.mu.Lock()
	if k.checked {
		k.mu.Unlock()
		return
	}
	k.checked = true
	k.mu.Unlock()
	s := j.Spec
	if s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds <= 0 || s.TTLSecondsAfterFinished == nil || s.BackoffLimit == nil || *s.BackoffLimit > 3 {
		k.fail("job %s: deadline %v, ttl %v, backoffLimit %v", j.Name, s.ActiveDeadlineSeconds, s.TTLSecondsAfterFinished, s.BackoffLimit)
	}
	if j.Labels[jobs.LabelDigest] == "" || !strings.HasPrefix(j.Annotations[jobs.AnnotationDigest], "sha256:"+j.Labels[jobs.LabelDigest]) {
		k.fail("job %s: labels %v, annotations %v", j.Name, j.Labels, j.Annotations)
	}
	raw, _ := json.Marshal(j)
	if strings.Contains(string(raw), serverToken) {
		k.fail("job %s holds the server token", j.Name)
	}
	aud, err := audit.New(kubernetes.Options{Level: kubernetes.LevelRestricted})
	if err != nil {
		k.fail("%v", err)
		return
	}
	j.TypeMeta = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}
	res, err := aud.Workload(&cluster.Workload{Kind: "Job", Namespace: j.Namespace, Name: j.Name, Object: j, Template: j.Spec.Template})
	if err != nil {
		k.fail("audit %s: %v", j.Name, err)
		return
	}
	if res.PodSecurity != "restricted" {
		var ids []string
		for _, f := range res.Findings {
			ids = append(ids, f.ID)
		}
		k.fail("job %s meets Pod Security %q, not restricted: %v", j.Name, res.PodSecurity, ids)
	}
}

// podman runs the Job's pod spec (its one container) as a kubelet would.
func (k *kubelet) podman(ctx context.Context, j *batchv1.Job) (bool, string) {
	spec := j.Spec.Template.Spec
	c := spec.Containers[0]
	args := []string{"run", "--rm", "--name", "bulkhead-jobs-test-" + string(j.UID), "--network", "host", "--pull", "never"}
	sc, psc := c.SecurityContext, spec.SecurityContext
	if psc != nil && psc.RunAsUser != nil {
		args = append(args, "--user", fmt.Sprintf("%d:%d", *psc.RunAsUser, deref(psc.RunAsGroup)))
	}
	if sc != nil {
		if deref(sc.ReadOnlyRootFilesystem) {
			args = append(args, "--read-only")
		}
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				args = append(args, "--cap-drop", string(d))
			}
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			args = append(args, "--security-opt", "no-new-privileges")
		}
	}
	// The container's environment goes through a file: podman itself
	// reads some variables (DOCKER_CONFIG) from its own.
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			var s corev1.Secret
			if err := k.c.Get(ctx, client.ObjectKey{Namespace: j.Namespace, Name: e.ValueFrom.SecretKeyRef.Name}, &s); err != nil {
				return false, err.Error()
			}
			v = string(s.Data[e.ValueFrom.SecretKeyRef.Key])
		}
		env = append(env, e.Name+"="+v)
	}
	envFile := filepath.Join(k.t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
		return false, err.Error()
	}
	args = append(args, "--env-file", envFile)
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		switch {
		case v.EmptyDir != nil:
			args = append(args, "--tmpfs", m.MountPath+":rw,mode=1777")
		case v.Secret != nil:
			var s corev1.Secret
			if err := k.c.Get(ctx, client.ObjectKey{Namespace: j.Namespace, Name: v.Secret.SecretName}, &s); err != nil {
				return false, err.Error()
			}
			dir := k.t.TempDir()
			for _, it := range v.Secret.Items {
				if err := os.WriteFile(filepath.Join(dir, it.Path), s.Data[it.Key], 0o644); err != nil {
					return false, err.Error()
				}
			}
			args = append(args, "-v", dir+":"+m.MountPath+":ro")
		default:
			return false, "volume " + m.Name + " of a kind the test's kubelet does not run"
		}
	}
	if len(c.Command) > 0 {
		b, _ := json.Marshal(c.Command)
		args = append(args, "--entrypoint", string(b))
	}
	args = append(args, c.Image)
	args = append(args, c.Args...)
	cmd := exec.CommandContext(ctx, "podman", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return true, string(out)
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func ptrTo[T any](v T) *T { return &v }

var imageOnce struct {
	sync.Once
	ref string
	err error
}

// scanImage is the scan Jobs' image: this test binary (which runs as the
// bulkhead CLI under cliEnv=1) and the shared libraries it loads, FROM
// scratch, built with podman import once per test binary (tagged by its
// hash; older tags are removed).
func scanImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() { imageOnce.ref, imageOnce.err = buildImage() })
	if imageOnce.err != nil {
		t.Fatal(imageOnce.err)
	}
	return imageOnce.ref
}

func buildImage() (string, error) {
	const repo = "localhost/bulkhead-jobs-test"
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	ref := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if exec.Command("podman", "image", "exists", ref).Run() == nil {
		return ref, nil
	}
	root, err := os.MkdirTemp("", "bulkhead-jobs-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	files := map[string]string{exe: "bulkhead"}
	if out, err := exec.Command("ldd", exe).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			for _, w := range strings.Fields(line) {
				if strings.HasPrefix(w, "/") {
					files[w] = strings.TrimPrefix(w, "/")
				}
			}
		}
	}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			return "", err
		}
	}
	tarPath := root + ".tar"
	defer os.Remove(tarPath)
	if out, err := exec.Command("tar", "-C", root, "-cf", tarPath, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar: %v: %s", err, out)
	}
	old, _ := exec.Command("podman", "images", "-q", "--filter", "reference="+repo).Output()
	if out, err := exec.Command("podman", "import", "-q", "--change", `ENTRYPOINT ["/bulkhead"]`, "--change", "ENV "+cliEnv+"=1", tarPath, ref).CombinedOutput(); err != nil {
		return "", fmt.Errorf("podman import: %v: %s", err, out)
	}
	for _, id := range strings.Fields(string(old)) {
		exec.Command("podman", "rmi", "-f", id).Run()
	}
	return ref, nil
}

// startRegistry is go-containerregistry's registry on loopback; its
// private/ repositories need basic auth.
func startRegistry(t *testing.T) string {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("cannot listen on loopback: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/private/") {
			if u, p, ok := r.BasicAuth(); !ok || u != pullUser || p != pullPass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// push pushes an image holding lodash 4.17.4 and a marker and returns its
// digest.
func push(t *testing.T, ref, marker string) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, regtest.Layer(t, map[string]string{
		"etc/marker": marker,
		"usr/lib/node_modules/lodash/package.json": `{"name":"lodash","version":"4.17.4"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var opts []remote.Option
	if strings.Contains(ref, "/private/") {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: pullUser, Password: pullPass}))
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
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
