package store

import (
	"context"
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// The hand-written statements on the paths every question takes (the
// ticket insert, its lookups, the transition update, timeline inserts) are
// prepared once on SQLite and reused: the driver then compiles each text
// once per connection instead of on every call, where compiling cost about
// as much as running the statement (the route bench measures it). MySQL
// runs them as they come.

// maxPrepared bounds the statements kept: the hot texts are a handful (a
// timeline insert has one per number of rows); anything beyond runs
// unprepared.
const maxPrepared = 64

// statements holds the prepared statements of one pool.
type statements struct {
	db *sql.DB
	mu sync.Mutex
	// ready are prepared; wanted were seen inside a transaction, where the
	// writer's one connection is taken, and are prepared between two group
	// commits (see batcher.idle).
	ready  map[string]*sql.Stmt
	wanted map[string]bool
	closed bool
}

func newStatements(db *sql.DB) *statements {
	return &statements{db: db, ready: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns query's statement, or nil: then query was noted, to be
// prepared by the next prepareWanted.
func (p *statements) get(query string) *sql.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.ready[query]
	if st == nil && !p.closed && len(p.ready)+len(p.wanted) < maxPrepared {
		p.wanted[query] = true
	}
	return st
}

// prepareWanted prepares the statements noted since the last call. The
// caller holds no connection of the pool, and neither does the lock while
// preparing waits for one (a transaction holding the writer's connection
// calls get). A text that fails to prepare (its table not made yet) goes
// on running unprepared.
func (p *statements) prepareWanted(ctx context.Context) {
	p.mu.Lock()
	queries := make([]string, 0, len(p.wanted))
	for q := range p.wanted {
		queries = append(queries, q)
		delete(p.wanted, q)
	}
	p.mu.Unlock()
	for _, q := range queries {
		st, err := p.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		p.mu.Lock()
		if p.ready[q] == nil && !p.closed {
			p.ready[q], st = st, nil
		}
		p.mu.Unlock()
		if st != nil { // prepared twice at once, or closing
			st.Close()
		}
	}
}

// prepared is get for a pool used outside transactions (the readers):
// query is prepared at once.
func (p *statements) prepared(ctx context.Context, query string) *sql.Stmt {
	if st := p.get(query); st != nil {
		return st
	}
	p.prepareWanted(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready[query]
}

// close closes every statement, before the pool closes.
func (p *statements) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for q, st := range p.ready {
		st.Close()
		delete(p.ready, q)
	}
}

// inTx returns the prepared form of query for transaction tx, or nil.
func (s *Store) inTx(tx *gorm.DB, query string) *sql.Stmt {
	if s.wstmts == nil {
		return nil
	}
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil
	}
	st := s.wstmts.get(query)
	if st == nil {
		return nil
	}
	return sqlTx.StmtContext(tx.Statement.Context, st)
}

// exec runs a write statement written out by hand in tx (plain SQL skips
// the ORM's reflection on the paths every question takes) and reports the
// rows it changed.
func (s *Store) exec(tx *gorm.DB, query string, args ...any) (int64, error) {
	var (
		res sql.Result
		err error
	)
	if st := s.inTx(tx, query); st != nil {
		defer st.Close()
		res, err = st.ExecContext(tx.Statement.Context, args...)
	} else {
		res, err = tx.Statement.ConnPool.ExecContext(tx.Statement.Context, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryInts runs a statement in tx that returns one row of integers (an
// INSERT ... RETURNING) into dest, or sql.ErrNoRows.
func (s *Store) queryInts(tx *gorm.DB, query string, args []any, dest ...*int64) error {
	var row *sql.Row
	if st := s.inTx(tx, query); st != nil {
		defer st.Close()
		row = st.QueryRowContext(tx.Statement.Context, args...)
	} else {
		row = tx.Statement.ConnPool.QueryRowContext(tx.Statement.Context, query, args...)
	}
	ptrs := make([]any, len(dest))
	for i, d := range dest {
		ptrs[i] = d
	}
	return row.Scan(ptrs...)
}

// queryRow runs a read outside transactions on the read pool.
func (s *Store) queryRow(ctx context.Context, pool *sql.DB, query string, args ...any) *sql.Row {
	if s.rstmts != nil {
		if st := s.rstmts.prepared(ctx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return pool.QueryRowContext(ctx, query, args...)
}
