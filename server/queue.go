package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// QueueDB is the database the job queue (river) runs on: the store's.
// Exactly one is set.
type QueueDB struct {
	// SQLite is the store's SQLite database.
	SQLite *sql.DB
	// Postgres is a pool on the store's PostgreSQL database.
	Postgres *pgxpool.Pool
	// Migrate brings river's tables up to date (the store's MigrateRiver,
	// which serialises replicas on PostgreSQL); nil: rivermigrate here.
	Migrate func(context.Context) error
}

// QueueOf is the queue database of a store: its PostgreSQL pool or its
// SQLite database, migrated by its MigrateRiver.
func QueueOf(st *sqlstore.Store) QueueDB {
	if st.Dialect() == sqlstore.Postgres {
		return QueueDB{Postgres: st.Pool(), Migrate: st.MigrateRiver}
	}
	return QueueDB{SQLite: st.DB(), Migrate: st.MigrateRiver}
}

// queue is the part of river's client the server uses; riverQueue
// implements it for either driver's transaction type.
type queue interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// openQueue migrates river's tables up and makes its client (not started).
func openQueue(ctx context.Context, db QueueDB, cfg *river.Config) (queue, error) {
	switch {
	case db.SQLite != nil:
		return newQueue(ctx, riversqlite.New(db.SQLite), db.Migrate, cfg)
	case db.Postgres != nil:
		return newQueue(ctx, riverpgxv5.New(db.Postgres), db.Migrate, cfg)
	}
	return nil, errors.New("the job queue needs the store's database (QueueDB)")
}

func newQueue[TTx any](ctx context.Context, drv riverdriver.Driver[TTx], migrate func(context.Context) error, cfg *river.Config) (queue, error) {
	if migrate == nil {
		migrate = func(ctx context.Context) error {
			mig, err := rivermigrate.New(drv, &rivermigrate.Config{Logger: cfg.Logger})
			if err != nil {
				return err
			}
			_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
			return err
		}
	}
	if err := migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate the job queue's tables: %w", err)
	}
	c, err := river.NewClient(drv, cfg)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return c, nil
}

// backoff is the retry policy: Base doubled at each attempt, at most Max
// (river's default waits attempt^4 seconds, too long for a registry that
// was briefly down).
type backoff struct {
	Base, Max time.Duration
}

func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.Base
	for i := 1; i < len(job.Errors)+1 && d < b.Max; i++ {
		d *= 2
	}
	return time.Now().Add(min(d, b.Max))
}

// inFlight are the job states in which a second submission of the same
// scan is the same job.
var inFlight = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// riverLogger is river's logger: the server's, quieter.
func riverLogger(l *slog.Logger) *slog.Logger { return l.With("component", "queue") }
