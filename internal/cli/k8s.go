package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	k8sconfig "github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/oneshot"
	"github.com/bulkhead-sec/bulkhead/operator/rbac"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	srvclient "github.com/bulkhead-sec/bulkhead/server/client"
)

// kubeFlags reach a cluster.
type kubeFlags struct {
	kubeconfig, context string
	namespaces          []string
}

func (f *kubeFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config; in a pod, its service account)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context (default the current one)")
	fl.StringSliceVar(&f.namespaces, "namespaces", nil, "namespaces to watch or scan (default all); for KIND/NAME targets of bulkhead k8s, their one namespace (default the context's)")
}

// config loads the client configuration and the context's namespace.
func (f *kubeFlags) config() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("no Kubernetes cluster to talk to: %w (give --kubeconfig, or set KUBECONFIG)", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	cfg.UserAgent = "bulkhead/" + Version
	return cfg, ns, nil
}

// scanFlags are how the operator and bulkhead k8s scan images.
type kubeScanFlags struct {
	matchFlags
	registryFlags
	server  serverClientFlags
	tempDir string
	workers int
	budget  int
	pss     string
}

func (f *kubeScanFlags) add(cmd *cobra.Command) {
	f.matchFlags.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.insecure, "insecure", false, helpInsecure)
	// --server as bulkhead image has it; here a digest the server already
	// holds is also taken from it and not pulled (README).
	f.server.add(fl)
	addTempDir(fl, &f.tempDir)
	fl.IntVar(&f.workers, "workers", 2, "image scans run at once")
	fl.IntVar(&f.budget, "report-budget", 64<<10, "size budget of one report object in bytes (findings beyond it are counted, not listed; the report says truncated)")
	// --pss as bulkhead config has it (config/kubernetes).
	fl.StringVar(&f.pss, "pss", "restricted", "Pod Security Standards level pods are held to: baseline or restricted")
}

// setup opens the shared matcher and builds the scan configuration and
// auditor; close closes the matcher.
func (f *kubeScanFlags) setup() (*scanner.Config, *audit.Auditor, func(), error) {
	if f.workers < 1 {
		return nil, nil, nil, fmt.Errorf("--workers %d: give 1 or more", f.workers)
	}
	if f.budget < 8<<10 {
		return nil, nil, nil, fmt.Errorf("--report-budget %d: give at least 8192 bytes", f.budget)
	}
	lvl, err := k8sconfig.ParseLevel(f.pss)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--pss: %w", err)
	}
	aud, err := audit.New(k8sconfig.Options{Level: lvl})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := &scanner.Config{Insecure: f.insecure, TempDir: f.tempDir}
	closeFn := func() {}
	if f.server.url != "" {
		c, err := srvclient.New(f.server.url, srvclient.Options{Token: f.server.tokenValue()})
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Server, cfg.ServerURL = c, f.server.url
	}
	if cfg.Server != nil {
		// The server matches: no local database.
		return cfg, aud, closeFn, nil
	}
	m, err := pipeline.OpenMatcher(f.options())
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Matcher = m
	closeFn = func() { m.Close() }
	return cfg, aud, closeFn, nil
}

type k8sFlags struct {
	kube kubeFlags
	scan kubeScanFlags
	reportFlags
	severity []string
	exitCode exitCode
	scanners []string
}

// k8sScanners are bulkhead k8s's --scanners: vuln (the workloads' images),
// misconfig (each workload's configuration audit) and rbac (the Roles,
// ClusterRoles and their bindings, as the operator's RBAC reports).
var k8sScanners = []string{"vuln", "misconfig", "rbac"}

