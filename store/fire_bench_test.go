package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
	"github.com/jingminhub/jingmin/store/storetest"
)

// dueTimers is how many due escalation timers the firing benchmarks start
// with: a storm after an outage, or a district's backlog at shift start.
const dueTimers = 100_000

// BenchmarkFireDueSQLite fires 100,000 due escalation timers on SQLite,
// the way the timer loop does: FireDue in rounds until none is left.
func BenchmarkFireDueSQLite(b *testing.B) {
	benchFireDue(b, func(b *testing.B) (store.Options, string, string) {
		path := filepath.Join(b.TempDir(), "fire.db")
		return store.Options{Driver: store.SQLite, DSN: path}, "sqlite", "file:" + path + "?_pragma=busy_timeout(10000)"
	})
}

// BenchmarkFireDueMySQL is BenchmarkFireDueSQLite on MariaDB.
func BenchmarkFireDueMySQL(b *testing.B) {
	benchFireDue(b, func(b *testing.B) (store.Options, string, string) {
		dsn := storetest.MySQL(b)
		return store.Options{Driver: store.MySQL, DSN: dsn}, "mysql", dsn
	})
}

func benchFireDue(b *testing.B, open func(b *testing.B) (o store.Options, rawDriver, rawDSN string)) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	for range b.N {
		b.StopTimer()
		o, rawDriver, rawDSN := open(b)
		s := openStore(b, o)
		seedDueTimers(ctx, b, s, rawDriver, rawDSN, now)
		// Each step escalates to one of a few officers, gathered per window,
		// as the rules' escalation does.
		leaders := []uint{1, 2, 3, 4, 5, 6, 7, 8}
		fire := func(t *store.Ticket) (store.Change, error) {
			t.Level++
			next := now.Add(15 * time.Minute)
			t.EscalateAt = &next
			to := leaders[t.ID%uint(len(leaders))]
			msg := func(text string) store.OutboundMessage {
				return store.OutboundMessage{Key: fmt.Sprintf("t%d:esc:%d:%d", t.ID, t.Fence, to), Purpose: "escalation", Platform: "dingtalk",
					ToUser: fmt.Sprint("leader-", to), OfficerID: &to, TicketID: &t.ID, Format: "markdown", Text: text}
			}
			return store.Change{
				Timeline: []store.TicketEvent{{Kind: store.TLEscalated, Detail: fmt.Sprintf("第%d次升级", t.Level), At: now}},
				Notices: []store.Notice{{Window: fmt.Sprintf("escwin:%d:%d", to, now.Unix()), Closes: now.Add(5 * time.Minute),
					Now: msg(fmt.Sprintf("工单 #%d 超时", t.Number)), Later: msg(fmt.Sprintf("- #%d", t.Number))}},
			}, nil
		}
		b.StartTimer()
		fired := 0
		const perRound = 1000 // as the timer loop asks
		for {
			n, err := s.FireDue(ctx, now, perRound, fire)
			if err != nil {
				b.Fatalf("fire due: %v", err)
			}
			fired += n
			if n < perRound {
				break
			}
		}
		b.StopTimer()
		if fired != dueTimers {
			b.Fatalf("fired %d timers, want %d", fired, dueTimers)
		}
		held, err := s.OutboundStates(ctx, "dingtalk")
		if err != nil {
			b.Fatal(err)
		}
		if held[store.OutboundPending]+held[store.OutboundHeld] != dueTimers {
			b.Fatalf("escalation notices %v, want %d in all", held, dueTimers)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(dueTimers), "timers/op")
}

// seedDueTimers writes dueTimers due tickets (see copyTicket).
func seedDueTimers(ctx context.Context, b *testing.B, s *store.Store, rawDriver, rawDSN string, now time.Time) {
	b.Helper()
	station, _ := benchStation(ctx, b, s)
	due := now.Add(-time.Hour)
	first := &store.Ticket{StationID: station, SourceEventID: "e0", Platform: "dingtalk", ChatID: "g1", ChatType: "group",
		ResidentID: "r1", Question: "楼道里电动车充电很危险，能不能管一管", Status: store.StatusOpen, EscalateAt: &due, CreatedAt: due}
	copyTicket(ctx, b, s, rawDriver, rawDSN, first, dueTimers)
	raw, err := sql.Open(rawDriver, rawDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var count int
	if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM tickets WHERE escalate_at IS NOT NULL").Scan(&count); err != nil || count != dueTimers {
		b.Fatalf("seeded %d due tickets (%v), want %d", count, err, dueTimers)
	}
}

