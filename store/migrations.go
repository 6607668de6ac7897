package store

import (
	"context"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrations are applied in order and recorded in the migrations table; a
// released migration is never edited, a change is a new entry.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{
			ID: "2026112201_initial",
			Migrate: func(tx *gorm.DB) error {
				return tx.AutoMigrate(&Station{}, &Group{}, &Officer{}, &Identity{}, &Shift{},
					&Override{}, &Holiday{}, &Ticket{}, &TicketEvent{}, &FAQ{}, &Template{},
					&UnknownChat{}, &ParkedMessage{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable(&ParkedMessage{}, &UnknownChat{}, &Template{}, &FAQ{},
					&TicketEvent{}, &Ticket{}, &Holiday{}, &Override{}, &Shift{}, &Identity{},
					&Officer{}, &Group{}, &Station{})
			},
		},
		{
			ID: "2026112801_broadcasts",
			Migrate: func(tx *gorm.DB) error {
				return tx.AutoMigrate(&Broadcast{}, &Delivery{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable(&Delivery{}, &Broadcast{})
			},
		},
		{
			// Who took a ticket and why is kept on the ticket itself, so the
			// first lines of its timeline need no rows of their own.
			ID: "2026112901_ticket_routing",
			Migrate: func(tx *gorm.DB) error {
				type Ticket struct {
					Routing string `gorm:"size:191"`
				}
				if tx.Migrator().HasColumn(&Ticket{}, "Routing") { // created with the table by the first migration
					return nil
				}
				return tx.Migrator().AddColumn(&Ticket{}, "Routing")
			},
			Rollback: func(tx *gorm.DB) error {
				type Ticket struct {
					Routing string `gorm:"size:191"`
				}
				return tx.Migrator().DropColumn(&Ticket{}, "Routing")
			},
		},
	}
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	m := gormigrate.New(s.db.WithContext(ctx), gormigrate.DefaultOptions, migrations())
	if err := m.Migrate(); err != nil {
		return fmt.Errorf("migrate %s database: %w", s.driver, err)
	}
	return nil
}

// MigrationStatus lists each known migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	var applied []string
	db := s.db.WithContext(ctx)
	if db.Migrator().HasTable(gormigrate.DefaultOptions.TableName) {
		if err := db.Table(gormigrate.DefaultOptions.TableName).Pluck(gormigrate.DefaultOptions.IDColumnName, &applied).Error; err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
	}
	for _, m := range migrations() {
		out[m.ID] = false
	}
	for _, id := range applied {
		out[id] = true
	}
	return out, nil
}
