package vulndb

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
)

// DefaultBaseURL is OSV's public export bucket.
const DefaultBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"

// HTTPDoer is the part of *http.Client that Update uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	MaxIdleConnsPerHost:   8,
}}

// errHTTPNotFound marks a 404, which for a listed ecosystem or a single
// record has a meaning of its own.
var errHTTPNotFound = errors.New("not found (HTTP 404)")

// Update refreshes the database from the OSV bucket layout at opts.BaseURL:
//
//	<base>/ecosystems.txt            the ecosystems, one a line
//	<base>/<Ecosystem>/all.zip       every record of an ecosystem
//	<base>/<Ecosystem>/modified_id.csv  "<RFC3339 modified>,<ID>" lines, newest first
//	<base>/<Ecosystem>/<ID>.json     one record
//
// An ecosystem the database already has is refreshed incrementally: the
// lines of modified_id.csv newer than its watermark name the records to
// fetch one by one (past opts.MaxIncremental it downloads all.zip instead).
// Others are downloaded whole, and records gone from a fresh all.zip are
// removed. Any failure (HTTP error, truncated zip, timeout, cancellation)
// fails the whole update and leaves the current database untouched; only an
// ecosystem that ecosystems.txt lists but whose all.zip answers 404 is
// skipped and reported in the result, since the listing and the files can
// briefly disagree.
func Update(ctx context.Context, dbPath string, opts Options) (*Result, error) {
	u := &updater{opts: opts, base: strings.TrimRight(opts.BaseURL, "/"), client: opts.HTTPClient}
	if u.base == "" {
		u.base = DefaultBaseURL
	}
	if _, err := url.Parse(u.base); err != nil {
		return nil, fmt.Errorf("db repository URL %q: %w", u.base, err)
	}
	if u.client == nil {
		u.client = defaultClient
	}
	if u.opts.MaxIncremental <= 0 {
		u.opts.MaxIncremental = 2000
	}
	if u.opts.MaxDownload <= 0 {
		u.opts.MaxDownload = 4 << 30
	}
	ecosystems, explicit := opts.Ecosystems, len(opts.Ecosystems) > 0
	if !explicit {
		var err error
		if ecosystems, err = u.listEcosystems(ctx); err != nil {
			return nil, err
		}
	}
	for _, eco := range ecosystems {
		if err := checkEcosystemName(eco); err != nil {
			return nil, fmt.Errorf("ecosystem %.80q: %w", eco, err)
		}
	}
	w, err := beginWrite(dbPath, false)
	if err != nil {
		return nil, err
	}
	defer w.abort()
	u.w = w
	res := &Result{Discarded: w.discarded}
	all := !explicit
	for _, eco := range ecosystems {
		fr, err := u.feed(ctx, eco, res)
		if errors.Is(err, errHTTPNotFound) && !explicit {
			fr.Err = err
			res.Feeds = append(res.Feeds, fr)
			all = false // the baseline is not refreshed: this one was not
			continue
		}
		if errors.Is(err, errHTTPNotFound) {
			return res, fmt.Errorf("ecosystem %q not found at %s: check the name against %s/ecosystems.txt (names are case-sensitive, e.g. PyPI, crates.io, Debian)", eco, u.base, u.base)
		}
		if err != nil {
			return res, fmt.Errorf("update %s: %w; the previous database is unchanged", eco, err)
		}
		res.Feeds = append(res.Feeds, fr)
	}
	if all && len(res.Fresh) > 0 {
		// Every ecosystem the bucket lists is current: so is the
		// absence of data for the others, as of the oldest of them.
		oldest := res.Fresh[0]
		for _, f := range res.Fresh[1:] {
			if f.older(oldest) {
				oldest = f
			}
		}
		oldest.Source = "OSV " + u.base + " (every listed ecosystem)"
		if err := w.setBaseline(oldest); err != nil {
			return res, err
		}
	}
	u.opts.progress(Progress{Stage: "write", Done: int64(res.Records), Total: int64(res.Records)})
	return res, w.commit("OSV " + u.base)
}

// exportTime is when the server says the file was written (Last-Modified:
// the bucket's export time), else now.
func exportTime(h http.Header, now time.Time) time.Time {
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil && t.Before(now) {
		return t.UTC()
	}
	return now
}

type updater struct {
	opts   Options
	base   string
	client HTTPDoer
	w      *writer
}

func (u *updater) url(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	return u.base + "/" + strings.Join(esc, "/")
}

func (u *updater) get(ctx context.Context, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	ua := u.opts.UserAgent
	if ua == "" {
		ua = "bulkhead"
	}
	req.Header.Set("User-Agent", ua)
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", rawURL, errHTTPNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: server answered %s", rawURL, resp.Status)
	}
	return resp, nil
}

