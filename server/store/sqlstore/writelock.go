package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync/atomic"
)

// A fair write lock for SQLite, in the process.
//
// SQLite has one writer at a time. Every connection of the store's
// *sql.DB (the group writer's, the readers', and river's, which shares the
// database: QueueDB.SQLite = Store.DB()) takes the lock before it writes:
// at a transaction's BEGIN (every transaction begins IMMEDIATE, i.e. takes
// SQLite's write lock at once), and around a statement outside a
// transaction that is not a SELECT. The lock is a channel of one token:
// waiters are served in arrival order and give up with their context.
//
// Without it, the writers met only on SQLite's own lock, whose busy
// handler polls with sleeps of up to 100 ms: under upload load the group
// writer commits a batch and begins the next one at once, so a waiting
// river query (fetching jobs, leader election) almost never found the lock
// free and timed out after river's 5-10 s ("context deadline exceeded",
// component queue, in the server log). Now it runs after the batch in
// progress. Other processes opening the file still wait on busy_timeout.
//
// waiting counts the callers blocked in lock: the group writer, which
// holds the lock for a batch, cuts the batch short (maxHold) only when
// someone else waits for it (see groupWriter.try).
type writeLock struct {
	ch      chan struct{}
	waiting atomic.Int64
}

func newWriteLock() *writeLock { return &writeLock{ch: make(chan struct{}, 1)} }

func (l *writeLock) lock(ctx context.Context) error {
	select {
	case l.ch <- struct{}{}: // free: no wait
		return nil
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *writeLock) unlock() { <-l.ch }

// lockedConnector opens SQLite connections that take the write lock.
type lockedConnector struct {
	drv  driver.Driver
	dsn  string
	lock *writeLock
}

func (c *lockedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &lockedConn{inner: conn, lock: c.lock}, nil
}

func (c *lockedConnector) Driver() driver.Driver { return c.drv }

// innerConn is what modernc.org/sqlite's connections implement.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type lockedConn struct {
	inner driver.Conn
	lock  *writeLock
	inTx  bool // the lock is held for the transaction
}

func (c *lockedConn) ic() (innerConn, error) {
	ic, ok := c.inner.(innerConn)
	if !ok {
		return nil, errors.New("sqlite driver connection lacks the context interfaces")
	}
	return ic, nil
}

// writes says whether a statement outside a transaction may write (and so
// takes SQLite's write lock): anything but a SELECT.
func writes(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) < 6 || !strings.EqualFold(q[:6], "select")
}

func (c *lockedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *lockedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	ic, err := c.ic()
	if err != nil {
		return nil, err
	}
	st, err := ic.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &lockedStmt{Stmt: st, c: c, writes: writes(query)}, nil
}

func (c *lockedConn) Close() error { return c.inner.Close() }

func (c *lockedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *lockedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	ic, err := c.ic()
	if err != nil {
		return nil, err
	}
	if err := c.lock.lock(ctx); err != nil {
		return nil, err
	}
	tx, err := ic.BeginTx(ctx, opts)
	if err != nil {
		c.lock.unlock()
		return nil, err
	}
	c.inTx = true
	return &lockedTx{inner: tx, c: c}, nil
}

// around takes the lock for one statement outside a transaction that may
// write; the returned func releases it (nil: no lock taken).
func (c *lockedConn) around(ctx context.Context, w bool) (func(), error) {
	if c.inTx || !w {
		return nil, nil
	}
	if err := c.lock.lock(ctx); err != nil {
		return nil, err
	}
	return c.lock.unlock, nil
}

func (c *lockedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ic, err := c.ic()
	if err != nil {
		return nil, err
	}
	release, err := c.around(ctx, writes(query))
	if err != nil {
		return nil, err
	}
	if release != nil {
		defer release()
	}
	return ic.ExecContext(ctx, query, args)
}

func (c *lockedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ic, err := c.ic()
	if err != nil {
		return nil, err
	}
	release, err := c.around(ctx, writes(query))
	if err != nil {
		return nil, err
	}
	rows, err := ic.QueryContext(ctx, query, args)
	return lockedRows(rows, err, release)
}

// lockedRows keeps the lock until the rows are closed (a statement with
// RETURNING writes until it is reset).
func lockedRows(rows driver.Rows, err error, release func()) (driver.Rows, error) {
	if release == nil {
		return rows, err
	}
	if err != nil {
		release()
		return nil, err
	}
	return &releasingRows{Rows: rows, release: release}, nil
}

func (c *lockedConn) Ping(ctx context.Context) error {
	ic, err := c.ic()
	if err != nil {
		return err
	}
	return ic.Ping(ctx)
}

func (c *lockedConn) ResetSession(ctx context.Context) error {
	ic, err := c.ic()
	if err != nil {
		return err
	}
	return ic.ResetSession(ctx)
}

func (c *lockedConn) IsValid() bool {
	ic, err := c.ic()
	return err == nil && ic.IsValid()
}

type lockedTx struct {
	inner driver.Tx
	c     *lockedConn
	done  bool
}

func (t *lockedTx) end(err error) error {
	if !t.done {
		t.done = true
		t.c.inTx = false
		t.c.lock.unlock()
	}
	return err
}

func (t *lockedTx) Commit() error   { return t.end(t.inner.Commit()) }
func (t *lockedTx) Rollback() error { return t.end(t.inner.Rollback()) }

type lockedStmt struct {
	driver.Stmt
	c      *lockedConn
	writes bool
}

func (s *lockedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("sqlite: Stmt.Exec without context is not used")
}

func (s *lockedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("sqlite: Stmt.Query without context is not used")
}

func (s *lockedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	st, ok := s.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("sqlite driver statement lacks ExecContext")
	}
	release, err := s.c.around(ctx, s.writes)
	if err != nil {
		return nil, err
	}
	if release != nil {
		defer release()
	}
	return st.ExecContext(ctx, args)
}

func (s *lockedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	st, ok := s.Stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("sqlite driver statement lacks QueryContext")
	}
	release, err := s.c.around(ctx, s.writes)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args)
	return lockedRows(rows, err, release)
}

type releasingRows struct {
	driver.Rows
	release func()
	closed  bool
}

func (r *releasingRows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.release()
	}
	return err
}

// openLockedSQLite opens dsn with modernc.org/sqlite's driver through
// connections that take lock (see writeLock).
func openLockedSQLite(dsn string, lock *writeLock) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(&lockedConnector{drv: drv, dsn: dsn, lock: lock}), nil
}
