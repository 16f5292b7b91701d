// Package harborscan is the Harbor adapter of bulkhead server: a
// harbor.Backend over the server's job queue and store, mounted at
// Harbor's paths (/api/v1/metadata, /api/v1/scan, /api/v1/scan/{id}/report)
// behind the server's API tokens (role scan). Register it in Harbor as a
// scanner with the URL of the server and "Authorization: Bearer <token>".
//
// A scan request becomes a river job (kind bulkhead_harbor_scan, on the
// server's scan queue and its concurrency limit) that pulls
// <registry host>/<repository>@<digest> with the credential Harbor sent
// and stores the scan like any other; the report is read from the store.
// The scan request id is the job's id.
//
// Harbor's registry credential (a robot account, valid for the scan) is
// never written to the database: it is held in the memory of the server
// that accepted the request, keyed by a random handle that the job row
// carries, for at most CredentialTTL, and forgotten when the job ends. A
// job whose credential is gone (the server restarted, the TTL passed, or
// another replica sharing the database took the job) fails with
// ErrCredentialLost, which tells Harbor to scan the artifact again;
// Harbor then sends a fresh credential.
package harborscan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// DefaultCredentialTTL is how long a request's registry credential is
// held by default: long enough for the queue's wait and retries.
const DefaultCredentialTTL = 2 * time.Hour

// ErrCredentialLost fails a job whose registry credential this server
// does not hold.
var ErrCredentialLost = errors.New("the registry credential of this Harbor scan request is no longer held " +
	"(it is kept only in the memory of the bulkhead server that accepted the request, for a limited time, and never stored; " +
	"the server restarted, the credential expired, or another replica took the job): scan the artifact again in Harbor")

// Options configure the adapter.
type Options struct {
	// Harbor are the protocol handler's options (scanner name and
	// version, Refresh-After, logger); Auth is the server's and is set
	// here.
	Harbor harbor.Options
	// CredentialTTL bounds how long a registry credential is held
	// (default DefaultCredentialTTL).
	CredentialTTL time.Duration
}

// Extension mounts the adapter on a server.
type Extension struct {
	o Options
	// Backend is set by Register (tests read it).
	Backend *Backend
}

// New returns the adapter as a server extension.
func New(o Options) *Extension {
	if o.CredentialTTL <= 0 {
		o.CredentialTTL = DefaultCredentialTTL
	}
	return &Extension{o: o}
}

// Register adds the worker and Harbor's routes (role scan).
func (e *Extension) Register(x *server.Registrar) error {
	b := &Backend{s: x.Server, creds: &credentials{ttl: e.o.CredentialTTL, m: map[string]credential{}}}
	e.Backend = b
	river.AddWorker(x.Workers, &worker{b: b})
	ho := e.o.Harbor
	if ho.Logger == nil {
		ho.Logger = x.Server.Logger()
	}
	if ho.DBUpdatedAt == nil {
		ho.DBUpdatedAt = func(context.Context) (time.Time, error) {
			st, err := x.Server.Matcher().DB().Status()
			if err != nil {
				return time.Time{}, err
			}
			if !st.Written.IsZero() {
				return st.Written, nil
			}
			return st.Built, nil
		}
	}
	h := harbor.New(b, ho) // the server's routes check the token
	for _, p := range []string{"GET /api/v1/metadata", "POST /api/v1/scan", "GET /api/v1/scan/{id}/report"} {
		x.HandleErrors(p, server.RoleScan, h, refuse)
	}
	return nil
}

