package sqlstore

import (
	"context"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// MigrateRiver brings river's own tables (the job queue that shares this
// database) up to date with rivermigrate. Build the river client on the
// same handles: riversqlite.New(s.DB()) on SQLite, riverpgxv5.New(s.Pool())
// on PostgreSQL. It runs under the migrations' lock (advisory lock, flock), so replicas
// that start together migrate one after the other.
func (s *Store) MigrateRiver(ctx context.Context) error {
	if s.dialect == SQLite {
		l := &fileLock{path: s.Location + ".lock"}
		if err := l.lock(ctx); err != nil {
			return fmt.Errorf("migrate river in %s: %w", s.Location, err)
		}
		defer l.unlock()
		m, err := rivermigrate.New(riversqlite.New(s.db), nil)
		if err != nil {
			return fmt.Errorf("migrate river in %s: %w", s.Location, err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("migrate river in %s: %w", s.Location, err)
		}
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate river in %s: %w", s.Location, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", riverLockID); err != nil {
		return fmt.Errorf("migrate river in %s: lock: %w", s.Location, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", riverLockID)
	m, err := rivermigrate.New(riverpgxv5.New(s.pool), nil)
	if err != nil {
		return fmt.Errorf("migrate river in %s: %w", s.Location, err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river in %s: %w", s.Location, err)
	}
	return nil
}
