package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// checkpointer copies SQLite's write-ahead log back into the database file
// from a connection of its own, every half second. A PASSIVE checkpoint runs
// beside the writer instead of inside one of its commits, so the fsync it
// needs never holds up a handler; when it catches up, the writer starts the
// log from the beginning again. When it never catches up (unbroken load),
// a short TRUNCATE checkpoint bounds the WAL file (walTruncateFrames).
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const checkpointEvery = 500 * time.Millisecond

func newCheckpointer(dsn string) (*checkpointer, error) {
	g, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			// Leave a tidy database file behind: everything in it, no WAL.
			_, _ = c.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			return
		case <-tick.C:
			c.checkpoint()
		}
	}
}

// walTruncateFrames is the log size (in pages: 4 KiB each, so 64 MiB)
// past which the checkpointer starts the log afresh. Under unbroken write
// load a PASSIVE checkpoint copies the log but never catches the writer,
// so the log is never begun again and grows without end (25 GB, its index
// mapped into memory, after a million events); a TRUNCATE checkpoint then
// waits for the writer between two commits, copies what is left and
// empties the file.
var walTruncateFrames = 16384

// truncateWait is how long a TRUNCATE checkpoint may wait for the writer
// and readers. New writes wait while it does, so it is kept short: when
// the store is too busy, the next tick tries again.
const truncateWait = 250 * time.Millisecond

// checkpoint copies the log beside the writer and, once the log has grown
// past walTruncateFrames, starts it afresh.
func (c *checkpointer) checkpoint() {
	var busy, frames, copied int
	if err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil || frames < walTruncateFrames {
		return
	}
	ctx := context.Background()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", truncateWait.Milliseconds())); err != nil {
		return
	}
	_, _ = conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	_, _ = conn.ExecContext(ctx, "PRAGMA busy_timeout=10000")
}

// close stops the loop after a final checkpoint; the writer must be idle.
func (c *checkpointer) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.db.Close()
	})
}

// Checkpoint copies the whole write-ahead log into the database file now
// and starts the log afresh (SQLite; nothing to do on MySQL). The route
// bench calls it between phases, so no phase pays for copying another's log.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.ckpt == nil {
		return nil
	}
	if _, err := s.ckpt.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
