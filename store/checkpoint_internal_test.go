package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
)

// Under writes that never pause, the write-ahead log is emptied once it
// passes its bound, so the file (and the index of it mapped into memory)
// does not grow with the hub's lifetime.
func TestWriteAheadLogIsBoundedUnderUnbrokenWrites(t *testing.T) {
	old := walTruncateFrames
	walTruncateFrames = 64
	t.Cleanup(func() { walTruncateFrames = old })

	path := filepath.Join(t.TempDir(), "jingmin.db")
	s, err := Open(context.Background(), Options{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type walRow struct {
		ID      uint `gorm:"primaryKey"`
		Payload string
	}
	if err := s.db.Table("wal_rows").AutoMigrate(&walRow{}); err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	payload := string(make([]byte, 2048))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var maxSeen, shrank atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				_ = s.tx(context.Background(), func(tx *gorm.DB) error {
					return tx.Table("wal_rows").Create(&walRow{Payload: payload}).Error
				})
			}
		})
	}
	// Watch the log while the writers never stop: it must be emptied
	// at least once after passing the bound.
	deadline := time.Now().Add(60 * time.Second)
	bound := int64(walTruncateFrames) * 4096
	for time.Now().Before(deadline) && shrank.Load() == 0 {
		size := walSize()
		if size > maxSeen.Load() {
			maxSeen.Store(size)
		}
		if maxSeen.Load() > bound && size < maxSeen.Load()/2 {
			shrank.Store(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if shrank.Load() == 0 {
		t.Fatalf("the write-ahead log reached %d bytes under unbroken writes and was never emptied (bound %d)", maxSeen.Load(), bound)
	}
}
