package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// ScanArgs is a scan job: pull Reference from its registry and scan it.
// Two submissions of the same reference and platform while the first is
// queued or running are one job.
type ScanArgs struct {
	// Reference is canonical (name.ParseReference(...).Name()).
	Reference string `json:"reference" river:"unique"`
	Platform  string `json:"platform,omitempty" river:"unique"`
	// Auth and Insecure are for ScanReference's callers (the Harbor
	// adapter's worker, which holds a request's registry credential in
	// memory): they are never written to the queue.
	Auth     authn.Authenticator `json:"-"`
	Insecure bool                `json:"-"`
}

// Kind is river's name of the job.
func (ScanArgs) Kind() string { return "bulkhead_scan" }

// InsertOpts make the job unique while in flight.
func (ScanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScan, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: inFlight}}
}

// QueueScan is the queue of registry scans.
const QueueScan = "scan"

// ScanOutput is what a finished scan job records.
type ScanOutput struct {
	ScanID int64  `json:"scanID"`
	Digest string `json:"digest"`
}

// scanWorker pulls and scans images through pipeline.Run.
type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	s *Server
}

func (w *scanWorker) Timeout(*river.Job[ScanArgs]) time.Duration { return w.s.cfg.JobTimeout }

func (w *scanWorker) Work(ctx context.Context, job *river.Job[ScanArgs]) error {
	id, digest, err := w.s.ScanReference(ctx, job.Args)
	if err != nil {
		w.s.log.Warn("scan failed", "job", job.ID, "reference", job.Args.Reference, "attempt", job.Attempt, "err", err)
		if ctx.Err() == nil && !retryable(err) {
			return river.JobCancel(err)
		}
		return err // river retries it with backoff (or requeues it at shutdown)
	}
	return river.RecordOutput(ctx, ScanOutput{ScanID: id, Digest: digest})
}

// ScanReference pulls and scans a reference with the pipeline and stores
// the scan (what a scan job does; the Harbor adapter's worker calls it).
func (s *Server) ScanReference(ctx context.Context, a ScanArgs) (int64, string, error) {
	o := pipeline.Options{TempDir: s.cfg.TempDir, Insecure: s.cfg.Insecure || a.Insecure, Matcher: s.Matcher(), Auth: a.Auth}
	if a.Platform != "" {
		p, err := v1.ParsePlatform(a.Platform)
		if err != nil {
			return 0, "", err
		}
		o.Platform = p
	}
	if s.cfg.Scanners != nil {
		o.Scanners = s.cfg.Scanners()
	}
	res, err := pipeline.Run(ctx, a.Reference, o)
	if err != nil {
		return 0, "", err
	}
	ref, _ := name.ParseReference(a.Reference)
	digest := res.Inventory.Target.Digest
	sc := &store.Scan{Digest: digest, Repository: ref.Context().Name(), ScannedAt: time.Now().UTC(), Source: "registry",
		DB: res.DB, Inventory: res.Inventory, Findings: res.Findings, Provenance: s.provenance(ctx, res, a.Reference, a)}
	id, err := s.store.PutScan(ctx, sc, &store.Sighting{Digest: digest, Reference: a.Reference, Kind: "registry", SeenAt: sc.ScannedAt})
	if err != nil {
		return 0, "", fmt.Errorf("store the scan of %s: %w", a.Reference, err)
	}
	s.snap.changed()
	s.scans.WithLabelValues("registry").Inc()
	return id, digest, nil
}

// retryable says whether a scan error may go away: a registry that
// answered 429 or 5xx, or could not be reached.
func retryable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500 || te.Temporary()
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF)
}

// ScanRequest asks the server to pull and scan an image.
type ScanRequest struct {
	Reference string `json:"reference"`
	Platform  string `json:"platform,omitempty"`
}

// Job is a scan job's state.
type Job struct {
	ID        int64  `json:"id"`
	State     string `json:"state"` // river's: available, running, retryable, completed, cancelled, discarded, ...
	Reference string `json:"reference"`
	Platform  string `json:"platform,omitempty"`
	Attempt   int    `json:"attempt"`
	// MaxAttempts is how many times a failing pull is tried.
	MaxAttempts int `json:"maxAttempts"`
	// Duplicate: the same scan was already queued or running; this is it.
	Duplicate bool      `json:"duplicate,omitempty"`
	Errors    []string  `json:"errors,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// ScanID and Digest are set when the job completed: GET
	// /api/v1/scans/{ScanID} is the result.
	ScanID int64  `json:"scanID,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// Submit queues a scan of ref (one job for the same reference while one
// is in flight).
func (s *Server) Submit(ctx context.Context, req ScanRequest) (*Job, error) {
	ref, err := name.ParseReference(req.Reference)
	if err != nil {
		return nil, &UploadError{Status: http.StatusBadRequest, Reason: fmt.Sprintf("reference %q: %v", req.Reference, err)}
	}
	if req.Platform != "" {
		if _, err := v1.ParsePlatform(req.Platform); err != nil {
			return nil, &UploadError{Status: http.StatusBadRequest, Reason: fmt.Sprintf("platform %q: %v (os/arch[/variant])", req.Platform, err)}
		}
	}
	args := ScanArgs{Reference: ref.Name(), Platform: req.Platform}
	res, err := s.queue.Insert(ctx, args, &river.InsertOpts{MaxAttempts: s.cfg.MaxAttempts})
	if err != nil {
		return nil, fmt.Errorf("queue the scan: %w", err)
	}
	j := jobOf(res.Job)
	j.Duplicate = res.UniqueSkippedAsDuplicate
	return j, nil
}

// ScanJob returns a scan job's state.
func (s *Server) ScanJob(ctx context.Context, id int64) (*Job, error) {
	row, err := s.queue.JobGet(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if row.Kind != (ScanArgs{}).Kind() {
		return nil, store.ErrNotFound
	}
	return jobOf(row), nil
}

// JobRow is the queue's row of job id, of any kind (an extension's jobs:
// Harbor scans, re-evaluations); store.ErrNotFound when there is none.
func (s *Server) JobRow(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	row, err := s.queue.JobGet(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	return row, err
}

// Retryable says whether a scan error may go away (a registry that
// answered 429 or 5xx, or could not be reached): an extension's worker
// returns it to river to retry, and cancels the job on any other.
func Retryable(err error) bool { return retryable(err) }

func jobOf(row *rivertype.JobRow) *Job {
	var a ScanArgs
	json.Unmarshal(row.EncodedArgs, &a) // written by Submit
	j := &Job{ID: row.ID, State: string(row.State), Reference: a.Reference, Platform: a.Platform,
		Attempt: row.Attempt, MaxAttempts: row.MaxAttempts, CreatedAt: row.CreatedAt}
	for _, e := range row.Errors {
		j.Errors = append(j.Errors, e.Error)
	}
	if out := row.Output(); out != nil {
		var o ScanOutput
		if json.Unmarshal(out, &o) == nil {
			j.ScanID, j.Digest = o.ScanID, o.Digest
		}
	}
	return j
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	var req ScanRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	j, err := s.Submit(r.Context(), req)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	j, err := s.ScanJob(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}
