package cli

import (
	"bufio"
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

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/output"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
	"github.com/bulkhead-sec/bulkhead/runtime/sensor"
)

// runtimeFlags are the rule and output flags of `runtime` and `runtime replay`.
type runtimeFlags struct {
	rules []string
	reportFlags
	webhook     string
	metricsAddr string
	minPriority string
	matching    string
}

func (f *runtimeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.rules, "rules", nil, "Falco rules file or directory, loaded in order like Falco's -r (default: the bundled stable falco_rules.yaml)")
	f.reportFlags.add(cmd, "text", "text", "json")
	fl.StringVar(&f.webhook, "webhook", "", "also POST each alert as JSON to this URL (falcosidekick-compatible)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9400) at /metrics")
	fl.StringVar(&f.minPriority, "min-priority", "debug", "drop rules less severe than this priority (emergency ... debug)")
	fl.StringVar(&f.matching, "rule-matching", "first", "first: report the first matching rule per event (Falco's default); all: every match")
}

// loadRules loads the rules files in order, or the bundled stable ruleset.
func (f *runtimeFlags) loadRules(stderr io.Writer) (*rules.Ruleset, error) {
	p, ok := rules.ParsePriority(f.minPriority)
	if !ok {
		return nil, fmt.Errorf("--min-priority %q: use one of emergency, alert, critical, error, warning, notice, informational, debug", f.minPriority)
	}
	host, _ := os.Hostname()
	l := rules.NewLoader(rules.WithMinPriority(p), rules.WithHostname(host))
	if len(f.rules) == 0 {
		if err := l.Load(sensor.DefaultRulesName, sensor.DefaultRules); err != nil {
			return nil, fmt.Errorf("load the bundled rules: %w", err)
		}
	}
	for _, path := range f.rules {
		if err := l.LoadFile(path); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
	}
	rs, err := l.Ruleset()
	if err != nil {
		return nil, fmt.Errorf("compile rules: %w", err)
	}
	for _, s := range rs.Skipped {
		fmt.Fprintf(stderr, "bulkhead: rule %q skipped: %s\n", s.Name, s.Reason)
	}
	return rs, nil
}

// alertPipeline fans alerts out to the writer, the webhook and the metrics.
type alertPipeline struct {
	m       *rules.Matcher
	sinks   []output.Sink
	webhook *output.Webhook
	metrics *output.Metrics
	close   []func()
	alerts  uint64
	stderr  io.Writer
	errs    int
}

func (f *runtimeFlags) pipeline(rs *rules.Ruleset, stdout, stderr io.Writer, counters func() output.Counters) (*alertPipeline, error) {
	p := &alertPipeline{m: rs.Matcher(), stderr: stderr}
	switch f.matching {
	case "first":
		p.m.First = true
	case "all":
	default:
		return nil, fmt.Errorf("--rule-matching %q: use first or all", f.matching)
	}
	w, closeOut, err := openOutput(stdout, f.output, "--output")
	if err != nil {
		return nil, err
	}
	p.close = append(p.close, func() { closeOut() })
	ow, err := output.NewWriter(w, f.format)
	if err != nil {
		p.shutdown()
		return nil, err
	}
	p.sinks = append(p.sinks, ow)
	if f.webhook != "" {
		if !strings.HasPrefix(f.webhook, "http://") && !strings.HasPrefix(f.webhook, "https://") {
			p.shutdown()
			return nil, fmt.Errorf("--webhook %q: give an http:// or https:// URL", f.webhook)
		}
		p.webhook = output.NewWebhook(f.webhook, output.WebhookOptions{})
		p.sinks = append(p.sinks, p.webhook)
	}
	if f.metricsAddr != "" {
		p.metrics = output.NewMetrics(counters)
		if err := p.metrics.Serve(f.metricsAddr); err != nil {
			p.shutdown()
			return nil, err
		}
		fmt.Fprintf(stderr, "bulkhead: metrics on http://%s/metrics\n", p.metrics.Addr())
		p.sinks = append(p.sinks, p.metrics)
	}
	return p, nil
}

// evaluate runs the rules over one event and delivers its alerts.
func (p *alertPipeline) evaluate(ev *event.Event) {
	for _, r := range p.m.Match(ev) {
		a := p.m.Alert(r, ev)
		appendContainer(&a, ev)
		p.alerts++
		for _, s := range p.sinks {
			if err := s.Alert(&a); err != nil && p.errs < 5 {
				p.errs++
				fmt.Fprintf(p.stderr, "bulkhead: deliver alert: %v\n", err)
			}
		}
	}
}

func (p *alertPipeline) shutdown() {
	if p.webhook != nil {
		p.webhook.Close(5 * time.Second)
		sent, dropped, failed := p.webhook.Stats()
		fmt.Fprintf(p.stderr, "bulkhead: webhook: %d sent, %d dropped (queue full), %d failed\n", sent, dropped, failed)
	}
	if p.metrics != nil {
		p.metrics.Close()
	}
	for _, c := range p.close {
		c()
	}
}

