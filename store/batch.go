package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// SQLite has a single writer and pays for each commit in WAL writes, so
// concurrent handlers' transactions are committed in groups: one goroutine
// takes whatever transactions are waiting, runs them in one database
// transaction and commits once. Every caller still gets its own
// all-or-nothing result (see run), and nobody hears "done" before the commit.
// A transaction body may therefore run more than once: it must not keep
// state from a previous run (row ids assigned by an insert, for one).
// MySQL does this itself (binlog group commit) across its many connections.
type batcher struct {
	db   *gorm.DB
	reqs chan *txReq
	stop chan struct{}
	once sync.Once // Store.Close may be called more than once
	wg   sync.WaitGroup
	// commits and txs count group commits and the transactions in them.
	commits, txs atomic.Int64
}

type txReq struct {
	ctx context.Context
	f   func(tx *gorm.DB) error
	err chan error
}

// maxBatch bounds how many transactions share one commit.
const maxBatch = 64

var errStoreClosed = errors.New("store closed")

func newBatcher(db *gorm.DB) *batcher {
	b := &batcher{db: db, reqs: make(chan *txReq), stop: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

func (b *batcher) do(ctx context.Context, f func(tx *gorm.DB) error) error {
	r := &txReq{ctx: ctx, f: f, err: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errStoreClosed
	}
	// Once submitted, wait for the outcome even if ctx ends: the
	// transaction may have committed, and the caller must know.
	return <-r.err
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	for {
		var batch []*txReq
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stop:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.run(batch)
	}
}

func (b *batcher) run(batch []*txReq) {
	b.commits.Add(1)
	b.txs.Add(int64(len(batch)))
	if len(batch) > 1 {
		// All in one transaction, no savepoints (in SQLite they copy every
		// page a body touches). Failures are rare (most refusals are decided
		// before a write), so when one body fails the whole group is rolled
		// back and each body runs again in a transaction of its own.
		failed := errors.New("a transaction in the group failed")
		results := make([]error, len(batch))
		err := b.db.Transaction(func(tx *gorm.DB) error {
			for i, r := range batch {
				if r.ctx.Err() != nil {
					return failed
				}
				err := guarded(func() error { return r.f(tx.WithContext(r.ctx)) })
				var u untouchedError
				switch {
				case err == nil:
				case errors.As(err, &u):
					results[i] = err // refused before writing: the others go on
				default:
					return failed
				}
			}
			return nil
		})
		if err == nil {
			for i, r := range batch {
				r.err <- results[i]
			}
			return
		}
	}
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err <- err
			continue
		}
		r.err <- guarded(func() error { return b.db.WithContext(r.ctx).Transaction(r.f) })
	}
}

// untouchedError marks a transaction body's error as raised before the body
// wrote anything (a stale fence, a duplicate key on its first insert), so the
// group it shares a transaction with can still commit.
type untouchedError struct{ err error }

func (u untouchedError) Error() string { return u.err.Error() }
func (u untouchedError) Unwrap() error { return u.err }

// guarded turns a panic in a transaction body into that caller's error, so
// one bad caller cannot take the others' commit down.
func guarded(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("transaction panicked: %v", p)
		}
	}()
	return f()
}

// CommitStats reports how many commits the store made and how many
// transactions they carried (SQLite group commit; zero on MySQL).
func (s *Store) CommitStats() (commits, txs int64) {
	if s.batch == nil {
		return 0, 0
	}
	return s.batch.commits.Load(), s.batch.txs.Load()
}
