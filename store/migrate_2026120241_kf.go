package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120241 adds WeChat customer service (微信客服): the sync_msg
// cursor of each customer-service account, each resident's conversation
// (the group it was opened from, the 48-hour window and the answers spent
// in it), and the contact link made for each group.
func migrate2026120241() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120241_kf",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&kfCursor2026120241{}, &kfSession2026120241{}, &kfLink2026120241{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&kfCursor2026120241{}, &kfSession2026120241{}, &kfLink2026120241{})
		},
	}
}

type kfCursor2026120241 struct {
	OpenKFID  string `gorm:"column:open_kfid;primaryKey;size:64"`
	Cursor    string `gorm:"column:next_cursor;size:128;not null"`
	UpdatedAt time.Time
}

func (kfCursor2026120241) TableName() string { return "kf_cursors" }

type kfSession2026120241 struct {
	OpenKFID       string `gorm:"column:open_kfid;primaryKey;size:64"`
	ExternalUserID string `gorm:"primaryKey;size:128"`
	Scene          string `gorm:"size:32;not null;default:''"`
	LastInAt       *time.Time
	Answers        int `gorm:"not null;default:0"`
	UpdatedAt      time.Time
}

func (kfSession2026120241) TableName() string { return "kf_sessions" }

type kfLink2026120241 struct {
	ChatID    string `gorm:"primaryKey;size:128"`
	Scene     string `gorm:"size:32;not null;uniqueIndex:idx_kf_links_scene"`
	URL       string `gorm:"size:512;not null"`
	CreatedAt time.Time
}

func (kfLink2026120241) TableName() string { return "kf_links" }
