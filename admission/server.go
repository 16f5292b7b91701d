package admission

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/policy"
)

// Options configure a Server.
type Options struct {
	// PolicyPath is the bulkhead-policy.yaml to apply; it is reloaded when
	// it changes.
	PolicyPath string
	// Facts answers what rules need to know about images (a
	// *policy.Registry in production).
	Facts policy.Facts
	// CertFile and KeyFile are the serving certificate, reloaded when
	// they change (empty: no TLS, for tests behind a TLS terminator).
	CertFile, KeyFile string
	// Logger receives one JSON record per decision (default: discard).
	Logger *slog.Logger
	// Registerer takes the metrics (default: a registry of the server's
	// own, served on /metrics).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// ReloadInterval is how often the policy and certificate files are
	// checked for changes (default 5s).
	ReloadInterval time.Duration
}

// Server is the webhook.
type Server struct {
	opts    Options
	log     *slog.Logger
	engine  atomic.Pointer[policy.Engine]
	cert    atomic.Pointer[tls.Certificate]
	metrics *metrics

	mu         sync.Mutex
	policySum  [32]byte
	certStamp  string
	reloadOnce sync.Once
}

type metrics struct {
	requests  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	reloads   *prometheus.CounterVec
	gatherer  prometheus.Gatherer
}

