package store

import (
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026113001 lists tickets by when they were filed (stats) through
// created_at alone: it grows with every insert, so a commit adds to one
// index page, where (station_id, created_at) touched a page per station.
func migrate2026113001() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026113001_ticket_created_index",
		Migrate: func(tx *gorm.DB) error {
			return swapIndex(tx, "ix_ticket_station_created", "ix_ticket_created")
		},
		Rollback: func(tx *gorm.DB) error {
			return swapIndex(tx, "ix_ticket_created", "ix_ticket_station_created")
		},
	}
}

// ticketIndexes2026113001 are the two indexes of 2026113001, as they were then.
type ticketIndexes2026113001 struct {
	StationID uint      `gorm:"index:ix_ticket_station_created"`
	CreatedAt time.Time `gorm:"index:ix_ticket_station_created;index:ix_ticket_created"`
}

func (ticketIndexes2026113001) TableName() string { return "tickets" }

// swapIndex drops index from and creates to.
func swapIndex(tx *gorm.DB, from, to string) error {
	m := tx.Migrator()
	if err := m.DropIndex(&ticketIndexes2026113001{}, from); err != nil {
		return fmt.Errorf("drop index %s: %w", from, err)
	}
	if err := m.CreateIndex(&ticketIndexes2026113001{}, to); err != nil {
		return fmt.Errorf("create index %s: %w", to, err)
	}
	return nil
}
