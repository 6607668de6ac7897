package store

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/jingminhub/jingmin/store/storetest"
)

// models lists every model with a table of its own: the schema the
// migrations must build.
func models() []any {
	return []any{&Station{}, &Group{}, &Officer{}, &Identity{}, &Shift{}, &Override{}, &Holiday{},
		&Ticket{}, &TicketEvent{}, &FAQ{}, &Template{}, &UnknownChat{}, &ParkedMessage{},
		&Broadcast{}, &Delivery{}, &OutboundMessage{}, &ResidentErasure{}, &AuditEntry{}, &Card{}, &APIUsage{},
		&ArchiveCursor{}, &ArchivedMessage{},
		&KFCursor{}, &KFSession{}, &KFLink{}, &ArchiveConsent{},
		&ConsoleAdmin{}, &ConsoleTOTP{}, &ConsoleCode{}, &ConsoleSession{}, &APIToken{},
		&DirectoryRevision{}, &ShiftSwap{}, &CalendarFeed{}}
}

// column and index are what the drift test compares: as much of a column's
// type as both databases report.
type column struct {
	Type     string
	Length   int64
	Nullable bool
	Primary  bool
	Default  string
}

type index struct {
	Columns string
	Unique  bool
}

type tableSchema struct {
	Columns map[string]column
	Indexes map[string]index
}

// schemaOf reads every table of db (but the migrations record) with its
// columns and indexes.
func schemaOf(t *testing.T, db *gorm.DB) map[string]tableSchema {
	t.Helper()
	m := db.Migrator()
	tables, err := m.GetTables()
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	out := map[string]tableSchema{}
	for _, name := range tables {
		if name == gormigrate.DefaultOptions.TableName || strings.HasPrefix(name, "sqlite_") {
			continue
		}
		ts := tableSchema{Columns: map[string]column{}, Indexes: map[string]index{}}
		cols, err := m.ColumnTypes(name)
		if err != nil {
			t.Fatalf("columns of %s: %v", name, err)
		}
		for _, c := range cols {
			var col column
			col.Type = strings.ToLower(c.DatabaseTypeName())
			if db.Dialector.Name() == MySQL { // SQLite reports the length of the first row's value
				col.Length, _ = c.Length()
			}
			col.Nullable, _ = c.Nullable()
			col.Primary, _ = c.PrimaryKey()
			col.Default, _ = c.DefaultValue()
			ts.Columns[c.Name()] = col
		}
		idxs, err := m.GetIndexes(name)
		if err != nil {
			t.Fatalf("indexes of %s: %v", name, err)
		}
		for _, ix := range idxs {
			if pk, _ := ix.PrimaryKey(); pk || strings.HasPrefix(ix.Name(), "sqlite_autoindex_") {
				continue // the primary key is a column's property above
			}
			u, _ := ix.Unique()
			ts.Indexes[ix.Name()] = index{Columns: strings.Join(ix.Columns(), ","), Unique: u}
		}
		out[name] = ts
	}
	return out
}

