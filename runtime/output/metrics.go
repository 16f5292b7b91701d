package output

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// Counters is what the metrics read from the sensor at each scrape.
type Counters struct {
	Events, RingDrops, StashDrops uint64
}

// Metrics are the runtime's Prometheus metrics.
type Metrics struct {
	reg    *prometheus.Registry
	alerts *prometheus.CounterVec
	srv    *http.Server
	ln     net.Listener
}

// NewMetrics registers the metrics; counters is called at each scrape for
// the sensor's totals (nil when replaying a recording).
func NewMetrics(counters func() Counters) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkhead_runtime_alerts_total", Help: "Alerts raised, by rule and priority.",
	}, []string{"rule", "priority"})
	m.reg.MustRegister(m.alerts)
	if counters != nil {
		for _, c := range []struct {
			name, help string
			get        func(Counters) uint64
		}{
			{"bulkhead_runtime_events_total", "Kernel events delivered to the rule engine.", func(c Counters) uint64 { return c.Events }},
			{"bulkhead_runtime_ring_drops_total", "Events the kernel dropped because the ring buffer was full.", func(c Counters) uint64 { return c.RingDrops }},
			{"bulkhead_runtime_stash_drops_total", "System calls missed because the in-flight table was full.", func(c Counters) uint64 { return c.StashDrops }},
		} {
			get := c.get
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
				func() float64 { return float64(get(counters())) }))
		}
	}
	return m
}

// Webhook adds the webhook's counters: alerts sent, dropped on a full
// queue, given up on after the retries, and the queue's length.
func (m *Metrics) Webhook(w *Webhook) {
	for _, c := range []struct {
		name, help string
		get        func() uint64
	}{
		{"bulkhead_runtime_webhook_sent_total", "Alerts the webhook delivered.", func() uint64 { s, _, _ := w.Stats(); return s }},
		{"bulkhead_runtime_webhook_dropped_total", "Alerts dropped because the webhook's queue was full (the endpoint slow or down).", func() uint64 { _, d, _ := w.Stats(); return d }},
		{"bulkhead_runtime_webhook_failed_total", "Alerts the webhook gave up on after its retries, or the endpoint refused (4xx).", func() uint64 { _, _, f := w.Stats(); return f }},
	} {
		get := c.get
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(get()) }))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bulkhead_runtime_webhook_queued", Help: "Alerts waiting in the webhook's queue."},
		func() float64 { return float64(w.Queued()) }))
}

// Alert counts an alert.
func (m *Metrics) Alert(a *rules.Alert) error {
	m.alerts.WithLabelValues(a.Rule, a.Priority.String()).Inc()
	return nil
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve listens on addr and serves /metrics in the background; Addr
// reports the bound address (addr may use port 0).
func (m *Metrics) Serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	m.ln = ln
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return nil
}

// Addr is the metrics listener's address, "" when not serving.
func (m *Metrics) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops the metrics server.
func (m *Metrics) Close() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}
