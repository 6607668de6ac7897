package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120101 makes every message the hub sends a row, written with
// the change that causes it and sent by a relay.
func migrate2026120101() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120101_outbound",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&outbound2026120101{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&outbound2026120101{})
		},
	}
}

// outbound2026120101 is the outbound_messages table as 2026120101 made it.
type outbound2026120101 struct {
	ID          uint   `gorm:"primaryKey"`
	Key         string `gorm:"size:191;not null;uniqueIndex:ux_outbound_key"`
	Purpose     string `gorm:"size:32;not null"`
	TicketID    *uint  `gorm:"index:ix_outbound_ticket"`
	BroadcastID *uint
	OfficerID   *uint
	Platform    string    `gorm:"size:16;not null;index:ix_outbound_due,priority:1"`
	ChatType    string    `gorm:"size:16"`
	ChatID      string    `gorm:"size:128"`
	ChatName    string    `gorm:"size:128"`
	ToUser      string    `gorm:"size:128"`
	Format      string    `gorm:"size:16;not null"`
	Title       string    `gorm:"size:191"`
	Text        string    `gorm:"type:text;not null"`
	AtUsers     string    `gorm:"type:text"`
	ReplyHandle string    `gorm:"type:text"`
	Priority    int       `gorm:"not null;default:0"`
	State       string    `gorm:"size:16;not null;index:ix_outbound_due,priority:2"`
	DueAt       time.Time `gorm:"not null;index:ix_outbound_due,priority:3"`
	LeaseUntil  *time.Time
	Fence       int64  `gorm:"not null;default:0"`
	Attempts    int    `gorm:"not null;default:0"`
	MessageID   string `gorm:"size:191"`
	Reason      string `gorm:"type:text"`
	CreatedAt   time.Time
	SentAt      *time.Time
	UpdatedAt   time.Time
}

func (outbound2026120101) TableName() string { return "outbound_messages" }
