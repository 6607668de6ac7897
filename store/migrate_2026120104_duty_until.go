package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120104 gives a duty switch ("值班 开/关") its end: an officer
// switched on is on duty until duty_until, one switched off is out of
// routing until then (their next shift), and `roster who` can say so.
func migrate2026120104() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120104_duty_until",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().AddColumn(&officerDutyUntil2026120104{}, "DutyUntil")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropColumn(&officerDutyUntil2026120104{}, "DutyUntil")
		},
	}
}

type officerDutyUntil2026120104 struct {
	DutyUntil *time.Time
}

func (officerDutyUntil2026120104) TableName() string { return "officers" }
