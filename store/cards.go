package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Card is one ticket shown on one delivered card instance (a digest card
// has a row per ticket it lists): a ticket's change finds here every card
// that shows it, and the card's latest state (Card, JSON of bot.Card) to
// redraw it from. Handle is what the platform wants besides Track to update
// the card (WeCom's response_code, usable once; empty when spent).
type Card struct {
	ID        uint   `gorm:"primaryKey"`
	Track     string `gorm:"size:128;not null;uniqueIndex:ux_card_ticket,priority:1"`
	TicketID  uint   `gorm:"not null;uniqueIndex:ux_card_ticket,priority:2;index:ix_card_ticket"`
	Platform  string `gorm:"size:16;not null"`
	Card      string `gorm:"type:text;not null"`
	Handle    string `gorm:"size:512"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// writeCards records the cards msgs carry, in their transaction: a new
// card's rows, or a card's new state over its rows (the handle is kept).
func (s *Store) writeCards(tx *gorm.DB, msgs []OutboundMessage) error {
	var cards []Card
	for i := range msgs {
		cards = append(cards, msgs[i].Cards...)
	}
	if len(cards) == 0 {
		return nil
	}
	now := tx.NowFunc()
	for i := range cards {
		cards[i].ID, cards[i].CreatedAt, cards[i].UpdatedAt = 0, now, now
	}
	upsert := clause.OnConflict{
		Columns:   []clause.Column{{Name: "track"}, {Name: "ticket_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"card", "updated_at"}),
	}
	if err := tx.Clauses(upsert).Create(&cards).Error; err != nil {
		return fmt.Errorf("write cards: %w", err)
	}
	return nil
}

// CardsOfTicket lists the cards that show a ticket.
func (s *Store) CardsOfTicket(ctx context.Context, ticketID uint) ([]Card, error) {
	var out []Card
	if err := s.read(ctx).Where("ticket_id = ?", ticketID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list cards of ticket %d: %w", ticketID, err)
	}
	return out, nil
}

// CardsByTrack lists a card instance's rows, one per ticket it shows: each
// row is the truth about its own ticket's item (changes to two tickets of
// one card are written by two transactions, each to its own row).
func (s *Store) CardsByTrack(ctx context.Context, track string) ([]Card, error) {
	var out []Card
	if err := s.read(ctx).Where("track = ?", track).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list card %s: %w", track, err)
	}
	return out, nil
}

// SetCardHandle keeps the platform's fresh handle to update a card with
// (a press's ResponseCode).
func (s *Store) SetCardHandle(ctx context.Context, track, handle string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Card{}).Where("track = ?", track).Updates(map[string]any{"handle": handle, "updated_at": tx.NowFunc()}).Error
	})
}

// SpendCardHandle forgets a handle once used (WeCom takes each once); a
// newer handle set meanwhile stays.
func (s *Store) SpendCardHandle(ctx context.Context, track, handle string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Card{}).Where("track = ? AND handle = ?", track, handle).Updates(map[string]any{"handle": "", "updated_at": tx.NowFunc()}).Error
	})
}

// APIUsage counts one app's platform API calls in one month (Asia/Shanghai
// calendar month, "2026-11") against its budget: Held counts the sends held
// back or degraded to save calls; WarnedAt and OverAt say the admins were
// told of 80% and of 100%, so each is told once.
type APIUsage struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_api_usage,priority:1"`
	App       string `gorm:"size:128;not null;uniqueIndex:ux_api_usage,priority:2"`
	Month     string `gorm:"size:7;not null;uniqueIndex:ux_api_usage,priority:3"`
	Calls     int64  `gorm:"not null;default:0"`
	Held      int64  `gorm:"not null;default:0"`
	WarnedAt  *time.Time
	OverAt    *time.Time
	UpdatedAt time.Time
}

// AddAPIUsage adds calls and held sends to an app's month and returns the
// month's totals.
func (s *Store) AddAPIUsage(ctx context.Context, platform, app, month string, calls, held int64) (APIUsage, error) {
	var u APIUsage
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := tx.NowFunc()
		row := APIUsage{Platform: platform, App: app, Month: month, Calls: calls, Held: held, UpdatedAt: now}
		up := clause.OnConflict{
			Columns: []clause.Column{{Name: "platform"}, {Name: "app"}, {Name: "month"}},
			DoUpdates: clause.Assignments(map[string]any{
				"calls": gorm.Expr("calls + ?", calls), "held": gorm.Expr("held + ?", held), "updated_at": now,
			}),
		}
		if err := tx.Clauses(up).Create(&row).Error; err != nil {
			return err
		}
		return tx.Where("platform = ? AND app = ? AND month = ?", platform, app, month).Take(&u).Error
	})
	if err != nil {
		return u, fmt.Errorf("count api calls of %s %s: %w", platform, app, err)
	}
	return u, nil
}

// MarkAPIUsage sets the month's WarnedAt (over false) or OverAt (over
// true) once: fresh reports that this call set it, so one process tells
// the admins.
func (s *Store) MarkAPIUsage(ctx context.Context, platform, app, month string, over bool, outbound ...OutboundMessage) (fresh bool, err error) {
	col := "warned_at"
	if over {
		col = "over_at"
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		now := tx.NowFunc()
		res := tx.Model(&APIUsage{}).Where("platform = ? AND app = ? AND month = ? AND "+col+" IS NULL", platform, app, month).
			Updates(map[string]any{col: now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		fresh = true
		if err := s.insertOutbound(tx, outbound); err != nil && !errors.Is(err, ErrDuplicate) {
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mark api usage of %s %s: %w", platform, app, err)
	}
	return fresh, nil
}

// APIUsageOf lists the months counted, newest first.
func (s *Store) APIUsageOf(ctx context.Context, platform string) ([]APIUsage, error) {
	var out []APIUsage
	q := s.read(ctx).Order("month DESC, platform, app")
	if platform != "" {
		q = q.Where("platform = ?", platform)
	}
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list api usage: %w", err)
	}
	return out, nil
}

// TableName keeps the table's name as its migration made it.
func (APIUsage) TableName() string { return "api_usage" }
