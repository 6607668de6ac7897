package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120105 marks WeCom customer groups (groups.kind) and adds the
// append-only audit trail (audit_entries).
func migrate2026120105() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120105_group_kind_audit",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&groupKind2026120105{}, "Kind"); err != nil {
				return err
			}
			return tx.AutoMigrate(&audit2026120105{})
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropTable(&audit2026120105{}); err != nil {
				return err
			}
			return tx.Migrator().DropColumn(&groupKind2026120105{}, "Kind")
		},
	}
}

type groupKind2026120105 struct {
	Kind string `gorm:"size:16;not null;default:''"`
}

func (groupKind2026120105) TableName() string { return "groups" }

type audit2026120105 struct {
	ID             uint      `gorm:"primaryKey"`
	At             time.Time `gorm:"not null;index:ix_audit_at"`
	ActorOfficerID *uint     `gorm:"index:ix_audit_actor"`
	Actor          string    `gorm:"size:128;not null"`
	Via            string    `gorm:"size:16;not null"`
	Address        string    `gorm:"size:64"`
	Action         string    `gorm:"size:64;not null;index:ix_audit_action"`
	StationID      *uint     `gorm:"index:ix_audit_station"`
	TicketID       *uint
	BroadcastID    *uint
	Target         string `gorm:"size:255"`
	Before         string `gorm:"column:before_text;type:text"`
	After          string `gorm:"column:after_text;type:text"`
	Result         string `gorm:"size:16;not null"`
	Reason         string `gorm:"size:255"`
}

func (audit2026120105) TableName() string { return "audit_entries" }
