// Package sqlstore implements store.Store over database/sql, on SQLite
// (modernc.org/sqlite, pure Go: the embedded default) and on PostgreSQL
// (pgx). Both use the same tables and columns, created by versioned goose
// migrations embedded in the binary (migrations/<dialect>/).
//
// SQLite runs in WAL mode with synchronous=FULL: in WAL mode, NORMAL is safe
// against a crash of the process but can lose the last transactions on a
// power loss or an OS crash, and an acknowledged upload must never be lost;
// FULL syncs the WAL at every commit. busy_timeout makes writers wait for
// each other instead of failing, every transaction begins IMMEDIATE (it
// takes the write lock up front, so two writers never deadlock on a lock
// upgrade), and foreign keys are enforced.
//
// On PostgreSQL, Open makes one pgxpool.Pool and a *sql.DB over that same
// pool (stdlib.OpenDBFromPool); Pool returns it for river's riverpgxv5
// driver. Several replicas may share one database: the goose migrations
// run under goose's PostgreSQL session locker (an advisory lock), and
// MigrateRiver under an advisory lock of its own. On SQLite both take an
// flock on the database's PATH.lock instead.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultFile is the SQLite database's name in the cache directory.
const DefaultFile = "bulkhead-server.db"

// Production limits (see Options).
const (
	DefaultMaxBlob      = 256 << 20
	DefaultMaxEventBody = 1 << 20
	DefaultMaxString    = 4096
	defaultPage         = 100
	maxPage             = 1000
)

//go:embed migrations
var migrations embed.FS

// versionTable is goose's bookkeeping table.
const versionTable = "bulkhead_schema_version"

// gooseLockID and riverLockID are the PostgreSQL advisory lock keys the
// migrations run under (the ASCII of "kulhgoos" and "kulhrivr": any fixed
// keys of bulkhead's own, apart from goose's default).
const (
	gooseLockID int64 = 0x6b756c68_676f6f73 & 0x7fffffff_ffffffff
	riverLockID int64 = 0x6b756c68_72697672 & 0x7fffffff_ffffffff
)

// Options configure Open. The zero value is the production default.
type Options struct {
	// CacheDir holds the SQLite file when the DSN is empty.
	CacheDir string
	// MaxBlob bounds the JSON of one inventory or one findings list
	// (before compression) in bytes; also the decoder's output bound.
	MaxBlob int
	// MaxEventBody bounds an event's body in bytes.
	MaxEventBody int
	// MaxString bounds each text field (repository, reference, names).
	MaxString int
	// MaxBatch bounds the writes one group commit holds (default
	// DefaultMaxBatch); see write.go.
	MaxBatch int
	// WriteRetries is how many times a batch of writes is run again after
	// a PostgreSQL deadlock or serialization failure (another replica's
	// transaction won) before its writes fail with store.ErrBusy (default
	// DefaultWriteRetries; negative: none).
	WriteRetries int
	// BusyTimeout is how long an SQLite write waits for another process
	// holding the database's write lock before it fails with
	// store.ErrBusy (default DefaultBusyTimeout).
	BusyTimeout time.Duration

	// The deferred index's thresholds (deferred.go; 0: the defaults) and,
	// for tests of a killed server, no drain at Close.
	drainAt      int
	drainAge     time.Duration
	drainIdle    time.Duration
	noFinalDrain bool
}

// DefaultWriteRetries and DefaultBusyTimeout are Options' defaults.
const (
	DefaultWriteRetries = 3
	DefaultBusyTimeout  = 30 * time.Second
)