func (u *updater) listEcosystems(ctx context.Context) ([]string, error) {
	resp, err := u.get(ctx, u.base+"/ecosystems.txt")
	if err != nil {
		return nil, fmt.Errorf("list ecosystems: %w (name them with --ecosystems, or check --db-repository)", err)
	}
	defer resp.Body.Close()
	var ecos []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if e := strings.TrimSpace(sc.Text()); e != "" && !strings.HasPrefix(e, "#") {
			ecos = append(ecos, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list ecosystems: %w", err)
	}
	if len(ecos) == 0 {
		return nil, fmt.Errorf("list ecosystems: %s/ecosystems.txt is empty", u.base)
	}
	return ecos, nil
}

func (u *updater) feed(ctx context.Context, eco string, res *Result) (FeedResult, error) {
	fr := FeedResult{Name: eco}
	m, ok := u.w.feed(eco)
	if ok && !u.opts.Full && !m.Watermark.IsZero() && u.w.discarded == nil {
		changes, newest, asOf, err := u.changedSince(ctx, eco, m.Watermark)
		if err != nil {
			return fr, err
		}
		if len(changes) <= u.opts.MaxIncremental {
			fr.Incremental = true
			n, err := u.incremental(ctx, eco, changes, res)
			fr.Changed = n
			if err != nil {
				return fr, err
			}
			if newest.After(m.Watermark) {
				m.Watermark = newest
			}
			m.Updated, m.Source = time.Now().UTC(), u.url(eco)
			if err := u.w.setFeed(eco, m); err != nil {
				return fr, err
			}
			return fr, u.fresh(res, Freshness{Ecosystem: eco, AsOf: asOf, Kind: KindUpdate, Source: u.url(eco, "modified_id.csv"), Refreshed: m.Updated})
		}
	}
	n, watermark, asOf, err := u.full(ctx, eco, res)
	fr.Changed = n
	if err != nil {
		return fr, err
	}
	now := time.Now().UTC()
	if err := u.w.setFeed(eco, feedMeta{Watermark: watermark, Updated: now, Source: u.url(eco, "all.zip")}); err != nil {
		return fr, err
	}
	return fr, u.fresh(res, Freshness{Ecosystem: eco, AsOf: asOf, Kind: KindUpdate, Source: u.url(eco, "all.zip"), Refreshed: now})
}

func (u *updater) fresh(res *Result, f Freshness) error {
	res.Fresh = append(res.Fresh, f)
	return u.w.setFresh(f)
}

// changedSince reads modified_id.csv up to the first line not newer than
// the watermark (the file is sorted newest first).
func (u *updater) changedSince(ctx context.Context, eco string, watermark time.Time) (ids []string, newest, asOf time.Time, err error) {
	src := u.url(eco, "modified_id.csv")
	resp, err := u.get(ctx, src)
	if err != nil {
		return nil, newest, asOf, err
	}
	defer resp.Body.Close()
	asOf = exportTime(resp.Header, time.Now().UTC())
	ids, newest, err = parseModifiedIDs(resp.Body, watermark)
	if err != nil {
		return nil, newest, asOf, fmt.Errorf("read %s: %w", src, err)
	}
	return ids, newest, asOf, nil
}

// parseModifiedIDs reads "<time>,<id>" lines (the bucket-wide file writes
// "<Ecosystem>/<id>"; the prefix is dropped) until a time at or before
// since.
func parseModifiedIDs(r io.Reader, since time.Time) (ids []string, newest time.Time, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		ts, id, ok := strings.Cut(text, ",")
		if !ok {
			return nil, newest, fmt.Errorf("line %d: want <time>,<id>, got %q", line, text)
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(ts))
		if err != nil {
			if line == 1 {
				continue // a header
			}
			return nil, newest, fmt.Errorf("line %d: %w", line, err)
		}
		if !t.After(since) {
			break
		}
		if t.After(newest) {
			newest = t
		}
		id = strings.TrimSpace(id)
		if i := strings.LastIndexByte(id, '/'); i >= 0 {
			id = id[i+1:]
		}
		if !idPattern().MatchString(id) {
			return nil, newest, fmt.Errorf("line %d: %q is not an OSV id", line, id)
		}
		ids = append(ids, id)
	}
	return ids, newest, sc.Err()
}

