package store

import (
	"context"
	"fmt"
	"time"

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
		{
			// Tickets are listed by when they were filed (stats) through
			// created_at alone: it grows with every insert, so a group
			// commit adds to one index page, where (station_id,
			// created_at) touched a page per station.
			ID: "2026113001_ticket_created_index",
			Migrate: func(tx *gorm.DB) error {
				return swapIndex(tx, "ix_ticket_station_created", "ix_ticket_created")
			},
			Rollback: func(tx *gorm.DB) error {
				return swapIndex(tx, "ix_ticket_created", "ix_ticket_station_created")
			},
		},
		{
			// Every message the hub sends is a row, written with the change
			// that causes it and sent by a relay (frozen: the table as it
			// was introduced).
			ID: "2026120101_outbound",
			Migrate: func(tx *gorm.DB) error {
				return tx.AutoMigrate(&outbound2026120101{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable(&outbound2026120101{})
			},
		},
	}
}

// ticketIndexes are the two indexes of 2026113001, as they were then.
type ticketIndexes struct {
	StationID uint      `gorm:"index:ix_ticket_station_created"`
	CreatedAt time.Time `gorm:"index:ix_ticket_station_created;index:ix_ticket_created"`
}

func (ticketIndexes) TableName() string { return "tickets" }

// swapIndex drops index from (if there) and creates to (if missing): a
// database created after the change has only the new one already.
func swapIndex(tx *gorm.DB, from, to string) error {
	m := tx.Migrator()
	if m.HasIndex(&ticketIndexes{}, from) {
		if err := m.DropIndex(&ticketIndexes{}, from); err != nil {
			return fmt.Errorf("drop index %s: %w", from, err)
		}
	}
	if !m.HasIndex(&ticketIndexes{}, to) {
		if err := m.CreateIndex(&ticketIndexes{}, to); err != nil {
			return fmt.Errorf("create index %s: %w", to, err)
		}
	}
	return nil
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
