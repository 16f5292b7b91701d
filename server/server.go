// Package server is bulkhead server's HTTP API: scans submitted by image
// reference (pulled and scanned by pipeline.Run from a job queue, river),
// inventories uploaded from CI (matched by pipeline.Inventory with the
// server's shared pipeline.Matcher), queries over the stored fleet
// (server/store), and ingest of runtime alerts (falcosidekick-compatible)
// and gate/admission decisions. JSON over HTTP(S), described by the
// OpenAPI document served at /openapi.json.
//
// Every route but /healthz and /readyz needs an API token (Authorization:
// Bearer) of a role: read < scan < admin. Other packages add routes and
// queue workers through Extension (the Harbor adapter, re-evaluation).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/sign"
)

// Config configures a Server.
type Config struct {
	Store store.Store
	// Queue is the store's database, where the job queue runs.
	Queue QueueDB
	// Matcher matches every scan and upload (one database, shared).
	Matcher *pipeline.Matcher
	// Scanners makes the finding scanners that ride the walk of a pulled
	// image (secrets, image audit); nil: none.
	Scanners func() []scan.Scanner
	// Concurrency is how many scans run at once (default 2).
	Concurrency int
	// BootstrapToken is an admin token given at start (hashed at once,
	// never stored); "" for none.
	BootstrapToken string
	// MaxUpload bounds an upload's body (default DefaultMaxUpload).
	MaxUpload int64
	// MaxFileList bounds an uploaded image file list's JSON once
	// decompressed (default DefaultMaxFileList).
	MaxFileList int64
	// TempDir is where pulled images are unpacked (default os.TempDir()).
	TempDir string
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// MaxAttempts is how many times a scan whose registry fails is tried
	// (default 5); RetryBackoff the first wait (default 5 s, doubled each
	// time, at most RetryMax, default 5 min).
	MaxAttempts            int
	RetryBackoff, RetryMax time.Duration
	// JobTimeout bounds one scan (default 30 min).
	JobTimeout time.Duration
	// ShutdownTimeout is how long a shutdown waits for requests and scans
	// in flight before it cancels the scans, which are then requeued
	// (default 30 s).
	ShutdownTimeout time.Duration
	// FetchPollInterval is how often the queue looks for new jobs when it
	// is not told (default river's, 1 s).
	FetchPollInterval time.Duration
	Logger            *slog.Logger
	// Extensions add routes, queue workers and metrics.
	Extensions []Extension

	// BaseCatalog, when set, detects the base of every pulled image and
	// ranks the catalog's other bases for it (base.Detect, base.Recommend);
	// stored as the scan's provenance.
	BaseCatalog *base.Catalog
	// SignaturePolicy, when set, verifies every pulled image's signatures
	// and attestations (sign.Policy.Verify); the status is stored as the
	// scan's provenance. SignatureTLog is the transparency-log choice for
	// every rule (a rule may also say transparencyLog: ignore).
	SignaturePolicy *sign.Policy
	SignatureTLog   sign.TLogPolicy
	// SnapshotInterval bounds how often the fleet's daily trend is
	// snapshotted after stored scans (default 1 min).
	SnapshotInterval time.Duration
}

// Extension plugs into the server: the Harbor adapter (routes), the
// re-evaluation (routes, a worker, periodic jobs).
type Extension interface {
	Register(x *Registrar) error
}

// Registrar is what an Extension registers with.
type Registrar struct {
	// Server is the server being built: its methods (Submit, ScanJob,
	// Store, Matcher, Enqueue) may be called once it runs.
	Server *Server
	// Workers and Queues are the job queue's.
	Workers      *river.Workers
	Queues       map[string]river.QueueConfig
	PeriodicJobs []*river.PeriodicJob
	// Metrics is the registry /metrics serves.
	Metrics prometheus.Registerer
	mux     *http.ServeMux
	doc     *document
	err     error // the first malformed pattern
}

// Handle serves pattern ("METHOD /path", an OpenAPI path template such as
// "GET /api/v1/x/{id}") for tokens of at least role need (RoleNone: no
// token). The route must be described in /openapi.json: by the server's
// own document or by a fragment given to Document; server.New fails
// otherwise.
func (x *Registrar) Handle(pattern string, need Role, h http.Handler) {
	x.add(pattern, need, "")
	x.Server.handle(x.mux, pattern, need, h)
}

// HandleForeign serves pattern for tokens of at least role need, as a route
// of protocol f: described by f's own document, not by /openapi.json
// (whose description names it), and a refused token is answered by
// f.Refuse.
func (x *Registrar) HandleForeign(pattern string, need Role, h http.Handler, f Foreign) {
	spec := f.Spec
	if spec == "" {
		x.fail(&FragmentError{Reason: fmt.Sprintf("route %q: name the document that describes it (Foreign.Spec)", pattern)})
		spec = "?"
	}
	x.add(pattern, need, spec)
	refuse := f.Refuse
	if refuse == nil {
		refuse = writeError
	}
	x.mux.Handle(pattern, x.Server.observe(pattern, x.Server.requireWith(need, h, refuse)))
}

