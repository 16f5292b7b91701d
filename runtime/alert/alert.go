// Package alert is the runtime alert pipeline: an event source (the eBPF
// sensor, or a recorded trace) feeds the Falco rules engine, and every
// alert goes out to the configured outputs (a writer, a webhook, the
// Prometheus metrics). The CLI's `runtime` commands turn flags into
// Options and call Run; a server or node agent calls the same Run.
package alert

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/output"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
	"github.com/bulkhead-sec/bulkhead/runtime/sensor"
)

// Opener opens an output when the pipeline needs it (so nothing is created
// when the rules do not load); close is called when Run returns.
type Opener func() (w io.Writer, close func() error, err error)

// To is an Opener for a writer the caller owns and closes.
func To(w io.Writer) Opener {
	return func() (io.Writer, func() error, error) { return w, func() error { return nil }, nil }
}

// Options configure Run. The zero value of each field is its default.
type Options struct {
	// Rules are Falco rules files or directories, loaded in order; none
	// means the bundled stable falco_rules.yaml.
	Rules []string
	// MinPriority drops rules less severe than this (emergency ... debug;
	// "" is debug).
	MinPriority string
	// Matching is "first" (the first matching rule per event, Falco's
	// default; also "") or "all".
	Matching string

	// Output receives the alerts in Format ("text" or "json"; "" is text).
	// Nil discards them.
	Output Opener
	Format string
	// Webhook, if set, is an http:// or https:// URL each alert is POSTed
	// to as JSON (falcosidekick-compatible).
	Webhook string
	// WebhookToken, if set, is sent with each POST as a bearer token
	// (bulkhead server's /api/v1/events/falco needs one of the scan role);
	// it is never logged.
	WebhookToken string
	// MetricsAddr, if set, serves Prometheus metrics at /metrics.
	MetricsAddr string

	// Trace, if set, is a recorded event stream (bulkhead's JSON lines)
	// evaluated instead of running the sensor; TraceName names it in errors.
	Trace     io.Reader
	TraceName string
	// Record, with the sensor, receives every event in the JSON-lines
	// format Trace reads.
	Record Opener
	// Duration stops the sensor after this long (0: until ctx is done).
	Duration time.Duration
	// CRISockets, with the sensor, are the CRI sockets (containerd's,
	// CRI-O's) asked for container and pod metadata; nil auto-detects
	// them (sensor.DefaultCRISockets).
	CRISockets []string

	// Stderr receives progress and diagnostics (nil: discarded).
	Stderr io.Writer

	// Enrichers annotate each event, in order, before it is recorded and
	// evaluated (the image id resolver, the drift detector, behaviour
	// profiles); the sensor also reports the event types they need. The
	// caller closes them.
	Enrichers []Enricher
	// BulkheadRules loads the bundled bulkhead rules (sensor.BulkheadRules:
	// drift, package managers, learned behaviour) before the others.
	BulkheadRules bool
}

// Enricher adds what it knows to an event (Event.Drift, Event.Profile,
// Container.ImageID) before the rules see it.
type Enricher interface {
	Enrich(ev *event.Event)
	// EventTypes are the event types it needs from the sensor.
	EventTypes() []string
}

// OptionError is an option with a value Run cannot use.
type OptionError struct {
	Option string // the Options field: MinPriority, Matching, Webhook
	Value  string
	Want   string // what to give instead
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Option, e.Value, e.Want)
}

// Stats are what Run saw.
type Stats struct {
	Events, Alerts uint64
	// Sensor counters (zero for a trace).
	RingDrops, StashDrops, Malformed uint64
}

// LoadRules loads the rules files in order, or the bundled stable ruleset,
// keeping rules at least minPriority severe ("" is debug).
func LoadRules(files []string, minPriority string) (*rules.Ruleset, error) {
	return loadRules(files, minPriority, false)
}

// loadRules is LoadRules, with sensor.BulkheadRules first when bulkhead is
// set (so that, with first-match, a drift alert wins over Falco's
// coarser "Drop and execute new binary in container").
func loadRules(files []string, minPriority string, bulkhead bool) (*rules.Ruleset, error) {
	if minPriority == "" {
		minPriority = "debug"
	}
	p, ok := rules.ParsePriority(minPriority)
	if !ok {
		return nil, &OptionError{"MinPriority", minPriority, "use one of emergency, alert, critical, error, warning, notice, informational, debug"}
	}
	host, _ := os.Hostname()
	l := rules.NewLoader(rules.WithMinPriority(p), rules.WithHostname(host))
	if bulkhead {
		if err := l.Load(sensor.BulkheadRulesName, sensor.BulkheadRules); err != nil {
			return nil, fmt.Errorf("load the bundled bulkhead rules: %w", err)
		}
	}
	if len(files) == 0 {
		if err := l.Load(sensor.DefaultRulesName, sensor.DefaultRules); err != nil {
			return nil, fmt.Errorf("load the bundled rules: %w", err)
		}
	}
	for _, path := range files {
		if err := l.LoadFile(path); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
	}
	rs, err := l.Ruleset()
	if err != nil {
		return nil, fmt.Errorf("compile rules: %w", err)
	}
	return rs, nil
}

