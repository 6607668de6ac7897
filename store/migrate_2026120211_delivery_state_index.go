package store

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120211 indexes a broadcast's deliveries by state, so "is
// anything of this broadcast still pending or sending?" (finishing a
// broadcast, polled while it is sent) is one index seek instead of a scan
// of every delivery of the broadcast: without it the cost of each poll grew
// with the number of groups.
func migrate2026120211() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120211_delivery_state_index",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().CreateIndex(&deliveryState2026120211{}, "ix_delivery_state"); err != nil {
				return fmt.Errorf("create index ix_delivery_state: %w", err)
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropIndex(&deliveryState2026120211{}, "ix_delivery_state")
		},
	}
}

// deliveryState2026120211 is the index of 2026120211, as it was then.
type deliveryState2026120211 struct {
	BroadcastID uint   `gorm:"not null;index:ix_delivery_state,priority:1"`
	Status      string `gorm:"size:16;not null;index:ix_delivery_state,priority:2"`
}

func (deliveryState2026120211) TableName() string { return "deliveries" }
