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
// log from the beginning again, which bounds the WAL file.
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
			_, _ = c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
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