// Run loads the rules and evaluates them over the trace, or over the
// sensor's events until ctx is done or Duration passes, delivering every
// alert to the outputs.
func Run(ctx context.Context, o Options) (Stats, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	rs, err := loadRules(o.Rules, o.MinPriority, o.BulkheadRules)
	if err != nil {
		return Stats{}, err
	}
	for _, s := range rs.Skipped {
		fmt.Fprintf(o.Stderr, "bulkhead: rule %q skipped: %s\n", s.Name, s.Reason)
	}
	if o.Trace != nil {
		return runTrace(rs, &o)
	}
	return runSensor(ctx, rs, &o)
}

func runTrace(rs *rules.Ruleset, o *Options) (Stats, error) {
	p, err := newPipeline(rs, o, nil)
	if err != nil {
		return Stats{}, err
	}
	defer p.shutdown()
	rd := event.NewReader(bufio.NewReaderSize(o.Trace, 256<<10), o.TraceName, 0)
	var ev event.Event
	var st Stats
	for {
		err := rd.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Alerts = p.alerts
			return st, err
		}
		st.Events++
		for _, e := range o.Enrichers {
			e.Enrich(&ev)
		}
		p.evaluate(&ev)
	}
	st.Alerts = p.alerts
	fmt.Fprintf(o.Stderr, "bulkhead: %d events, %d alerts\n", st.Events, st.Alerts)
	return st, nil
}

// EventTypes are the syscalls the sensor must report for rs's active
// rules (plus procexit, which keeps the process table small); nil means
// every event type.
func EventTypes(rs *rules.Ruleset) ([]string, error) {
	var types []string
	seen := map[string]bool{}
	for _, r := range rs.Active() {
		ts := r.EventTypes()
		if ts == nil {
			return nil, nil
		}
		for _, t := range ts {
			if !seen[t] {
				seen[t] = true
				types = append(types, t)
			}
		}
	}
	if len(types) == 0 {
		return nil, errors.New("no active rules: nothing to watch (check --rules and --min-priority)")
	}
	return append(types, "procexit"), nil
}

