// Package reevaljob runs re-evaluation (server/reeval) inside bulkhead
// server, as jobs of its queue (river):
//
//   - on a schedule (Options.UpdateInterval): `db update` of the server's
//     vulnerability database, then a re-evaluation when its version
//     changed;
//   - POST /api/v1/vulndb/import (admin): OSV records (one JSON record, a
//     JSON array, or a zip of them, such as an OSV all.zip) are imported
//     into the database, then a re-evaluation is queued;
//   - POST /api/v1/vulndb/update (admin): an update now;
//   - POST /api/v1/reevaluate (admin): a re-evaluation now.
//
// A re-evaluation opens the database afresh, makes it the matcher of
// every scan and upload from then on (Server.SwapMatcher), and matches
// every stored inventory again without pulling any image; the changes are
// recorded in the store (GET /api/v1/changes), counted on /metrics
// (bulkhead_reeval_*) and posted to the webhook, if one is configured.
// GET /api/v1/reevaluations/{id} is a run's state and summary.
//
// Several replicas sharing one PostgreSQL: river enqueues the periodic job
// on the elected leader only, a job waits while another of its kind is
// queued (unique), and Options.Lock (a PostgreSQL advisory lock, see
// PostgresLock) keeps two runs from overlapping when two replicas each
// took one. The vulnerability database is a file of each replica: an
// import or update reaches the replica that ran it (and any replica
// reading the same file, on a shared volume, at its next re-evaluation).
package reevaljob

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// Queue is the queue of re-evaluations (one worker per replica).
const Queue = "reeval"

// DefaultMaxImport bounds an import's body (an OSV all.zip of a large
// ecosystem is a few hundred MB).
const DefaultMaxImport = 1 << 30

// Options configure re-evaluation in the server.
type Options struct {
	// Match opens the server's vulnerability database (the options the
	// server's matcher was opened with; DBPath is the file updated and
	// imported into).
	Match pipeline.MatchOptions
	// UpdateInterval schedules `db update` (0: none); Update are its
	// options (mirror URL, ecosystems).
	UpdateInterval time.Duration
	Update         vulndb.Options
	// Notifier is told of every run (a webhook), besides the metrics.
	Notifier reeval.Notifier
	// Reeval tunes a run.
	Reeval reeval.Options
	// MaxImport bounds an import's body (default DefaultMaxImport).
	MaxImport int64
	// TempDir holds an import's body while it is read (default
	// os.TempDir()).
	TempDir string
	// Lock serialises runs across replicas (default: within this process
	// only); it returns the unlock.
	Lock func(ctx context.Context) (func(), error)
	// RetireAfter is how long a swapped-out matcher stays open for the
	// scans still using it (default 35 min, past a scan's JobTimeout).
	RetireAfter time.Duration
}

// Args is a re-evaluation job. Update runs `db update` first. Force runs
// even when the database's version is the last run's. Seq tells apart the
// jobs of imports: each import's job runs (after the one running, if any),
// whereas a scheduled update or a POST /api/v1/reevaluate while the same is
// queued or running is that job.
type Args struct {
	Update bool   `json:"update,omitempty" river:"unique"`
	Force  bool   `json:"force,omitempty" river:"unique"`
	Seq    int64  `json:"seq,omitempty" river:"unique"`
	Reason string `json:"reason,omitempty"`
}

// Kind is river's name of the job.
func (Args) Kind() string { return "bulkhead_reevaluate" }

// InsertOpts: one job of each sort in flight (queued or running).
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// Output is what a finished job records.
type Output struct {
	// Ran: a re-evaluation ran (else the database had not changed).
	Ran       bool   `json:"ran"`
	DBVersion string `json:"dbVersion"`
	// Updated is what `db update` did, when it ran.
	Updated *UpdateSummary  `json:"updated,omitempty"`
	Summary *reeval.Summary `json:"summary,omitempty"`
	// Error is a notification failure or the first image that failed (the
	// run was recorded).
	Error string `json:"error,omitempty"`
}

// UpdateSummary is a `db update`'s counts.
type UpdateSummary struct {
	Records int `json:"records"`
	Written int `json:"written"`
	Deleted int `json:"deleted"`
}

// Extension is re-evaluation as a server extension.
type Extension struct {
	o       Options
	s       *server.Server
	metrics *reeval.Metrics

	mu      sync.Mutex // runs of this process, one at a time
	lastVer string
}

// New returns the extension.
func New(o Options) *Extension {
	if o.MaxImport <= 0 {
		o.MaxImport = DefaultMaxImport
	}
	if o.RetireAfter <= 0 {
		o.RetireAfter = 35 * time.Minute
	}
	return &Extension{o: o}
}

