package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

const initialMigration = "2026112201_initial"

func migrationStatus(t *testing.T, s *store.Store) map[string]bool {
	t.Helper()
	st, err := s.MigrationStatus(testContext(t))
	if err != nil {
		t.Fatalf("migration status: %v", err)
	}
	return st
}

func TestOpenAppliesMigrations(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		st := migrationStatus(t, s)
		if len(st) == 0 {
			t.Fatal("no migrations known")
		}
		if !st[initialMigration] {
			t.Errorf("migration %s not applied after Open: %v", initialMigration, st)
		}
		for id, applied := range st {
			if !applied {
				t.Errorf("migration %s pending after Open", id)
			}
		}
	})
}

func TestConnectLeavesMigrationsPendingUntilMigrate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		s, err := store.Connect(ctx, b.opts)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if s.Driver() != b.opts.Driver {
			t.Errorf("driver = %q, want %q", s.Driver(), b.opts.Driver)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
		if st := migrationStatus(t, s); len(st) == 0 || st[initialMigration] {
			t.Errorf("status of a fresh database = %v, want every migration pending", st)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if st := migrationStatus(t, s); !st[initialMigration] {
			t.Errorf("status after migrate = %v, want %s applied", st, initialMigration)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Errorf("migrate again: %v", err)
		}
	})
}

func TestOpenMigratedDatabaseKeepsData(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		first := openStore(t, b.opts)
		xcl, _, _ := twoStations(t, first)
		tk := createTicket(t, first, question(xcl, "e1"), store.TicketEvent{Kind: store.TLAsked})
		before := loadDirectory(t, first)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}

		second := openStore(t, b.opts)
		if st := migrationStatus(t, second); !st[initialMigration] || len(st) != len(migrationStatus(t, second)) {
			t.Errorf("status after reopening = %v", st)
		}
		after := loadDirectory(t, second)
		if len(after.Stations) != len(before.Stations) || len(after.Officers) != len(before.Officers) || len(after.Groups) != len(before.Groups) {
			t.Errorf("reopening changed the directory: %d/%d/%d stations/officers/groups, want %d/%d/%d",
				len(after.Stations), len(after.Officers), len(after.Groups), len(before.Stations), len(before.Officers), len(before.Groups))
		}
		got, err := second.TicketBySource(testContext(t), "e1")
		if err != nil || got.ID != tk.ID || got.Number != 1 {
			t.Errorf("ticket after reopening = %v, %v; want ticket %d #1", got, err, tk.ID)
		}
		// SQLite numbers on from the last ticket; on MySQL the reopened
		// store reserves a new block past what the first one reserved
		// (the rest of that block is a gap, never a repeat).
		want := int64(2)
		if b.opts.Driver == store.MySQL {
			want = 21
		}
		if next := createTicket(t, second, question(xcl, "e2")); next.Number != want {
			t.Errorf("first ticket after reopening = #%d, want #%d", next.Number, want)
		}
	})
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts store.Options
		want string
	}{
		{"unknown driver", store.Options{Driver: "postgres", DSN: "host=localhost"}, "unknown driver"},
		{"mysql without DSN", store.Options{Driver: store.MySQL}, "JINGMIN_DATABASE_DSN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := store.Open(ctx, tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("open %+v succeeded, want an error", tc.opts)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestRawInsertRateLeavesNoTableBehind(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		rate, err := s.RawInsertRate(testContext(t), 50*time.Millisecond)
		if err != nil {
			t.Fatalf("raw insert rate: %v", err)
		}
		if rate <= 0 {
			t.Errorf("raw insert rate = %v, want > 0", rate)
		}
		var n int
		q := "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'bench_rows'"
		if b.name == "sqlite" {
			q = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'bench_rows'"
		}
		if err := b.raw(t).QueryRowContext(testContext(t), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Error("bench_rows table left behind")
		}
	})
}
