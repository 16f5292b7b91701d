package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
)

// Options tune the writers. The zero value is usable.
type Options struct {
	// Progress, when set, is called as work advances (from one goroutine
	// at a time).
	Progress func(Progress)
	// Replace starts from an empty database instead of adding to the
	// current one (Import).
	Replace bool
	// FullEcosystem declares the imported files a complete OSV export of
	// this ecosystem (base name: "PyPI", "Debian"), such as the OSV
	// bucket's <Ecosystem>/all.zip (Import). Its records that the import
	// does not hold are then removed, as Update does with a new all.zip,
	// and its data is dated by the newest `modified` among the imported
	// records that name it. Without it an import adds records and dates
	// nothing.
	FullEcosystem string
	// Ecosystems limits Update to these OSV ecosystems, as named in the
	// bucket's ecosystems.txt ("Go", "PyPI", "Debian", "AlmaLinux"...).
	Ecosystems []string
	// BaseURL is the OSV bucket or a mirror of its layout (Update).
	BaseURL string
	// HTTPClient for Update; nil uses a client with connect and header
	// timeouts (the body is bounded by the context only, since all.zip
	// files are large).
	HTTPClient HTTPDoer
	// Full makes Update download every all.zip even when an incremental
	// refresh is possible.
	Full bool
	// MaxIncremental is the number of changed records past which Update
	// downloads all.zip instead of single records (default 2000).
	MaxIncremental int
	// MaxDownload bounds one download (default 4 GiB).
	MaxDownload int64
	// UserAgent for Update requests.
	UserAgent string
}

func (o *Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// Progress reports how far a writer has come.
type Progress struct {
	Stage     string // "import", "download", "index", "fetch", "write"
	Ecosystem string // the feed being updated, if any
	Item      string // the file or URL being read
	Done      int64  // records (import, fetch) or bytes (download) so far
	Total     int64  // the expected end, or -1 when unknown
}

// Result counts what a writer did.
type Result struct {
	Records   int      // records read
	Written   int      // records new or changed
	Withdrawn int      // of those read, how many are withdrawn
	Deleted   int      // records removed (gone from a feed's all.zip, or 404)
	Skipped   int      // files that were not valid OSV records
	Problems  []string // the first few reasons for skips
	// Ecosystems counts the records read per base ecosystem they name.
	Ecosystems map[string]int
	// Fresh lists the ecosystems whose data this write dated (refreshed
	// fully); an import without FullEcosystem dates none.
	Fresh []Freshness
	Feeds []FeedResult
	// Discarded is set when the previous database could not be read and
	// the build started from empty.
	Discarded error
}

// FeedResult is what Update did for one ecosystem.
type FeedResult struct {
	Name        string
	Incremental bool
	Changed     int
	Err         error // a feed that was skipped (404 while listed): the update went on
}

const maxProblems = 20

func (r *Result) skip(name string, err error) {
	r.Skipped++
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", name, err))
	}
}

func (r *Result) countEcosystems(v *osvschema.Vulnerability) {
	var seen []string
	for _, a := range v.GetAffected() {
		e := baseEcosystem(a.GetPackage().GetEcosystem())
		if e == "" || slices.Contains(seen, e) {
			continue
		}
		seen = append(seen, e)
		if r.Ecosystems == nil {
			r.Ecosystems = map[string]int{}
		}
		r.Ecosystems[e]++
	}
}

// Import reads OSV records from sources (zip files of OSV JSON such as an
// OSV bucket all.zip, directories searched recursively for *.json, single
// JSON files holding one record or an array of records) into the database
// at dbPath, adding to what it holds unless opts.Replace is set. Files that
// are not OSV records are skipped and counted; an unreadable source fails
// the import and leaves the database as it was.
func Import(ctx context.Context, dbPath string, sources []string, opts Options) (*Result, error) {
	if len(sources) == 0 {
		return nil, errors.New("import: name at least one zip file, directory or JSON file of OSV records")
	}
	for _, s := range sources {
		if _, err := os.Stat(s); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	full := opts.FullEcosystem
	if full != "" {
		if err := checkEcosystemName(full); err != nil {
			return nil, fmt.Errorf("import --full-ecosystem: %w", err)
		}
		if strings.Contains(full, ":") {
			return nil, fmt.Errorf("import --full-ecosystem %q: name the ecosystem without its release (%q): OSV exports whole ecosystems", full, baseEcosystem(full))
		}
	}
	w, err := beginWrite(dbPath, opts.Replace)
	if err != nil {
		return nil, err
	}
	defer w.abort()
	res := &Result{Discarded: w.discarded}
	var before []string
	if full != "" {
		w.strictFeed = true
		before = w.feedMembers(full)
		if len(before) > 0 {
			if err := w.tx.Bucket(bucketMembers).DeleteBucket([]byte(full)); err != nil {
				return nil, err
			}
		}
	}
	produce := func(emit emitFunc) error {
		for _, s := range sources {
			if err := readSource(ctx, s, emit); err != nil {
				return err
			}
		}
		return nil
	}
	if err := load(ctx, w, produce, full, &opts, res); err != nil {
		return res, err
	}
	if res.Records == 0 {
		return res, fmt.Errorf("import: no OSV records found in %s (%d files skipped)", strings.Join(sources, ", "), res.Skipped)
	}
	abs := make([]string, len(sources))
	for i, s := range sources {
		abs[i], _ = filepath.Abs(s)
	}
	writer := "import " + strings.Join(abs, ", ")
	if full != "" {
		if res.Ecosystems[full] == 0 {
			return res, fmt.Errorf("import --full-ecosystem %s: none of the %d records names ecosystem %q, so this is not its export; check the name against the records (OSV spells them e.g. PyPI, crates.io, Debian, Alpine)", full, res.Records, full)
		}
		deleted, err := w.pruneFeed(full, before)
		if err != nil {
			return res, err
		}
		res.Deleted += deleted
		now := time.Now().UTC()
		// An OSV zip does not say when it was exported: its newest record
		// is a lower bound, never the time of this import.
		f := Freshness{Ecosystem: full, AsOf: w.newest[full], Kind: KindFullImport, Source: writer, Refreshed: now}
		if err := w.setFresh(f); err != nil {
			return res, err
		}
		// A later `db update` goes on incrementally from this export.
		if err := w.setFeed(full, feedMeta{Watermark: w.newest[full], Updated: now, Source: writer}); err != nil {
			return res, err
		}
		res.Fresh = append(res.Fresh, f)
	}
	opts.progress(Progress{Stage: "write", Done: int64(res.Records), Total: int64(res.Records)})
	return res, w.commit(writer)
}

type emitFunc func(name string, data []byte) error

// readSource emits every candidate record file of one source.
func readSource(ctx context.Context, src string, emit emitFunc) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if fi.IsDir() {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".json") {
				return nil
			}
			data, err := readFileLimited(p)
			if err != nil {
				return emit(p, nil) // counted as skipped below, with the reason
			}
			return emit(p, data)
		})
	}
	if isZip(src) {
		zr, err := zip.OpenReader(src)
		if err != nil {
			return fmt.Errorf("read zip %s: %w (is the file complete?)", src, err)
		}
		defer zr.Close()
		return readZip(ctx, src, &zr.Reader, emit)
	}
	data, err := readFileLimited(src)
	if err != nil {
		return err
	}
	return emit(src, data)
}

