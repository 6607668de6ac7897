package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120221 adds officers' tap-to-act cards: the card an outbound
// message carries, the card instances delivered (one row per card and
// ticket, so a ticket's change finds every card showing it), and the
// platform API calls counted against each app's monthly budget.
func migrate2026120221() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120221_cards",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&outboundCard2026120221{}, "Card"); err != nil {
				return err
			}
			return tx.AutoMigrate(&card2026120221{}, &apiUsage2026120221{})
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropTable(&card2026120221{}, &apiUsage2026120221{}); err != nil {
				return err
			}
			return tx.Migrator().DropColumn(&outboundCard2026120221{}, "Card")
		},
	}
}

type outboundCard2026120221 struct {
	Card string `gorm:"type:text"`
}

func (outboundCard2026120221) TableName() string { return "outbound_messages" }

type card2026120221 struct {
	ID        uint   `gorm:"primaryKey"`
	Track     string `gorm:"size:128;not null;uniqueIndex:ux_card_ticket,priority:1"`
	TicketID  uint   `gorm:"not null;uniqueIndex:ux_card_ticket,priority:2;index:ix_card_ticket"`
	Platform  string `gorm:"size:16;not null"`
	Card      string `gorm:"type:text;not null"`
	Handle    string `gorm:"size:512"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (card2026120221) TableName() string { return "cards" }

type apiUsage2026120221 struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_api_usage,priority:1"`
	App       string `gorm:"size:128;not null;uniqueIndex:ux_api_usage,priority:2"`
	Month     string `gorm:"size:7;not null;uniqueIndex:ux_api_usage,priority:3"`
	Calls     int64  `gorm:"not null;default:0"`
	Held      int64  `gorm:"not null;default:0"`
	WarnedAt  *time.Time
	OverAt    *time.Time
	UpdatedAt time.Time
}

func (apiUsage2026120221) TableName() string { return "api_usage" }
