package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026112801 adds fraud-alert broadcasts and their per-group
// deliveries.
func migrate2026112801() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026112801_broadcasts",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&broadcast2026112801{}, &delivery2026112801{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&delivery2026112801{}, &broadcast2026112801{})
		},
	}
}

type broadcast2026112801 struct {
	ID             uint `gorm:"primaryKey"`
	AuthorID       *uint
	Author         string `gorm:"size:128;not null"`
	StationID      *uint
	Scope          string `gorm:"size:512;not null"`
	Text           string `gorm:"type:text;not null"`
	Status         string `gorm:"size:16;not null;index"`
	Total          int    `gorm:"not null"`
	ReportPlatform string `gorm:"size:16"`
	ReportUser     string `gorm:"size:128"`
	Round          int    `gorm:"not null;default:0"`
	CreatedAt      time.Time
	ConfirmedAt    *time.Time
	CancelledAt    *time.Time
	FinishedAt     *time.Time
	ReportedAt     *time.Time
	UpdatedAt      time.Time
}

func (broadcast2026112801) TableName() string { return "broadcasts" }

type delivery2026112801 struct {
	ID          uint      `gorm:"primaryKey"`
	BroadcastID uint      `gorm:"not null;uniqueIndex:ux_delivery_group;index:ix_delivery_due,priority:2"`
	GroupID     uint      `gorm:"not null;uniqueIndex:ux_delivery_group"`
	Platform    string    `gorm:"size:16;not null;index:ix_delivery_due,priority:1"`
	ChatID      string    `gorm:"size:128;not null"`
	Status      string    `gorm:"size:16;not null;index:ix_delivery_due,priority:3"`
	DueAt       time.Time `gorm:"not null"`
	LeaseUntil  *time.Time
	Attempts    int    `gorm:"not null;default:0"`
	MessageID   string `gorm:"size:191"`
	Reason      string `gorm:"type:text"`
	SentAt      *time.Time
	UpdatedAt   time.Time
}

func (delivery2026112801) TableName() string { return "deliveries" }
