package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// SchemaVersion is the layout version of the database file. A file with
// another version is refused with a hint to rebuild it.
const SchemaVersion = 1

var (
	bucketMeta       = []byte("meta")
	bucketRecords    = []byte("records")
	bucketIndex      = []byte("index")
	bucketEcosystems = []byte("ecosystems")
	bucketFeeds      = []byte("feeds")
	bucketMembers    = []byte("members")

	keySchema  = []byte("schema")
	keyBuilt   = []byte("built")
	keyUpdated = []byte("updated")
	keySource  = []byte("source")
)

// codecZstdProto marks a record value as zstd(protobuf wire form).
const codecZstdProto = 1

// Hint is the action that fixes a missing or unusable database.
const Hint = "run `bulkhead db update` (online) or `bulkhead db import FILE` (offline) to build it"

var (
	// ErrNotFound: no database file at the path.
	ErrNotFound = errors.New("no vulnerability database")
	// ErrCorrupt: the file is not a complete bulkhead vulnerability database.
	ErrCorrupt = errors.New("vulnerability database is corrupt or incomplete")
)

// DefaultPath is where the database lives unless --db says otherwise:
// $BULKHEAD_CACHE_DIR/db/osv.db, else <user cache dir>/bulkhead/db/osv.db.
func DefaultPath() string {
	if d := os.Getenv("BULKHEAD_CACHE_DIR"); d != "" {
		return filepath.Join(d, "db", "osv.db")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "bulkhead", "db", "osv.db")
}

// DB is a read-only handle on a database file. It keeps one read
// transaction for its lifetime, so lookups are map-speed key reads on the
// memory-mapped file; writers never touch an open file (they rename a new
// one into place), so the view stays consistent. Safe for concurrent use.
type DB struct {
	path    string
	bolt    *bolt.DB
	tx      *bolt.Tx
	records *bolt.Bucket
	index   *bolt.Bucket

	mu    sync.Mutex
	cache map[string]*osvschema.Vulnerability
}

// cacheLimit bounds the decoded-record cache. Records are shared by many
// packages (a distro advisory names dozens of binaries), so a scan decodes
// each only once; past the limit the cache starts over rather than growing.
const cacheLimit = 16384

var decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxRecordSize*4))

// Open opens the database at path read-only. A missing file gives
// ErrNotFound, a damaged or half-written one ErrCorrupt; both errors say how
// to rebuild it.
func Open(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: %s", ErrNotFound, path, Hint)
	}
	if err != nil {
		return nil, fmt.Errorf("open vulnerability database: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open vulnerability database: %s is a directory, not a database file", path)
	}
	bdb, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open vulnerability database %s: locked by another process", path)
		}
		return nil, corruptf(path, "%v", err)
	}
	db := &DB{path: path, bolt: bdb, cache: map[string]*osvschema.Vulnerability{}}
	if err := db.init(fi.Size()); err != nil {
		bdb.Close()
		return nil, err
	}
	return db, nil
}

func corruptf(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; %s", ErrCorrupt, path, fmt.Sprintf(format, args...), Hint)
}

func (db *DB) init(fileSize int64) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	var tx *bolt.Tx
	defer func() {
		if r := recover(); r != nil {
			err = corruptf(db.path, "open: %v", r)
		}
		// An open read transaction holds bbolt's mmap lock: without this
		// rollback, Close after a failed open would wait forever.
		if err != nil && tx != nil {
			tx.Rollback()
		}
	}()
	tx, err = db.bolt.Begin(false)
	if err != nil {
		tx = nil
		return corruptf(db.path, "%v", err)
	}
	// bbolt maps past the end of the file, so a truncated file would fault
	// on first touch of a missing page: catch it here, before any read.
	if tx.Size() > fileSize {
		return corruptf(db.path, "file is %d bytes but its pages need %d (truncated or half-written)", fileSize, tx.Size())
	}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return corruptf(db.path, "not a bulkhead vulnerability database (no meta bucket)")
	}
	if v := string(meta.Get(keySchema)); v != strconv.Itoa(SchemaVersion) {
		return fmt.Errorf("vulnerability database %s has schema version %q, this bulkhead reads %d: %s", db.path, v, SchemaVersion, Hint)
	}
	db.records, db.index = tx.Bucket(bucketRecords), tx.Bucket(bucketIndex)
	if db.records == nil || db.index == nil {
		return corruptf(db.path, "records or index bucket missing")
	}
	db.tx = tx
	return nil
}

// guard turns a fault or panic inside bbolt (a damaged page in the middle of
// the file) into ErrCorrupt instead of crashing the scan.
func (db *DB) guard(op string, err *error) {
	if r := recover(); r != nil {
		*err = corruptf(db.path, "%s: %v", op, r)
	}
}