// openAPI documents the routes in the server's /openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// Register adds the worker, its queue, the periodic update, the metrics,
// the routes and their documentation.
func (e *Extension) Register(x *server.Registrar) error {
	e.s = x.Server
	if err := x.Document(openAPI); err != nil {
		return err
	}
	m, err := reeval.NewMetrics(x.Metrics)
	if err != nil {
		return err
	}
	e.metrics = m
	river.AddWorker(x.Workers, &worker{e: e})
	x.Queues[Queue] = river.QueueConfig{MaxWorkers: 1}
	if e.o.UpdateInterval > 0 {
		x.PeriodicJobs = append(x.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(e.o.UpdateInterval),
			func() (river.JobArgs, *river.InsertOpts) { return Args{Update: true, Reason: "schedule"}, nil },
			&river.PeriodicJobOpts{ID: "bulkhead_db_update"}))
	}
	x.Handle("POST /api/v1/reevaluate", server.RoleAdmin, http.HandlerFunc(e.handleReevaluate))
	x.Handle("POST /api/v1/vulndb/update", server.RoleAdmin, http.HandlerFunc(e.handleUpdate))
	x.Handle("POST /api/v1/vulndb/import", server.RoleAdmin, http.HandlerFunc(e.handleImport))
	x.Handle("GET /api/v1/reevaluations/{id}", server.RoleRead, http.HandlerFunc(e.handleJob))
	return nil
}

// Job is a re-evaluation job's state.
type Job struct {
	ID        int64     `json:"id"`
	State     string    `json:"state"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Args      Args      `json:"args"`
	Attempt   int       `json:"attempt"`
	Errors    []string  `json:"errors,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Output    *Output   `json:"output,omitempty"`
}

// Enqueue queues a job and returns its state.
func (e *Extension) Enqueue(ctx context.Context, a Args) (*Job, error) {
	id, err := e.s.Enqueue(ctx, a, nil)
	if err != nil {
		return nil, fmt.Errorf("queue the re-evaluation: %w", err)
	}
	return e.Job(ctx, id)
}

// Job reads a job's state (store.ErrNotFound for another kind).
func (e *Extension) Job(ctx context.Context, id int64) (*Job, error) {
	row, err := e.s.JobRow(ctx, id)
	if err != nil {
		return nil, err
	}
	if row.Kind != (Args{}).Kind() {
		return nil, store.ErrNotFound
	}
	j := &Job{ID: row.ID, State: string(row.State), Attempt: row.Attempt, CreatedAt: row.CreatedAt}
	json.Unmarshal(row.EncodedArgs, &j.Args)
	for _, er := range row.Errors {
		j.Errors = append(j.Errors, er.Error)
	}
	if out := row.Output(); out != nil {
		j.Output = &Output{}
		if err := json.Unmarshal(out, j.Output); err != nil {
			j.Output = nil
		}
	}
	return j, nil
}

type worker struct {
	river.WorkerDefaults[Args]
	e *Extension
}

// Timeout: an update downloads, a run reads every stored image.
func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 2 * time.Hour }

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	out, err := w.e.run(ctx, job.Args)
	if err != nil {
		w.e.s.Logger().Warn("re-evaluation failed", "job", job.ID, "attempt", job.Attempt, "err", err)
		return err
	}
	return river.RecordOutput(ctx, out)
}

func (e *Extension) lock(ctx context.Context) (func(), error) {
	e.mu.Lock()
	if e.o.Lock == nil {
		return e.mu.Unlock, nil
	}
	unlock, err := e.o.Lock(ctx)
	if err != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("wait for another replica's re-evaluation: %w", err)
	}
	return func() { unlock(); e.mu.Unlock() }, nil
}

// run updates the database if asked, opens it, swaps it in and
// re-evaluates when its version is new (or forced).
func (e *Extension) run(ctx context.Context, a Args) (*Output, error) {
	unlock, err := e.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	log := e.s.Logger()
	out := &Output{}
	if a.Update {
		uo := e.o.Update
		res, err := vulndb.Update(ctx, e.o.Match.DBPath, uo)
		if err != nil {
			return nil, fmt.Errorf("update the vulnerability database: %w", err)
		}
		out.Updated = &UpdateSummary{Records: res.Records, Written: res.Written, Deleted: res.Deleted}
		log.Info("vulnerability database updated", "records", res.Records, "written", res.Written, "deleted", res.Deleted)
	}
	m, err := pipeline.OpenMatcher(e.o.Match)
	if err != nil {
		return nil, fmt.Errorf("open the vulnerability database: %w", err)
	}
	ver, err := reeval.DBVersion(m)
	if err != nil {
		m.Close()
		return nil, err
	}
	out.DBVersion = ver
	if !a.Force && ver == e.lastVer {
		m.Close()
		return out, nil
	}
	old := e.s.SwapMatcher(m)
	if old != nil && old != m {
		// Scans that started with it finish with it.
		time.AfterFunc(e.o.RetireAfter, func() { old.Close() })
	}
	ro := e.o.Reeval
	if ro.Log == nil {
		ro.Log = log.With("component", "reeval")
	}
	n := reeval.Multi{e.metrics}
	if e.o.Notifier != nil {
		n = append(n, e.o.Notifier)
	}
	sum, err := reeval.RunWith(ctx, e.s.Store(), m, n, ro)
	var ne *reeval.NotifyError
	var ie *reeval.ImageError
	if err != nil && !errors.As(err, &ne) && !errors.As(err, &ie) {
		return nil, fmt.Errorf("re-evaluate: %w", err)
	}
	if err != nil {
		out.Error = err.Error()
	}
	e.lastVer = ver
	if sum.Changed > 0 {
		e.s.FleetChanged() // the overview's trend
	}
	out.Ran, out.Summary = true, &sum
	log.Info("re-evaluated", "images", sum.Images, "changed", sum.Changed, "appeared", sum.Appeared,
		"disappeared", sum.Disappeared, "failed", sum.Failed, "duration", sum.Duration, "db", ver)
	return out, nil
}

