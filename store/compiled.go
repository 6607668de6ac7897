package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// compiled keeps the SQLite writer's hot statements compiled between
// transactions. The driver compiles every statement on every call (its
// Prepare only remembers the text), and on the path every question takes
// compiling the ticket insert costs as much as running it. SQLite itself
// lets a compiled statement run any number of times on its connection, so
// the writer compiles each of its few statement texts once and runs them
// through SQLite's C interface on the connection's handle; the driver
// still does everything else on that connection (transactions, the ORM,
// reads), and statements outside the writer's transactions go through it
// as before.
//
// A compiled statement belongs to one connection handle, and only the
// batcher's goroutine uses it, inside a transaction on that connection.
type compiled struct {
	tls   *libc.TLS
	db    uintptr // the driver's sqlite3* of the connection
	stmts map[string]uintptr
	bound []uintptr // text bound to the running statement (see bindText)
}

// maxCompiled bounds the statements kept: the writer's texts are a handful
// (a timeline insert has one text per number of rows), so anything beyond
// is compiled, run and finalised as the driver would.
const maxCompiled = 64

// sqliteTimeFormat is how the driver writes a time.Time (its default write
// format): compiled statements must store times exactly as the driver does,
// since SQLite compares them as text.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

var errNoHandle = errors.New("the SQLite driver does not expose its connection handle")

// connHandle finds the sqlite3* behind one driver connection. The driver
// keeps it in an unexported field; if a driver version stops doing so, the
// writer simply goes on without compiled statements.
func connHandle(conn *sql.Conn) (uintptr, error) {
	var db uintptr
	err := conn.Raw(func(dc any) error {
		v := reflect.ValueOf(dc)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return errNoHandle
		}
		f := v.FieldByName("db")
		if !f.IsValid() || f.Kind() != reflect.Uintptr || f.Uint() == 0 {
			return errNoHandle
		}
		db = uintptr(f.Uint())
		return nil
	})
	return db, err
}

func newCompiled(db uintptr) *compiled {
	return &compiled{tls: libc.NewTLS(), db: db, stmts: map[string]uintptr{}}
}

// close finalises every statement; the connection can then close.
func (c *compiled) close() {
	for q, st := range c.stmts {
		sqlite3.Xsqlite3_finalize(c.tls, st)
		delete(c.stmts, q)
	}
	c.tls.Close()
}

func (c *compiled) err(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	return fmt.Errorf("sqlite: %s (%d)", msg, sqlite3.Xsqlite3_extended_errcode(c.tls, c.db))
}

// prepare compiles query on the writer's handle.
func (c *compiled) prepare(query string) (uintptr, error) {
	z, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, z)
	pp := libc.Xmalloc(c.tls, 8)
	if pp == 0 {
		return 0, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, pp)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, z, -1, pp, 0); rc != sqlite3.SQLITE_OK {
		return 0, fmt.Errorf("compile %q: %w", query, c.err(rc))
	}
	st := uintptr(binary.NativeEndian.Uint64(libc.GoBytes(pp, 8)))
	if st == 0 {
		return 0, fmt.Errorf("compile %q: no statement in it", query)
	}
	return st, nil
}

// run executes a write with args. A statement that returns a row
// (RETURNING) has that row's integer columns read into dest, and returns
// sql.ErrNoRows when it returned none. It reports how many rows the
// statement changed.
func (c *compiled) run(query string, args []any, dest ...*int64) (changed int64, err error) {
	rows := 0
	changed, err = c.exec(query, args, func(r row) error {
		if rows == 0 {
			for i, d := range dest {
				*d = r.int64(i)
			}
		}
		rows++
		return nil
	})
	if err == nil && len(dest) > 0 && rows == 0 {
		return 0, sql.ErrNoRows
	}
	return changed, err
}

// exec runs query with args, hands each row it returns to each, and
// reports how many rows it changed.
func (c *compiled) exec(query string, args []any, each func(row) error) (changed int64, err error) {
	st, ok := c.stmts[query]
	if !ok {
		if st, err = c.prepare(query); err != nil {
			return 0, err
		}
		if len(c.stmts) < maxCompiled {
			c.stmts[query] = st
		} else {
			defer sqlite3.Xsqlite3_finalize(c.tls, st)
		}
	}
	// A write only ever runs inside the writer's transaction: outside one
	// each statement would commit on its own.
	if sqlite3.Xsqlite3_stmt_readonly(c.tls, st) == 0 && sqlite3.Xsqlite3_get_autocommit(c.tls, c.db) != 0 {
		return 0, errors.New("sqlite: compiled write outside a transaction")
	}
	defer c.unbind(st)
	if n := int(sqlite3.Xsqlite3_bind_parameter_count(c.tls, st)); n != len(args) {
		return 0, fmt.Errorf("sqlite: %d arguments for %d parameters", len(args), n)
	}
	for i, a := range args {
		if err := c.bind(st, int32(i+1), a); err != nil {
			return 0, fmt.Errorf("bind argument %d: %w", i+1, err)
		}
	}
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
		case sqlite3.SQLITE_ROW:
			if err := each(row{c, st}); err != nil {
				return 0, err
			}
		case sqlite3.SQLITE_DONE:
			return int64(sqlite3.Xsqlite3_changes(c.tls, c.db)), nil
		default:
			return 0, c.err(rc)
		}
	}
}

// row is the row a compiled statement stands on.
type row struct {
	c  *compiled
	st uintptr
}

func (r row) null(i int) bool {
	return sqlite3.Xsqlite3_column_type(r.c.tls, r.st, int32(i)) == sqlite3.SQLITE_NULL
}

func (r row) int64(i int) int64 { return sqlite3.Xsqlite3_column_int64(r.c.tls, r.st, int32(i)) }