// Close releases the file.
func (db *DB) Close() error {
	if db == nil || db.bolt == nil {
		return nil
	}
	if db.tx != nil {
		db.tx.Rollback()
		db.tx = nil
	}
	err := db.bolt.Close()
	db.bolt = nil
	return err
}

// Path is the file this handle reads.
func (db *DB) Path() string { return db.path }

// Lookup returns the records that affect a package: ecosystem is the exact
// OSV ecosystem string ("Debian:12", "Alpine:v3.20", "PyPI", "Go"), name the
// package name as OSV writes it (PyPI names are normalised, see
// NormalizeName). Withdrawn records are never returned. The records are
// shared between calls: treat them as read-only.
func (db *DB) Lookup(ecosystem, name string) (vulns []*osvschema.Vulnerability, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer db.guard("lookup", &err)
	if db.tx == nil {
		return nil, errors.New("vulnerability database is closed")
	}
	ids := db.index.Get([]byte(indexKey(ecosystem, NormalizeName(ecosystem, name))))
	if len(ids) == 0 {
		return nil, nil
	}
	for _, id := range strings.Split(string(ids), "\n") {
		v, err := db.record(id)
		if err != nil {
			return nil, err
		}
		if v != nil && !Withdrawn(v) {
			vulns = append(vulns, v)
		}
	}
	return vulns, nil
}

// Get returns one record by id (withdrawn or not), or nil when absent.
func (db *DB) Get(id string) (v *osvschema.Vulnerability, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer db.guard("get", &err)
	if db.tx == nil {
		return nil, errors.New("vulnerability database is closed")
	}
	return db.record(id)
}

func (db *DB) record(id string) (*osvschema.Vulnerability, error) {
	db.mu.Lock()
	v, ok := db.cache[id]
	db.mu.Unlock()
	if ok {
		return v, nil
	}
	raw := db.records.Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	v, err := decodeRecord(raw)
	if err != nil {
		return nil, corruptf(db.path, "record %s: %v", id, err)
	}
	db.mu.Lock()
	if len(db.cache) >= cacheLimit {
		clear(db.cache)
	}
	db.cache[id] = v
	db.mu.Unlock()
	return v, nil
}

func decodeRecord(raw []byte) (*osvschema.Vulnerability, error) {
	if len(raw) == 0 || raw[0] != codecZstdProto {
		return nil, errors.New("unknown record encoding")
	}
	pb, err := decoder.DecodeAll(raw[1:], nil)
	if err != nil {
		return nil, err
	}
	v := &osvschema.Vulnerability{}
	if err := proto.Unmarshal(pb, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Ecosystems lists the ecosystem strings that have at least one
// non-withdrawn record, sorted ("AlmaLinux:8", "AlmaLinux:9", "Go", ...).
// The matcher uses it to fall back from "Alpine:v3.21" to the nearest
// release the data has.
func (db *DB) Ecosystems() (ecos []string, err error) {
	st, err := db.Status()
	if err != nil {
		return nil, err
	}
	for _, e := range st.Ecosystems {
		ecos = append(ecos, e.Name)
	}
	return ecos, nil
}

// Status describes what the database holds and how fresh it is.
type Status struct {
	Path          string    `json:"path"`
	SchemaVersion int       `json:"schema_version"`
	Built         time.Time `json:"built"` // when this file's first build ran
	// Updated is how current the database's oldest data is (see
	// Freshness): the ecosystem dated earliest, or zero when some
	// ecosystem's data cannot be dated. It is never the time of the last
	// write: adding a few records does not make the rest current.
	Updated time.Time `json:"updated"`
	// Source is where that oldest data came from.
	Source string `json:"source"`
	// Data is the age per ecosystem held and the oldest of them.
	Data DataAge `json:"data_age"`
	// Written and Writer are when the file was last written and by what
	// (an update, an import, the snapshot).
	Written    time.Time         `json:"written,omitzero"`
	Writer     string            `json:"writer,omitempty"`
	Records    int               `json:"records"`
	Withdrawn  int               `json:"withdrawn"`
	Size       int64             `json:"size_bytes"`
	Ecosystems []EcosystemStatus `json:"ecosystems"`
	Feeds      []FeedStatus      `json:"feeds,omitempty"`
}

// EcosystemStatus counts the non-withdrawn records naming one ecosystem.
type EcosystemStatus struct {
	Name    string `json:"name"`
	Records int    `json:"records"`
}

// FeedStatus is one OSV bucket ecosystem that Update has fetched.
type FeedStatus struct {
	Name      string    `json:"name"`
	Records   int       `json:"records"`
	Watermark time.Time `json:"watermark"` // newest `modified` seen: incremental updates start after it
	Updated   time.Time `json:"updated"`
	Source    string    `json:"source"`
}

type feedMeta struct {
	Watermark time.Time `json:"watermark"`
	Updated   time.Time `json:"updated"`
	Records   int       `json:"records"`
	Source    string    `json:"source"`
}

// Status reads the metadata; it is cheap (no record is decoded).
func (db *DB) Status() (st Status, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer db.guard("status", &err)
	if db.tx == nil {
		return st, errors.New("vulnerability database is closed")
	}
	return readStatus(db.tx, db.path)
}

func readStatus(tx *bolt.Tx, path string) (Status, error) {
	st := Status{Path: path, SchemaVersion: SchemaVersion, Size: tx.Size()}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return st, corruptf(path, "no meta bucket")
	}
	st.Built = parseTime(meta.Get(keyBuilt))
	st.Written = parseTime(meta.Get(keyWritten))
	st.Writer = string(meta.Get(keyWriter))
	fresh, err := readFreshness(tx)
	if err != nil {
		return st, corruptf(path, "%v", err)
	}
	if fresh.legacy {
		// An older bulkhead kept only the last writer.
		st.Written, st.Writer = parseTime(meta.Get(keyUpdated)), string(meta.Get(keySource))
	}
	st.Data = fresh.age(heldEcosystems(tx, fresh))
	st.Updated, st.Source = st.Data.Oldest.AsOf, st.Data.Oldest.Source
	if n, err := strconv.Atoi(string(meta.Get([]byte("records")))); err == nil {
		st.Records = n
	}
	if n, err := strconv.Atoi(string(meta.Get([]byte("withdrawn")))); err == nil {
		st.Withdrawn = n
	}
	if b := tx.Bucket(bucketEcosystems); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var e EcosystemStatus
			if err := json.Unmarshal(v, &e); err != nil {
				return corruptf(path, "ecosystem %q: %v", k, err)
			}
			e.Name = string(k)
			st.Ecosystems = append(st.Ecosystems, e)
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	if b := tx.Bucket(bucketFeeds); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var m feedMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return corruptf(path, "feed %q: %v", k, err)
			}
			st.Feeds = append(st.Feeds, FeedStatus{Name: string(k), Records: m.Records, Watermark: m.Watermark, Updated: m.Updated, Source: m.Source})
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	sort.Slice(st.Ecosystems, func(i, j int) bool { return st.Ecosystems[i].Name < st.Ecosystems[j].Name })
	return st, nil
}