func newRuntimeCmd(stdout, stderr io.Writer) *cobra.Command {
	var f runtimeFlags
	var record string
	var duration time.Duration
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
			return runSensor(cmd.Context(), &f, record, duration, stdout, stderr)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&record, "record", "", "write every event to this file in bulkhead's JSON-lines event format (for runtime replay)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until interrupted)")
	cmd.AddCommand(newRuntimeReplayCmd(stdout, stderr), newRuntimeRulesCmd(stdout, stderr))
	return cmd
}

func runSensor(ctx context.Context, f *runtimeFlags, record string, duration time.Duration, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	rs, err := f.loadRules(stderr)
	if err != nil {
		return err
	}
	// The sensor only reports the syscalls the rules can match, unless the
	// stream is recorded (then everything is).
	var types []string
	if record == "" {
		seen := map[string]bool{}
		for _, r := range rs.Active() {
			ts := r.EventTypes()
			if ts == nil {
				types = nil
				seen = nil
				break
			}
			for _, t := range ts {
				if !seen[t] {
					seen[t] = true
					types = append(types, t)
				}
			}
		}
		if seen != nil && len(types) == 0 {
			return errors.New("no active rules: nothing to watch (check --rules and --min-priority)")
		}
		if seen != nil {
			// procexit keeps the process table small.
			types = append(types, "procexit")
		}
	}
	s, err := sensor.Open(sensor.Options{Types: types})
	if err != nil {
		return fmt.Errorf("start the sensor: %w", err)
	}
	defer s.Close()
	p, err := f.pipeline(rs, stdout, stderr, func() output.Counters {
		st := s.Stats()
		return output.Counters{Events: st.Events, RingDrops: st.RingDrops, StashDrops: st.StashDrops}
	})
	if err != nil {
		return err
	}
	defer p.shutdown()

	var rec *bufio.Writer
	var recErr error
	if record != "" {
		file, closeRec, err := openOutput(stdout, record, "--record")
		if err != nil {
			return err
		}
		defer closeRec()
		rec = bufio.NewWriterSize(file, 256<<10)
		defer rec.Flush()
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	fmt.Fprintf(stderr, "bulkhead: sensor running, %d rules active (%d skipped)\n", len(rs.Active()), len(rs.Skipped))
	start := time.Now()
	err = s.Run(ctx, func(ev *event.Event) {
		if rec != nil && recErr == nil {
			b, err := event.Marshal(ev)
			if err == nil {
				rec.Write(b)
				err = rec.WriteByte('\n')
			}
			recErr = err
		}
		p.evaluate(ev)
	})
	st := s.Stats()
	el := time.Since(start).Seconds()
	fmt.Fprintf(stderr, "bulkhead: %d events in %.1fs (%.0f/s), %d alerts, %d dropped in the ring buffer, %d missed (in-flight table full), %d malformed\n",
		st.Events, el, float64(st.Events)/max(el, 1e-9), p.alerts, st.RingDrops, st.StashDrops, st.Malformed)
	if err != nil {
		return err
	}
	if recErr != nil {
		return fmt.Errorf("write the recording: %w", recErr)
	}
	return nil
}

func newRuntimeReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	var f runtimeFlags
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Evaluate rules over a recorded event stream (--record's JSON lines; - for stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := f.loadRules(stderr)
			if err != nil {
				return err
			}
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
			p, err := f.pipeline(rs, stdout, stderr, nil)
			if err != nil {
				return err
			}
			defer p.shutdown()
			rd := event.NewReader(bufio.NewReaderSize(in, 256<<10), name, 0)
			var ev event.Event
			n := 0
			for {
				err := rd.Next(&ev)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				n++
				p.evaluate(&ev)
			}
			fmt.Fprintf(stderr, "bulkhead: %d events, %d alerts\n", n, p.alerts)
			return nil
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

// appendContainer adds the container fields Falco appends to every
// syscall alert when its container plugin is loaded (falco.yaml's
// append_output: suggested_output), so an alert always says where it
// happened: container_id=... container_name=... and the image.
func appendContainer(a *rules.Alert, ev *event.Event) {
	id, name, repo, tag := "host", "host", "", ""
	if ct := ev.Container; ct != nil {
		id, name, repo, tag = ct.ID, ct.Name, ct.ImageRepository, ct.ImageTag
	}
	na := func(s string) string {
		if s == "" {
			return "<NA>"
		}
		return s
	}
	a.Output += " container_id=" + id + " container_name=" + na(name) +
		" container_image_repository=" + na(repo) + " container_image_tag=" + na(tag)
	if a.OutputFields == nil {
		a.OutputFields = map[string]any{}
	}
	a.OutputFields["container.id"] = id
	a.OutputFields["container.name"] = nilIfEmpty(name)
	a.OutputFields["container.image.repository"] = nilIfEmpty(repo)
	a.OutputFields["container.image.tag"] = nilIfEmpty(tag)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
