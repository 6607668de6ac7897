package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateTicket numbers and inserts t with its first timeline entries in one
// transaction. If a ticket for t.SourceEventID exists already (the platform
// redelivered the message) it returns that one and created == false, so the
// caller can repeat its side effects idempotently instead of making another.
func (s *Store) CreateTicket(ctx context.Context, t *Ticket, timeline []TicketEvent) (out *Ticket, created bool, err error) {
	t.utc()
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.nextNumber(tx, t); err != nil {
			return err
		}
		if err := tx.Create(t).Error; err != nil {
			return fmt.Errorf("insert ticket: %w", err)
		}
		return insertTimeline(tx, t.ID, timeline)
	})
	if err == nil {
		return t, true, nil
	}
	// A unique-key clash on the source event means a concurrent or earlier
	// delivery won; anything else is a real failure.
	existing, lookErr := s.TicketBySource(ctx, t.SourceEventID)
	if lookErr == nil {
		return existing, false, nil
	}
	return nil, false, err
}

// utc stores every time of t in UTC. SQLite keeps times as text and
// compares them as text, so a time in another zone (time.Now() on a server
// set to Asia/Shanghai) would compare by its clock reading, not its instant.
func (t *Ticket) utc() {
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	for _, p := range []**time.Time{&t.EscalateAt, &t.FirstResponseAt, &t.ClosedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
}

// nextNumber bumps the station's counter inside the ticket's transaction:
// the row lock (MySQL) or the single writer (SQLite) keeps numbers unique
// and gap-free. SQLite does it in one statement with RETURNING.
func (s *Store) nextNumber(tx *gorm.DB, t *Ticket) error {
	if s.driver == SQLite {
		if err := tx.Raw("UPDATE stations SET next_ticket = next_ticket + 1 WHERE id = ? RETURNING next_ticket", t.StationID).Scan(&t.Number).Error; err != nil {
			return fmt.Errorf("number ticket: %w", err)
		}
	} else {
		if err := tx.Model(&Station{}).Where("id = ?", t.StationID).
			Update("next_ticket", gorm.Expr("next_ticket + 1")).Error; err != nil {
			return fmt.Errorf("number ticket: %w", err)
		}
		if err := tx.Model(&Station{}).Where("id = ?", t.StationID).Pluck("next_ticket", &t.Number).Error; err != nil {
			return fmt.Errorf("number ticket: %w", err)
		}
	}
	if t.Number == 0 {
		return fmt.Errorf("number ticket: station %d does not exist", t.StationID)
	}
	return nil
}

func insertTimeline(tx *gorm.DB, ticketID uint, timeline []TicketEvent) error {
	if len(timeline) == 0 {
		return nil
	}
	for i := range timeline {
		timeline[i].TicketID = ticketID
		if timeline[i].At.IsZero() {
			timeline[i].At = tx.NowFunc()
		}
		timeline[i].At = timeline[i].At.UTC()
	}
	if err := tx.Create(&timeline).Error; err != nil {
		return fmt.Errorf("insert timeline of ticket %d: %w", ticketID, err)
	}
	return nil
}

// TicketBySource finds the ticket a bus event created.
func (s *Store) TicketBySource(ctx context.Context, eventID string) (*Ticket, error) {
	var t Ticket
	err := s.db.WithContext(ctx).Where("source_event_id = ?", eventID).Take(&t).Error
	return one(&t, err, "ticket from event "+eventID)
}

// TicketByNumber finds a station's ticket by its number.
func (s *Store) TicketByNumber(ctx context.Context, stationID uint, number int64) (*Ticket, error) {
	var t Ticket
	err := s.db.WithContext(ctx).Where("station_id = ? AND number = ?", stationID, number).Take(&t).Error
	return one(&t, err, fmt.Sprintf("ticket #%d", number))
}

// TicketsByNumber finds every station's ticket with this number, for an
// officer reply that must be matched against the officer's own station.
func (s *Store) TicketsByNumber(ctx context.Context, number int64) ([]Ticket, error) {
	var out []Ticket
	if err := s.db.WithContext(ctx).Where("number = ?", number).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("find ticket #%d: %w", number, err)
	}
	return out, nil
}

func one[T any](v *T, err error, what string) (*T, error) {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	return v, nil
}

// ErrStale is returned by a Transition whose decision was made on a version
// of the ticket that changed meanwhile.
var ErrStale = errors.New("ticket changed meanwhile")

