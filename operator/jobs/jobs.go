// Package jobs runs the operator's image scans as Kubernetes Jobs (the
// operator's --scan-mode=jobs): each digest the server does not hold yet
// is scanned by a Job that runs `bulkhead image --server URL repo@digest`,
// which uploads the image's inventory to bulkhead server; the operator
// then reads the server's findings, as it does for any digest the server
// holds.
//
// The concurrency limit is kept by the API server, not by a counter in
// memory, so that a restarted operator and a second replica stay within
// it: a Job is created only while fewer than Concurrency scan Jobs exist
// in the namespace (a live list), and under one of Concurrency fixed names
// (bulkhead-scan-0, -1, ...), so two creators racing for the last slot
// cannot both win (the second gets AlreadyExists). A finished Job is
// deleted (propagation Background) as soon as the operator sees it
// finish, so it never keeps a slot; ttlSecondsAfterFinished is only the
// backstop for an operator that is gone. Every Job has a deadline
// (activeDeadlineSeconds), and the operator gives up on a Job that
// outlives it by more than a minute.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

const (
	// LabelScan marks the operator's scan Jobs, their pods and their
	// pull-credential Secrets; the operator counts Jobs by it and does not
	// treat them as workloads.
	LabelScan = "bulkhead.dev/scan"
	// LabelDigest links a Job to its digest: the digest's hex, cut to the
	// 63 characters a label value holds (AnnotationDigest has all of it).
	LabelDigest = "bulkhead.dev/digest"
	// AnnotationDigest is the full digest ("sha256:<hex>") a Job scans.
	AnnotationDigest = "bulkhead.dev/digest"
	// NamePrefix starts each Job's name; the slot number ends it.
	NamePrefix = "bulkhead-scan-"
)

// IsScan reports whether an object is one of the operator's scan Jobs
// (or their pods): it carries LabelScan.
func IsScan(obj metav1.Object) bool { return obj.GetLabels()[LabelScan] != "" }

// Options configure the Jobs.
type Options struct {
	// Namespace is where the Jobs run (the operator's own).
	Namespace string
	// Image is the bulkhead image the Jobs run (its entrypoint is bulkhead).
	Image string
	// ServerURL is bulkhead server, given to bulkhead image --server.
	ServerURL string
	// TokenSecret names a Secret in Namespace whose key TokenKey holds the
	// server's API token ("": the server needs none). The Job reads it into
	// $BULKHEAD_TOKEN; the token itself is never written into a Job.
	TokenSecret, TokenKey string
	// Concurrency is the most scan Jobs that exist at once (default 3).
	Concurrency int
	// Deadline is each Job's activeDeadlineSeconds (default 30 minutes).
	Deadline time.Duration
	// TTLAfterFinished is each Job's ttlSecondsAfterFinished (default 10
	// minutes): the backstop; the operator deletes a finished Job at once.
	TTLAfterFinished time.Duration
	// BackoffLimit is each Job's retries of a failed pod (default 1).
	BackoffLimit int32
	// PullSecrets passes the credential the operator resolved for an image
	// (its pods' imagePullSecrets) to the Job, as a Secret in Namespace
	// mounted as $DOCKER_CONFIG/config.json. Off: the Job pulls with no
	// credential but its own.
	PullSecrets bool
	// Insecure adds --insecure (plain HTTP and unverified TLS registries).
	Insecure bool
	// Resources are the scan container's requests and limits (default:
	// requests 100m CPU and 256Mi, limit 2Gi of memory).
	Resources *corev1.ResourceRequirements
	// Recheck is how often a waiting scan looks at the Jobs again besides
	// the watch's events (default 10s).
	Recheck time.Duration
}

