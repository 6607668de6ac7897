package store

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120102 records on each broadcast who created, confirmed and
// cancelled it, through which channel and from which address.
func migrate2026120102() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120102_broadcast_audit",
		Migrate: func(tx *gorm.DB) error {
			for _, f := range broadcastAudit2026120102Fields {
				if err := tx.Migrator().AddColumn(&broadcastAudit2026120102{}, f); err != nil {
					return fmt.Errorf("add broadcasts.%s: %w", f, err)
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			for _, f := range broadcastAudit2026120102Fields {
				if err := tx.Migrator().DropColumn(&broadcastAudit2026120102{}, f); err != nil {
					return fmt.Errorf("drop broadcasts.%s: %w", f, err)
				}
			}
			return nil
		},
	}
}

var broadcastAudit2026120102Fields = []string{"CreatedVia", "CreatedFrom",
	"ConfirmedByID", "ConfirmedBy", "ConfirmedVia", "ConfirmedFrom",
	"CancelledByID", "CancelledBy", "CancelledVia", "CancelledFrom"}

// broadcastAudit2026120102 is the columns 2026120102 added to broadcasts.
type broadcastAudit2026120102 struct {
	CreatedVia    string `gorm:"size:8"`
	CreatedFrom   string `gorm:"size:191"`
	ConfirmedByID *uint
	ConfirmedBy   string `gorm:"size:128"`
	ConfirmedVia  string `gorm:"size:8"`
	ConfirmedFrom string `gorm:"size:191"`
	CancelledByID *uint
	CancelledBy   string `gorm:"size:128"`
	CancelledVia  string `gorm:"size:8"`
	CancelledFrom string `gorm:"size:191"`
}

func (broadcastAudit2026120102) TableName() string { return "broadcasts" }