// Transition loads ticket id under a row lock, lets decide mutate it and name
// the timeline entries, and saves both in one transaction. Every transition
// bumps Fence, which is what makes escalation timers fire at most once.
func (s *Store) Transition(ctx context.Context, id uint, decide func(t *Ticket) ([]TicketEvent, error)) (*Ticket, error) {
	var t Ticket
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.lock(tx).Where("id = ?", id).Take(&t).Error; err != nil {
			_, err = one(&t, err, fmt.Sprintf("ticket %d", id))
			return err
		}
		timeline, err := decide(&t)
		if err != nil {
			return err
		}
		t.utc()
		t.Fence++
		// Only the columns a transition may change: fewer index updates.
		if err := tx.Model(&t).Select(transitionColumns).Updates(&t).Error; err != nil {
			return fmt.Errorf("save ticket %d: %w", id, err)
		}
		return insertTimeline(tx, t.ID, timeline)
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// transitionColumns are the ticket fields a Transition may change; the
// question, its chat and its number never change after filing.
var transitionColumns = []string{"Status", "AssigneeID", "Level", "EscalateAt", "Fence", "FirstResponseAt", "AnsweredBy", "ClosedAt", "AutoAnswered", "UpdatedAt"}

// AppendTimeline adds entries to a ticket without changing it (a follow-up
// message from a throttled resident, a page sent).
func (s *Store) AppendTimeline(ctx context.Context, id uint, timeline ...TicketEvent) error {
	return s.tx(ctx, func(tx *gorm.DB) error { return insertTimeline(tx, id, timeline) })
}

// lock adds FOR UPDATE where the database has it; SQLite's single writer
// connection already serialises transactions.
func (s *Store) lock(tx *gorm.DB) *gorm.DB {
	if s.driver == MySQL {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// FireDue claims up to limit tickets whose escalation timer is due and runs
// fire on each, inside one transaction per ticket. On MySQL the rows are
// claimed with SKIP LOCKED, so several workers share due timers without
// waiting on each other; the fence check in Transition makes a step that
// another worker already took fail with ErrStale instead of firing twice.
func (s *Store) FireDue(ctx context.Context, now time.Time, limit int, fire func(t *Ticket) ([]TicketEvent, error)) (int, error) {
	now = now.UTC()
	var due []Ticket
	q := s.db.WithContext(ctx).Where("escalate_at IS NOT NULL AND escalate_at <= ? AND status IN ?", now, []string{StatusOpen, StatusClaimed}).
		Order("escalate_at").Limit(limit)
	if s.driver == MySQL {
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	if err := q.Find(&due).Error; err != nil {
		return 0, fmt.Errorf("find due timers: %w", err)
	}
	fired := 0
	for _, d := range due {
		fence := d.Fence
		_, err := s.Transition(ctx, d.ID, func(t *Ticket) ([]TicketEvent, error) {
			if t.Fence != fence || t.EscalateAt == nil || t.EscalateAt.After(now) {
				return nil, ErrStale
			}
			return fire(t)
		})
		switch {
		case err == nil:
			fired++
		case errors.Is(err, ErrStale):
		default:
			return fired, fmt.Errorf("fire timer of ticket %d: %w", d.ID, err)
		}
	}
	return fired, nil
}

// OpenTicketsFor lists unanswered tickets an officer must handle.
func (s *Store) OpenTicketsFor(ctx context.Context, officerID uint) ([]Ticket, error) {
	var out []Ticket
	err := s.db.WithContext(ctx).Where("assignee_id = ? AND status IN ?", officerID, []string{StatusOpen, StatusClaimed}).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list open tickets of officer %d: %w", officerID, err)
	}
	return out, nil
}

// OpenTicketsOfStation lists a station's unanswered tickets.
func (s *Store) OpenTicketsOfStation(ctx context.Context, stationID uint) ([]Ticket, error) {
	var out []Ticket
	err := s.db.WithContext(ctx).Where("station_id = ? AND status IN ?", stationID, []string{StatusOpen, StatusClaimed}).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list open tickets of station %d: %w", stationID, err)
	}
	return out, nil
}

// LatestTicketOf finds a resident's most recent ticket in a chat.
func (s *Store) LatestTicketOf(ctx context.Context, platform, chatID, residentID string) (*Ticket, error) {
	var t Ticket
	err := s.db.WithContext(ctx).Where("platform = ? AND chat_id = ? AND resident_id = ?", platform, chatID, residentID).
		Order("id desc").Take(&t).Error
	return one(&t, err, "latest ticket of resident")
}

// Timeline lists a ticket's entries in order.
func (s *Store) Timeline(ctx context.Context, ticketID uint) ([]TicketEvent, error) {
	var out []TicketEvent
	if err := s.db.WithContext(ctx).Where("ticket_id = ?", ticketID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("load timeline of ticket %d: %w", ticketID, err)
	}
	return out, nil
}

// TicketsCreated lists tickets created in [from, to), optionally of one station.
func (s *Store) TicketsCreated(ctx context.Context, stationID uint, from, to time.Time) ([]Ticket, error) {
	var out []Ticket
	q := s.db.WithContext(ctx).Where("created_at >= ? AND created_at < ?", from.UTC(), to.UTC())
	if stationID != 0 {
		q = q.Where("station_id = ?", stationID)
	}
	if err := q.Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// CountTickets counts every ticket (the bench checks none was lost or doubled).
func (s *Store) CountTickets(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&Ticket{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	return n, nil
}
