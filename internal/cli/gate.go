package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/report"
	htmlreport "github.com/bulkhead-sec/bulkhead/report/html"
)

type gateFlags struct {
	policy    string
	namespace string
	// formats and outputs pair by position: the i-th --output gets the
	// i-th --format; a --format without its --output goes to stdout.
	formats  []string
	outputs  []string
	aliases  []gateReport // --json FILE, --sarif FILE (deprecated)
	insecure bool
	db       dbFlags
	cacheDir string
	exitCode exitCode
}

// gateFormats are the reports gate writes.
var gateFormats = []string{"table", "json", "sarif", "html"}

// gateReport is one report to write: a format and a file ("" or "-":
// standard output, after the summary).
type gateReport struct {
	format, path, flag string
}

// reports pairs --format with --output and adds the deprecated spellings.
func (f *gateFlags) reports() ([]gateReport, error) {
	if len(f.outputs) > len(f.formats) {
		return nil, fmt.Errorf("--output %s has no --format: give a --format for each --output, in the same order (--format json --output gate.json --format sarif --output gate.sarif)", f.outputs[len(f.formats)])
	}
	var out []gateReport
	for i, format := range f.formats {
		if err := checkFormat(format, gateFormats); err != nil {
			return nil, err
		}
		r := gateReport{format: format, flag: "--output"}
		if i < len(f.outputs) {
			r.path = f.outputs[i]
		}
		out = append(out, r)
	}
	return append(out, f.aliases...), nil
}

// gateAlias is --json FILE or --sarif FILE: a report of its format.
type gateAlias struct {
	format string
	dst    *[]gateReport
}

func (a *gateAlias) String() string { return "" }
func (a *gateAlias) Type() string   { return "string" }
func (a *gateAlias) Set(s string) error {
	*a.dst = append(*a.dst, gateReport{format: a.format, path: s, flag: "--" + a.format})
	return nil
}

// gateTarget is one thing judged: a bare image or a workload of a manifest.
type gateTarget struct {
	Name     string          `json:"target"`
	File     string          `json:"file,omitempty"`
	Line     int             `json:"line,omitempty"`
	Decision policy.Decision `json:"decision"`
	in       policy.Input
}