func runSensor(ctx context.Context, rs *rules.Ruleset, o *Options) (Stats, error) {
	// The sensor only reports the syscalls the rules can match, unless the
	// stream is recorded (then everything is).
	var types []string
	if o.Record == nil {
		var err error
		if types, err = EventTypes(rs); err != nil {
			return Stats{}, err
		}
		if types != nil {
			for _, e := range o.Enrichers {
				types = append(types, e.EventTypes()...)
			}
		}
	}
	s, err := sensor.Open(sensor.Options{Types: types, Env: rs.UsesField("proc.env"), CRISockets: o.CRISockets, Warnings: o.Stderr})
	if err != nil {
		return Stats{}, fmt.Errorf("start the sensor: %w", err)
	}
	defer s.Close()
	p, err := newPipeline(rs, o, func() output.Counters {
		st := s.Stats()
		return output.Counters{Events: st.Events, RingDrops: st.RingDrops, StashDrops: st.StashDrops}
	})
	if err != nil {
		return Stats{}, err
	}
	defer p.shutdown()

	var rec *bufio.Writer
	var recErr error
	if o.Record != nil {
		file, closeRec, err := o.Record()
		if err != nil {
			return Stats{}, err
		}
		defer closeRec()
		rec = bufio.NewWriterSize(file, 256<<10)
		defer rec.Flush()
	}

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	fmt.Fprintf(o.Stderr, "bulkhead: sensor running, %d rules active (%d skipped)\n", len(rs.Active()), len(rs.Skipped))
	start := time.Now()
	err = s.Run(ctx, func(ev *event.Event) {
		for _, e := range o.Enrichers {
			e.Enrich(ev)
		}
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
	ss := s.Stats()
	st := Stats{Events: ss.Events, Alerts: p.alerts, RingDrops: ss.RingDrops, StashDrops: ss.StashDrops, Malformed: ss.Malformed}
	el := time.Since(start).Seconds()
	fmt.Fprintf(o.Stderr, "bulkhead: %d events in %.1fs (%.0f/s), %d alerts, %d dropped in the ring buffer, %d missed (in-flight table full), %d malformed\n",
		st.Events, el, float64(st.Events)/max(el, 1e-9), st.Alerts, st.RingDrops, st.StashDrops, st.Malformed)
	if err != nil {
		return st, err
	}
	if recErr != nil {
		return st, fmt.Errorf("write the recording: %w", recErr)
	}
	return st, nil
}

// pipeline fans alerts out to the writer, the webhook and the metrics.
type pipeline struct {
	m       *rules.Matcher
	sinks   []output.Sink
	webhook *output.Webhook
	metrics *output.Metrics
	close   []func()
	alerts  uint64
	stderr  io.Writer
	errs    int
}

func newPipeline(rs *rules.Ruleset, o *Options, counters func() output.Counters) (*pipeline, error) {
	p := &pipeline{m: rs.Matcher(), stderr: o.Stderr}
	switch o.Matching {
	case "first", "":
		p.m.First = true
	case "all":
	default:
		return nil, &OptionError{"Matching", o.Matching, "use first or all"}
	}
	if o.Webhook != "" && !strings.HasPrefix(o.Webhook, "http://") && !strings.HasPrefix(o.Webhook, "https://") {
		return nil, &OptionError{"Webhook", o.Webhook, "give an http:// or https:// URL"}
	}
	open := o.Output
	if open == nil {
		open = To(io.Discard)
	}
	w, closeOut, err := open()
	if err != nil {
		return nil, err
	}
	p.close = append(p.close, func() { closeOut() })
	format := o.Format
	if format == "" {
		format = "text"
	}
	ow, err := output.NewWriter(w, format)
	if err != nil {
		p.shutdown()
		return nil, err
	}
	p.sinks = append(p.sinks, ow)
	if o.Webhook != "" {
		p.webhook = output.NewWebhook(o.Webhook, output.WebhookOptions{Token: o.WebhookToken})
		p.sinks = append(p.sinks, p.webhook)
	}
	if o.MetricsAddr != "" {
		p.metrics = output.NewMetrics(counters)
		if p.webhook != nil {
			p.metrics.Webhook(p.webhook)
		}
		if err := p.metrics.Serve(o.MetricsAddr); err != nil {
			p.shutdown()
			return nil, err
		}
		fmt.Fprintf(o.Stderr, "bulkhead: metrics on http://%s/metrics\n", p.metrics.Addr())
		p.sinks = append(p.sinks, p.metrics)
	}
	return p, nil
}

// evaluate runs the rules over one event and delivers its alerts.
func (p *pipeline) evaluate(ev *event.Event) {
	for _, r := range p.m.Match(ev) {
		a := p.m.Alert(r, ev)
		AppendContainer(&a, ev)
		p.alerts++
		for _, s := range p.sinks {
			if err := s.Alert(&a); err != nil && p.errs < 5 {
				p.errs++
				fmt.Fprintf(p.stderr, "bulkhead: deliver alert: %v\n", err)
			}
		}
	}
}

func (p *pipeline) shutdown() {
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

// AppendContainer adds the container fields Falco appends to every
// syscall alert when its container plugin is loaded (falco.yaml's
// append_output: suggested_output), so an alert always says where it
// happened: container_id=... container_name=... and the image, and for a
// container in a pod k8s_pod_name=... k8s_ns_name=....
func AppendContainer(a *rules.Alert, ev *event.Event) {
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
	// The image's digest and id go into output_fields only (Falco's
	// output text stays as it is): bulkhead server links an alert to the
	// image it stores by container.image.digest.
	if ct := ev.Container; ct != nil {
		if ct.ImageDigest != "" {
			a.OutputFields["container.image.digest"] = ct.ImageDigest
		}
		if ct.ImageID != "" {
			a.OutputFields["container.image.id"] = ct.ImageID
		}
	}
	// In a Kubernetes (or podman) pod, the pod and namespace too, as
	// Falco's k8smeta plugin appends them.
	if ct := ev.Container; ct != nil && ct.K8sPodName != "" {
		a.Output += " k8s_pod_name=" + ct.K8sPodName + " k8s_ns_name=" + na(ct.K8sNamespace)
		a.OutputFields["k8s.pod.name"] = ct.K8sPodName
		a.OutputFields["k8s.ns.name"] = nilIfEmpty(ct.K8sNamespace)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