// refuse answers a refused token in the spec's error format, with the
// statuses the spec knows: a token of too low a role is a 401 (the spec
// has no 403), a database that does not answer a 500.
func refuse(w http.ResponseWriter, status int, reason string) {
	switch status {
	case http.StatusForbidden:
		status = http.StatusUnauthorized
		reason += " (give Harbor a token of role scan)"
	case http.StatusServiceUnavailable:
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", harbor.MediaTypeError)
	w.WriteHeader(status)
	var er harbor.ErrorResponse
	er.Error.Message = reason
	json.NewEncoder(w).Encode(er)
}

// JobArgs is a Harbor scan job. It holds no credential: Credential is the
// handle of one held in memory.
type JobArgs struct {
	// Reference is host/repository@digest; the same reference in flight
	// is one job.
	Reference  string          `json:"reference" river:"unique"`
	Insecure   bool            `json:"insecure,omitempty"`
	Artifact   harbor.Artifact `json:"artifact"`
	Credential string          `json:"credential,omitempty"`
}

// Kind is river's name of the job.
func (JobArgs) Kind() string { return "bulkhead_harbor_scan" }

// InsertOpts put the job on the server's scan queue, unique while in
// flight.
func (JobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: server.QueueScan, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// Backend is the harbor.Backend over the server's queue and store.
type Backend struct {
	s     *server.Server
	creds *credentials
}

// Submit queues the scan and returns the job's id.
func (b *Backend) Submit(ctx context.Context, req harbor.ScanRequest) (string, error) {
	ref, plain, err := req.Reference()
	if err != nil {
		return "", err
	}
	auth, err := req.Registry.Auth()
	if err != nil {
		return "", err
	}
	args := JobArgs{Reference: ref, Insecure: plain, Artifact: req.Artifact}
	if req.Registry.Authorization != "" {
		args.Credential = b.creds.put(auth)
	}
	id, err := b.s.Enqueue(ctx, args, nil)
	if err != nil {
		b.creds.drop(args.Credential)
		return "", fmt.Errorf("queue the scan: %w", err)
	}
	if args.Credential != "" {
		// The same artifact already queued or running is that job, with
		// its own credential: this one is not needed.
		if row, err := b.s.JobRow(ctx, id); err == nil {
			var got JobArgs
			if json.Unmarshal(row.EncodedArgs, &got) == nil && got.Credential != args.Credential {
				b.creds.drop(args.Credential)
			}
		}
	}
	return strconv.FormatInt(id, 10), nil
}

// Result reads the job and, once it completed, the stored scan.
func (b *Backend) Result(ctx context.Context, id string) (*harbor.Result, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return nil, harbor.ErrNotFound
	}
	row, err := b.s.JobRow(ctx, n)
	if errors.Is(err, store.ErrNotFound) || (err == nil && row.Kind != (JobArgs{}).Kind()) {
		return nil, harbor.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var a JobArgs
	if err := json.Unmarshal(row.EncodedArgs, &a); err != nil {
		return nil, fmt.Errorf("job %d: %w", n, err)
	}
	res := &harbor.Result{Artifact: a.Artifact}
	switch row.State {
	case rivertype.JobStateCompleted:
		var out server.ScanOutput
		if err := json.Unmarshal(row.Output(), &out); err != nil || out.ScanID == 0 {
			return nil, fmt.Errorf("job %d completed without a scan", n)
		}
		sc, err := b.s.Store().Scan(ctx, out.ScanID)
		if err != nil {
			return nil, fmt.Errorf("read scan %d: %w", out.ScanID, err)
		}
		sc.Inventory.Sort()
		res.ScannedAt, res.Inventory, res.Findings, res.DB = sc.ScannedAt, sc.Inventory, sc.Findings, sc.DB
	case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		msg := "the scan failed"
		if len(row.Errors) > 0 {
			msg = row.Errors[len(row.Errors)-1].Error
		}
		res.Err = errors.New(msg)
	default:
		res.Pending = true
	}
	return res, nil
}

type worker struct {
	river.WorkerDefaults[JobArgs]
	b *Backend
}

func (w *worker) Work(ctx context.Context, job *river.Job[JobArgs]) error {
	a := job.Args
	sa := server.ScanArgs{Reference: a.Reference, Insecure: a.Insecure}
	if a.Credential != "" {
		auth, ok := w.b.creds.get(a.Credential)
		if !ok {
			return river.JobCancel(ErrCredentialLost)
		}
		sa.Auth = auth
	}
	id, digest, err := w.b.s.ScanReference(ctx, sa)
	if err != nil {
		w.b.s.Logger().Warn("harbor scan failed", "job", job.ID, "reference", a.Reference, "attempt", job.Attempt, "err", err)
		if ctx.Err() == nil && !server.Retryable(err) {
			w.b.creds.drop(a.Credential)
			return river.JobCancel(err)
		}
		if job.Attempt >= job.MaxAttempts {
			w.b.creds.drop(a.Credential)
		}
		return err
	}
	w.b.creds.drop(a.Credential)
	return river.RecordOutput(ctx, server.ScanOutput{ScanID: id, Digest: digest})
}

// credentials hold registry credentials in memory by random handle.
type credentials struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]credential
}

type credential struct {
	auth    authn.Authenticator
	expires time.Time
}

func (c *credentials) put(a authn.Authenticator) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if now.After(v.expires) {
			delete(c.m, k)
		}
	}
	c.m[h] = credential{auth: a, expires: now.Add(c.ttl)}
	return h
}

func (c *credentials) get(h string) (authn.Authenticator, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[h]
	if !ok || time.Now().After(v.expires) {
		delete(c.m, h)
		return nil, false
	}
	return v.auth, true
}

func (c *credentials) drop(h string) {
	if h == "" {
		return
	}
	c.mu.Lock()
	delete(c.m, h)
	c.mu.Unlock()
}

// Held is how many registry credentials the backend holds (requests
// accepted whose job has not ended).
func (b *Backend) Held() int { return b.creds.held() }

func (c *credentials) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
