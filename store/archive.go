package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ArchiveCursor is where the WeCom conversation-archive reader of one corp
// has read to: the last sequence number it recorded. TroubleFrom is when
// the current trouble (a gap in the sequence, pull errors) began, nil while
// all is well; AlertedAt says the admins were told of it.
type ArchiveCursor struct {
	ID          uint   `gorm:"primaryKey"`
	Corp        string `gorm:"size:64;not null;uniqueIndex"`
	Seq         uint64 `gorm:"not null;default:0"`
	TroubleFrom *time.Time
	Trouble     string `gorm:"type:text"`
	UpdatedAt   time.Time
}

// Archived message states.
const (
	// ArchivePublished: normalised and handed to the rules.
	ArchivePublished = "published"
	// ArchiveUndecryptable: the archive returned it but it could not be
	// decrypted (unknown key version, corrupt data); Reason says why.
	ArchiveUndecryptable = "undecryptable"
	// ArchiveSkipped: not for the rules (a one-to-one chat, a recall, a
	// chat switch marker).
	ArchiveSkipped = "skipped"
)

// ArchivedMessage is one message the archive reader took, by the
// platform's msgid: unique, so a message pulled again after a restart is
// never handled twice. It keeps no words and no sender, only where and
// when, and what became of it.
type ArchivedMessage struct {
	ID      uint      `gorm:"primaryKey"`
	Corp    string    `gorm:"size:64;not null"`
	MsgID   string    `gorm:"size:191;not null;uniqueIndex"`
	Seq     uint64    `gorm:"not null;index"`
	RoomID  string    `gorm:"size:128"`
	Status  string    `gorm:"size:16;not null"`
	Reason  string    `gorm:"type:text"`
	MsgTime time.Time `gorm:"not null"`
	TakenAt time.Time `gorm:"not null"`
}

// ErrCursorMoved: another reader recorded past the sequence this one
// started its pull from; its pull is dropped and it reads on from the new
// cursor.
var ErrCursorMoved = errors.New("archive cursor moved under this reader")

// ArchiveSeq is where corp's archive reader goes on from (0: the start).
func (s *Store) ArchiveSeq(ctx context.Context, corp string) (uint64, error) {
	var c ArchiveCursor
	err := s.read(ctx).Where("corp = ?", corp).Limit(1).Find(&c).Error
	if err != nil {
		return 0, fmt.Errorf("read archive cursor of %s: %w", corp, err)
	}
	return c.Seq, nil
}

// ArchiveCursorOf is corp's cursor row (a zero one before the first pull).
func (s *Store) ArchiveCursorOf(ctx context.Context, corp string) (ArchiveCursor, error) {
	var c ArchiveCursor
	if err := s.read(ctx).Where("corp = ?", corp).Limit(1).Find(&c).Error; err != nil {
		return c, fmt.Errorf("read archive cursor of %s: %w", corp, err)
	}
	return c, nil
}

// RecordArchive records what one pull took and moves corp's cursor from
// from to to, in one transaction: the cursor never passes a message that
// is not recorded. A message recorded before (a pull repeated after a
// crash) is skipped. If the cursor is no longer at from, nothing is
// written: ErrCursorMoved.
func (s *Store) RecordArchive(ctx context.Context, corp string, from, to uint64, msgs []ArchivedMessage) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "corp"}}, DoNothing: true}).
			Create(&ArchiveCursor{Corp: corp, UpdatedAt: now}).Error; err != nil {
			return fmt.Errorf("create archive cursor of %s: %w", corp, err)
		}
		res := tx.Model(&ArchiveCursor{}).Where("corp = ? AND seq = ?", corp, from).
			Updates(map[string]any{"seq": to, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("move archive cursor of %s to %d: %w", corp, to, res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrCursorMoved
		}
		if len(msgs) == 0 {
			return nil
		}
		for i := range msgs {
			msgs[i].ID, msgs[i].Corp = 0, corp
			msgs[i].MsgTime, msgs[i].TakenAt = msgs[i].MsgTime.UTC(), now
		}
		ignore := clause.OnConflict{Columns: []clause.Column{{Name: "msg_id"}}, DoNothing: true}
		if err := tx.Clauses(ignore).CreateInBatches(msgs, 100).Error; err != nil {
			return fmt.Errorf("record %d archived messages: %w", len(msgs), err)
		}
		return nil
	})
}