// Document adds an OpenAPI 3 fragment to /openapi.json: a JSON object with
// "paths" (the operations of the routes the extension serves with Handle)
// and "components" (the schemas, responses... they refer to; the server's
// own, such as #/components/responses/Unauthorized, may be referred to).
// An operation documented twice, or a component redefined differently, is
// an error; the merged document is validated when server.New ends.
func (x *Registrar) Document(fragment []byte) error {
	return x.doc.merge(fragment)
}

func (x *Registrar) add(pattern string, need Role, foreign string) {
	method, path, err := parsePattern(pattern)
	if err != nil {
		x.fail(err)
		return
	}
	x.Server.routeList = append(x.Server.routeList, Route{Method: method, Path: path, Role: need, Foreign: foreign})
}

func (x *Registrar) fail(err error) {
	if x.err == nil {
		x.err = err
	}
}

// Server is a bulkhead server.
type Server struct {
	cfg       Config
	store     store.Store
	log       *slog.Logger
	bootstrap []byte
	queue     queue
	handler   http.Handler
	matcher   atomic.Pointer[pipeline.Matcher]
	registry  *prometheus.Registry
	metrics   *httpMetrics
	scans     *prometheus.CounterVec
	events    *prometheus.CounterVec
	// openapi is the merged document; routeList the routes.
	openapi   []byte
	routeList []Route
	// snap keeps the fleet's daily trend.
	snap *snapshotter
}

// New makes a server: it migrates the job queue's tables and registers
// the routes, workers and extensions. Run serves it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Matcher == nil {
		return nil, errors.New("server: a store and a matcher are needed")
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&cfg.RetryBackoff, 5*time.Second)
	def(&cfg.RetryMax, 5*time.Minute)
	def(&cfg.JobTimeout, 30*time.Minute)
	def(&cfg.ShutdownTimeout, 30*time.Second)
	def(&cfg.SnapshotInterval, time.Minute)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.MaxFileList <= 0 {
		cfg.MaxFileList = DefaultMaxFileList
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, registry: prometheus.NewRegistry()}
	s.matcher.Store(cfg.Matcher)
	s.snap = &snapshotter{st: cfg.Store, log: cfg.Logger.Warn, interval: cfg.SnapshotInterval}
	if cfg.BootstrapToken != "" {
		s.bootstrap = HashToken(cfg.BootstrapToken)
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newHTTPMetrics(s.registry)
	s.scans = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulkhead_scans_stored_total", Help: "Scans stored, by source (registry, upload, sbom)."}, []string{"source"})
	s.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulkhead_events_total", Help: "Events ingested, by kind (runtime, gate, admission)."}, []string{"kind"})
	s.registry.MustRegister(s.scans, s.events)
	if ws, ok := cfg.Store.(interface{ WriteStats() (int64, int64) }); ok {
		s.registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulkhead_store_transactions_total", Help: "Group-commit transactions the store ran (each one commit)."},
				func() float64 { t, _ := ws.WriteStats(); return float64(t) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulkhead_store_writes_total", Help: "Writes (uploads, scans, events...) the store's transactions held: over bulkhead_store_transactions_total, the mean batch."},
				func() float64 { _, w := ws.WriteStats(); return float64(w) }))
	}
	if is, ok := cfg.Store.(interface{ IndexStats() (int64, int64, int64) }); ok {
		s.registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulkhead_store_index_drains_total", Help: "Transactions that wrote the deferred index rows of uploaded scans (SQLite)."},
				func() float64 { d, _, _ := is.IndexStats(); return float64(d) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulkhead_store_index_drained_scans_total", Help: "Scans whose deferred index rows those transactions wrote."},
				func() float64 { _, n, _ := is.IndexStats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bulkhead_store_index_pending", Help: "Uploaded scans whose index rows are not written yet (every read of the index writes them first)."},
				func() float64 { _, _, p := is.IndexStats(); return float64(p) }))
	}

	doc, err := newDocument(OpenAPI)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	x := &Registrar{Server: s, Workers: river.NewWorkers(), Metrics: s.registry, mux: mux, doc: doc,
		Queues: map[string]river.QueueConfig{QueueScan: {MaxWorkers: cfg.Concurrency}}}
	river.AddWorker(x.Workers, &scanWorker{s: s})
	s.routes(x)
	if x.err != nil {
		return nil, x.err
	}
	// The dashboard's pages are HTML for browsers, not API operations: it
	// authenticates itself (token sign-in, a cookie) and is not in the
	// OpenAPI document.
	if err := s.mountDashboard(mux); err != nil {
		return nil, err
	}
	for _, e := range cfg.Extensions {
		if err := e.Register(x); err != nil {
			return nil, fmt.Errorf("server extension %T: %w", e, err)
		}
		if x.err != nil {
			return nil, fmt.Errorf("server extension %T: %w", e, x.err)
		}
	}
	if s.openapi, err = doc.build(s.routeList); err != nil {
		return nil, err
	}
	q, err := openQueue(ctx, cfg.Queue, &river.Config{
		Queues: x.Queues, Workers: x.Workers, PeriodicJobs: x.PeriodicJobs,
		MaxAttempts: cfg.MaxAttempts, RetryPolicy: backoff{Base: cfg.RetryBackoff, Max: cfg.RetryMax},
		JobTimeout: cfg.JobTimeout, FetchPollInterval: cfg.FetchPollInterval, Logger: riverLogger(cfg.Logger),
	})
	if err != nil {
		return nil, err
	}
	s.queue = q
	s.handler = mux
	return s, nil
}

