package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/jingminhub/jingmin/store/storetest"
)

// A database from before 2026113001 has its tickets listed through
// (station_id, created_at); after the upgrade it has created_at alone, keeps
// its tickets, and goes back on rollback.
func TestTicketCreatedIndexMigrationUpgradesAndRollsBack(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{
		"sqlite":  {Driver: SQLite, DSN: filepath.Join(t.TempDir(), "old.db")},
		"mariadb": {Driver: MySQL, DSN: storetest.MySQL(t)},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Connect(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			m := gormigrate.New(s.db, gormigrate.DefaultOptions, migrations())
			if err := m.MigrateTo("2026112901_ticket_routing"); err != nil {
				t.Fatal(err)
			}
			// The tables as the first migration made them then.
			mig := s.db.Migrator()
			if err := swapIndex(s.db, "ix_ticket_created", "ix_ticket_station_created"); err != nil {
				t.Fatal(err)
			}
			d := oneStation(t, s)
			if _, _, err := s.CreateTicket(ctx, &Ticket{StationID: d.Stations[0].ID, SourceEventID: "e1", Platform: "playground",
				ChatID: "g", ChatType: "group", ResidentID: "r", Question: "问", Status: StatusOpen}, nil, nil); err != nil {
				t.Fatal(err)
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if mig.HasIndex(&ticketIndexes{}, "ix_ticket_station_created") || !mig.HasIndex(&ticketIndexes{}, "ix_ticket_created") {
				t.Fatal("after the upgrade tickets are not indexed by created_at alone")
			}
			if n, err := s.CountTickets(ctx); err != nil || n != 1 {
				t.Fatalf("tickets after the upgrade: %d (%v)", n, err)
			}
			if err := gormigrate.New(s.db, gormigrate.DefaultOptions, migrations()).RollbackTo("2026112901_ticket_routing"); err != nil {
				t.Fatal(err)
			}
			if !mig.HasIndex(&ticketIndexes{}, "ix_ticket_station_created") || mig.HasIndex(&ticketIndexes{}, "ix_ticket_created") {
				t.Fatal("rollback did not restore (station_id, created_at)")
			}
		})
	}
}