func (r row) text(i int) string {
	p := sqlite3.Xsqlite3_column_text(r.c.tls, r.st, int32(i))
	if p == 0 {
		return ""
	}
	return string(libc.GoBytes(p, int(sqlite3.Xsqlite3_column_bytes(r.c.tls, r.st, int32(i)))))
}

// sqliteReadTimeFormats are the layouts the driver reads times in (SQLite's
// date and time formats), the one it writes first.
var sqliteReadTimeFormats = []string{
	sqliteTimeFormat,
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// time reads a time column as the driver would.
func (r row) time(i int) (time.Time, error) {
	s := strings.TrimSuffix(r.text(i), "Z")
	for _, f := range sqliteReadTimeFormats {
		if t, err := time.ParseInLocation(f, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("sqlite: column %d holds %q, not a time", i, s)
}

// readers keeps compiled statements for each connection of the SQLite read
// pool; a connection's statements are used only while it is checked out.
type readers struct {
	pool *sql.DB
	mu   sync.Mutex
	by   map[uintptr]*compiled
}

func newReaders(pool *sql.DB) *readers {
	return &readers{pool: pool, by: map[uintptr]*compiled{}}
}

// query runs a read on one connection of the pool with its compiled
// statements, handing each row to each. ok is false when the driver's
// handle cannot be found: the caller then reads through the driver.
func (rs *readers) query(ctx context.Context, query string, args []any, each func(row) error) (ok bool, err error) {
	conn, err := rs.pool.Conn(ctx)
	if err != nil {
		return true, err
	}
	defer conn.Close()
	h, err := connHandle(conn)
	if err != nil {
		return false, nil
	}
	rs.mu.Lock()
	c := rs.by[h]
	if c == nil {
		c = newCompiled(h)
		rs.by[h] = c
	}
	rs.mu.Unlock()
	_, err = c.exec(query, args, each)
	return true, err
}

// close finalises every reader's statements, before the pool closes.
func (rs *readers) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for h, c := range rs.by {
		c.close()
		delete(rs.by, h)
	}
}

// bind binds one argument the way database/sql and the driver would:
// pointers and Valuers are resolved, bools are 0 or 1, times are text.
// Text is copied into memory of the connection's own that stays bound
// until the statement is reset (c.bound), not copied a second time.
func (c *compiled) bind(st uintptr, i int32, a any) error {
	var v driver.Value
	switch x := a.(type) { // the hot paths' types, without reflection
	case string, int64, bool, time.Time, nil:
		v = x
	case int:
		v = int64(x)
	case uint:
		v = int64(x)
	case *uint:
		if x != nil {
			v = int64(*x)
		}
	case *time.Time:
		if x != nil {
			v = *x
		}
	default:
		var err error
		if v, err = driver.DefaultParameterConverter.ConvertValue(a); err != nil {
			return err
		}
	}
	var rc int32
	switch x := v.(type) {
	case nil:
		rc = sqlite3.Xsqlite3_bind_null(c.tls, st, i)
	case int64:
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, x)
	case float64:
		rc = sqlite3.Xsqlite3_bind_double(c.tls, st, i, x)
	case bool:
		var n int64
		if x {
			n = 1
		}
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, n)
	case string:
		return c.bindText(st, i, x, false)
	case []byte:
		return c.bindText(st, i, string(x), true)
	case time.Time:
		return c.bindText(st, i, x.Format(sqliteTimeFormat), false)
	default:
		return fmt.Errorf("sqlite: cannot bind %T", v)
	}
	if rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// bindText binds s as text (or a blob) from a copy that lives until the
// statement is reset.
func (c *compiled) bindText(st uintptr, i int32, s string, blob bool) error {
	p, err := libc.CString(s)
	if err != nil {
		return err
	}
	c.bound = append(c.bound, p)
	var rc int32
	if blob {
		rc = sqlite3.Xsqlite3_bind_blob(c.tls, st, i, p, int32(len(s)), 0)
	} else {
		rc = sqlite3.Xsqlite3_bind_text(c.tls, st, i, p, int32(len(s)), 0)
	}
	if rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// unbind resets st and frees what its text parameters pointed to.
func (c *compiled) unbind(st uintptr) {
	sqlite3.Xsqlite3_reset(c.tls, st)
	sqlite3.Xsqlite3_clear_bindings(c.tls, st)
	for _, p := range c.bound {
		libc.Xfree(c.tls, p)
	}
	c.bound = c.bound[:0]
}

// compiledFor returns the writer's compiled statements when tx is the
// transaction the batcher is running bodies in, and nil otherwise (MySQL,
// or any other transaction), where statements go through the driver.
func (s *Store) compiledFor(tx *gorm.DB) *compiled {
	if s.batch == nil || s.batch.hot == nil || s.batch.cur == nil {
		return nil
	}
	if t, ok := tx.Statement.ConnPool.(*sql.Tx); ok && t == s.batch.cur {
		return s.batch.hot
	}
	return nil
}

// exec runs a write statement in tx and reports the rows it changed.
func (s *Store) exec(tx *gorm.DB, query string, args ...any) (int64, error) {
	if c := s.compiledFor(tx); c != nil {
		return c.run(query, args)
	}
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryInts runs a statement in tx that returns one row of integers (an
// INSERT ... RETURNING), or sql.ErrNoRows.
func (s *Store) queryInts(tx *gorm.DB, query string, args []any, dest ...*int64) error {
	if c := s.compiledFor(tx); c != nil {
		_, err := c.run(query, args, dest...)
		return err
	}
	row := tx.Statement.ConnPool.QueryRowContext(tx.Statement.Context, query, args...)
	ptrs := make([]any, len(dest))
	for i, d := range dest {
		ptrs[i] = d
	}
	return row.Scan(ptrs...)
}