func (o *Options) defaults() {
	if o.MaxBlob <= 0 {
		o.MaxBlob = DefaultMaxBlob
	}
	if o.MaxEventBody <= 0 {
		o.MaxEventBody = DefaultMaxEventBody
	}
	if o.MaxString <= 0 {
		o.MaxString = DefaultMaxString
	}
	if o.WriteRetries == 0 {
		o.WriteRetries = DefaultWriteRetries
	}
	if o.WriteRetries < 0 {
		o.WriteRetries = 0
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
}

// Store is the SQL store. It implements store.Store.
type Store struct {
	db      *sql.DB
	pool    *pgxpool.Pool // PostgreSQL only
	dialect string
	opt     Options
	codec   *codec
	gw      *groupWriter  // the one writer (group commit)
	ckpt    *checkpointer // SQLite: the WAL checkpoints, beside the writer
	lock    *writeLock    // SQLite: the store's write lock
	// deferIndex: uploads leave their index rows to a later drain (SQLite,
	// deferred.go).
	deferIndex bool
	stmtMu     sync.Mutex
	stmts      map[insertKey]*sql.Stmt // prepared multi-row INSERTs (insertRows)
	// Location names the database for messages: the SQLite file, or the
	// PostgreSQL host and database (no password).
	Location string
}

var _ store.Store = (*Store)(nil)

// Open opens (and creates or migrates) the database the DSN names:
//   - "" : SQLite, DefaultFile in opt.CacheDir;
//   - "sqlite://PATH" or a plain PATH: SQLite;
//   - "postgres://..." or "postgresql://...": PostgreSQL.
//
// The schema is brought up to date before Open returns; river's tables are
// not (call MigrateRiver).
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	opt.defaults()
	c, err := newCodec(opt.MaxBlob)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn)
	case dsn == "":
		if opt.CacheDir == "" {
			return nil, errors.New("open store: no database given and no cache directory (pass --database or --cache-dir)")
		}
		s, err = openSQLite(ctx, filepath.Join(opt.CacheDir, DefaultFile), opt.BusyTimeout)
	case strings.HasPrefix(dsn, "sqlite://"):
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"), opt.BusyTimeout)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("open store: unknown database %q (use postgres://..., sqlite://PATH or a file path)", redact(dsn))
	default:
		s, err = openSQLite(ctx, dsn, opt.BusyTimeout)
	}
	if err != nil {
		return nil, err
	}
	s.opt, s.codec = opt, c
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	var pending []pendingScan
	if s.dialect == SQLite {
		s.deferIndex = true
		if pending, err = s.loadPending(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.gw = newGroupWriter(s, opt, pending)
	if s.dialect == SQLite {
		s.ckpt = newCheckpointer(s, checkpointEvery)
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, busyTimeout time.Duration) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store: bad SQLite path %q (no '?' or '#')", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Create the file private: it holds every image's inventory.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	} else {
		f.Close()
	}
	// temp_store(MEMORY) keeps statement journals (which undo one failed
	// statement of a transaction: not part of crash recovery, the WAL is)
	// in memory instead of temporary files.
	// busy_timeout first: the switch to WAL takes an exclusive lock, and
	// another connection opening the file at the same time must wait for
	// it, not fail with "database is locked".
	dsn := "file:" + path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)", busyTimeout.Milliseconds()) +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)"
	lock := newWriteLock()
	db, err := openLockedSQLite(dsn, lock)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w (is it an SQLite database?)", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("open store %s: journal mode is %q, not WAL (the file system may not support WAL's shared memory: put the database on a local disk)", path, mode)
	}
	return &Store{db: db, dialect: SQLite, Location: path, lock: lock}, nil
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
	}
	if !strings.Contains(dsn, "pool_max_conns") && cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
	}
	loc := cfg.ConnConfig.Host + "/" + cfg.ConnConfig.Database
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w (is PostgreSQL running and the database created?)", loc, err)
	}
	return &Store{db: stdlib.OpenDBFromPool(pool), pool: pool, dialect: Postgres, Location: loc}, nil
}

// redact drops a password from a DSN for messages.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return dsn[:i+3] + rest[:c] + ":xxx" + rest[at:]
			}
		}
	}
	return dsn
}

