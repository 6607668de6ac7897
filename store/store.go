// Package store persists the hub's record of truth (stations, groups,
// officers, roster, tickets with their timers, FAQ) with gorm, on SQLite by
// default and MySQL/MariaDB when a DSN is given. It holds no business rules:
// callers in commands/ decide, the store keeps.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Driver names.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// Options say which database to open.
type Options struct {
	Driver string // sqlite (default) or mysql
	// DSN is a file path for SQLite, or a go-sql-driver DSN for MySQL
	// ("user:pass@tcp(host:3306)/db"); parseTime, utf8mb4 and UTC are added.
	DSN string
	// Dial, when set, opens the MySQL connections instead of the driver's
	// own dialer: the route bench counts wire round trips through it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Store is the hub's repository over one gorm connection pool.
type Store struct {
	db *gorm.DB
	// r serves reads outside transactions. On SQLite it is a pool of its own
	// (WAL lets readers run beside the one writer), so lookups use the second
	// core instead of queueing behind commits; on MySQL it is db.
	r      *gorm.DB
	driver string
	ckpt   *checkpointer // SQLite with a file only
	batch  *batcher      // SQLite only
	// wstmts and rstmts are the hot statements prepared on the writer and
	// the read pool (SQLite; see sqlexec.go).
	wstmts, rstmts *statements
	// numbers hands out ticket numbers in blocks (MySQL only).
	numbers ticketNumbers
	// lapsedAt is when this process last looked for each platform's
	// lapsed outbound leases (MySQL only, see lapsedDue).
	lapsedMu sync.Mutex
	lapsedAt map[string]time.Time
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Open connects, tunes the pool for the driver, and runs pending migrations.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, err := Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect opens the database without migrating (for `jingmin migrate`).
func Connect(ctx context.Context, o Options) (*Store, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard, // queries carry residents' text
		SkipDefaultTransaction: true,           // every write below picks its own transaction
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var (
		dial                gorm.Dialector
		readDSN, sqlitePath string
	)
	driver := o.Driver
	if driver == "" {
		driver = SQLite
	}
	switch driver {
	case SQLite:
		path := o.DSN
		if path == "" {
			path = filepath.Join("data", "jingmin.db")
		}
		if path != ":memory:" {
			if err := prepareSQLiteFile(path); err != nil {
				return nil, err
			}
		}
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_time_format=sqlite"
		// The writer never checkpoints (see checkpointer): copying the WAL
		// into the database, with its fsync, would stall every handler
		// waiting on that commit. Its transactions take the write lock when
		// they begin: another process on the same file (a CLI command beside
		// the hub) is then waited for, where a transaction that read first
		// would fail at its first write once the other had committed.
		dial = sqlite.Open(dsn + "&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
		if path != ":memory:" {
			readDSN = dsn + "&_pragma=query_only(1)"
		}
		sqlitePath = path
	case MySQL:
		dsn := o.DSN
		if dsn == "" {
			return nil, fmt.Errorf("open mysql: no DSN given (set JINGMIN_DATABASE_DSN)")
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		// interpolateParams: the driver fills in the arguments itself, so a
		// statement is one round trip instead of PREPARE, EXECUTE and CLOSE.
		// It is safe with the connection's charset fixed to utf8mb4 (the
		// driver refuses it for the multibyte charsets where escaping by
		// bytes would be unsafe: big5, gbk, sjis, ...).
		// No RETURNING (MariaDB 10.5+ would get it): an insert that meets
		// an existing outbound key returns that row through RETURNING, so
		// the insert would look like a new message and a redelivered
		// command would change its ticket again (see insertOutbound).
		dsn += sep + "parseTime=true&charset=utf8mb4&loc=UTC&interpolateParams=true"
		mc := mysql.Config{DSN: dsn, DisableWithReturning: true}
		if o.Dial != nil {
			dcfg, err := mysqldrv.ParseDSN(dsn)
			if err != nil {
				return nil, fmt.Errorf("open mysql: %w", err)
			}
			dcfg.DialFunc = o.Dial
			conn, err := mysqldrv.NewConnector(dcfg)
			if err != nil {
				return nil, fmt.Errorf("open mysql: %w", err)
			}
			mc.Conn = sql.OpenDB(conn)
		}
		dial = mysql.New(mc)
	default:
		return nil, fmt.Errorf("open store: unknown driver %q (want sqlite or mysql)", driver)
	}
	db, err := gorm.Open(dial, cfg)
	if err != nil {
		if sqlitePath != "" {
			return nil, sqliteOpenError(sqlitePath, err)
		}
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	if driver == SQLite {
		// SQLite has one writer; one connection serialises writers in Go
		// instead of letting them spin on SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		if sqlitePath != "" {
			return nil, sqliteOpenError(sqlitePath, err)
		}
		return nil, fmt.Errorf("reach %s database: %w", driver, err)
	}
	st := &Store{db: db, r: db, driver: driver}
	if driver == SQLite {
		st.wstmts = newStatements(sqlDB)
		if st.batch, err = newBatcher(db, st.wstmts.prepareWanted); err != nil {
			st.Close()
			return nil, err
		}
	}
	if readDSN != "" {
		if st.r, err = openReaders(readDSN, cfg); err != nil {
			st.Close()
			return nil, err
		}
		if pool, err := st.r.DB(); err == nil {
			st.rstmts = newStatements(pool)
		}
		if st.ckpt, err = newCheckpointer(strings.TrimSuffix(readDSN, "&_pragma=query_only(1)")); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// openReaders opens the SQLite read pool.
func openReaders(dsn string, cfg *gorm.Config) (*gorm.DB, error) {
	r, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	sqlDB, err := r.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	sqlDB.SetMaxOpenConns(4)
	sqlDB.SetMaxIdleConns(4)
	return r, nil
}

// read is where lookups outside a transaction go.
func (s *Store) read(ctx context.Context) *gorm.DB { return s.r.WithContext(ctx) }

// Driver reports sqlite or mysql.
func (s *Store) Driver() string { return s.driver }

// Ping reports whether the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close releases the pool.
func (s *Store) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	for _, p := range []*statements{s.wstmts, s.rstmts} {
		if p != nil {
			p.close()
		}
	}
	if s.ckpt != nil {
		s.ckpt.close()
	}
	if s.r != s.db {
		if r, err := s.r.DB(); err == nil {
			r.Close()
		}
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// tx runs f in a transaction and returns its outcome. f runs exactly once;
// what it wrote commits when it returns nil and is rolled back otherwise.
// On SQLite it runs in a group commit (see batcher), on MySQL in a
// transaction of its own bound to ctx.
func (s *Store) tx(ctx context.Context, f func(tx *gorm.DB) error) error {
	if s.batch != nil {
		return s.batch.do(ctx, f)
	}
	return s.db.WithContext(ctx).Transaction(f)
}

// CommitStats reports how many commits the store made and how many
// transactions they carried (SQLite group commit; zero on MySQL).
func (s *Store) CommitStats() (commits, txs int64) {
	if s.batch == nil {
		return 0, 0
	}
	return s.batch.commits.Load(), s.batch.txs.Load()
}

// RawInsertRate measures single-row insert transactions per second on this
// store's connection settings for d: the baseline the route bench is judged
// against. It uses a scratch table and drops it afterwards.
func (s *Store) RawInsertRate(ctx context.Context, d time.Duration) (float64, error) {
	type benchRow struct {
		ID      uint `gorm:"primaryKey"`
		Payload string
		At      time.Time
	}
	db := s.db.WithContext(ctx).Table("bench_rows")
	if err := db.AutoMigrate(&benchRow{}); err != nil {
		return 0, fmt.Errorf("create bench table: %w", err)
	}
	defer s.db.WithContext(ctx).Migrator().DropTable("bench_rows")
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		err := s.tx(ctx, func(tx *gorm.DB) error {
			// The same path the ticket insert takes: plain SQL on the transaction.
			_, err := s.exec(tx, "INSERT INTO bench_rows (payload, at) VALUES (?, ?)", "楼道有焦味，请民警来看看", time.Now().UTC())
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("bench insert: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// Down reports whether err is the database saying it is down, restarting
// or refusing connections (rather than anything about the statement): the
// caller waits for it instead of giving up on the work.
func Down(err error) bool {
	if errors.Is(err, mysqldrv.ErrInvalidConn) {
		return true
	}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1927, // connection was killed
			4031: // disconnected by the server for inactivity
			return true
		}
	}
	return false
}