func newK8sCmd(stdout, stderr io.Writer) *cobra.Command {
	var f k8sFlags
	cmd := &cobra.Command{
		Use:   "k8s [flags] [cluster | namespace NAME | KIND/NAME...]",
		Short: "Scan a live Kubernetes cluster once: workloads, their images (each digest once) and their configuration",
		Long: `Scan the workloads of a live cluster once, as the operator does continuously:
each workload's images are resolved to digests and every digest is scanned
once, however many workloads run it; each workload's configuration is
audited with the checks of bulkhead config; for cluster and namespace
targets, the Roles and ClusterRoles are assessed as the operator's RBAC
reports are (each risky permission once per role, with the subjects that
hold it and the workloads that run as them). The report has the usual
formats and exit codes, and the table format begins with a summary by
namespace (and by role, for RBAC).

  bulkhead k8s cluster
  bulkhead k8s namespace shop
  bulkhead k8s --namespaces shop deployment/web statefulset/db
  bulkhead k8s --format json -o cluster.json cluster
  bulkhead k8s --scanners rbac cluster              the RBAC assessment alone`,
	}
	fl := cmd.Flags()
	f.kube.add(fl)
	f.scan.add(cmd)
	f.reportFlags.add(cmd, "table", "table", "json", "sarif")
	addSeverity(fl, &f.severity)
	fl.StringSliceVar(&f.scanners, "scanners", nil, "what to assess: vuln (images), misconfig (workload configuration), rbac (Roles, ClusterRoles and their bindings); default all three for cluster and namespace targets, vuln,misconfig for KIND/NAME targets")
	addExitCode(cmd, &f.exitCode, 0, "findings remain after filters and ignores (default 0: findings do not fail the run)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return runK8s(cmd.Context(), &f, args, stdout, stderr) }
	return cmd
}

// k8sTargets reads the positional arguments.
func k8sTargets(args []string, flagNS []string, ctxNS string) (namespaces []string, sel []oneshot.Selector, label string, err error) {
	switch {
	case len(args) == 0 || (len(args) == 1 && args[0] == "cluster"):
		return flagNS, nil, "cluster", nil
	case args[0] == "namespace" || args[0] == "ns":
		if len(args) != 2 {
			return nil, nil, "", errors.New("give one name after namespace: bulkhead k8s namespace NAME")
		}
		return []string{args[1]}, nil, "namespace " + args[1], nil
	}
	ns := ctxNS
	if len(flagNS) > 1 {
		return nil, nil, "", errors.New("KIND/NAME targets take one namespace: --namespaces N")
	} else if len(flagNS) == 1 {
		ns = flagNS[0]
	}
	for _, a := range args {
		k, n, ok := strings.Cut(a, "/")
		if !ok || n == "" {
			return nil, nil, "", fmt.Errorf("%q: give cluster, namespace NAME or KIND/NAME (deployment/web)", a)
		}
		kind, err := cluster.ParseKind(k)
		if err != nil {
			return nil, nil, "", err
		}
		sel = append(sel, oneshot.Selector{Namespace: ns, Kind: kind, Name: n})
	}
	return []string{ns}, sel, strings.Join(args, " "), nil
}

// errK8sIncomplete: some images could not be resolved or scanned.
var errK8sIncomplete = errors.New("not every image was scanned")

func runK8s(ctx context.Context, f *k8sFlags, args []string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := f.check(); err != nil {
		return err
	}
	sevs, err := parseSeverities(f.severity)
	if err != nil {
		return err
	}
	cfg, ctxNS, err := f.kube.config()
	if err != nil {
		return err
	}
	namespaces, sel, label, err := k8sTargets(args, f.kube.namespaces, ctxNS)
	if err != nil {
		return err
	}
	run, err := k8sRun(f.scanners, sel != nil)
	if err != nil {
		return err
	}
	scheme, err := controller.Scheme()
	if err != nil {
		return err
	}
	kc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	workloads := run["vuln"] || run["misconfig"]
	scanCfg, aud := &scanner.Config{}, (*audit.Auditor)(nil)
	if workloads {
		var closeFn func()
		if scanCfg, aud, closeFn, err = f.scan.setup(); err != nil {
			return err
		}
		defer closeFn()
	}
	began := time.Now()
	res, err := oneshot.Run(ctx, kc, oneshot.Options{
		Namespaces: namespaces, Select: sel, Scan: scanCfg, Auditor: aud, Workers: f.scan.workers, Budget: f.scan.budget,
		Resolver:      resolve.New(resolve.Options{Insecure: f.scan.insecure, Secrets: kc}),
		SkipWorkloads: !workloads, RBAC: run["rbac"],
	})
	if err != nil {
		return err
	}
	out, problems := k8sResult(res, label, sevs, run)
	if scanCfg.Matcher != nil {
		out.Diagnose(scanCfg.Matcher.Diagnostics()...)
	}
	// The summary by namespace heads the table on standard output; with
	// a machine format, or a report written to a file, it goes to
	// standard error.
	toStdout := f.format == "table" && (f.output == "" || f.output == "-")
	summary := stderr
	if toStdout {
		summary = stdout
	}
	if workloads {
		writeK8sSummary(summary, res, time.Since(began))
	}
	if res.RBAC != nil {
		writeRBACSummary(summary, res.RBAC, sevs)
	}
	if err := writeResult(stdout, f.format, f.output, out); err != nil {
		return err
	}
	if f.format != "table" {
		printDiagnostics(stderr, out.AllDiagnostics()...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errK8sIncomplete, strings.Join(problems, "; "))
	}
	if n := len(match.Active(out.Findings)); f.exitCode != 0 && n > 0 {
		return &exitError{code: int(f.exitCode), err: fmt.Errorf("%d findings", n)}
	}
	return nil
}

// k8sRun reads --scanners: which of vuln, misconfig and rbac run. The
// RBAC assessment is of a cluster or namespaces, not of single workloads.
func k8sRun(scanners []string, workloadTargets bool) (map[string]bool, error) {
	run := map[string]bool{}
	if len(scanners) == 0 {
		scanners = k8sScanners
		if workloadTargets {
			scanners = k8sScanners[:2]
		}
	}
	for _, s := range scanners {
		if !slices.Contains(k8sScanners, s) {
			return nil, fmt.Errorf("--scanners %q: give vuln, misconfig or rbac", s)
		}
		run[s] = true
	}
	if run["rbac"] && workloadTargets {
		return nil, errors.New("--scanners rbac assesses a cluster or a namespace, not KIND/NAME targets: give cluster or namespace NAME, or drop rbac")
	}
	return run, nil
}

// k8sResult is the report of a run: each digest's vulnerabilities once
// (target repository@digest), each workload's configuration findings
// (target namespace/Kind/name), each role's RBAC findings (target "Role
// ns/name" or "ClusterRole name", the description naming who holds the
// role and the workloads that run as them); problems are the images not
// scanned.
func k8sResult(res *oneshot.Result, label string, sevs []finding.Severity, run map[string]bool) (*report.Result, []string) {
	out := &report.Result{Inventory: &inventory.Inventory{Target: inventory.Target{Name: label, Source: "kubernetes"}}}
	for _, s := range k8sScanners {
		if run[s] {
			out.Scanners = append(out.Scanners, s)
		}
	}
	keep := func(f finding.Finding) bool { return len(sevs) == 0 || slices.Contains(sevs, f.Severity) }
	var problems []string
	if res.RBAC != nil {
		for _, role := range res.RBAC.Roles {
			target := role.Kind + " " + qualifyNS(role.Namespace, role.Name)
			held := rbacHolders(role.Subjects)
			for _, fd := range role.Findings {
				if keep(fd) {
					fd.Target = target
					if held != "" {
						fd.Description = strings.TrimRight(fd.Description, ". ") + ". " + held
					}
					out.Findings = append(out.Findings, fd)
				}
			}
		}
		// Findings on bindings to roles that do not exist: on the binding.
		for _, fd := range res.RBAC.Unattributed {
			if keep(fd) {
				if fd.Location != nil {
					fd.Target = fd.Location.Path
				}
				out.Findings = append(out.Findings, fd)
			}
		}
	}
	for _, d := range res.Digests {
		img := res.Images[d]
		if img.Err != nil {
			problems = append(problems, fmt.Sprintf("%s (run by %s): %v", img.Target.Pinned(), strings.Join(img.Workloads, ", "), img.Err))
			continue
		}
		if out.DB == nil && img.Outcome.Result.DB != nil {
			out.DB = img.Outcome.Result.DB
		}
		for _, fd := range img.Outcome.Result.Findings {
			if fd.Kind == finding.KindVulnerability && run["vuln"] && keep(fd) {
				fd.Target = img.Target.Pinned()
				out.Findings = append(out.Findings, fd)
			}
		}
	}
	for _, w := range res.Workloads {
		for _, c := range w.Containers {
			if c.Error != "" {
				problems = append(problems, fmt.Sprintf("%s container %s: %s", w.Workload.Key(), c.Name, c.Error))
			}
		}
		for _, fd := range w.Audit.Findings {
			if run["misconfig"] && keep(fd) {
				out.Findings = append(out.Findings, fd)
			}
		}
	}
	match.Sort(out.Findings)
	return out, problems
}

// writeK8sSummary writes the table by namespace: workloads, distinct
// images, the vulnerabilities of those images, configuration findings,
// and the workloads meeting no Pod Security level above privileged.
func writeK8sSummary(w io.Writer, res *oneshot.Result, took time.Duration) {
	type row struct {
		workloads, privileged int
		digests               map[string]bool
		vulns, config         v1alpha1.Counts
	}
	rows := map[string]*row{}
	for _, wl := range res.Workloads {
		r := rows[wl.Workload.Namespace]
		if r == nil {
			r = &row{digests: map[string]bool{}}
			rows[wl.Workload.Namespace] = r
		}
		r.workloads++
		if wl.Report.Report.ConfigAudit.PodSecurity == "privileged" {
			r.privileged++
		}
		r.config.Add(wl.Report.Report.ConfigAudit.Summary)
		for _, t := range wl.Targets {
			if !r.digests[t.Digest] {
				r.digests[t.Digest] = true
				if img := res.Images[t.Digest]; img.Report != nil {
					r.vulns.Add(img.Report.Report.Summary)
				}
			}
		}
	}
	names := make([]string, 0, len(rows))
	for ns := range rows {
		names = append(names, ns)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tWORKLOADS\tIMAGES\tCRITICAL\tHIGH\tMEDIUM\tLOW\tMISCONFIG\tPRIVILEGED")
	for _, ns := range names {
		r := rows[ns]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", ns, r.workloads, len(r.digests), r.vulns.Critical, r.vulns.High, r.vulns.Medium, r.vulns.Low, r.config.Total(), r.privileged)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d workloads, %d distinct images (each scanned once) in %v\n\n", len(res.Workloads), len(res.Digests), took.Round(time.Millisecond))
}

func qualifyNS(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// maxHolderWorkloads caps the workloads a finding's description names per
// subject (a default service account can run hundreds).
const maxHolderWorkloads = 10

// rbacHolders says who holds a role: each subject, the binding that
// grants it, and the workloads that run as it.
func rbacHolders(subjects []v1alpha1.RBACSubject) string {
	if len(subjects) == 0 {
		return ""
	}
	parts := make([]string, 0, len(subjects))
	for _, s := range subjects {
		p := s.Kind + " " + qualifyNS(s.Namespace, s.Name) + " via " + s.Binding
		if n := len(s.Workloads); n > 0 {
			ws := s.Workloads[:min(n, maxHolderWorkloads)]
			p += " (run by " + strings.Join(ws, ", ")
			if n > maxHolderWorkloads {
				p += fmt.Sprintf(" and %d more", n-maxHolderWorkloads)
			}
			p += ")"
		}
		parts = append(parts, p)
	}
	return "Held by " + strings.Join(parts, "; ") + "."
}

// writeRBACSummary writes the table by role: the roles with a risky
// permission, their findings by severity, the subjects holding them and
// the workloads running as those subjects.
func writeRBACSummary(w io.Writer, a *rbac.Assessment, sevs []finding.Severity) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tCRITICAL\tHIGH\tMEDIUM\tLOW\tSUBJECTS\tWORKLOADS")
	risky := 0
	var held []string
	for _, role := range a.Roles {
		var c v1alpha1.Counts
		for _, fd := range role.Findings {
			if len(sevs) == 0 || slices.Contains(sevs, fd.Severity) {
				reports.Count(&c, fd.Severity)
			}
		}
		if c.Total() == 0 {
			continue
		}
		risky++
		workloads := 0
		for _, s := range role.Subjects {
			workloads += len(s.Workloads)
		}
		fmt.Fprintf(tw, "%s %s\t%d\t%d\t%d\t%d\t%d\t%d\n", role.Kind, qualifyNS(role.Namespace, role.Name), c.Critical, c.High, c.Medium, c.Low, len(role.Subjects), workloads)
		if h := rbacHolders(role.Subjects); h != "" {
			held = append(held, role.Kind+" "+qualifyNS(role.Namespace, role.Name)+": "+h)
		}
	}
	tw.Flush()
	for _, h := range held {
		fmt.Fprintln(w, "  "+h)
	}
	fmt.Fprintf(w, "%d of %d roles hold a risky permission\n\n", risky, len(a.Roles))
}