// schemaDiff lists how got differs from want, one line per difference.
func schemaDiff(got, want map[string]tableSchema) []string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("table %s: missing", name))
			continue
		}
		for c, wc := range w.Columns {
			gc, ok := g.Columns[c]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("column %s.%s: missing", name, c))
			case gc != wc:
				diffs = append(diffs, fmt.Sprintf("column %s.%s: %+v, models say %+v", name, c, gc, wc))
			}
		}
		for c := range g.Columns {
			if _, ok := w.Columns[c]; !ok {
				diffs = append(diffs, fmt.Sprintf("column %s.%s: no model field", name, c))
			}
		}
		for i, wi := range w.Indexes {
			gi, ok := g.Indexes[i]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("index %s on %s(%s): missing", i, name, wi.Columns))
			case gi != wi:
				diffs = append(diffs, fmt.Sprintf("index %s on %s: %+v, models say %+v", i, name, gi, wi))
			}
		}
		for i, gi := range g.Indexes {
			if _, ok := w.Indexes[i]; !ok {
				diffs = append(diffs, fmt.Sprintf("index %s on %s(%s): not in the models", i, name, gi.Columns))
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("table %s: no model (add it to models())", name))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// modelSchema is the schema the live models describe, made on a database
// of its own straight from them.
func modelSchema(t *testing.T, o Options) map[string]tableSchema {
	t.Helper()
	s, err := Connect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.AutoMigrate(models()...); err != nil {
		t.Fatalf("create tables from the models: %v", err)
	}
	return schemaOf(t, s.db)
}

func checkSchema(t *testing.T, what string, db *gorm.DB, want map[string]tableSchema) {
	t.Helper()
	if diffs := schemaDiff(schemaOf(t, db), want); len(diffs) > 0 {
		t.Fatalf("%s differs from the models:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

type dbPair struct{ migrated, reference Options }

func migrationBackends(t *testing.T) map[string]dbPair {
	return map[string]dbPair{
		"sqlite": {
			Options{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "migrated.db")},
			Options{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "models.db")},
		},
		"mariadb": {
			Options{Driver: MySQL, DSN: storetest.MySQL(t)},
			Options{Driver: MySQL, DSN: storetest.MySQL(t)},
		},
	}
}

// The migrations, from the first on, build exactly the schema the models
// describe (tables, columns with type, length, nullability and default,
// indexes by name, columns and uniqueness), so a model changed without a
// migration, or a migration that builds something else, fails here. Rolled
// back one by one they leave nothing behind, and migrating again gives the
// same schema.
func TestMigrationsBuildTheModelsSchema(t *testing.T) {
	t.Parallel()
	for name, p := range migrationBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := modelSchema(t, p.reference)
			ctx := context.Background()
			s, err := Connect(ctx, p.migrated)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Step by step, each migration on the database the one before left.
			all := migrations()
			for _, m := range all {
				if err := gormigrate.New(s.db, gormigrate.DefaultOptions, all).MigrateTo(m.ID); err != nil {
					t.Fatalf("migrate to %s: %v", m.ID, err)
				}
			}
			checkSchema(t, "the migrated schema", s.db, want)

			for range all {
				if err := gormigrate.New(s.db, gormigrate.DefaultOptions, all).RollbackLast(); err != nil {
					t.Fatalf("roll back: %v", err)
				}
			}
			if left := schemaOf(t, s.db); len(left) != 0 {
				t.Fatalf("after rolling every migration back, tables remain: %v", slices.Sorted(mapKeys(left)))
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate again: %v", err)
			}
			checkSchema(t, "the schema migrated again", s.db, want)
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Databases made by earlier releases, dumped as SQLite wrote them: one from
// before broadcasts (only the first migration applied, tickets listed by
// station and time) and one from the release before the migrations were
// frozen (every migration applied, made by the first one from the models of
// the day). Both upgrade to the models' schema and keep their tickets, whose
// times the driver wrote in the layout it still compares against.
var (
	//go:embed testdata/sqlite_2026112201.sql
	sqlite2026112201 string
	//go:embed testdata/sqlite_2026113001.sql
	sqlite2026113001 string
)

func TestDatabasesOfEarlierReleasesUpgrade(t *testing.T) {
	t.Parallel()
	want := modelSchema(t, Options{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "models.db")})
	for name, dump := range map[string]string{"2026112201": sqlite2026112201, "2026113001": sqlite2026113001} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "old.db")
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.ExecContext(ctx, dump); err != nil {
				t.Fatalf("load the old database: %v", err)
			}
			raw.Close()

			s, err := Open(ctx, Options{Driver: SQLite, DSN: path})
			if err != nil {
				t.Fatalf("open and upgrade: %v", err)
			}
			defer s.Close()
			checkSchema(t, "the upgraded schema", s.db, want)
			st, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for id, applied := range st {
				if !applied {
					t.Errorf("migration %s not applied after the upgrade", id)
				}
			}

			got, err := s.TicketByNumber(ctx, 1, 1)
			if err != nil {
				t.Fatalf("the old ticket: %v", err)
			}
			at := time.Date(2026, 11, 23, 1, 30, 15, 123456789, time.UTC)
			if got.Question != "楼道有焦味" || !got.CreatedAt.Equal(at) || got.EscalateAt == nil || !got.EscalateAt.Equal(at.Add(15*time.Minute)) {
				t.Fatalf("the old ticket reads back as %+v", got)
			}
			for _, c := range []struct {
				now  time.Time
				want int
			}{{at.Add(14 * time.Minute), 0}, {at.Add(15 * time.Minute), 1}} {
				var due []Ticket
				if err := dueTimers(s.read(ctx), c.now).Find(&due).Error; err != nil {
					t.Fatal(err)
				}
				if len(due) != c.want {
					t.Errorf("at %s %d tickets due, want %d: old and new times do not compare", c.now.Format(time.TimeOnly), len(due), c.want)
				}
			}
			next := &Ticket{StationID: 1, SourceEventID: "playground:new", Platform: "playground", ChatID: "hexie", ChatType: "group",
				ResidentID: "r2", Question: "问", Status: StatusOpen}
			if _, created, err := s.CreateTicket(ctx, next, nil, nil); err != nil || !created || next.Number != 2 {
				t.Fatalf("a new ticket in the upgraded database: created=%v number=%d err=%v", created, next.Number, err)
			}
		})
	}
}