func (o *Options) defaults() error {
	if o.Namespace == "" {
		return errors.New("scan Jobs: no namespace (give --scan-jobs-namespace)")
	}
	if o.Image == "" {
		return errors.New("scan Jobs: no image (give --scan-jobs-image)")
	}
	if o.ServerURL == "" {
		return errors.New("scan Jobs upload to bulkhead server: give --server")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 3
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.TTLAfterFinished <= 0 {
		o.TTLAfterFinished = 10 * time.Minute
	}
	if o.BackoffLimit < 0 {
		o.BackoffLimit = 0
	}
	if o.TokenSecret != "" && o.TokenKey == "" {
		o.TokenKey = "token"
	}
	if o.Recheck <= 0 {
		o.Recheck = 10 * time.Second
	}
	return nil
}

// Error is a scan Job that failed, or that could not be run to the end;
// the operator records Reason in the ImageReport's Scanned condition.
type Error struct {
	Job    string // namespace/name
	Why    string // the Job's Failed condition reason, or the operator's
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("scan Job %s failed (%s): %s; the operator tries again after a backoff", e.Job, e.Why, e.Detail)
}

// Reason is the ImageReport condition reason.
func (e *Error) Reason() string { return "JobFailed" }

// finish is what the operator saw of a finished Job.
type finish struct {
	failed bool
	why    string
	detail string
	at     time.Time
}

// Runner runs scans as Jobs; it is a scanner.Executor and a
// manager.Runnable (leader-elected: only the leader's Runner creates and
// deletes Jobs).
type Runner struct {
	o     Options
	c     client.Client // direct: creates, deletes and lists what exists now
	jobs  cache.Cache   // the scan Jobs in Namespace, for their events
	cfg   *scanner.Config
	ready chan struct{}

	mu       sync.Mutex
	active   bool
	finished map[types.UID]finish
	changed  chan struct{}
}

// New makes a Runner; c must be a client that reads from the API server
// (not a cache), jobs a cache whose Jobs are limited to Namespace (see
// CacheOptions), cfg the scan configuration whose server the findings are
// read from.
func New(c client.Client, jobs cache.Cache, cfg *scanner.Config, o Options) (*Runner, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if cfg.Server == nil {
		return nil, errors.New("scan Jobs upload to bulkhead server: give --server")
	}
	return &Runner{o: o, c: c, jobs: jobs, cfg: cfg, ready: make(chan struct{}), finished: map[types.UID]finish{}, changed: make(chan struct{})}, nil
}

// CacheOptions limit a cache to the scan Jobs of namespace.
func CacheOptions(namespace string) cache.Options {
	return cache.Options{
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: {Label: labels.SelectorFromSet(labels.Set(labelsSelector()))},
		},
	}
}

// Options returns the Runner's options with their defaults.
func (r *Runner) Options() Options { return r.o }

// Start watches the scan Jobs and deletes each as soon as it has
// finished, until ctx ends. Scans wait until it runs.
func (r *Runner) Start(ctx context.Context) error {
	inf, err := r.jobs.GetInformer(ctx, &batchv1.Job{})
	if err != nil {
		return fmt.Errorf("watch scan Jobs in %s: %w", r.o.Namespace, err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(ctx, obj) },
		UpdateFunc: func(_, obj any) { r.observe(ctx, obj) },
		DeleteFunc: func(any) { r.wake() },
	})
	if err != nil {
		return err
	}
	defer inf.RemoveEventHandler(reg)
	if !r.jobs.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	r.mu.Lock()
	r.active = true
	r.mu.Unlock()
	close(r.ready)
	// Jobs seen before Start (the cache's initial list) are looked at
	// again now that the Runner acts on them.
	var list batchv1.JobList
	if err := r.jobs.List(ctx, &list, client.InNamespace(r.o.Namespace)); err == nil {
		for i := range list.Items {
			r.observe(ctx, &list.Items[i])
		}
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Outcomes of Jobs no scan waited for (left by an operator
			// that stopped) are forgotten after an hour.
			r.mu.Lock()
			for uid, f := range r.finished {
				if time.Since(f.at) > time.Hour {
					delete(r.finished, uid)
				}
			}
			r.mu.Unlock()
		}
	}
}

func (r *Runner) wake() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// changes is closed at the next event.
func (r *Runner) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// observe deletes a finished Job and records how it finished; the scan
// waiting for it takes the record.
func (r *Runner) observe(ctx context.Context, obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		r.wake()
		return
	}
	r.mu.Lock()
	active := r.active
	_, seen := r.finished[j.UID]
	r.mu.Unlock()
	f, done := finished(j)
	if !active || !done || seen || j.DeletionTimestamp != nil {
		r.wake()
		return
	}
	// Deleted first: once the scan waiting for it has its outcome, the
	// Job is gone and its slot free.
	err := r.c.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &j.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.FromContext(ctx).Error(err, "deleting a finished scan Job; it is deleted by its ttlSecondsAfterFinished at the latest", "job", r.o.Namespace+"/"+j.Name)
	}
	f.at = time.Now()
	r.mu.Lock()
	r.finished[j.UID] = f
	r.mu.Unlock()
	r.wake()
}

// finished says whether a Job has finished, and how.
func finished(j *batchv1.Job) (finish, bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return finish{}, true
		case batchv1.JobFailed:
			return finish{failed: true, why: c.Reason, detail: c.Message}, true
		}
	}
	return finish{}, false
}

func labelsSelector() client.MatchingLabels { return client.MatchingLabels{LabelScan: "true"} }

func defaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
}