func isZip(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "PK\x03\x04" || strings.EqualFold(filepath.Ext(path), ".zip")
}

func readZip(ctx context.Context, name string, zr *zip.Reader, emit emitFunc) error {
	for _, f := range zr.File {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if f.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(f.Name), ".json") {
			continue
		}
		entry := name + "!" + f.Name
		if f.UncompressedSize64 > MaxRecordSize {
			if err := emit(entry, nil); err != nil {
				return err
			}
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("read %s: %w", entry, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, MaxRecordSize+1))
		rc.Close()
		if err != nil {
			// A damaged entry means a damaged archive: fail, do not
			// half-import it.
			return fmt.Errorf("read %s: %w (is the zip complete?)", entry, err)
		}
		if err := emit(entry, data); err != nil {
			return err
		}
	}
	return nil
}

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

type parsedRecord struct {
	name string
	v    *osvschema.Vulnerability
	pb   []byte // the record's deterministic protobuf encoding, when the source had it
	err  error
}

// load runs produce, parses what it emits on all cores and writes the
// records in one goroutine (bbolt has one writer).
func load(ctx context.Context, w *writer, produce func(emitFunc) error, feed string, opts *Options, res *Result) error {
	return loadWith(ctx, w, produce, parseItem, feed, opts, res)
}

func loadWith(ctx context.Context, w *writer, produce func(emitFunc) error, parse func(string, []byte) []parsedRecord, feed string, opts *Options, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type item struct {
		name string
		data []byte
	}
	items := make(chan item, 64)
	out := make(chan parsedRecord, 64)
	var prodErr error
	go func() {
		defer close(items)
		prodErr = produce(func(name string, data []byte) error {
			select {
			case items <- item{name, data}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				for _, p := range parse(it.name, it.data) {
					select {
					case out <- p:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	var werr error
	for p := range out {
		if werr != nil {
			continue // drain so the workers end
		}
		if err := ctx.Err(); err != nil {
			werr = err
			cancel()
			continue
		}
		if p.err != nil {
			res.skip(p.name, p.err)
			continue
		}
		res.Records++
		res.countEcosystems(p.v)
		if Withdrawn(p.v) {
			res.Withdrawn++
		}
		changed, err := w.put(p.v, p.pb, feed)
		if err != nil {
			werr = err
			cancel()
			continue
		}
		if changed {
			res.Written++
		}
		if res.Records%500 == 0 {
			opts.progress(Progress{Stage: "import", Ecosystem: feed, Item: p.name, Done: int64(res.Records), Total: -1})
		}
	}
	if werr != nil {
		return werr
	}
	if prodErr != nil {
		return prodErr
	}
	return ctx.Err()
}

// parseItem parses one file: a record, or a JSON array of records.
func parseItem(name string, data []byte) []parsedRecord {
	if data == nil {
		return []parsedRecord{{name: name, err: fmt.Errorf("unreadable or larger than %d bytes", MaxRecordSize)}}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return []parsedRecord{{name: name, err: fmt.Errorf("parse OSV record array: %w", err)}}
		}
		out := make([]parsedRecord, 0, len(raws))
		for i, r := range raws {
			v, err := ParseRecord(r)
			out = append(out, parsedRecord{name: fmt.Sprintf("%s[%d]", name, i), v: v, err: err})
		}
		return out
	}
	v, err := ParseRecord(data)
	return []parsedRecord{{name: name, v: v, err: err}}
}
