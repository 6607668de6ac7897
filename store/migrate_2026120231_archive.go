package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120231 adds what the WeCom conversation-archive reader keeps:
// its sequence number per corp (with how long a gap or a pull error has
// lasted, for the admins' alert) and one row per archived message it took,
// so a message is never handled twice and one it could not decrypt is
// recorded with the reason.
func migrate2026120231() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120231_archive",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&archiveCursor2026120231{}, &archivedMessage2026120231{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&archivedMessage2026120231{}, &archiveCursor2026120231{})
		},
	}
}

type archiveCursor2026120231 struct {
	ID          uint   `gorm:"primaryKey"`
	Corp        string `gorm:"size:64;not null;uniqueIndex"`
	Seq         uint64 `gorm:"not null;default:0"`
	TroubleFrom *time.Time
	Trouble     string `gorm:"type:text"`
	UpdatedAt   time.Time
}

func (archiveCursor2026120231) TableName() string { return "archive_cursors" }

type archivedMessage2026120231 struct {
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

func (archivedMessage2026120231) TableName() string { return "archived_messages" }
