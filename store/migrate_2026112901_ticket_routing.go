package store

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026112901 keeps who took a ticket and why on the ticket itself,
// so the first lines of its timeline need no rows of their own.
func migrate2026112901() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026112901_ticket_routing",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().AddColumn(&ticketRouting2026112901{}, "Routing")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropColumn(&ticketRouting2026112901{}, "Routing")
		},
	}
}

type ticketRouting2026112901 struct {
	Routing string `gorm:"size:191"`
}

func (ticketRouting2026112901) TableName() string { return "tickets" }