func parseTime(b []byte) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, string(b))
	return t
}

// Age is how old the database's oldest data is (see Updated); data that
// cannot be dated is older than any limit.
func (s Status) Age() time.Duration { return s.Data.Age() }

// DefaultMaxAge is the default for --db-max-age.
const DefaultMaxAge = 7 * 24 * time.Hour

// StaleError says the data is older than the allowed age, or cannot be
// dated. It is a warning: the CLI prints it and scans anyway.
type StaleError struct {
	Age, MaxAge time.Duration
	Updated     time.Time
	Source      string
	// Ecosystem is the ecosystem whose data is the oldest ("" when the
	// database-wide baseline).
	Ecosystem string
	// Unknown: the data has no date (Age is then meaningless).
	Unknown bool
}

func (e *StaleError) Error() string {
	what := "vulnerability database"
	if e.Ecosystem != "" {
		what = fmt.Sprintf("vulnerability data for %s", e.Ecosystem)
	}
	if e.Unknown {
		return fmt.Sprintf("the age of the %s is unknown (%s), so it cannot be shown to be newer than --db-max-age %s: findings may be missing; run `bulkhead db update`, or import a complete OSV export of the ecosystem with `bulkhead db import --full-ecosystem NAME FILE`",
			what, e.Source, humanAge(e.MaxAge))
	}
	return fmt.Sprintf("%s is %s old (data as of %s, source: %s), older than --db-max-age %s: findings may be missing; run `bulkhead db update` or import a fresh export",
		what, humanAge(e.Age), e.Updated.UTC().Format("2006-01-02"), e.Source, humanAge(e.MaxAge))
}

// Diagnostic is the error as a diagnostic of code vulndb.stale, located at
// the ecosystem whose data is the oldest.
func (e *StaleError) Diagnostic() diag.Diagnostic {
	return diag.New(diag.VulnDBStale, diag.Warning, e.Error()).At(diag.Location{Object: e.Ecosystem})
}

// CheckAge returns a *StaleError when the database's oldest data is older
// than maxAge or cannot be dated (a maxAge of 0 or less disables the check).
// A scan should check the DataAge of the ecosystems it used instead.
func (s Status) CheckAge(maxAge time.Duration) error { return s.Data.CheckAge(maxAge) }

func humanAge(d time.Duration) string {
	switch {
	case d == unknownAge:
		return "unknown"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return d.Round(time.Second).String()
	}
}