func newMetrics(reg prometheus.Registerer, g prometheus.Gatherer) (*metrics, error) {
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, g = r, r
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_admission_requests_total", Help: "Admission reviews answered, by decision (allow, deny, invalid).",
		}, []string{"decision"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_admission_rule_results_total", Help: "Rule results in admission decisions, by rule and outcome (allow, deny, warn).",
		}, []string{"rule", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bulkhead_admission_request_duration_seconds", Help: "Time to answer an admission review.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_admission_reloads_total", Help: "Policy and certificate reloads, by what and result (ok, error).",
		}, []string{"what", "result"}),
		gatherer: g,
	}
	for _, c := range []prometheus.Collector{m.requests, m.decisions, m.latency, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// New loads the policy (and certificate) and builds the server.
func New(opts Options) (*Server, error) {
	if opts.Facts == nil {
		return nil, errors.New("admission: no Facts")
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = 5 * time.Second
	}
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer, opts.Gatherer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := s.reloadPolicy(); err != nil {
		return nil, err
	}
	if opts.CertFile != "" {
		if err := s.reloadCert(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Policy is the policy in force.
func (s *Server) Policy() *policy.File { return s.engine.Load().File }

// reloadPolicy loads the policy file when its content changed; a broken
// file keeps the previous policy in force (and says so).
func (s *Server) reloadPolicy() error {
	data, err := os.ReadFile(s.opts.PolicyPath)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	sum := s.policyDigest(data)
	s.mu.Lock()
	same := sum == s.policySum && s.engine.Load() != nil
	s.mu.Unlock()
	if same {
		return nil
	}
	f, err := policy.Parse(s.opts.PolicyPath, data, dirOf(s.opts.PolicyPath))
	if err != nil {
		return err
	}
	s.engine.Store(&policy.Engine{File: f, Facts: s.opts.Facts})
	sum = s.policyDigest(data) // now with the new policy's key, VEX and CEL files
	s.mu.Lock()
	s.policySum = sum
	s.mu.Unlock()
	return nil
}

// policyDigest covers the policy file and the files it loaded (keys, VEX,
// CEL), so that rotating a key file reloads the policy too.
func (s *Server) policyDigest(data []byte) [32]byte {
	h := sha256.New()
	h.Write(data)
	if e := s.engine.Load(); e != nil {
		for _, dep := range e.File.Dependencies() {
			b, err := os.ReadFile(dep)
			if err != nil {
				b = []byte("missing")
			}
			fmt.Fprintf(h, "\x00%s\x00%d\x00", dep, len(b))
			h.Write(b)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

func (s *Server) reloadCert() error {
	stamp := fileStamp(s.opts.CertFile) + fileStamp(s.opts.KeyFile)
	s.mu.Lock()
	same := stamp == s.certStamp && s.cert.Load() != nil
	s.mu.Unlock()
	if same {
		return nil
	}
	c, err := tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	s.cert.Store(&c)
	s.mu.Lock()
	s.certStamp = stamp
	s.mu.Unlock()
	return nil
}

func fileStamp(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
}

// Reload checks the policy and certificate files once.
func (s *Server) Reload() {
	if err := s.reloadPolicy(); err != nil {
		s.metrics.reloads.WithLabelValues("policy", "error").Inc()
		s.log.Error("policy reload failed; the previous policy stays in force", "err", err.Error())
	} else {
		s.metrics.reloads.WithLabelValues("policy", "ok").Inc()
	}
	if s.opts.CertFile != "" {
		if err := s.reloadCert(); err != nil {
			s.metrics.reloads.WithLabelValues("certificate", "error").Inc()
			s.log.Error("certificate reload failed; the previous certificate stays in use", "err", err.Error())
		}
	}
}

// Watch reloads the policy and certificate when they change, until ctx
// ends.
func (s *Server) Watch(ctx context.Context) {
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// TLSConfig serves the current certificate (reloaded without a restart).
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c := s.cert.Load()
			if c == nil {
				return nil, errors.New("no certificate loaded")
			}
			return c, nil
		},
	}
}

// Handler routes /validate, /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/validate", s.serveValidate)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.engine.Load() == nil || (s.opts.CertFile != "" && s.cert.Load() == nil) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) serveValidate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.latency.Observe(time.Since(start).Seconds()) }()
	rev, err := DecodeRequest(r)
	if err != nil {
		status := http.StatusBadRequest
		var re *RequestError
		if errors.As(err, &re) {
			status = re.Status
		}
		s.metrics.requests.WithLabelValues("invalid").Inc()
		msg := diag.Shorten(err.Error(), maxMessage)
		s.log.Warn("invalid admission request", "status", status, "err", msg, "remote", r.RemoteAddr)
		http.Error(w, msg, status)
		return
	}
	resp := s.Review(r.Context(), rev.Request)
	out := admissionv1.AdmissionReview{TypeMeta: rev.TypeMeta, Response: resp}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(&out); err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}

// Review decides one admission request.
func (s *Server) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	start := time.Now()
	e := s.engine.Load()
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	short := func(s string) string { return diag.Shorten(s, policy.MaxEcho) }
	logAttrs := []any{"uid", short(string(req.UID)), "kind", short(req.Kind.Kind), "namespace", short(req.Namespace), "name", short(req.Name), "operation", short(string(req.Operation))}
	finish := func(decision, why string) *admissionv1.AdmissionResponse {
		s.metrics.requests.WithLabelValues(decision).Inc()
		s.log.Info("admission decision", append(logAttrs, "allowed", resp.Allowed, "decision", decision, "reason", why,
			"warnings", len(resp.Warnings), "duration_ms", float64(time.Since(start).Microseconds())/1000)...)
		return resp
	}
	deny := func(msg string) *admissionv1.AdmissionResponse {
		msg = diag.Shorten(msg, maxMessage)
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg}
		return finish("deny", msg)
	}
	exempt := func(why string) *admissionv1.AdmissionResponse {
		s.metrics.decisions.WithLabelValues("exempt-namespace", "allow").Inc()
		resp.AuditAnnotations = map[string]string{"exempt": why}
		return finish("allow", why)
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return finish("allow", "operation "+short(string(req.Operation))+" is not judged")
	}
	// Exempt namespaces are not judged, not even read (policy.File.Exempt,
	// as in the gate).
	if why := e.File.Exempt(req.Namespace); why != "" {
		return exempt(why)
	}
	if !isWorkloadKind(req.Kind.Kind) {
		return finish("allow", "kind "+short(req.Kind.Kind)+" runs no pod")
	}
	if len(req.Object.Raw) == 0 {
		return deny("bulkhead: the request carries no object to judge")
	}
	objs, err := kubernetes.ParseBytes(req.Kind.Kind+"/"+req.Name, req.Object.Raw)
	if err != nil || len(objs) != 1 || objs[0].Pod == nil {
		// Never allow what could not be read: that would let a crafted
		// object through.
		msg := "bulkhead: cannot read the " + short(req.Kind.Kind)
		if err != nil {
			msg += ": " + err.Error()
		}
		return deny(msg)
	}
	obj := objs[0]
	// The API server refuses an object whose namespace differs from the
	// request's before admission; a review that carries one anyway is not
	// judged by a namespace it may not run in.
	if obj.Meta.Namespace != "" && obj.Meta.Namespace != req.Namespace {
		return deny(fmt.Sprintf("bulkhead: the object names namespace %q, the request %q", short(obj.Meta.Namespace), short(req.Namespace)))
	}
	if obj.Meta.Name == "" {
		obj.Meta.Name = orElse(req.Name, obj.Meta.GenerateName)
	}
	// The same input the gate builds for a manifest (policy.File.InputFor).
	in := e.File.InputFor(obj, req.Namespace)
	imgs := in.Images
	// One deadline for the whole review, measured from when the request
	// arrived: every image's lookups share it, and once it has passed no
	// further lookup is started.
	budget := time.Duration(e.File.Admission.ScanBudget)
	ctx, cancel := context.WithDeadline(ctx, start.Add(budget))
	defer cancel()
	done := make(chan policy.Decision, 1)
	go func() { done <- e.Evaluate(ctx, in) }()
	// Lookups stop at the deadline, but the workload checks are plain
	// computation that a huge pod can stretch past it: the answer does
	// not wait for them beyond a short grace.
	hard := time.NewTimer(time.Until(start.Add(budget + budgetGrace)))
	defer hard.Stop()
	var d policy.Decision
	select {
	case d = <-done:
	case <-hard.C:
		msg := fmt.Sprintf("bulkhead: the review did not finish within admission.scanBudget (%s); the workload is unusually large (%d containers) or its registries are slow", budget, len(imgs))
		if e.File.FailClosed(req.Namespace) {
			s.metrics.decisions.WithLabelValues("scan-budget", string(policy.Deny)).Inc()
			return deny(msg + " (fail-closed)")
		}
		s.metrics.decisions.WithLabelValues("scan-budget", string(policy.WarnOutcome)).Inc()
		resp.Warnings = []string{msg + " (fail-open)"}
		return finish("allow", msg)
	}
	if d.Exempt != "" {
		return exempt(d.Exempt)
	}
	for _, r := range d.Results {
		s.metrics.decisions.WithLabelValues(r.Rule, string(r.Outcome)).Inc()
	}
	resp.Warnings = capWarnings(d.Warnings)
	if !d.Allowed {
		logAttrs = append(logAttrs, "denials", len(d.Denials()))
		return deny(d.Reason())
	}
	return finish("allow", "")
}

// budgetGrace is how long past the scan budget an answer may wait for an
// evaluation still running.
const budgetGrace = 250 * time.Millisecond

// maxMessage bounds the denial message and each warning of a response
// (the API server relays them to the user), maxWarnings their number.
const (
	maxMessage  = 8 << 10
	maxWarnings = 20
)

func capWarnings(ws []string) []string {
	var out []string
	for i, w := range ws {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("and %d more warnings", len(ws)-maxWarnings))
			break
		}
		out = append(out, diag.Shorten(w, maxMessage))
	}
	return out
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func isWorkloadKind(k string) bool {
	for _, w := range kubernetes.WorkloadKinds() {
		if w == k {
			return true
		}
	}
	return false
}
