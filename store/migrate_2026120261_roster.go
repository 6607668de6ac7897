package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120261 makes the database the roster's and directory's record
// of truth for live edits: a version per editable row (optimistic
// concurrency), the directory revision every process watches, shift swaps
// and officers' calendar feeds.
func migrate2026120261() *gormigrate.Migration {
	versioned := []any{&stationVer2026120261{}, &groupVer2026120261{}, &officerVer2026120261{}, &shiftVer2026120261{},
		&overrideVer2026120261{}, &faqVer2026120261{}, &templateVer2026120261{}}
	return &gormigrate.Migration{
		ID: "2026120261_roster",
		Migrate: func(tx *gorm.DB) error {
			for _, m := range versioned {
				if err := tx.Migrator().AddColumn(m, "Version"); err != nil {
					return err
				}
			}
			if err := tx.AutoMigrate(&revision2026120261{}, &swap2026120261{}, &feed2026120261{}); err != nil {
				return err
			}
			return tx.Create(&revision2026120261{ID: 1}).Error
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropTable(&revision2026120261{}, &swap2026120261{}, &feed2026120261{}); err != nil {
				return err
			}
			for _, m := range versioned {
				if err := tx.Migrator().DropColumn(m, "Version"); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type stationVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type groupVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type officerVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type shiftVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type overrideVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type faqVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

type templateVer2026120261 struct {
	Version int64 `gorm:"not null;default:0"`
}

func (stationVer2026120261) TableName() string  { return "stations" }
func (groupVer2026120261) TableName() string    { return "groups" }
func (officerVer2026120261) TableName() string  { return "officers" }
func (shiftVer2026120261) TableName() string    { return "shifts" }
func (overrideVer2026120261) TableName() string { return "overrides" }
func (faqVer2026120261) TableName() string      { return "faqs" }
func (templateVer2026120261) TableName() string { return "templates" }

type revision2026120261 struct {
	ID      uint  `gorm:"primaryKey;autoIncrement:false"`
	Version int64 `gorm:"not null;default:0"`
}

func (revision2026120261) TableName() string { return "directory_revisions" }

type swap2026120261 struct {
	ID          uint   `gorm:"primaryKey"`
	StationID   uint   `gorm:"not null;index"`
	RequesterID uint   `gorm:"not null;index"`
	ColleagueID uint   `gorm:"not null;index"`
	Date        string `gorm:"size:10;not null"`
	Status      string `gorm:"size:16;not null;index"`
	DecidedByID *uint
	Reason      string `gorm:"size:255"`
	Version     int64  `gorm:"not null;default:0"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (swap2026120261) TableName() string { return "shift_swaps" }

type feed2026120261 struct {
	ID        uint   `gorm:"primaryKey"`
	OfficerID uint   `gorm:"not null;index"`
	TokenHash string `gorm:"size:64;not null;uniqueIndex"`
	CreatedAt time.Time
	RevokedAt *time.Time
}

func (feed2026120261) TableName() string { return "calendar_feeds" }
