package reeval

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is a Notifier that keeps Prometheus metrics of the runs.
type Metrics struct {
	runs        prometheus.Counter
	images      prometheus.Counter
	failed      prometheus.Counter
	appeared    prometheus.Counter
	disappeared prometheus.Counter
	duration    prometheus.Histogram
	last        prometheus.Gauge
}

// NewMetrics registers the re-evaluation metrics with reg (the server's
// /metrics registry):
//
//	bulkhead_reeval_runs_total
//	bulkhead_reeval_images_total                  images re-evaluated
//	bulkhead_reeval_images_failed_total           images that could not be
//	bulkhead_reeval_findings_appeared_total
//	bulkhead_reeval_findings_disappeared_total
//	bulkhead_reeval_duration_seconds              histogram, one per run
//	bulkhead_reeval_last_run_timestamp_seconds
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_reeval_runs_total",
			Help: "Re-evaluations of the stored images that completed."}),
		images: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_reeval_images_total",
			Help: "Stored images re-evaluated against a new vulnerability database."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_reeval_images_failed_total",
			Help: "Stored images that could not be re-evaluated (their findings were left as they were)."}),
		appeared: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_reeval_findings_appeared_total",
			Help: "Vulnerability findings that appeared in stored images on re-evaluation."}),
		disappeared: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_reeval_findings_disappeared_total",
			Help: "Vulnerability findings that disappeared from stored images on re-evaluation."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bulkhead_reeval_duration_seconds",
			Help:    "Wall time of one re-evaluation of every stored image.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bulkhead_reeval_last_run_timestamp_seconds",
			Help: "When the last re-evaluation completed (Unix time)."}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.images, m.failed, m.appeared, m.disappeared, m.duration, m.last} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Notify counts r.
func (m *Metrics) Notify(_ context.Context, r *Report) error {
	s := r.Summary
	m.runs.Inc()
	m.images.Add(float64(s.Images))
	m.failed.Add(float64(s.Failed))
	m.appeared.Add(float64(s.Appeared))
	m.disappeared.Add(float64(s.Disappeared))
	m.duration.Observe(s.Duration.Seconds())
	m.last.Set(float64(s.At.Add(s.Duration).UnixNano()) / 1e9)
	return nil
}