// Scan runs t's scan as a Job and returns the server's findings.
func (r *Runner) Scan(ctx context.Context, t scanner.Target) (*scanner.Outcome, error) {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	secret, err := r.pullSecret(ctx, t)
	if err != nil {
		return nil, err
	}
	if secret != "" {
		defer func() {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: secret}}
			if err := r.c.Delete(context.WithoutCancel(ctx), s); err != nil && !apierrors.IsNotFound(err) {
				log.FromContext(ctx).Error(err, "deleting a scan Job's pull secret (the garbage collector removes it with its Job)", "secret", r.o.Namespace+"/"+secret)
			}
		}()
	}
	j, err := r.acquire(ctx, t, secret)
	if err != nil {
		return nil, err
	}
	name := r.o.Namespace + "/" + j.Name
	if secret != "" {
		r.own(ctx, secret, j)
	}
	f, err := r.wait(ctx, j)
	if err != nil {
		return nil, err
	}
	if f.failed {
		return nil, &Error{Job: name, Why: f.why, Detail: f.detail}
	}
	out, err := r.cfg.FromServer(ctx, t)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, &Error{Job: name, Why: "NoUpload", Detail: fmt.Sprintf("the Job completed but %s holds no scan of %s", r.o.ServerURL, t.Pinned())}
	}
	out.FromServer, out.Job = false, name
	return out, nil
}

// acquire returns the Job that scans t: one that exists already (made by
// this operator before a restart, or by another replica), or a new one
// in a free slot once fewer than Concurrency scan Jobs exist.
func (r *Runner) acquire(ctx context.Context, t scanner.Target, secret string) (*batchv1.Job, error) {
	for {
		next := r.changes()
		var list batchv1.JobList
		if err := r.c.List(ctx, &list, client.InNamespace(r.o.Namespace), labelsSelector()); err != nil {
			return nil, fmt.Errorf("list scan Jobs in %s: %w", r.o.Namespace, err)
		}
		used := map[string]bool{}
		for i := range list.Items {
			j := &list.Items[i]
			used[j.Name] = true
			if j.Annotations[AnnotationDigest] == t.Digest && j.DeletionTimestamp == nil {
				return j, nil
			}
		}
		if len(list.Items) < r.o.Concurrency {
			for slot := range r.o.Concurrency {
				name := NamePrefix + strconv.Itoa(slot)
				if used[name] {
					continue
				}
				j := r.job(name, t, secret)
				err := r.c.Create(ctx, j)
				if err == nil {
					return j, nil
				}
				if !apierrors.IsAlreadyExists(err) {
					return nil, fmt.Errorf("create scan Job %s/%s: %w", r.o.Namespace, name, err)
				}
				// Taken since the list: look again.
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-next:
		case <-time.After(r.o.Recheck):
		}
	}
}

// wait waits until j has finished (and been deleted), or is gone, or has
// outlived its deadline.
func (r *Runner) wait(ctx context.Context, j *batchv1.Job) (finish, error) {
	name := r.o.Namespace + "/" + j.Name
	giveUp := j.CreationTimestamp.Add(r.o.Deadline + time.Minute)
	if j.CreationTimestamp.IsZero() {
		giveUp = time.Now().Add(r.o.Deadline + time.Minute)
	}
	for {
		next := r.changes()
		r.mu.Lock()
		f, ok := r.finished[j.UID]
		delete(r.finished, j.UID)
		r.mu.Unlock()
		if ok {
			return f, nil
		}
		var cur batchv1.Job
		err := r.jobs.Get(ctx, client.ObjectKeyFromObject(j), &cur)
		if apierrors.IsNotFound(err) || err == nil && cur.UID != j.UID {
			// Not in the cache: ask the API server before concluding.
			err = r.c.Get(ctx, client.ObjectKeyFromObject(j), &cur)
		}
		switch {
		case apierrors.IsNotFound(err) || err == nil && cur.UID != j.UID:
			r.mu.Lock()
			f, ok := r.finished[j.UID]
			delete(r.finished, j.UID)
			r.mu.Unlock()
			if ok {
				return f, nil
			}
			// Deleted by someone else before it was seen finished: the
			// server says whether its upload arrived.
			return finish{}, nil
		case err != nil:
			log.FromContext(ctx).Error(err, "reading a scan Job; trying again", "job", name)
		}
		if time.Now().After(giveUp) {
			err := r.c.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &j.UID})
			if err != nil && !apierrors.IsNotFound(err) {
				log.FromContext(ctx).Error(err, "deleting a scan Job past its deadline", "job", name)
			}
			return finish{failed: true, why: "DeadlineExceeded", detail: fmt.Sprintf("not finished %v after it was created (activeDeadlineSeconds %d); deleted", r.o.Deadline+time.Minute, int64(r.o.Deadline.Seconds()))}, nil
		}
		select {
		case <-ctx.Done():
			return finish{}, ctx.Err()
		case <-next:
		case <-time.After(r.o.Recheck):
		}
	}
}

