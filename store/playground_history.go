package store

import (
	"context"
	"fmt"
	"slices"
)

// SentToChat lists the last limit messages sent on platform into one chat,
// oldest first: what a chat's transcript showed, read back after a restart
// (the playground keeps its transcripts in memory). For a direct chat
// (chatType "direct", chatID the user) it lists both the replies posted in
// that chat and the direct messages addressed to the user, which are the
// same conversation on every platform.
func (s *Store) SentToChat(ctx context.Context, platform, chatType, chatID string, limit int) ([]OutboundMessage, error) {
	q := s.read(ctx).Where("platform = ? AND state = ?", platform, OutboundSent)
	if chatType == "direct" {
		q = q.Where("((chat_type = ? AND chat_id = ?) OR (chat_id = '' AND to_user = ?))", chatType, chatID, chatID)
	} else {
		q = q.Where("chat_type = ? AND chat_id = ?", chatType, chatID)
	}
	var out []OutboundMessage
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list messages sent to %s %s %s: %w", platform, chatType, chatID, err)
	}
	slices.Reverse(out)
	return out, nil
}

// TicketsFromChat lists the last limit tickets filed from one chat, oldest
// first: the residents' questions, the one part of a chat's residents'
// words the hub keeps.
func (s *Store) TicketsFromChat(ctx context.Context, platform, chatType, chatID string, limit int) ([]Ticket, error) {
	var out []Ticket
	err := s.read(ctx).Where("platform = ? AND chat_type = ? AND chat_id = ?", platform, chatType, chatID).
		Order("id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list tickets from %s %s %s: %w", platform, chatType, chatID, err)
	}
	slices.Reverse(out)
	return out, nil
}

// TicketsByID loads the tickets with these row ids, in id order; ids with no
// ticket are left out.
func (s *Store) TicketsByID(ctx context.Context, ids []uint) ([]Ticket, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []Ticket
	if err := s.read(ctx).Where("id IN ?", ids).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("load %d tickets by id: %w", len(ids), err)
	}
	return out, nil
}