// benchStation syncs one station with its duty account.
func benchStation(ctx context.Context, b *testing.B, s *store.Store) (station, duty uint) {
	b.Helper()
	if err := s.Sync(ctx, store.Seed{
		Stations: []store.SeedStation{{Code: "s", Name: "所", SLAMinutes: 15, DutyAccount: "duty"}},
		Officers: []store.SeedOfficer{{Code: "duty", Station: "s", Name: "值班号", Roles: []string{store.RoleDutyAccount}}},
	}); err != nil {
		b.Fatal(err)
	}
	d, err := s.LoadDirectory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return d.Stations[0].ID, d.Officers[0].ID
}

// copyTicket files first through the store and copies it into n tickets in
// all (numbers and source events of their own) with one INSERT … SELECT,
// so the times are written in the store's own format and setting up
// 100,000 tickets takes seconds, not minutes.
func copyTicket(ctx context.Context, b *testing.B, s *store.Store, rawDriver, rawDSN string, first *store.Ticket, n int) {
	b.Helper()
	if _, _, err := s.CreateTicket(ctx, first, nil, nil); err != nil {
		b.Fatal(err)
	}
	raw, err := sql.Open(rawDriver, rawDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	digits := "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
		"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	i := "(a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 1)"
	source := "t.source_event_id || '-' || " + i
	if rawDriver == "mysql" {
		source = "CONCAT(t.source_event_id, '-', " + i + ")"
	}
	cols := "station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status, " +
		"emergency, after_hours, auto_answered, assignee_id, level, escalate_at, fence, created_at, closed_at, updated_at"
	q := "INSERT INTO tickets (" + cols + ") SELECT t.station_id, t.number + " + i + ", " + source +
		", t.platform, t.chat_id, t.chat_type, t.resident_id, t.question, t.status, t.emergency, t.after_hours, t.auto_answered, " +
		"t.assignee_id, t.level, t.escalate_at, t.fence, t.created_at, t.closed_at, t.updated_at FROM tickets t, " +
		digits + " a, " + digits + " b, " + digits + " c, " + digits + " e, " + digits + " f WHERE t.id = ? AND " + i + " < ?"
	if _, err := raw.ExecContext(ctx, q, first.ID, n); err != nil {
		b.Fatalf("copy ticket %s: %v", first.SourceEventID, err)
	}
	if rawDriver == "mysql" {
		if _, err := raw.ExecContext(ctx, "UPDATE stations SET next_ticket = (SELECT MAX(number) FROM tickets WHERE station_id = ?) WHERE id = ?",
			first.StationID, first.StationID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitingForShift is the read the shift-start digest pass makes
// per station: the duty account's open tickets, among 100,000 closed ones
// of the same station and account. The pass once read every open ticket of
// the station by station, which walked all of them; the assignee/status
// index reads the open ones only.
func BenchmarkWaitingForShift(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "digest.db")
	o := store.Options{Driver: store.SQLite, DSN: path}
	s := openStore(b, o)
	station, duty := benchStation(ctx, b, s)
	closed := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	first := &store.Ticket{StationID: station, SourceEventID: "closed", Platform: "dingtalk", ChatID: "g1", ChatType: "group",
		ResidentID: "r1", Question: "问", Status: store.StatusClosed, AssigneeID: &duty, CreatedAt: closed, ClosedAt: &closed}
	copyTicket(ctx, b, s, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)", first, dueTimers)
	for i := range 20 {
		t := &store.Ticket{StationID: station, SourceEventID: fmt.Sprint("open-", i), Platform: "dingtalk", ChatID: "g1", ChatType: "group",
			ResidentID: "r1", Question: "问", Status: store.StatusOpen, AssigneeID: &duty}
		if _, _, err := s.CreateTicket(ctx, t, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("duty-account", func(b *testing.B) {
		for range b.N {
			if got, err := s.OpenTicketsFor(ctx, duty); err != nil || len(got) != 20 {
				b.Fatalf("open tickets of the duty account: %d (%v), want 20", len(got), err)
			}
		}
	})
	b.Run("station", func(b *testing.B) {
		for range b.N {
			if got, err := s.OpenTicketsOfStation(ctx, station); err != nil || len(got) != 20 {
				b.Fatalf("open tickets of the station: %d (%v), want 20", len(got), err)
			}
		}
	})
}
