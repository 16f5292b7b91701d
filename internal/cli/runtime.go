package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/runtime/alert"
	"github.com/bulkhead-sec/bulkhead/runtime/output"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// runtimeFlags are the rule and output flags of `runtime` and `runtime replay`.
type runtimeFlags struct {
	rules []string
	reportFlags
	webhook     string
	tokenFile   string
	metricsAddr string
	minPriority string
	matching    string
}

func (f *runtimeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.rules, "rules", nil, "Falco rules file or directory, loaded in order like Falco's -r (default: the bundled stable falco_rules.yaml)")
	f.reportFlags.add(cmd, "text", "text", "json")
	fl.StringVar(&f.webhook, "webhook", "", "also POST each alert as JSON to this URL (falcosidekick-compatible; bulkhead server: SERVER/api/v1/events/falco with --webhook-token-file)")
	fl.StringVar(&f.tokenFile, "webhook-token-file", "", "file holding the bearer token sent with each webhook POST (a scan-role token of bulkhead server; default $"+output.TokenEnv+")")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9400) at /metrics")
	fl.StringVar(&f.minPriority, "min-priority", "debug", "drop rules less severe than this priority (emergency ... debug)")
	fl.StringVar(&f.matching, "rule-matching", "first", "first: report the first matching rule per event (Falco's default); all: every match")
}

// loadRules loads the rules files in order, or the bundled stable ruleset,
// and names each skipped rule on stderr.
func (f *runtimeFlags) loadRules(stderr io.Writer) (*rules.Ruleset, error) {
	rs, err := alert.LoadRules(f.rules, f.minPriority)
	if err != nil {
		return nil, flagError(err)
	}
	for _, s := range rs.Skipped {
		fmt.Fprintf(stderr, "bulkhead: rule %q skipped: %s\n", s.Name, s.Reason)
	}
	return rs, nil
}

// options turns the flags into the alert pipeline's options.
func (f *runtimeFlags) options(stdout, stderr io.Writer) (alert.Options, error) {
	var token string
	if f.webhook != "" || f.tokenFile != "" {
		if f.webhook == "" {
			return alert.Options{}, errors.New("--webhook-token-file without --webhook: give the URL the token is for")
		}
		var err error
		if token, err = output.ReadToken(f.tokenFile); err != nil {
			return alert.Options{}, err
		}
	}
	return alert.Options{
		Rules:       f.rules,
		MinPriority: f.minPriority,
		Matching:    f.matching,
		Output: func() (io.Writer, func() error, error) {
			return openOutput(stdout, f.output, "--output")
		},
		Format:       f.format,
		Webhook:      f.webhook,
		WebhookToken: token,
		MetricsAddr:  f.metricsAddr,
		Stderr:       stderr,
	}, nil
}

// optionFlags names the flag behind each alert.Options field.
var optionFlags = map[string]string{"MinPriority": "--min-priority", "Matching": "--rule-matching", "Webhook": "--webhook"}

// flagError says which flag an option error is about.
func flagError(err error) error {
	var oe *alert.OptionError
	if errors.As(err, &oe) {
		if fl, ok := optionFlags[oe.Option]; ok {
			return fmt.Errorf("%s %q: %s", fl, oe.Value, oe.Want)
		}
	}
	return err
}

func newRuntimeCmd(stdout, stderr io.Writer) *cobra.Command {
	var f runtimeFlags
	var img imageRuntimeFlags
	var record string
	var duration time.Duration
	var criSockets []string
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Detect threats at runtime: an eBPF sensor evaluating Falco rules",
		Long: `Run the eBPF sensor on this node (as root) and evaluate Falco rules over the
system calls of every process, host and containers alike. Alerts go out in
Falco's JSON alert shape or as text, to stdout or a file, and to an HTTP
webhook (falcosidekick-compatible); --metrics-addr serves Prometheus metrics.

  bulkhead runtime                                  the bundled stable Falco rules, text alerts
  bulkhead runtime --rules falco_rules.yaml --rules local.yaml --format json
  bulkhead runtime --record events.jsonl            also record the event stream
  bulkhead runtime replay events.jsonl --rules my_rules.yaml
  bulkhead runtime rules --check my_rules.yaml      which rules load, and why others are skipped`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cri []string // nil: auto-detect
			if cmd.Flags().Changed("cri-socket") {
				cri = criSockets
			}
			return runSensor(cmd.Context(), &f, &img, record, duration, cri, stdout, stderr)
		},
	}
	f.register(cmd)
	img.register(cmd)
	cmd.Flags().StringVar(&record, "record", "", "write every event to this file in bulkhead's JSON-lines event format (for runtime replay)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until interrupted)")
	cmd.Flags().StringArrayVar(&criSockets, "cri-socket", nil, "CRI socket (containerd's or CRI-O's) to read container and pod metadata from; repeatable (default: $CONTAINER_RUNTIME_ENDPOINT, /run/containerd/containerd.sock and /run/crio/crio.sock, each if present)")
	cmd.AddCommand(newRuntimeReplayCmd(stdout, stderr), newRuntimeRulesCmd(stdout, stderr),
		newRuntimeIndexCmd(stdout, stderr), newRuntimeProfileCmd(stdout, stderr))
	return cmd
}