// ArchiveTaken reports which of msgIDs are recorded already.
func (s *Store) ArchiveTaken(ctx context.Context, msgIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(msgIDs) == 0 {
		return out, nil
	}
	var got []string
	if err := s.read(ctx).Model(&ArchivedMessage{}).Where("msg_id IN ?", msgIDs).Pluck("msg_id", &got).Error; err != nil {
		return nil, fmt.Errorf("look up %d archived messages: %w", len(msgIDs), err)
	}
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// ArchivedMessages lists corp's recorded messages of one status, oldest first.
func (s *Store) ArchivedMessages(ctx context.Context, corp, status string) ([]ArchivedMessage, error) {
	var out []ArchivedMessage
	if err := s.read(ctx).Where("corp = ? AND status = ?", corp, status).Order("seq").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list %s archived messages: %w", status, err)
	}
	return out, nil
}

// ArchiveTrouble notes that corp's reader is in trouble (reason) as of at,
// or (reason "") that it is well again, and reports since when the current
// trouble has lasted (zero when well). The admins' alert is keyed by that
// time, so one trouble is told once however many pulls fail.
func (s *Store) ArchiveTrouble(ctx context.Context, corp, reason string, at time.Time) (time.Time, error) {
	at = at.UTC()
	var since time.Time
	err := s.tx(ctx, func(tx *gorm.DB) error {
		since = time.Time{}
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "corp"}}, DoNothing: true}).
			Create(&ArchiveCursor{Corp: corp, UpdatedAt: at}).Error; err != nil {
			return fmt.Errorf("create archive cursor of %s: %w", corp, err)
		}
		var c ArchiveCursor
		if err := tx.Where("corp = ?", corp).First(&c).Error; err != nil {
			return fmt.Errorf("read archive cursor of %s: %w", corp, err)
		}
		fields := map[string]any{"updated_at": at}
		switch {
		case reason == "":
			fields["trouble_from"], fields["trouble"] = nil, ""
		case c.TroubleFrom != nil:
			since = c.TroubleFrom.UTC()
			fields["trouble"] = reason
		default:
			since = at
			fields["trouble_from"], fields["trouble"] = at, reason
		}
		if err := tx.Model(&ArchiveCursor{}).Where("id = ?", c.ID).Updates(fields).Error; err != nil {
			return fmt.Errorf("note archive trouble of %s: %w", corp, err)
		}
		return nil
	})
	return since, err
}

// TLAnswerPrepared is a timeline line: an officer's answer to a
// customer-group ticket, kept for them to send with one tap.
const TLAnswerPrepared = "answer_prepared"

// OpenTicketsInChat lists one chat's unanswered tickets, oldest first.
func (s *Store) OpenTicketsInChat(ctx context.Context, platform, chatID string) ([]Ticket, error) {
	var out []Ticket
	err := s.read(ctx).Where("platform = ? AND chat_id = ? AND status IN ?", platform, chatID, []string{StatusOpen, StatusClaimed}).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list open tickets of chat %s %s: %w", platform, chatID, err)
	}
	return out, nil
}

// SentByHand records messages that waited for a person as sent: the
// archive shows them in their group (messageID is the archive's msgid).
func (s *Store) SentByHand(ctx context.Context, ids []uint, messageID string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	at = at.UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Model(&OutboundMessage{}).Where("id IN ? AND state = ?", ids, OutboundAwaitingHuman).
			Updates(map[string]any{"state": OutboundSent, "message_id": messageID, "sent_at": at, "updated_at": at}).Error
		if err != nil {
			return fmt.Errorf("record %d messages sent by hand: %w", len(ids), err)
		}
		return nil
	})
}

// AwaitingHuman lists the messages waiting for a person's tap in one chat
// whose tickets are still open, oldest first: what the chat-toolbar page
// offers to send.
func (s *Store) AwaitingHuman(ctx context.Context, platform, chatID string) ([]OutboundMessage, []Ticket, error) {
	tickets, err := s.OpenTicketsInChat(ctx, platform, chatID)
	if err != nil || len(tickets) == 0 {
		return nil, nil, err
	}
	ids := make([]uint, len(tickets))
	for i, t := range tickets {
		ids[i] = t.ID
	}
	var msgs []OutboundMessage
	err = s.read(ctx).Where("ticket_id IN ? AND state = ? AND chat_id = ?", ids, OutboundAwaitingHuman, chatID).Order("id").Find(&msgs).Error
	if err != nil {
		return nil, nil, fmt.Errorf("list messages awaiting a tap in %s %s: %w", platform, chatID, err)
	}
	return msgs, tickets, nil
}
