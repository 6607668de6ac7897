package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ArchiveConsent is one customer-group member's answer to conversation
// archiving, as WeCom last reported it: those who refused are not archived,
// so the hub sees none of their messages.
type ArchiveConsent struct {
	ChatID         string `gorm:"primaryKey;size:128"`
	ExternalUserID string `gorm:"primaryKey;size:128"`
	Agree          bool   `gorm:"not null;index"`
	ChangedAt      time.Time
	CheckedAt      time.Time
}

func (ArchiveConsent) TableName() string { return "archive_consents" }

// SaveRoomConsent replaces what is known of one group's consent with the
// answer checked at `at`: members who left are forgotten.
func (s *Store) SaveRoomConsent(ctx context.Context, chatID string, members []ArchiveConsent, at time.Time) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("chat_id = ?", chatID).Delete(&ArchiveConsent{}).Error; err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
		rows := make([]ArchiveConsent, len(members))
		for i, m := range members {
			m.ChatID, m.CheckedAt = chatID, at
			rows[i] = m
		}
		return tx.CreateInBatches(rows, 200).Error
	})
	if err != nil {
		return fmt.Errorf("save archive consent of %s: %w", chatID, err)
	}
	return nil
}

// ArchiveRefusals lists the members who refused archiving, by group.
func (s *Store) ArchiveRefusals(ctx context.Context) ([]ArchiveConsent, error) {
	var out []ArchiveConsent
	if err := s.read(ctx).Where("agree = ?", false).Order("chat_id, external_user_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list archive refusals: %w", err)
	}
	return out, nil
}
