package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120242 keeps each customer-group member's answer to
// conversation archiving (msgaudit/check_room_agree): a station must know
// whose messages the hub cannot see.
func migrate2026120242() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120242_archive_consent",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&archiveConsent2026120242{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&archiveConsent2026120242{})
		},
	}
}

type archiveConsent2026120242 struct {
	ChatID         string `gorm:"primaryKey;size:128"`
	ExternalUserID string `gorm:"primaryKey;size:128"`
	Agree          bool   `gorm:"not null;index"`
	ChangedAt      time.Time
	CheckedAt      time.Time
}

func (archiveConsent2026120242) TableName() string { return "archive_consents" }
