package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
)

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

// Times are stored as the driver formats its parameters: SQLite compares
// them as text, so a time written in another layout (by hand-written SQL,
// or by the driver an older database was written with) would make due
// timers and stats windows miss tickets.
func TestSQLiteStoresTimesAsTheDriverCompares(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, Options{Driver: SQLite, DSN: path})
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

	// The driver formats these parameters itself: equal text matches.
	var n int64
	if err := s.read(ctx).Table("tickets").Where("created_at = ? AND escalate_at = ? AND emergency = ? AND after_hours = ? AND first_response_at IS NULL",
		at.UTC(), due.UTC(), true, false).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("tickets matching the driver's own encoding: %d (%v)", n, err)
	}
	if err := s.read(ctx).Table("ticket_events").Where("at = ?", at.UTC()).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("timeline rows matching the driver's own encoding: %d (%v)", n, err)
	}
	// The text layout is the one existing databases hold (read back with the
	// space replaced, as the driver would otherwise parse it into a time).
	var text string
	if err := s.read(ctx).Raw("SELECT replace(created_at, ' ', '_') FROM tickets WHERE id = ?", tk.ID).Row().Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-23_01:30:15.123456789+00:00"; text != want {
		t.Fatalf("created_at stored as %q, want %q (the layout existing databases hold)", text, want)
	}
	got, err := s.TicketByNumber(ctx, tk.StationID, tk.Number)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tk.ID || got.Number != 1 || got.ResidentName != "居民\x00甲" || got.Question != "楼道里有'焦味'" ||
		!got.CreatedAt.Equal(at) || got.EscalateAt == nil || !got.EscalateAt.Equal(due) || *got.AssigneeID != assignee || !got.Emergency {
		t.Fatalf("read back %+v", got)
	}

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

// A write transaction takes SQLite's write lock when it begins, not at its
// first write: another process on the same file (a CLI command beside the
// hub) then waits for it, where a transaction that had read first would fail
// at its first write once the other had committed.
func TestSQLiteWriteTransactionsHoldTheWriteLockFromTheStart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	s, err := Open(ctx, Options{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	oneStation(t, s)
	// The other process, which gives up at once instead of waiting.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Ticket{}).Count(&n).Error; err != nil { // only read so far
			return err
		}
		_, err := other.ExecContext(ctx, "UPDATE stations SET name = name")
		if err == nil {
			return errors.New("another process wrote while this transaction had only read: its own write may now fail")
		}
		if !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
			return fmt.Errorf("the other process's write failed, but not for the lock: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "UPDATE stations SET name = name"); err != nil {
		t.Fatalf("the other process cannot write after the transaction ended: %v", err)
	}
}

// Every transaction body runs exactly once, also when transactions run
// concurrently (and are committed together) and some of them fail or panic
// after writing: a failed one leaves nothing behind and takes no other down
// with it.
func TestTransactionBodiesRunOnceAndFailAlone(t *testing.T) {
	t.Parallel()
	for name, path := range map[string]string{"file": filepath.Join(t.TempDir(), "tx.db"), "memory": ":memory:"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, Options{Driver: SQLite, DSN: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			station := oneStation(t, s).Stations[0].ID
			const n = 64
			var (
				runs  [n]atomic.Int32
				wg    sync.WaitGroup
				errs  [n]error
				boom  = errors.New("refused after writing")
				start = make(chan struct{})
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = s.tx(ctx, func(tx *gorm.DB) error {
						runs[i].Add(1)
						tk := &Ticket{StationID: station, SourceEventID: fmt.Sprint("e", i), Platform: "playground", ChatID: "g",
							ChatType: "group", ResidentID: "r", Question: "问", Status: StatusOpen}
						if err := s.insertTicket(tx, tk); err != nil {
							return err
						}
						if err := s.insertTimeline(tx, tk.ID, []TicketEvent{{Kind: TLAsked}}); err != nil {
							return err
						}
						switch i % 8 {
						case 0, 4:
							return boom
						case 5:
							panic("a bug in a handler")
						}
						return nil
					})
				}()
			}
			close(start)
			wg.Wait()
			for i := range n {
				if r := runs[i].Load(); r != 1 {
					t.Errorf("body %d ran %d times", i, r)
				}
				switch i % 8 {
				case 0, 4:
					if !errors.Is(errs[i], boom) {
						t.Errorf("body %d failed, its caller got %v", i, errs[i])
					}
				case 5:
					if errs[i] == nil || !strings.Contains(errs[i].Error(), "panicked") {
						t.Errorf("body %d panicked, its caller got %v", i, errs[i])
					}
				default:
					if errs[i] != nil {
						t.Errorf("body %d succeeded, its caller got %v", i, errs[i])
					}
				}
			}
			var tickets, events int64
			if err := s.read(ctx).Model(&Ticket{}).Count(&tickets).Error; err != nil {
				t.Fatal(err)
			}
			if err := s.read(ctx).Model(&TicketEvent{}).Count(&events).Error; err != nil {
				t.Fatal(err)
			}
			if want := int64(n - 3*n/8); tickets != want || events != want {
				t.Fatalf("%d tickets and %d timeline rows kept, want %d of each", tickets, events, want)
			}
			var top int64
			if err := s.read(ctx).Model(&Ticket{}).Select("MAX(number)").Row().Scan(&top); err != nil {
				t.Fatal(err)
			}
			if top != tickets {
				t.Fatalf("ticket numbers run up to %d for %d tickets: a failed transaction left a gap", top, tickets)
			}
		})
	}
}
