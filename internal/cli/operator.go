package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/jobs"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

type operatorFlags struct {
	kube                    kubeFlags
	scan                    kubeScanFlags
	ttl, retry              time.Duration
	pullSecrets, installCRD bool
	leaderElect             bool
	leaseNamespace          string
	metricsAddr, healthAddr string
	reconciles              int
	serverPoll              time.Duration
	scanMode                string
	jobs                    jobs.Options
	jobsToken               string
	rbac                    bool
}

func newOperatorCmd(stdout, stderr io.Writer) *cobra.Command {
	var f operatorFlags
	cmd := &cobra.Command{
		Use:   "operator [flags]",
		Short: "Run the Kubernetes operator: every workload's images and configuration, scanned continuously",
		Long: `Run bulkhead's Kubernetes operator. It watches Pods, Deployments,
StatefulSets, DaemonSets, Jobs, CronJobs and ReplicaSets, resolves every
container image to its digest (the pod status imageID, else the registry)
and scans each digest once, however many workloads run it, in its own
bounded worker pool, again when the report's TTL expires. It writes a
cluster-scoped ImageReport per digest and a WorkloadReport per workload
(bulkhead.dev/v1alpha1, CRDs in deploy/crds), each under a size budget, and
the RBAC assessment of every Role and ClusterRole (--rbac-assessment).

  bulkhead operator --namespaces shop,payments --ttl 12h
  bulkhead operator --server https://bulkhead:8443 --token $TOKEN`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	f.kube.add(fl)
	f.scan.add(cmd)
	fl.DurationVar(&f.ttl, "ttl", 24*time.Hour, "rescan a digest when its report is older than this")
	fl.DurationVar(&f.retry, "retry-after", 5*time.Minute, "try a failed scan again after this long")
	fl.BoolVar(&f.pullSecrets, "pull-secrets", false, "read the pods' imagePullSecrets to reach private registries (needs get on secrets: the opt-in RBAC rule)")
	fl.BoolVar(&f.installCRD, "install-crds", false, "create or update the bulkhead.dev CRDs at start (needs create/update on customresourcedefinitions)")
	fl.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader so that only one replica works")
	fl.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default the pod's own; required out of a cluster)")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "serve the operator's Prometheus metrics at this address, /metrics (0: off)")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", ":8081", "serve /healthz and /readyz at this address (0: off)")
	fl.IntVar(&f.reconciles, "reconciles", 4, "workloads reconciled at once")
	fl.DurationVar(&f.serverPoll, "server-poll", time.Minute, "with --server: how often to read the server's changes (re-evaluations against a new database) and refresh those digests' reports, pulling nothing")
	fl.StringVar(&f.scanMode, "scan-mode", "workers", "where image scans run: workers (the operator's own pool, --workers) or jobs (a Kubernetes Job per digest running bulkhead image --server; needs --server)")
	fl.IntVar(&f.jobs.Concurrency, "scan-jobs-concurrency", 3, "with --scan-mode=jobs: the most scan Jobs that exist at once (counted in the cluster, so restarts and replicas keep to it)")
	fl.StringVar(&f.jobs.Namespace, "scan-jobs-namespace", "", "with --scan-mode=jobs: namespace of the scan Jobs (default the operator's own; required out of a cluster)")
	fl.StringVar(&f.jobs.Image, "scan-jobs-image", "ghcr.io/bulkhead-sec/bulkhead:latest", "with --scan-mode=jobs: the bulkhead image the scan Jobs run (pin it to the operator's own)")
	fl.StringVar(&f.jobsToken, "scan-jobs-token-secret", "", "with --scan-mode=jobs: Secret NAME[/KEY] (key default token) in the Jobs' namespace holding the server token; the Jobs read it, the token is never written into a Job")
	fl.DurationVar(&f.jobs.Deadline, "scan-jobs-deadline", 30*time.Minute, "with --scan-mode=jobs: each Job's activeDeadlineSeconds")
	fl.DurationVar(&f.jobs.TTLAfterFinished, "scan-jobs-ttl-after-finished", 10*time.Minute, "with --scan-mode=jobs: each Job's ttlSecondsAfterFinished (a backstop: the operator deletes a finished Job at once)")
	fl.Int32Var(&f.jobs.BackoffLimit, "scan-jobs-backoff-limit", 1, "with --scan-mode=jobs: each Job's backoffLimit (pod retries within one Job)")
	fl.BoolVar(&f.rbac, "rbac-assessment", true, "judge Roles, ClusterRoles and their bindings (bulkhead config's RBAC checks) and keep an RbacAssessmentReport per Role and a ClusterRbacAssessmentReport per ClusterRole (needs list/watch on the rbac.authorization.k8s.io kinds)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runOperator(cmd.Context(), &f, stderr) }
	return cmd
}

func runOperator(ctx context.Context, f *operatorFlags, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.ttl < time.Minute {
		return fmt.Errorf("--ttl %v: give a minute or more", f.ttl)
	}
	switch f.scanMode {
	case "workers":
	case "jobs":
		if f.scan.server.url == "" {
			return fmt.Errorf("--scan-mode=jobs: the scan Jobs upload to bulkhead server; give --server")
		}
		if f.jobs.Concurrency < 1 {
			return fmt.Errorf("--scan-jobs-concurrency %d: give 1 or more", f.jobs.Concurrency)
		}
		if f.jobs.Deadline < time.Minute {
			return fmt.Errorf("--scan-jobs-deadline %v: give a minute or more", f.jobs.Deadline)
		}
		if f.jobsToken == "" && f.scan.server.tokenValue() != "" {
			return fmt.Errorf("--scan-mode=jobs with a server token: give --scan-jobs-token-secret NAME[/KEY], a Secret holding the token in the Jobs' namespace (the token is never written into a Job)")
		}
		f.jobs.TokenSecret, f.jobs.TokenKey, _ = strings.Cut(f.jobsToken, "/")
		if f.jobs.Namespace == "" {
			b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
			if err != nil || strings.TrimSpace(string(b)) == "" {
				return fmt.Errorf("--scan-mode=jobs out of a cluster: give --scan-jobs-namespace")
			}
			f.jobs.Namespace = strings.TrimSpace(string(b))
		}
		f.jobs.ServerURL, f.jobs.PullSecrets, f.jobs.Insecure = f.scan.server.url, f.pullSecrets, f.scan.insecure
		// The workers only wait for Jobs: one per Job that may run.
		f.scan.workers = f.jobs.Concurrency
	default:
		return fmt.Errorf("--scan-mode %q: give workers or jobs", f.scanMode)
	}
	ctrl.SetLogger(funcr.NewJSON(func(obj string) { fmt.Fprintln(stderr, obj) }, funcr.Options{}))
	cfg, _, err := f.kube.config()
	if err != nil {
		return err
	}
	if f.installCRD {
		if err := controller.InstallCRDs(ctx, cfg); err != nil {
			return err
		}
	}
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{
		Namespaces: f.kube.namespaces, LeaderElection: f.leaderElect, LeaderElectionNamespace: f.leaseNamespace,
		MetricsAddr: f.metricsAddr, HealthAddr: f.healthAddr,
	})
	if err != nil {
		return err
	}
	scanCfg, aud, closeFn, err := f.scan.setup()
	if err != nil {
		return err
	}
	defer closeFn()
	if f.scanMode == "jobs" {
		if _, err := jobs.Setup(mgr, scanCfg, f.jobs); err != nil {
			return err
		}
	}
	metrics, err := scanner.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	ro := resolve.Options{Insecure: f.scan.insecure}
	if f.pullSecrets {
		ro.Secrets = mgr.GetAPIReader()
	}
	if _, err := controller.Setup(mgr, controller.Options{
		Scan:         scanCfg,
		Scheduler:    scanner.SchedulerOptions{Workers: f.scan.workers, TTL: f.ttl, RetryAfter: f.retry, Metrics: metrics},
		Resolver:     resolve.New(ro),
		Auditor:      aud,
		Budget:       f.scan.budget,
		Reconciles:   f.reconciles,
		FollowServer: f.serverPoll,
	}); err != nil {
		return err
	}
	if f.rbac {
		if _, err := controller.SetupRBAC(mgr, controller.RBACOptions{Namespaces: f.kube.namespaces, Budget: f.scan.budget, Registerer: ctrlmetrics.Registry}); err != nil {
			return err
		}
	}
	if f.healthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
