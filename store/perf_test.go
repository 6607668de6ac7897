package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jingminhub/jingmin/store"
)

func benchStore(b *testing.B) (*store.Store, uint) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	seed := store.Seed{
		Stations: []store.SeedStation{{Code: "s", Name: "所", SLAMinutes: 15, DutyAccount: "duty"}},
		Officers: []store.SeedOfficer{{Code: "duty", Station: "s", Name: "值班号", Roles: []string{store.RoleDutyAccount}}},
	}
	if err := s.Sync(ctx, seed); err != nil {
		b.Fatal(err)
	}
	d, err := s.LoadDirectory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return s, d.Stations[0].ID
}

// BenchmarkCreateTicket is the store's share of filing one question.
func BenchmarkCreateTicket(b *testing.B) {
	s, station := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := &store.Ticket{StationID: station, SourceEventID: fmt.Sprint("e", i), Platform: "playground", ChatID: "g1", ChatType: "group",
			ResidentID: "r1", Question: "楼道里电动车充电很危险，能不能管一管", Status: store.StatusOpen}
		tl := []store.TicketEvent{{Kind: store.TLAsked}, {Kind: store.TLAssigned}, {Kind: store.TLAcknowledged}, {Kind: store.TLNotified}}
		if _, _, err := s.CreateTicket(ctx, t, tl, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransition is the store's share of an officer's answer.
func BenchmarkTransition(b *testing.B) {
	s, station := benchStore(b)
	ctx := context.Background()
	t := &store.Ticket{StationID: station, SourceEventID: "e", Platform: "playground", ChatID: "g1", ChatType: "group", ResidentID: "r1", Question: "问", Status: store.StatusOpen}
	if _, _, err := s.CreateTicket(ctx, t, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := s.Transition(ctx, t.ID, func(t *store.Ticket) (store.Change, error) {
			t.Status = store.StatusAnswered
			return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLAnswered, Detail: "已处理"}}}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
