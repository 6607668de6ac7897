package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"
)

// The writer's compiled statements must store exactly what the driver
// would: SQLite compares times as text, so a time written in another layout
// would make due timers and stats windows miss tickets.
func TestCompiledStatementsStoreWhatTheDriverWould(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := oneStation(t, s)
	at := time.Date(2026, 11, 23, 9, 30, 15, 123456789, time.FixedZone("CST", 8*3600))
	due := at.Add(15 * time.Minute)
	assignee := d.Officers[0].ID
	tk := &Ticket{StationID: d.Stations[0].ID, SourceEventID: "playground:m1", Platform: "playground", ChatID: "g1", ChatType: "group",
		ResidentID: "r1", ResidentName: "居民\x00甲", Question: "楼道里有'焦味'", Status: StatusOpen, Emergency: true,
		AssigneeID: &assignee, EscalateAt: &due, CreatedAt: at}
	if _, created, err := s.CreateTicket(ctx, tk, []TicketEvent{{Kind: TLNotified, At: at}}, nil); err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if s.batch.hot == nil || len(s.batch.hot.stmts) == 0 {
		t.Fatal("the writer ran the ticket insert through the driver: statements are compiled on every call again")
	}

	// The driver formats these parameters itself: equal text matches.
	var n int64
	if err := s.read(ctx).Table("tickets").Where("created_at = ? AND escalate_at = ? AND emergency = ? AND after_hours = ? AND first_response_at IS NULL",
		at.UTC(), due.UTC(), true, false).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("tickets matching the driver's own encoding: %d (%v)", n, err)
	}
	if err := s.read(ctx).Table("ticket_events").Where("at = ?", at.UTC()).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("timeline rows matching the driver's own encoding: %d (%v)", n, err)
	}
	got, err := s.TicketByNumber(ctx, tk.StationID, tk.Number)
	if err != nil {
		t.Fatal(err)
	}
	if s.hot == nil || len(s.hot.by) == 0 {
		t.Fatal("the ticket lookup went through the driver: it is compiled on every call again")
	}
	if got.ID != tk.ID || got.Number != 1 || got.ResidentName != "居民\x00甲" || got.Question != "楼道里有'焦味'" ||
		!got.CreatedAt.Equal(at) || got.EscalateAt == nil || !got.EscalateAt.Equal(due) || *got.AssigneeID != assignee || !got.Emergency {
		t.Fatalf("read back %+v", got)
	}

	// A unique-key clash is an error of the statement, and the statement
	// stays usable for the next ticket.
	dup := *tk
	if _, created, err := s.CreateTicket(ctx, &dup, nil, nil); err != nil || created {
		t.Fatalf("redelivered: created=%v err=%v", created, err)
	}
	next := &Ticket{StationID: tk.StationID, SourceEventID: "playground:m2", Platform: "playground", ChatID: "g1", ChatType: "group",
		ResidentID: "r2", Question: "问", Status: StatusOpen}
	if _, created, err := s.CreateTicket(ctx, next, nil, nil); err != nil || !created || next.Number != 2 {
		t.Fatalf("next ticket: created=%v number=%d err=%v", created, next.Number, err)
	}
	// A station that does not exist inserts nothing.
	if _, _, err := s.CreateTicket(ctx, &Ticket{StationID: 999, SourceEventID: "playground:m3", Platform: "playground", ChatID: "g1",
		ChatType: "group", ResidentID: "r3", Question: "问", Status: StatusOpen}, nil, nil); err == nil {
		t.Fatal("a ticket of a station that does not exist was created")
	}
}

// oneStation gives s one station with its duty account.
func oneStation(t *testing.T, s *Store) *Directory {
	t.Helper()
	ctx := context.Background()
	if err := s.Sync(ctx, Seed{
		Stations: []SeedStation{{Code: "s", Name: "所", SLAMinutes: 15, DutyAccount: "duty"}},
		Officers: []SeedOfficer{{Code: "duty", Station: "s", Name: "值班号", Roles: []string{RoleDutyAccount}}},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := s.LoadDirectory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Two processes on one SQLite file (a CLI command beside the hub): a
// transaction that reads before it writes is not failed by the other's
// commit in between; the other waits for it instead.
func TestWriterTransactionsOfTwoProcessesWaitForEachOther(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := Open(ctx, Options{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Options{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := oneStation(t, a)
	station := d.Stations[0].ID
	ticket := func(src string) *Ticket {
		return &Ticket{StationID: station, SourceEventID: src, Platform: "playground", ChatID: "g", ChatType: "group", ResidentID: "r", Question: "问", Status: StatusOpen}
	}
	otherDone := make(chan error, 1)
	err = b.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Ticket{}).Count(&n).Error; err != nil { // read first
			return err
		}
		go func() { _, _, err := a.CreateTicket(ctx, ticket("from-a"), nil, nil); otherDone <- err }()
		select {
		case err := <-otherDone:
			return fmt.Errorf("the other process wrote inside this transaction: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		return b.insertTicket(tx, ticket("from-b")) // then write
	})
	if err != nil {
		t.Fatalf("read-then-write transaction: %v", err)
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("the other process's ticket: %v", err)
	}
	if n, err := a.CountTickets(ctx); err != nil || n != 2 {
		t.Fatalf("tickets = %d (%v), want both", n, err)
	}
}
