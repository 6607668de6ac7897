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

// SQLite has one writer, and on a busy machine a handler that holds it
// while descheduled holds up every other one; each commit also writes its
// pages to the log. So the transactions of concurrent handlers are
// committed in groups: one goroutine takes whatever transactions are
// waiting and runs them in one database transaction, each body inside a
// savepoint of its own. A body that fails is rolled back to its savepoint
// alone and the others go on; every body runs exactly once, and nobody
// hears "done" before the commit. A commit that fails fails every body of
// the group, none of which then took effect. MySQL does this itself
// (binlog group commit) across its many connections.
type batcher struct {
	db   *gorm.DB
	pool *sql.DB // db's pool: one connection, the writer
	// idle runs between groups, while the loop holds no connection (it
	// prepares the statements the last group wanted).
	idle func(ctx context.Context)
	reqs chan *txReq
	stop chan struct{}
	done chan struct{}
	once sync.Once // Store.Close may be called more than once
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

func newBatcher(db *gorm.DB, idle func(ctx context.Context)) (*batcher, error) {
	pool, err := db.DB()
	if err != nil {
		return nil, err
	}
	b := &batcher{db: db, pool: pool, idle: idle, reqs: make(chan *txReq), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b, nil
}

// do runs f in the next group and returns its own outcome.
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
	// transaction may commit, and the caller must know.
	return <-r.err
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
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
		b.idle(context.Background())
		b.run(batch)
	}
}

// run executes one group and tells each caller its outcome.
func (b *batcher) run(batch []*txReq) {
	results := make([]error, len(batch))
	if err := b.group(batch, results); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
	} else {
		b.commits.Add(1)
		b.txs.Add(int64(len(batch)))
	}
	for i, r := range batch {
		r.err <- results[i]
	}
}

// group runs the bodies of batch in one transaction, recording each
// body's own error in results; it returns an error when the transaction
// as a whole did not commit.
//
// The transaction is not bound to a caller's context, and a body's
// statements run without its cancellation (a statement interrupted inside
// a transaction may roll the whole transaction back, taking the other
// bodies with it); a body whose caller gave up before it started does not
// run.
func (b *batcher) group(batch []*txReq, results []error) error {
	sqlTx, err := b.pool.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	// What gorm's own Begin does: a session whose connection is the
	// transaction (a session given a context has a statement of its own).
	ctx := context.Background()
	tx := b.db.Session(&gorm.Session{Context: ctx, NewDB: true})
	tx.Statement.ConnPool = sqlTx
	alone := len(batch) == 1
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if !alone {
			if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT body"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
		}
		err := guarded(func() error { return r.f(tx.WithContext(context.WithoutCancel(r.ctx))) })
		switch {
		case err != nil && alone:
			return err
		case err != nil:
			results[i] = err
			if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO body"); err != nil {
				return fmt.Errorf("roll back to savepoint: %w", err)
			}
			fallthrough
		case !alone:
			if _, err := sqlTx.ExecContext(ctx, "RELEASE body"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

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