// incremental fetches changed records one by one, four at a time.
func (u *updater) incremental(ctx context.Context, eco string, ids []string, res *Result) (int, error) {
	var mu sync.Mutex
	var gone []string
	before := res.Written
	produce := func(emit emitFunc) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		work := make(chan string)
		errs := make(chan error, 4)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					data, err := u.fetchRecord(ctx, eco, id)
					if errors.Is(err, errHTTPNotFound) {
						mu.Lock()
						gone = append(gone, id)
						mu.Unlock()
						continue
					}
					if err == nil {
						err = emit(u.url(eco, id+".json"), data)
					}
					if err != nil {
						errs <- err
						cancel()
						return
					}
				}
			}()
		}
	feed:
		for i, id := range ids {
			select {
			case work <- id:
				u.opts.progress(Progress{Stage: "fetch", Ecosystem: eco, Item: id, Done: int64(i + 1), Total: int64(len(ids))})
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
			return ctx.Err()
		}
	}
	if err := load(ctx, u.w, produce, eco, &u.opts, res); err != nil {
		return res.Written - before, err
	}
	for _, id := range gone {
		if err := u.w.remove(eco, id); err != nil {
			return res.Written - before, err
		}
		res.Deleted++
	}
	return res.Written - before + len(gone), nil
}

func (u *updater) fetchRecord(ctx context.Context, eco, id string) ([]byte, error) {
	resp, err := u.get(ctx, u.url(eco, id+".json"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u.url(eco, id+".json"), err)
	}
	return data, nil
}

// full downloads all.zip, loads it as the feed's new contents and removes
// the records the feed held before but no longer lists.
func (u *updater) full(ctx context.Context, eco string, res *Result) (changed int, watermark, asOf time.Time, err error) {
	src := u.url(eco, "all.zip")
	zipPath, asOf, err := u.download(ctx, eco, src)
	if err != nil {
		return 0, watermark, asOf, err
	}
	defer os.Remove(zipPath)
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return 0, watermark, asOf, fmt.Errorf("open %s: %w (truncated or not a zip)", src, err)
	}
	defer zr.Close()

	before := u.w.feedMembers(eco)
	if err := u.w.tx.Bucket(bucketMembers).DeleteBucket([]byte(eco)); err != nil && len(before) > 0 {
		return 0, watermark, asOf, err
	}
	written := res.Written
	produce := func(emit emitFunc) error {
		return readZip(ctx, src, &zr.Reader, func(name string, data []byte) error {
			return emit(name, data)
		})
	}
	track := &Result{}
	if err := load(ctx, u.w, produce, eco, &u.opts, track); err != nil {
		return 0, watermark, asOf, err
	}
	res.Records += track.Records
	res.Written += track.Written
	res.Withdrawn += track.Withdrawn
	for _, p := range track.Problems {
		res.skip(eco, errors.New(p))
	}
	res.Skipped += track.Skipped - len(track.Problems)
	if track.Records == 0 && len(zr.File) > 0 {
		return 0, watermark, asOf, fmt.Errorf("%s holds no valid OSV record (%d skipped)", src, track.Skipped)
	}
	deleted, err := u.w.pruneFeed(eco, before)
	if err != nil {
		return 0, watermark, asOf, err
	}
	res.Deleted += deleted
	watermark = u.w.newest[eco]
	return res.Written - written + deleted, watermark, asOf, nil
}

// download streams url into a temporary file beside the database, bounded
// in size, with progress in bytes.
func (u *updater) download(ctx context.Context, eco, src string) (path string, asOf time.Time, err error) {
	resp, err := u.get(ctx, src)
	if err != nil {
		return "", asOf, err
	}
	defer resp.Body.Close()
	asOf = exportTime(resp.Header, time.Now().UTC())
	if resp.ContentLength > u.opts.MaxDownload {
		return "", asOf, fmt.Errorf("%s is %d bytes, over the %d-byte limit", src, resp.ContentLength, u.opts.MaxDownload)
	}
	f, err := os.CreateTemp(filepath.Dir(u.w.path), ".download-*.zip")
	if err != nil {
		return "", asOf, fmt.Errorf("create download file: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	pw := &progressWriter{w: f, report: func(n int64) {
		u.opts.progress(Progress{Stage: "download", Ecosystem: eco, Item: src, Done: n, Total: resp.ContentLength})
	}}
	n, err := io.Copy(pw, io.LimitReader(resp.Body, u.opts.MaxDownload+1))
	if err != nil {
		return "", asOf, fmt.Errorf("download %s: %w", src, err)
	}
	if n > u.opts.MaxDownload {
		return "", asOf, fmt.Errorf("download %s: over the %d-byte limit", src, u.opts.MaxDownload)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return "", asOf, fmt.Errorf("download %s: got %d of %d bytes", src, n, resp.ContentLength)
	}
	ok = true
	return f.Name(), asOf, nil
}

type progressWriter struct {
	w      io.Writer
	n      int64
	last   time.Time
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if time.Since(p.last) > 100*time.Millisecond {
		p.last = time.Now()
		p.report(p.n)
	}
	return n, err
}

func modifiedOf(v *osvschema.Vulnerability) time.Time {
	if v.GetModified() == nil {
		return time.Time{}
	}
	return v.GetModified().AsTime()
}