func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return err
	}
	d := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithTableName(versionTable)}
	if s.dialect == Postgres {
		d = goose.DialectPostgres
		// One replica migrates, the others wait on the advisory lock
		// (polled every second, for up to 5 minutes).
		l, err := lock.NewPostgresSessionLocker(lock.WithLockID(gooseLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	} else {
		opts = append(opts, goose.WithSessionLocker(&fileLock{path: s.Location + ".lock"}))
	}
	p, err := goose.NewProvider(d, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrate store %s: %w", s.Location, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate store %s: %w", s.Location, err)
	}
	return nil
}

// SchemaVersion is the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM "+versionTable+" WHERE is_applied").Scan(&v)
	return v.Int64, err
}

// DB is the database handle (river's riversqlite driver takes it on
// SQLite). Do not close it; Close the Store.
func (s *Store) DB() *sql.DB { return s.db }

// Pool is the pgx pool on PostgreSQL (river's riverpgxv5 driver takes it),
// nil on SQLite.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Dialect is SQLite or Postgres.
func (s *Store) Dialect() string { return s.dialect }

// Ping says whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *Store) Close() error {
	if s.gw != nil {
		s.gw.stop()
	}
	if s.ckpt != nil {
		s.ckpt.stop()
	}
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// q rewrites a query written with '?' placeholders for the dialect
// (PostgreSQL numbers them). The queries here hold no '?' in literals.
func (s *Store) q(query string) string {
	if s.dialect != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// tx runs fn in one transaction and commits it.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: begin: %w", s.Location, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: commit: %w", s.Location, err)
	}
	return nil
}

// insertRows inserts rows (flattened, cols values each) in multi-row
// statements of fixed sizes (maxInsertRows, then powers of two), each
// prepared once and kept (stmt): a statement of a new size every time cost
// an upload about 2 ms of SQLite's parser (and PostgreSQL a parse and plan
// per statement).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, head string, cols int, vals []any) error {
	for len(vals) > 0 {
		n := min(len(vals)/cols, maxInsertRows)
		n = 1 << (bits.Len(uint(n)) - 1) // the largest power of two <= n
		st, err := s.stmt(ctx, insertKey{head, cols, n})
		if err != nil {
			return err
		}
		ts := tx.StmtContext(ctx, st)
		_, err = ts.ExecContext(ctx, vals[:n*cols]...)
		ts.Close()
		if err != nil {
			return err
		}
		vals = vals[n*cols:]
	}
	return nil
}

// maxInsertRows is the largest multi-row INSERT (a power of two; 256 rows
// of 9 columns is 2,304 parameters, under both databases' limits).
const maxInsertRows = 256

type insertKey struct {
	head    string
	cols, n int
}

// stmt returns the prepared INSERT of n rows (database/sql prepares it
// again on each connection that runs it, once).
func (s *Store) stmt(ctx context.Context, k insertKey) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[k]; st != nil {
		return st, nil
	}
	row := "(" + strings.Repeat("?,", k.cols-1) + "?)"
	var b strings.Builder
	head := k.head
	if s.dialect == SQLite {
		// OR FAIL: a multi-row INSERT that may abort half-way (the
		// default, OR ABORT) makes SQLite copy every page it touches into
		// a statement journal first, to undo the statement alone. The
		// callers run in a transaction that is rolled back whole when a
		// statement fails, so nothing needs undoing alone; and with index
		// rows at scattered places those copies grew with the database
		// (a third of the writer's CPU under 50 uploading clients once
		// it held 4,000 images).
		head = strings.Replace(head, "INSERT INTO ", "INSERT OR FAIL INTO ", 1)
	}
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for i := range k.n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	st, err := s.db.PrepareContext(ctx, s.q(b.String()))
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[insertKey]*sql.Stmt{}
	}
	s.stmts[k] = st
	return st, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func page(limit int) int {
	if limit <= 0 {
		return defaultPage
	}
	return min(limit, maxPage)
}
