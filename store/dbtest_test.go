package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
	"github.com/jingminhub/jingmin/store/storetest"
)

// defaultMySQLDSN is the MariaDB server the tests use unless
// JINGMIN_TEST_MYSQL_DSN names another (a DSN without a database name).
const defaultMySQLDSN = "root:@tcp(127.0.0.1:3306)/"

// backend is one freshly created, empty database.
type backend struct {
	name string
	opts store.Options
	// rawDriver and rawDSN open a plain database/sql handle on the same
	// database, for looking at what the store does not expose.
	rawDriver, rawDSN string
}

// forEachDB runs f once against a fresh SQLite file and once against a
// fresh MariaDB database, each opened (and migrated) with store.Open.
func forEachDB(t *testing.T, f func(t *testing.T, s *store.Store)) {
	t.Helper()
	forEachBackend(t, func(t *testing.T, b backend) {
		f(t, openStore(t, b.opts))
	})
}

// forEachBackend is forEachDB for tests that open the database themselves.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, sqliteBackend(t))
	})
	t.Run("mariadb", func(t *testing.T) {
		t.Parallel()
		f(t, mariadbBackend(t))
	})
}

func sqliteBackend(t *testing.T) backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jingmin.db")
	return backend{
		name:      "sqlite",
		opts:      store.Options{Driver: store.SQLite, DSN: path},
		rawDriver: "sqlite",
		rawDSN:    "file:" + path + "?_pragma=busy_timeout(10000)",
	}
}

func mariadbBackend(t testing.TB) backend {
	t.Helper()
	dsn := storetest.MySQL(t)
	return backend{
		name:      "mariadb",
		opts:      store.Options{Driver: store.MySQL, DSN: dsn},
		rawDriver: "mysql",
		rawDSN:    dsn,
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// openStore opens (and migrates) o, closing it when the test ends.
func openStore(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatalf("open %s store: %v", o.Driver, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s store: %v", o.Driver, err)
		}
	})
	return s
}

// raw opens a plain database/sql handle on b's database.
func (b backend) raw(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(b.rawDriver, b.rawDSN)
	if err != nil {
		t.Fatalf("open %s: %v", b.name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}
