package sqlstore

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// busyError is a database error that says "not now" (store.ErrBusy): the
// original error is kept for the log.
type busyError struct {
	reason string
	err    error
}

func (e *busyError) Error() string        { return e.reason + ": " + e.err.Error() }
func (e *busyError) Unwrap() []error      { return []error{store.ErrBusy, e.err} }
func (e *busyError) Is(target error) bool { return target == store.ErrBusy }

// PostgreSQL SQLSTATEs that say "try again".
const (
	pgSerialization   = "40001" // serialization_failure
	pgDeadlock        = "40P01" // deadlock_detected
	pgTooManyConns    = "53300" // too_many_connections
	pgLockUnavailable = "55P03" // lock_not_available (lock_timeout)
	pgCannotConnect   = "57P03" // cannot_connect_now (starting up, shutting down)
	pgAdminShutdown   = "57P01" // admin_shutdown
)

// retryable says whether a failed transaction may succeed when run again
// at once: a PostgreSQL deadlock or serialization failure (the other
// transaction went on). The group writer retries these itself.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgDeadlock || pe.Code == pgSerialization)
}

// busy wraps err as store.ErrBusy when the database refused for now (see
// store.ErrBusy); any other error is returned as is.
func busy(err error) error {
	if err == nil || errors.Is(err, store.ErrBusy) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &busyError{"the SQLite database is locked by another writer (still after the busy timeout)", err}
		}
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case pgDeadlock, pgSerialization:
			return &busyError{"PostgreSQL aborted the transaction against a concurrent one (deadlock or serialization failure)", err}
		case pgTooManyConns:
			return &busyError{"PostgreSQL has no connection left (max_connections or the role's limit)", err}
		case pgLockUnavailable:
			return &busyError{"PostgreSQL: a lock was not available in time", err}
		case pgCannotConnect, pgAdminShutdown:
			return &busyError{"PostgreSQL is starting or shutting down", err}
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || (errors.As(err, &ne) && ne.Timeout()) {
		return &busyError{"PostgreSQL does not answer", err}
	}
	return err
}
