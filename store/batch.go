package store

import (
	"context"
	"database/sql"
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
	pool *sql.DB // db's pool: one connection, the writer
	reqs chan *txReq
	stop chan struct{}
	once sync.Once // Store.Close may be called more than once
	wg   sync.WaitGroup
	// commits and txs count group commits and the transactions in them.
	commits, txs atomic.Int64
	// hot holds the statements compiled on the writer connection, and cur
	// the transaction bodies are running in. Both belong to the loop's
	// goroutine, where every body runs.
	hot *compiled
	cur *sql.Tx
}

type txReq struct {
	ctx context.Context
	f   func(tx *gorm.DB) error
	err chan error
}

// maxBatch bounds how many transactions share one commit.
const maxBatch = 64

var errStoreClosed = errors.New("store closed")

func newBatcher(db *gorm.DB) (*batcher, error) {
	pool, err := db.DB()
	if err != nil {
		return nil, err
	}
	b := &batcher{db: db, pool: pool, reqs: make(chan *txReq), stop: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b, nil
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
	defer func() {
		if b.hot != nil {
			b.hot.close()
		}
	}()
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
		err := b.transaction(context.Background(), func(tx *gorm.DB) error {
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
		r.err <- guarded(func() error { return b.transaction(r.ctx, r.f) })
	}
}

// transaction runs f in one transaction on the writer connection, with the
// statements compiled on that connection at hand (see Store.compiledFor).
//
// The transaction itself is not bound to ctx: database/sql would roll it
// back from another goroutine when ctx ended, while a compiled statement
// may be running outside the driver; the body's own statements still
// carry ctx, and callers check it before their body runs.
func (b *batcher) transaction(ctx context.Context, f func(tx *gorm.DB) error) (err error) {
	conn, err := b.pool.Conn(context.Background())
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	defer conn.Close()
	b.compileOn(conn)
	sqlTx, err := conn.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		b.cur = nil
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	// What gorm's own Begin does: a session whose connection is the transaction.
	tx := b.db.Session(&gorm.Session{Context: ctx, NewDB: true})
	tx.Statement.ConnPool = sqlTx
	b.cur = sqlTx
	if err := f(tx); err != nil {
		return err
	}
	b.cur = nil
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// compileOn makes sure b.hot holds statements of conn's handle: the pool
// keeps its one connection for the store's life, but should it ever open
// another, the statements of the old one are dropped.
func (b *batcher) compileOn(conn *sql.Conn) {
	db, err := connHandle(conn)
	switch {
	case err != nil:
		db = 0
	case b.hot != nil && b.hot.db == db:
		return
	}
	if b.hot != nil {
		b.hot.close()
		b.hot = nil
	}
	if db != 0 {
		b.hot = newCompiled(db)
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
