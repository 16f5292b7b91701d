package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// WAL checkpoints, SQLite.
//
// A checkpoint copies the pages committed to the WAL back into the
// database file. SQLite runs one inside the commit that takes the WAL past
// 1,000 pages (wal_autocheckpoint): in the group writer, which every write
// waits for. A profile of 50 clients uploading put about a sixth of the
// server's CPU there, all of it serial with the writes. The group writer's
// connection does not checkpoint (wal_autocheckpoint=0); a goroutine of
// its own does, on another connection, every checkpointEvery while writes
// commit: the copy runs beside the writer, on the other core, and a page
// rewritten by many batches in the meantime (the tail of an index) is
// copied once per round, not once per 1,000 pages. The checkpoints are
// PASSIVE (they never wait for or block readers and the writer); the
// writer starts the WAL over once one has copied all of it.
const checkpointEvery = 250 * time.Millisecond

type checkpointer struct {
	s      *Store
	every  time.Duration
	quit   chan struct{}
	exited chan struct{}
	once   sync.Once
	// For tests: rounds run, frames they copied.
	rounds, frames atomic.Int64
}

func newCheckpointer(s *Store, every time.Duration) *checkpointer {
	c := &checkpointer{s: s, every: every, quit: make(chan struct{}), exited: make(chan struct{})}
	go c.loop()
	return c
}

func (c *checkpointer) stop() {
	c.once.Do(func() { close(c.quit) })
	<-c.exited
}

func (c *checkpointer) loop() {
	defer close(c.exited)
	t := time.NewTicker(c.every)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		if n := c.s.gw.batches.Load(); n != last {
			last = n
			c.round()
		}
	}
}

// round runs one PASSIVE checkpoint. A failure is left to the next round
// (and to SQLite's checkpoint when the last connection closes): the WAL
// holds every committed page until a checkpoint copies it.
func (c *checkpointer) round() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var frames int64
	err = conn.Raw(func(dc any) error {
		lc, ok := dc.(*lockedConn)
		if !ok {
			return errors.New("not a store connection")
		}
		ic, err := lc.ic()
		if err != nil {
			return err
		}
		// Not through the write lock: a checkpoint is no write
		// transaction, and waiting behind the writer is what it avoids.
		rows, err := ic.QueryContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)", nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		// One row: busy, frames in the WAL, frames checkpointed.
		row := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(row); err != nil {
			return err
		}
		if len(row) == 3 {
			frames, _ = row[2].(int64)
		}
		return nil
	})
	if err == nil {
		c.rounds.Add(1)
		c.frames.Add(frames)
	}
}

// noAutoCheckpoint turns SQLite's own checkpoints off on the writer's
// connection.
func noAutoCheckpoint(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
	return err
}