func newGateCmd(stdout, stderr io.Writer) *cobra.Command {
	var f gateFlags
	cmd := &cobra.Command{
		Use:   "gate --policy FILE IMAGE|MANIFEST...",
		Short: "Apply a bulkhead policy to images and Kubernetes manifests (CI gate)",
		Long: `Apply a bulkhead-policy.yaml to images and Kubernetes manifests, the way the
admission webhook does, and fail when a rule in enforce mode denies.

Each argument is an image reference, or a manifest file (.yaml, .yml, .json;
multi-document, Lists, Helm output) whose workloads are judged with their images
and namespace, exactly as the webhook judges them at admission: a namespace of
admission.exemptNamespaces (default kube-system) is allowed without judgement. The policy's
rules run what they need: vulnerability scans, signature verification, Pod
Security and workload checks.

The summary goes to standard output; each --format writes a report too, to the
--output in the same position, or to standard output after the summary:

  bulkhead gate --format json --output gate.json --format sarif --output gate.sarif IMAGE

(SARIF locations point at the manifest, or at the policy rule for image results.)
Exit status: 0 when everything is allowed (warn rules included), --exit-code
(default 1) when a rule denies, 2 on usage or policy errors and when a report
cannot be written.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGate(cmd, &f, stdout, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.policy, "policy", "p", policy.FileName, "policy file (docs/policy.md)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace bare images, and manifest objects that name none, are judged for (default: none, every namespace-scoped rule applies and none is exempt)")
	fl.StringArrayVarP(&f.formats, "format", "f", nil, "write a report in this format too: "+strings.Join(gateFormats, ", ")+" (json: the decisions; sarif: denials and warnings); repeatable")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "file of the report of the --format in the same position (default: standard output, after the summary); repeatable")
	addDeprecated(cmd, "json", "--format json --output FILE", &gateAlias{format: "json", dst: &f.aliases}, false)
	addDeprecated(cmd, "sarif", "--format sarif --output FILE", &gateAlias{format: "sarif", dst: &f.aliases}, false)
	addInsecure(cmd, &f.insecure)
	f.db.add(fl, false)
	fl.StringVar(&f.cacheDir, "cache-dir", "", helpCacheDir)
	addExitCode(cmd, &f.exitCode, 1, "a rule in enforce mode denies")
	return cmd
}

func runGate(cmd *cobra.Command, f *gateFlags, stdout io.Writer, args []string) error {
	ctx := cmd.Context()
	reports, err := f.reports()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	pol, err := policy.Load(f.policy)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var targets []*gateTarget
	for _, a := range args {
		if !isManifestArg(a) {
			targets = append(targets, &gateTarget{Name: a, in: pol.ImageInput(f.namespace, a)})
			continue
		}
		data, err := os.ReadFile(a)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("read manifest: %w", err)}
		}
		objs, err := kubernetes.ParseBytes(a, data)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		n := 0
		for _, o := range objs {
			if o.Pod == nil {
				continue
			}
			n++
			// The same input the webhook builds: the object's namespace
			// (else --namespace), exempt namespaces, admission.maxImages.
			targets = append(targets, &gateTarget{Name: fmt.Sprintf("%s/%s", o.Kind, o.Meta.Name), File: a, Line: o.Line, in: pol.InputFor(o, f.namespace)})
		}
		if n == 0 {
			warnf(cmd.ErrOrStderr(), diag.GateNoWorkload, "%s has no workload (Pod, Deployment, ...) to judge", a)
		}
	}
	facts := &policy.Registry{Insecure: f.insecure, DBPath: f.db.path, CacheDir: f.cacheDir}
	defer facts.Close()
	engine := &policy.Engine{File: pol, Facts: facts}
	denied := 0
	for _, t := range targets {
		t.Decision = engine.Evaluate(ctx, t.in)
		if !t.Decision.Allowed {
			denied++
		}
	}
	writeGateSummary(stdout, pol, targets)
	// A report that cannot be written is exit 2, never mistaken for a
	// denial (1) or a pass.
	for _, r := range reports {
		if err := writeGateReport(stdout, r, pol, targets); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if denied > 0 {
		return &exitError{code: int(f.exitCode), err: fmt.Errorf("policy %s denies %d of %d targets", pol.Source, denied, len(targets))}
	}
	return nil
}

// writeGateReport writes one report.
func writeGateReport(stdout io.Writer, r gateReport, pol *policy.File, targets []*gateTarget) error {
	return withOutput(stdout, r.path, r.flag, func(w io.Writer) error {
		switch r.format {
		case "sarif":
			return formats["sarif"](w, gateResult(pol, targets), false)
		case "json":
			return writeJSON(w, map[string]any{"policy": pol.Source, "targets": targets})
		case "html":
			return htmlreport.GateReport(w, gateHTML(pol, targets), htmlreport.Options{ToolVersion: Version})
		default:
			writeGateSummary(w, pol, targets)
			return nil
		}
	})
}

// isManifestArg: an existing file with a manifest extension is a
// manifest; anything else is an image reference.
func isManifestArg(a string) bool {
	switch strings.ToLower(filepath.Ext(a)) {
	case ".yaml", ".yml", ".json":
	default:
		return false
	}
	st, err := os.Stat(a)
	return err == nil && st.Mode().IsRegular()
}

// policyName is the policy's metadata.name, else its file's name.
func policyName(pol *policy.File) string {
	if pol.Metadata.Name != "" {
		return pol.Metadata.Name
	}
	return filepath.Base(pol.Source)
}

// gateHTML is what the HTML report shows: each target's verdict and every
// rule's outcome, with the notes the summary prints.
func gateHTML(pol *policy.File, targets []*gateTarget) *htmlreport.Gate {
	g := &htmlreport.Gate{Policy: policyName(pol), Source: pol.Source, Rules: len(pol.Rules)}
	for _, t := range targets {
		ht := htmlreport.GateTarget{Name: t.Name, File: t.File, Line: t.Line, Allowed: t.Decision.Allowed, Exempt: t.Decision.Exempt}
		warned := map[string]bool{}
		for _, r := range t.Decision.Results {
			hr := htmlreport.GateResult{Rule: r.Rule, Kind: r.Kind, Mode: string(r.Mode), Outcome: string(r.Outcome), Message: r.Message}
			if e := r.Exempted; e != nil {
				hr.Exemption = fmt.Sprintf("owner %s, expires %s: %s", e.Owner, e.Expires, e.Reason)
			}
			if r.Outcome == policy.WarnOutcome {
				warned[r.Message] = true
			}
			ht.Results = append(ht.Results, hr)
		}
		for _, msg := range t.Decision.Warnings {
			if !warned[msg] {
				ht.Notes = append(ht.Notes, msg)
			}
		}
		g.Targets = append(g.Targets, ht)
	}
	return g
}

func writeGateSummary(w io.Writer, pol *policy.File, targets []*gateTarget) {
	name := policyName(pol)
	fmt.Fprintf(w, "bulkhead gate: policy %s (%d rules), %d targets\n\n", name, len(pol.Rules), len(targets))
	var deny, warn, pass int
	for _, t := range targets {
		verdict := "ALLOWED"
		if !t.Decision.Allowed {
			verdict = "DENIED"
		}
		where := t.Name
		if t.File != "" {
			where = fmt.Sprintf("%s (%s:%d)", t.Name, t.File, t.Line)
		}
		fmt.Fprintf(w, "%s  %s\n", verdict, where)
		// The decision's diagnostics say, by code, what was exempted
		// and which notes are about the policy or the references (an
		// expired exemption, a transparencyLog: ignore, a tag ignored
		// next to a digest) rather than a rule's result.
		var notes []diag.Diagnostic
		for _, d := range t.Decision.Diagnostics {
			switch d.Code {
			case diag.PolicyExemptNamespace:
				fmt.Fprintf(w, "  EXEMPT %s\n", d.Message)
			case diag.PolicyWarnRule, diag.PolicyUnchecked, diag.PolicyExempt:
				// shown with the results below
			default:
				notes = append(notes, d)
			}
		}
		for _, r := range t.Decision.Results {
			switch r.Outcome {
			case policy.Deny:
				deny++
				fmt.Fprintf(w, "  DENY  %s\n", r.Message)
			case policy.WarnOutcome:
				warn++
				fmt.Fprintf(w, "  WARN  %s\n", r.Message)
			default:
				pass++
				if r.Exempted != nil {
					fmt.Fprintf(w, "  EXEMPT %s\n", r.Message)
				}
			}
		}
		for _, d := range notes {
			fmt.Fprintf(w, "  NOTE  %s\n", d.Message)
		}
	}
	fmt.Fprintf(w, "\n%d denied, %d warnings, %d passed\n", deny, warn, pass)
}

// gateResult turns denials and warnings into findings for the SARIF
// writer: a manifest result points at its object, an image result at the
// rule in the policy file.
func gateResult(pol *policy.File, targets []*gateTarget) *report.Result {
	res := &report.Result{Inventory: &inventory.Inventory{Target: inventory.Target{Name: pol.Source, Source: "policy"}}, Scanners: []string{"policy"}}
	lines := map[string]int{}
	for _, r := range pol.Rules {
		lines[r.Name] = r.Line
	}
	for _, t := range targets {
		// The notes and exemptions go into the log as notifications; the
		// warn and unchecked results are findings below.
		for _, d := range t.Decision.Diagnostics {
			if d.Code != diag.PolicyWarnRule && d.Code != diag.PolicyUnchecked {
				res.Diagnose(d)
			}
		}
		for _, r := range t.Decision.Results {
			if r.Outcome == policy.Allow {
				continue
			}
			sev := finding.High
			if r.Outcome == policy.WarnOutcome {
				sev = finding.Medium
			}
			loc := &finding.Location{Path: pol.Source, StartLine: lines[r.Rule]}
			if t.File != "" {
				loc = &finding.Location{Path: t.File, StartLine: t.Line}
			}
			res.Findings = append(res.Findings, finding.Finding{
				ID: "policy/" + r.Rule, Kind: finding.KindMisconfiguration, Severity: sev, SeveritySource: "bulkhead policy (" + string(r.Mode) + ")",
				Title: r.Message, Target: t.Name, Location: loc,
				Fix: "Fix what the rule names, or add an exemption with owner, reason and expiry to " + pol.Source + ".",
			})
		}
	}
	return res
}
