package store

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120243 indexes outbound messages by broadcast: a broadcast
// with customer groups finishes only once its owners' mass-send tasks are
// created, which FinishBroadcasts asks every poll.
func migrate2026120243() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120243_outbound_broadcast_index",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateIndex(&outboundBroadcast2026120243{}, "ix_outbound_broadcast")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropIndex(&outboundBroadcast2026120243{}, "ix_outbound_broadcast")
		},
	}
}

type outboundBroadcast2026120243 struct {
	BroadcastID *uint `gorm:"index:ix_outbound_broadcast"`
}

func (outboundBroadcast2026120243) TableName() string { return "outbound_messages" }
