// Package reeval re-evaluates the server's stored inventories when the
// vulnerability database changes, without pulling any image: every stored
// image's latest inventory is matched again with the application layer's
// shared matcher (pipeline.Matcher), its vulnerability findings are
// replaced (secrets, audit and other findings the walk made are kept), and
// the findings that appeared and disappeared are recorded per image with
// the time and the database version, then handed to a Notifier (webhook,
// Prometheus metrics).
//
// The stored findings after a re-evaluation are what a fresh `bulkhead
// image` scan of the same image with the same database and the same
// suppressions (ignore file, VEX) reports: the matcher is the pipeline's,
// the walk's findings are the stored ones, and the list is sorted as the
// pipeline sorts it.
package reeval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Change kinds, as store.Change.Kind.
const (
	Appeared    = "appeared"
	Disappeared = "disappeared"
)

// Options tune a run. The zero value is usable.
type Options struct {
	// Workers match inventories in parallel (default GOMAXPROCS); Writers
	// record the results (default Workers), so that matching goes on while
	// a write waits for the database. At most about 3×Workers+Writers
	// stored scans are held in memory at once, whatever the fleet's size.
	Workers int
	Writers int
	// MaxReportChanges bounds the changes handed to the notifier in one
	// Report (default 10,000); past it the report says Truncated. Every
	// change is recorded in the store whatever this limit.
	MaxReportChanges int
	// MaxErrors bounds the per-image errors kept in the Summary (default
	// 20); all are counted.
	MaxErrors int
	// KeepInfo leaves the stored database information of an image whose
	// findings did not change as it was (no write for it), instead of
	// rewriting it with the new database's (record count, dates) as a
	// fresh scan would report. A write of one image's findings costs the
	// store far more than matching it, and most advisories change few
	// images: with KeepInfo a run writes only the images that changed.
	KeepInfo bool
	// Now is the run's clock (default time.Now).
	Now func() time.Time
	// Log receives a line per failed image and per run (default: discard).
	Log *slog.Logger
}

const (
	defaultMaxReportChanges = 10000
	defaultMaxErrors        = 20
)

