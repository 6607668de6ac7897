package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120103 keeps a record of each erasure of a resident's data.
func migrate2026120103() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120103_resident_erasures",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&residentErasure2026120103{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&residentErasure2026120103{})
		},
	}
}

// residentErasure2026120103 is the resident_erasures table as 2026120103
// made it.
type residentErasure2026120103 struct {
	ID       uint      `gorm:"primaryKey"`
	Platform string    `gorm:"size:16;not null"`
	Resident string    `gorm:"size:64"`
	By       string    `gorm:"size:128;not null"`
	At       time.Time `gorm:"not null"`
	Tickets  int64     `gorm:"not null;default:0"`
	Timeline int64     `gorm:"not null;default:0"`
	Messages int64     `gorm:"not null;default:0"`
	Parked   int64     `gorm:"not null;default:0"`
}

func (residentErasure2026120103) TableName() string { return "resident_erasures" }