// routes registers the server's own routes (described by OpenAPI).
func (s *Server) routes(x *Registrar) {
	x.Handle("GET /healthz", RoleNone, http.HandlerFunc(s.handleHealth))
	x.Handle("GET /readyz", RoleNone, http.HandlerFunc(s.handleReady))
	x.Handle("GET /metrics", RoleRead, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	x.Handle("GET /openapi.json", RoleRead, http.HandlerFunc(s.handleOpenAPI))

	x.Handle("POST /api/v1/scans", RoleScan, http.HandlerFunc(s.handleSubmit))
	x.Handle("GET /api/v1/jobs/{id}", RoleRead, http.HandlerFunc(s.handleJob))
	x.Handle("GET /api/v1/scans/{id}", RoleRead, http.HandlerFunc(s.handleScan))
	x.Handle("GET /api/v1/scans/{id}/provenance", RoleRead, http.HandlerFunc(s.handleProvenance))
	x.Handle("PUT /api/v1/inventory", RoleScan, http.HandlerFunc(s.handleUpload))
	x.Handle("POST /api/v1/inventory", RoleScan, http.HandlerFunc(s.handleUpload))

	x.Handle("GET /api/v1/images", RoleRead, http.HandlerFunc(s.handleImages))
	x.Handle("GET /api/v1/vulnerabilities/{id}/affected", RoleRead, http.HandlerFunc(s.handleAffected))
	x.Handle("GET /api/v1/changes", RoleRead, http.HandlerFunc(s.handleChanges))
	x.Handle("GET /api/v1/diff", RoleRead, http.HandlerFunc(s.handleDiff))

	x.Handle("POST /api/v1/events/falco", RoleScan, http.HandlerFunc(s.handleFalco))
	x.Handle("POST /api/v1/events/decisions", RoleScan, http.HandlerFunc(s.handleDecision))
	x.Handle("GET /api/v1/events", RoleRead, http.HandlerFunc(s.handleEvents))

	x.Handle("POST /api/v1/tokens", RoleAdmin, http.HandlerFunc(s.handleCreateToken))
	x.Handle("DELETE /api/v1/tokens/{name}", RoleAdmin, http.HandlerFunc(s.handleDeleteToken))
	s.runtimeRoutes(x)
}

func (s *Server) handle(mux *http.ServeMux, pattern string, need Role, h http.Handler) {
	mux.Handle(pattern, s.observe(pattern, s.require(need, h)))
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.store }

// Matcher is the server's shared matcher.
func (s *Server) Matcher() *pipeline.Matcher { return s.matcher.Load() }

// SwapMatcher makes m the matcher of every scan and upload from now on
// (re-evaluation, after a database update) and returns the previous one;
// scans already running finish with it, so close it only once they are
// done (or after JobTimeout).
func (s *Server) SwapMatcher(m *pipeline.Matcher) *pipeline.Matcher { return s.matcher.Swap(m) }

// Logger is the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Enqueue inserts a job of an extension's kind.
func (s *Server) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	res, err := s.queue.Insert(ctx, args, opts)
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "the database does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Start starts the job queue's workers (Run does it).
func (s *Server) Start(ctx context.Context) error {
	if err := s.queue.Start(ctx); err != nil {
		return fmt.Errorf("start the job queue: %w", err)
	}
	return nil
}

// Stop stops the job queue: scans in flight get ShutdownTimeout to finish;
// then they are cancelled, and river puts them back on the queue (another
// replica, or this one after a restart, runs them again).
func (s *Server) Stop() error {
	defer s.snap.stop()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.queue.Stop(ctx)
	if err == nil {
		return nil
	}
	s.log.Warn("scans still running at shutdown: cancelling them; they are requeued", "err", err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	return s.queue.StopAndCancel(ctx2)
}

// Run serves on ln (TLS when tlsConfig is set) until ctx is done, then
// shuts down gracefully: it stops accepting, lets requests in flight
// finish, and stops the queue (Stop).
func (s *Server) Run(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), TLSConfig: tlsConfig}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", tlsConfig != nil)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		err = hs.Shutdown(sctx)
		cancel()
	}
	if qerr := s.Stop(); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = qerr
	}
	return err
}