// Summary says what one run did.
type Summary struct {
	// DBVersion identifies the database the run matched against (see
	// DBVersion).
	DBVersion string    `json:"dbVersion"`
	At        time.Time `json:"at"`
	// Duration is the run's wall time.
	Duration time.Duration `json:"duration"`
	// Images is how many stored images were re-evaluated; Updated how many
	// had their findings or database information rewritten (the others
	// were already current); Changed how many had a finding appear or
	// disappear; Failed how many could not be re-evaluated (see Errors).
	Images      int `json:"images"`
	Updated     int `json:"updated"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Appeared    int `json:"appeared"`
	Disappeared int `json:"disappeared"`
	// Errors are the first per-image errors, each naming the scan.
	Errors []string `json:"errors,omitempty"`
}

// Report is what a notifier is told after a run: the summary and the
// changes (at most Options.MaxReportChanges of them).
type Report struct {
	Summary   Summary        `json:"summary"`
	Changes   []store.Change `json:"changes"`
	Truncated bool           `json:"truncated,omitempty"`
}

// Notifier is told of every run that completed (with or without changes,
// with per-image failures in the summary).
type Notifier interface {
	Notify(ctx context.Context, r *Report) error
}

// NotifyError is a run that was recorded in the store but whose
// notification failed.
type NotifyError struct{ Err error }

func (e *NotifyError) Error() string {
	return "re-evaluation recorded, notification failed: " + e.Err.Error()
}
func (e *NotifyError) Unwrap() error { return e.Err }

// ImageError is an image that could not be re-evaluated; the run went on
// with the others and left this image's stored findings as they were.
type ImageError struct {
	ScanID int64
	Digest string
	Err    error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("re-evaluate scan %d (%s): %v", e.ScanID, e.Digest, e.Err)
}
func (e *ImageError) Unwrap() error { return e.Err }

// DBVersion identifies the state of the matcher's database: the time it
// was last written (every update and import sets it), with the number of
// records. Two runs with one DBVersion matched the same data.
func DBVersion(m *pipeline.Matcher) (string, error) {
	st, err := m.DB().Status()
	if err != nil {
		return "", fmt.Errorf("read the vulnerability database's version: %w", err)
	}
	when := st.Written
	if when.IsZero() {
		when = st.Built
	}
	return fmt.Sprintf("%s (%d records)", when.UTC().Format(time.RFC3339Nano), st.Records), nil
}

// Run re-evaluates every stored image with m and tells n (nil: nobody),
// with the default Options. See RunWith.
func Run(ctx context.Context, st store.Store, m *pipeline.Matcher, n Notifier) (Summary, error) {
	return RunWith(ctx, st, m, n, Options{})
}

// RunWith re-evaluates the latest scan of every stored image against m's
// database: its vulnerability findings are replaced by m's match of its
// stored inventory, and the findings that appeared and disappeared are
// recorded (store.Reevaluated, one transaction per image). An image that
// fails is left as it was, counted and named in the summary, and the run
// goes on; the error returned then is an *ImageError (the first). A store
// error or a cancelled ctx stops the run. n is told once, at the end.
func RunWith(ctx context.Context, st store.Store, m *pipeline.Matcher, n Notifier, o Options) (Summary, error) {
	if st == nil || m == nil {
		return Summary{}, errors.New("re-evaluate: no store or no matcher")
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Writers <= 0 {
		o.Writers = o.Workers
	}
	if o.MaxReportChanges <= 0 {
		o.MaxReportChanges = defaultMaxReportChanges
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = defaultMaxErrors
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	ver, err := DBVersion(m)
	if err != nil {
		return Summary{}, err
	}
	r := &run{m: m, st: st, o: o, ver: ver, at: o.Now().UTC(), infos: map[string]*report.DBInfo{}}
	r.rep.Summary = Summary{DBVersion: ver, At: r.at}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Matching (CPU) and writing (the database's lock and fsync) overlap:
	// Workers match, Writers record, with bounded queues between them.
	jobs := make(chan *store.Scan, o.Workers)
	writes := make(chan *result, o.Workers)
	var matchers, writers sync.WaitGroup
	for range o.Workers {
		matchers.Go(func() {
			for s := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				if res := r.evaluateImage(ctx, s); res != nil {
					select {
					case writes <- res:
					case <-ctx.Done():
					}
				}
			}
		})
	}
	for range o.Writers {
		writers.Go(func() {
			for res := range writes {
				if ctx.Err() != nil {
					continue
				}
				if err := r.record(ctx, res); err != nil {
					cancel(err)
				}
			}
		})
	}
	err = st.EachLatest(ctx, func(s *store.Scan) error {
		select {
		case jobs <- s:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	matchers.Wait()
	close(writes)
	writers.Wait()
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		err = cause
	}
	r.rep.Summary.Duration = time.Since(start)
	sum := r.rep.Summary
	if err != nil {
		o.Log.Error("re-evaluation stopped", "db", ver, "images", sum.Images, "err", err)
		return sum, fmt.Errorf("re-evaluate: %w", err)
	}
	o.Log.Info("re-evaluated", "db", ver, "images", sum.Images, "changed", sum.Changed,
		"appeared", sum.Appeared, "disappeared", sum.Disappeared, "failed", sum.Failed, "duration", sum.Duration)
	if n != nil {
		if err := n.Notify(ctx, &r.rep); err != nil {
			return sum, &NotifyError{Err: err}
		}
	}
	if r.firstErr != nil {
		return sum, r.firstErr
	}
	return sum, nil
}

type run struct {
	m   *pipeline.Matcher
	st  store.Store
	o   Options
	ver string
	at  time.Time

	mu       sync.Mutex
	rep      Report
	firstErr error
	infos    map[string]*report.DBInfo
}

// result is one image's re-evaluation, waiting to be recorded.
type result struct {
	scan                  *store.Scan
	findings              []finding.Finding
	info                  *report.DBInfo
	appeared, disappeared []finding.Finding
	write                 bool
}

// evaluateImage re-evaluates one stored scan; nil when it failed (the
// failure is the image's: counted, the run goes on) or ctx ended.
func (r *run) evaluateImage(ctx context.Context, s *store.Scan) *result {
	findings, info, err := r.evaluate(ctx, s)
	if err != nil {
		if ctx.Err() == nil {
			r.failed(&ImageError{ScanID: s.ID, Digest: s.Digest, Err: err})
		}
		return nil
	}
	res := &result{scan: s, findings: findings, info: info}
	res.appeared, res.disappeared = Diff(s.Findings, findings)
	res.write = len(res.appeared)+len(res.disappeared) > 0 || !sameFindings(s.Findings, findings) ||
		!r.o.KeepInfo && !reflect.DeepEqual(s.DB, info)
	s.Inventory = nil // not needed any more: let it go before the write
	return res
}

// record writes one image's re-evaluation (when anything changed) and
// counts it; a store error is returned.
func (r *run) record(ctx context.Context, res *result) error {
	s := res.scan
	var changes []store.Change
	for _, f := range res.disappeared {
		changes = append(changes, store.Change{ScanID: s.ID, Digest: s.Digest, Kind: Disappeared, Finding: f, At: r.at, DBVersion: r.ver})
	}
	for _, f := range res.appeared {
		changes = append(changes, store.Change{ScanID: s.ID, Digest: s.Digest, Kind: Appeared, Finding: f, At: r.at, DBVersion: r.ver})
	}
	if res.write {
		if err := r.st.Reevaluated(ctx, s.ID, res.info, res.findings, changes); err != nil {
			return fmt.Errorf("record the re-evaluation of scan %d (%s): %w", s.ID, s.Digest, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := &r.rep.Summary
	sum.Images++
	if res.write {
		sum.Updated++
	}
	if len(changes) > 0 {
		sum.Changed++
	}
	sum.Appeared += len(res.appeared)
	sum.Disappeared += len(res.disappeared)
	for _, c := range changes {
		if len(r.rep.Changes) >= r.o.MaxReportChanges {
			r.rep.Truncated = true
			break
		}
		r.rep.Changes = append(r.rep.Changes, c)
	}
	return nil
}

func (r *run) failed(err *ImageError) {
	r.o.Log.Warn("image not re-evaluated; its stored findings are unchanged", "scan", err.ScanID, "digest", err.Digest, "err", err.Err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Summary.Failed++
	if len(r.rep.Summary.Errors) < r.o.MaxErrors {
		r.rep.Summary.Errors = append(r.rep.Summary.Errors, err.Error())
	}
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// evaluate is what the pipeline's matching stage gives for the stored
// inventory: the walk's findings as stored, the matcher's vulnerability
// findings (suppressed ones marked) in place of the stored ones, sorted as
// the pipeline sorts; and the database information of the ecosystems used.
func (r *run) evaluate(ctx context.Context, s *store.Scan) ([]finding.Finding, *report.DBInfo, error) {
	if s.Inventory == nil {
		return nil, nil, errors.New("the stored scan has no inventory: scan the image again")
	}
	vulns, used, err := r.m.Match(ctx, s.Inventory, nil)
	if err != nil {
		return nil, nil, err
	}
	out := make([]finding.Finding, 0, len(s.Findings)+len(vulns))
	for _, f := range s.Findings {
		if f.Kind != finding.KindVulnerability {
			out = append(out, f)
		}
	}
	out = append(out, vulns...)
	// The pipeline appends the matcher's findings to the walk's and sorts
	// the whole (stably): the stored list is in that order already, so the
	// walk's findings keep their relative order here too.
	match.Sort(out)
	info, err := r.info(used)
	if err != nil {
		return nil, nil, err
	}
	return out, info, nil
}

// info is the matcher's database information for the ecosystems used,
// computed once per set per run.
func (r *run) info(used []string) (*report.DBInfo, error) {
	key := strings.Join(used, "\x00")
	r.mu.Lock()
	info, ok := r.infos[key]
	r.mu.Unlock()
	if ok {
		return info, nil
	}
	info, err := r.m.Info(used)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.infos[key] = info
	r.mu.Unlock()
	return info, nil
}

// Key identifies a vulnerability finding across re-evaluations: its id, the
// package's type, name and version, and where the package was found.
func Key(f *finding.Finding) string {
	var b strings.Builder
	b.WriteString(f.ID)
	if p := f.Package; p != nil {
		for _, s := range []string{p.Type, p.Name, p.Version, p.Path} {
			b.WriteByte(0)
			b.WriteString(s)
		}
	}
	if l := f.Location; l != nil {
		b.WriteByte(0)
		b.WriteString(l.Path)
	}
	return b.String()
}

// Diff compares the vulnerability findings that count (not suppressed) of
// before and after: those only in after appeared, those only in before
// disappeared. A finding newly suppressed (an ignore entry, a VEX
// statement) disappears; one newly found but suppressed does not appear,
// as neither changes what a scan's exit code counts.
func Diff(before, after []finding.Finding) (appeared, disappeared []finding.Finding) {
	index := func(fs []finding.Finding) map[string]bool {
		m := make(map[string]bool, len(fs))
		for i := range fs {
			if counts(&fs[i]) {
				m[Key(&fs[i])] = true
			}
		}
		return m
	}
	b, a := index(before), index(after)
	seen := map[string]bool{}
	for i := range after {
		f := &after[i]
		if k := Key(f); counts(f) && !b[k] && !seen[k] {
			seen[k] = true
			appeared = append(appeared, *f)
		}
	}
	for i := range before {
		f := &before[i]
		if k := Key(f); counts(f) && !a[k] && !seen[k] {
			seen[k] = true
			disappeared = append(disappeared, *f)
		}
	}
	return appeared, disappeared
}

func counts(f *finding.Finding) bool {
	return f.Kind == finding.KindVulnerability && f.Suppressed == nil
}

// sameFindings reports whether two finding lists are equal (a difference
// that is only nil against empty makes one more write, nothing else).
func sameFindings(a, b []finding.Finding) bool {
	return slices.EqualFunc(a, b, func(x, y finding.Finding) bool { return reflect.DeepEqual(x, y) })
}
