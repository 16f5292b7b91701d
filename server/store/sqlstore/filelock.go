package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock serialises the migrations of processes (or stores) opening one
// SQLite file: goose has no SQLite locker, and two openers checking the
// version at once would both run migration 1. It is an flock on PATH.lock
// (one per open file description, so it also holds between two Opens in
// one process), and it implements goose's lock.SessionLocker.
type fileLock struct {
	path string
	f    *os.File
}

func (l *fileLock) lock(ctx context.Context) error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			l.f = f
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return fmt.Errorf("migration lock %s: %w", l.path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("migration lock %s: %w", l.path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *fileLock) unlock() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // releases the flock
	l.f = nil
	return err
}

func (l *fileLock) SessionLock(ctx context.Context, _ *sql.Conn) error { return l.lock(ctx) }
func (l *fileLock) SessionUnlock(_ context.Context, _ *sql.Conn) error { return l.unlock() }
