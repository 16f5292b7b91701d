package scanner

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// Metrics are the operator's Prometheus metrics. A nil *Metrics counts
// nothing.
type Metrics struct {
	Queued   prometheus.Gauge
	Running  prometheus.Gauge
	Scans    *prometheus.CounterVec // by result: scanned, server, failed
	Failed   prometheus.Counter
	vulnDesc *prometheus.Desc
	ageDesc  *prometheus.Desc

	mu sync.Mutex
	// byWorkload: the namespace and digests of each workload;
	// byDigest: each digest's counts.
	byWorkload map[string]workloadImages
	byDigest   map[string]v1alpha1.Counts
	oldest     func() (time.Time, bool)
}

type workloadImages struct {
	namespace string
	digests   []string
}

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Queued:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "bulkhead_operator_scans_queued", Help: "Image digests waiting to be scanned."}),
		Running:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "bulkhead_operator_scans_running", Help: "Image scans running."}),
		Scans:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulkhead_operator_scans_total", Help: "Image digests scanned, by result: scanned (pulled and scanned here), server (taken from bulkhead server), failed."}, []string{"result"}),
		Failed:     prometheus.NewCounter(prometheus.CounterOpts{Name: "bulkhead_operator_scans_failed_total", Help: "Image scans that failed."}),
		vulnDesc:   prometheus.NewDesc("bulkhead_operator_image_vulnerabilities", "Vulnerabilities of the distinct images running in a namespace, by severity.", []string{"namespace", "severity"}, nil),
		ageDesc:    prometheus.NewDesc("bulkhead_operator_oldest_report_age_seconds", "Age of the oldest image report this operator knows.", nil, nil),
		byWorkload: map[string]workloadImages{},
		byDigest:   map[string]v1alpha1.Counts{},
	}
	for _, c := range []prometheus.Collector{m.Queued, m.Running, m.Scans, m.Failed, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) queued(d float64) {
	if m != nil {
		m.Queued.Add(d)
	}
}

func (m *Metrics) running(d float64) {
	if m != nil {
		m.Running.Add(d)
	}
}

func (m *Metrics) finished(o *Outcome, err error) {
	if m == nil {
		return
	}
	switch {
	case err != nil:
		m.Scans.WithLabelValues("failed").Inc()
		m.Failed.Inc()
	case o.FromServer:
		m.Scans.WithLabelValues("server").Inc()
	default:
		m.Scans.WithLabelValues("scanned").Inc()
	}
}

// SetOldest gives the function that finds the oldest report.
func (m *Metrics) SetOldest(s *Scheduler) {
	if m != nil {
		m.mu.Lock()
		m.oldest = s.oldest
		m.mu.Unlock()
	}
}

// Workload records the digests a workload runs (none: it is gone).
func (m *Metrics) Workload(key, namespace string, digests []string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(digests) == 0 {
		delete(m.byWorkload, key)
		return
	}
	m.byWorkload[key] = workloadImages{namespace: namespace, digests: digests}
}

// Image records a digest's vulnerability counts.
func (m *Metrics) Image(digest string, c v1alpha1.Counts) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.byDigest[digest] = c
	m.mu.Unlock()
}

// Forget drops a digest whose report was removed.
func (m *Metrics) Forget(digest string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.byDigest, digest)
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.vulnDesc
	ch <- m.ageDesc
}

// Collect implements prometheus.Collector: the counts of each
// namespace's distinct digests, and the oldest report's age.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	perNS := map[string]map[string]bool{}
	for _, w := range m.byWorkload {
		if perNS[w.namespace] == nil {
			perNS[w.namespace] = map[string]bool{}
		}
		for _, d := range w.digests {
			perNS[w.namespace][d] = true
		}
	}
	sums := map[string]v1alpha1.Counts{}
	for ns, ds := range perNS {
		var c v1alpha1.Counts
		for d := range ds {
			c.Add(m.byDigest[d])
		}
		sums[ns] = c
	}
	oldest := m.oldest
	m.mu.Unlock()
	for ns, c := range sums {
		for sev, n := range map[string]int{"critical": c.Critical, "high": c.High, "medium": c.Medium, "low": c.Low, "unknown": c.Unknown} {
			ch <- prometheus.MustNewConstMetric(m.vulnDesc, prometheus.GaugeValue, float64(n), ns, sev)
		}
	}
	if oldest != nil {
		if at, ok := oldest(); ok {
			ch <- prometheus.MustNewConstMetric(m.ageDesc, prometheus.GaugeValue, time.Since(at).Seconds())
		}
	}
}