// PostgresLock is an Options.Lock over a PostgreSQL advisory lock, held
// on one connection of pool for the run.
func PostgresLock(pool *pgxpool.Pool) func(ctx context.Context) (func(), error) {
	const key = 0x62756c6b72656576 // "bulkreev"
	return func(ctx context.Context) (func(), error) {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(key)); err != nil {
			c.Release()
			return nil, err
		}
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(key)); err != nil {
				c.Conn().Close(ctx) // closing the session releases the lock
			}
			c.Release()
		}, nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (e *Extension) accepted(w http.ResponseWriter, r *http.Request, a Args, extra map[string]any) {
	j, err := e.Enqueue(r.Context(), a)
	if err != nil {
		e.s.Logger().Error("queue re-evaluation", "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot queue the re-evaluation: the database does not answer; retry later")
		return
	}
	w.Header().Set("Location", "/api/v1/reevaluations/"+strconv.FormatInt(j.ID, 10))
	if extra == nil {
		writeJSON(w, http.StatusAccepted, j)
		return
	}
	extra["reevaluation"] = j
	writeJSON(w, http.StatusAccepted, extra)
}

func (e *Extension) handleReevaluate(w http.ResponseWriter, r *http.Request) {
	e.accepted(w, r, Args{Force: true, Reason: "api"}, nil)
}

func (e *Extension) handleUpdate(w http.ResponseWriter, r *http.Request) {
	e.accepted(w, r, Args{Update: true, Reason: "api"}, nil)
}

// ImportResult is what an import did.
type ImportResult struct {
	Records   int `json:"records"`
	Written   int `json:"written"`
	Withdrawn int `json:"withdrawn"`
	// Skipped files were not OSV records; Problems says why (the first).
	Skipped  int      `json:"skipped"`
	Problems []string `json:"problems,omitempty"`
}

// handleImport imports the body's OSV records (application/json: a
// record or an array; application/zip: a zip of records) and queues a
// re-evaluation.
func (e *Extension) handleImport(w http.ResponseWriter, r *http.Request) {
	ext := ""
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "application/zip":
		ext = ".zip"
	case ct == "application/json" || len(ct) > 16 && ct[:16] == "application/json":
		ext = ".json"
	default:
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send OSV records as application/json (one record or an array) or application/zip", ct))
		return
	}
	dir, err := os.MkdirTemp(e.o.TempDir, "bulkhead-import-")
	if err != nil {
		e.s.Logger().Error("import", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot make a temporary directory for the import")
		return
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "records"+ext)
	f, err := os.Create(p)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot write the import's temporary file")
		return
	}
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, e.o.MaxImport))
	f.Close()
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("import over %d bytes", e.o.MaxImport))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "read the import: "+err.Error())
		return
	}
	if n == 0 {
		writeError(w, http.StatusBadRequest, "empty import: send OSV records")
		return
	}
	// vulndb serialises writers (a lock file) and renames the new file
	// into place: a re-evaluation reading the old one is not disturbed.
	res, err := vulndb.Import(r.Context(), e.o.Match.DBPath, []string{p}, vulndb.Options{})
	if err != nil {
		msg := err.Error()
		if res != nil && len(res.Problems) > 0 {
			msg += fmt.Sprintf(" (first problem: %v)", res.Problems[0])
		}
		// Nothing was written: the database is as it was.
		writeError(w, http.StatusUnprocessableEntity, "import: "+msg)
		return
	}
	e.s.Logger().Info("OSV records imported", "records", res.Records, "written", res.Written, "withdrawn", res.Withdrawn, "skipped", res.Skipped)
	e.accepted(w, r, Args{Seq: time.Now().UnixNano(), Reason: "import"}, map[string]any{"imported": ImportResult{Records: res.Records, Written: res.Written, Withdrawn: res.Withdrawn, Skipped: res.Skipped, Problems: res.Problems}})
}

func (e *Extension) handleJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "the id is a positive integer (a re-evaluation job's)")
		return
	}
	j, err := e.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no re-evaluation job "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read the job: the database does not answer; retry later")
		return
	}
	writeJSON(w, http.StatusOK, j)
}