func runSensor(ctx context.Context, f *runtimeFlags, img *imageRuntimeFlags, record string, duration time.Duration, criSockets []string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	o, err := f.options(stdout, stderr)
	if err != nil {
		return err
	}
	if record != "" {
		o.Record = func() (io.Writer, func() error, error) { return openOutput(stdout, record, "--record") }
	}
	o.Duration = duration
	o.CRISockets = criSockets
	es, closeEs, err := img.enrichers(stderr)
	if err != nil {
		return err
	}
	defer closeEs()
	o.Enrichers = es
	o.BulkheadRules = img.drift || img.profiles != ""
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = alert.Run(ctx, o)
	return flagError(err)
}

func newRuntimeReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	var f runtimeFlags
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Evaluate rules over a recorded event stream (--record's JSON lines; - for stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			name := args[0]
			if name != "-" {
				file, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("open the recording: %w", err)
				}
				defer file.Close()
				in = file
			}
			o, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			o.Trace, o.TraceName = in, name
			_, err = alert.Run(cmd.Context(), o)
			return flagError(err)
		},
	}
	f.register(cmd)
	return cmd
}

func newRuntimeRulesCmd(stdout, stderr io.Writer) *cobra.Command {
	var check bool
	var minPriority string
	cmd := &cobra.Command{
		Use:   "rules [--check] [FILE...]",
		Short: "Load rules files and list the rules that run and those skipped, with the reason",
		Long: `Load Falco rules files in order, as the sensor would, and list every rule:
loaded (and enabled or disabled), or skipped because it needs a field or an
event source bulkhead does not supply. Without files, the bundled stable ruleset.
A file that does not load (a YAML or condition error) is an error: exit code 1.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			_ = check // --check is the default and only mode; kept for Falco's -V habit
			f := runtimeFlags{rules: args, minPriority: minPriority}
			rs, err := f.loadRules(io.Discard)
			if err != nil {
				return err
			}
			return writeRuleCheck(stdout, rs)
		},
	}
	cmd.Flags().BoolVar(&check, "check", true, "validate the files and list the rules (the default)")
	cmd.Flags().StringVar(&minPriority, "min-priority", "debug", "count rules less severe than this as not active")
	return cmd
}

func writeRuleCheck(w io.Writer, rs *rules.Ruleset) error {
	active := map[*rules.Rule]bool{}
	for _, r := range rs.Active() {
		active[r] = true
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tPRIORITY\tSTATUS\tDETAIL")
	nDisabled := 0
	for _, r := range rs.Rules() {
		status, detail := "active", strings.Join(r.EventTypes(), ",")
		if detail == "" {
			detail = "all event types"
		}
		if !active[r] {
			status, detail = "disabled", "enabled: false"
			if r.Enabled {
				detail = "below --min-priority"
			}
			nDisabled++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Priority, status, detail)
	}
	skipped := append([]rules.SkippedRule(nil), rs.Skipped...)
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Name < skipped[j].Name })
	for _, s := range skipped {
		fmt.Fprintf(tw, "%s\t-\tskipped\t%s\n", s.Name, s.Reason)
	}
	tw.Flush()
	for _, d := range rs.Warnings {
		fmt.Fprintf(w, "warning: %s\n", d)
	}
	fmt.Fprintf(w, "%d rules: %d active, %d disabled, %d skipped\n", len(rs.Rules())+len(rs.Skipped), len(rs.Active()), nDisabled, len(rs.Skipped))
	return nil
}
