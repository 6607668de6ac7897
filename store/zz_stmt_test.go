package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"
)

func BenchmarkZZInsert(b *testing.B) {
	ctx := context.Background()
	n := 0
	mk := func() *Ticket {
		n++
		now := time.Now()
		return &Ticket{StationID: 1, SourceEventID: fmt.Sprint("e", n), Platform: "p", ChatID: "c", ChatType: "group", ResidentID: "r", Question: "楼道里电动车充电很危险，能不能管一管", Status: StatusOpen, EscalateAt: &now, AssigneeID: new(uint)}
	}
	for _, v := range []struct {
		name string
		f    func(s *Store, tx *gorm.DB) error
	}{
		{"insertTicket", func(s *Store, tx *gorm.DB) error { return s.insertTicket(tx, mk()) }},
		{"timeline4", func(s *Store, tx *gorm.DB) error {
			return insertTimeline(tx, 1, []TicketEvent{{Kind: TLAsked}, {Kind: TLAssigned, Detail: "own_officer：王建国"}, {Kind: TLAcknowledged}, {Kind: TLNotified}})
		}},
		{"valuesSubquery", func(s *Store, tx *gorm.DB) error {
			t := mk()
			return tx.Exec("INSERT INTO tickets (station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status, escalate_at, assignee_id, created_at, updated_at, emergency, after_hours, auto_answered, level, fence) VALUES (?,COALESCE((SELECT number FROM tickets WHERE station_id = ? ORDER BY number DESC LIMIT 1), 0) + 1,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
				t.StationID, t.StationID, t.SourceEventID, t.Platform, t.ChatID, t.ChatType, t.ResidentID, t.Question, t.Status, t.EscalateAt, 0, time.Now(), time.Now(), false, false, false, 0, 0).Error
		}},
		{"valuesReturning", func(s *Store, tx *gorm.DB) error {
			t := mk()
			return tx.Raw("INSERT INTO tickets (station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status, escalate_at, assignee_id, created_at, updated_at, emergency, after_hours, auto_answered, level, fence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id, number",
				t.StationID, n, t.SourceEventID, t.Platform, t.ChatID, t.ChatType, t.ResidentID, t.Question, t.Status, t.EscalateAt, 0, time.Now(), time.Now(), false, false, false, 0, 0).Row().Scan(&t.ID, &t.Number)
		}},
		{"rawValues", func(s *Store, tx *gorm.DB) error {
			t := mk()
			return tx.Exec("INSERT INTO tickets (station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status, escalate_at, assignee_id, created_at, updated_at, emergency, after_hours, auto_answered, level, fence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
				t.StationID, n, t.SourceEventID, t.Platform, t.ChatID, t.ChatType, t.ResidentID, t.Question, t.Status, t.EscalateAt, 0, time.Now(), time.Now(), false, false, false, 0, 0).Error
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			s, err := Open(ctx, Options{Driver: SQLite, DSN: filepath.Join(b.TempDir(), "x.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Sync(ctx, Seed{Stations: []SeedStation{{Code: "s", Name: "s", SLAMinutes: 1}}})
			s.tx(ctx, func(tx *gorm.DB) error {
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := v.f(s, tx); err != nil {
						b.Error(err)
						return nil
					}
				}
				return nil
			})
		})
	}
}