// job is the Job that scans t under name.
func (r *Runner) job(name string, t scanner.Target, secret string) *batchv1.Job {
	lbl := map[string]string{LabelScan: "true", LabelDigest: digestLabel(t.Digest), "app.kubernetes.io/managed-by": "bulkhead-operator"}
	args := []string{"image", "--server", r.o.ServerURL, "--temp-dir", "/scratch"}
	if r.o.Insecure {
		args = append(args, "--insecure")
	}
	args = append(args, t.Pinned())
	env := []corev1.EnvVar{{Name: "HOME", Value: "/scratch"}}
	if r.o.TokenSecret != "" {
		env = append(env, corev1.EnvVar{Name: "BULKHEAD_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: r.o.TokenSecret}, Key: r.o.TokenKey}}})
	}
	mounts := []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	volumes := []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if secret != "" {
		env = append(env, corev1.EnvVar{Name: "DOCKER_CONFIG", Value: "/docker"})
		mounts = append(mounts, corev1.VolumeMount{Name: "docker", MountPath: "/docker", ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "docker", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, Items: []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}}}}})
	}
	res := defaultResources()
	if r.o.Resources != nil {
		res = *r.o.Resources
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: name, Labels: lbl, Annotations: map[string]string{AnnotationDigest: t.Digest}},
		Spec: batchv1.JobSpec{
			ActiveDeadlineSeconds:   ptr.To(int64(r.o.Deadline.Seconds())),
			TTLSecondsAfterFinished: ptr.To(int32(r.o.TTLAfterFinished.Seconds())),
			BackoffLimit:            ptr.To(r.o.BackoffLimit),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{AnnotationDigest: t.Digest}},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(int64(65532)),
						RunAsGroup:     ptr.To(int64(65532)),
						FSGroup:        ptr.To(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:      "scan",
						Image:     r.o.Image,
						Args:      args,
						Env:       env,
						Resources: res,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Privileged:               ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						VolumeMounts:             mounts,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

// digestLabel is a digest's hex, as much as a label value holds.
func digestLabel(d string) string {
	_, hex, _ := strings.Cut(d, ":")
	return hex[:min(len(hex), 63)]
}

// pullSecret writes the credential the operator resolved for t into a
// Secret for the Job (only with PullSecrets, and only when there is
// one); it returns the Secret's name ("" for none).
func (r *Runner) pullSecret(ctx context.Context, t scanner.Target) (string, error) {
	if !r.o.PullSecrets || t.Auth == nil || t.Auth == authn.Anonymous {
		return "", nil
	}
	ac, err := t.Auth.Authorization()
	if err != nil {
		return "", fmt.Errorf("credential for %s: %w", t.Repository, err)
	}
	if *ac == (authn.AuthConfig{}) {
		return "", nil
	}
	host, _, _ := strings.Cut(t.Repository, "/")
	doc, err := json.Marshal(map[string]map[string]*authn.AuthConfig{"auths": {host: ac}})
	if err != nil {
		return "", err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, GenerateName: NamePrefix + "pull-",
			Labels: map[string]string{LabelScan: "true", LabelDigest: digestLabel(t.Digest)}},
		Type:      corev1.SecretTypeDockerConfigJson,
		Immutable: ptr.To(true),
		Data:      map[string][]byte{corev1.DockerConfigJsonKey: doc},
	}
	if err := r.c.Create(ctx, s); err != nil {
		return "", fmt.Errorf("create the pull secret of a scan Job in %s: %w", r.o.Namespace, err)
	}
	return s.Name, nil
}

// own makes the Job the owner of its pull Secret, so that the garbage
// collector removes the Secret with the Job should the operator not.
func (r *Runner) own(ctx context.Context, secret string, j *batchv1.Job) {
	patch := map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID}}}}
	b, _ := json.Marshal(patch)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: secret}}
	if err := r.c.Patch(ctx, s, client.RawPatch(types.MergePatchType, b)); err != nil {
		log.FromContext(ctx).Error(err, "linking a pull secret to its scan Job", "secret", r.o.Namespace+"/"+secret)
	}
}

// Setup makes a Runner for mgr: its own cache of the scan Jobs in
// o.Namespace and a client that reads from the API server, both added to
// mgr, and makes it cfg's Executor.
func Setup(mgr manager.Manager, cfg *scanner.Config, o Options) (*Runner, error) {
	co := CacheOptions(o.Namespace)
	co.Scheme, co.Mapper = mgr.GetScheme(), mgr.GetRESTMapper()
	jc, err := cache.New(mgr.GetConfig(), co)
	if err != nil {
		return nil, err
	}
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	r, err := New(c, jc, cfg, o)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(jc); err != nil {
		return nil, err
	}
	if err := mgr.Add(r); err != nil {
		return nil, err
	}
	cfg.Executor = r
	return r, nil
}
