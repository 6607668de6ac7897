package store

import (
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120201 lets `jingmin stats` (and the console's charts) count a
// year of tickets without reading them: each ticket keeps its first human
// answer's time as a histogram bucket (response_bucket, written by the
// store with first_response_at), and one index holds, in the order the
// counts are grouped by (place, then bucket), every column they read. A
// pass over that index alone groups as it goes, with no sort.
func migrate2026120201() *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: "2026120201_ticket_stats",
		Migrate: func(tx *gorm.DB) error {
			m := tx.Migrator()
			if err := m.AddColumn(&ticketStats2026120201{}, "ResponseBucket"); err != nil {
				return fmt.Errorf("add tickets.response_bucket: %w", err)
			}
			fill := "UPDATE tickets SET response_bucket = " + responseBucketSQL(tx.Dialector.Name()) +
				" WHERE auto_answered = 0 AND first_response_at IS NOT NULL"
			if err := tx.Exec(fill).Error; err != nil {
				return fmt.Errorf("fill tickets.response_bucket: %w", err)
			}
			if err := m.CreateIndex(&ticketStats2026120201{}, "ix_ticket_stats"); err != nil {
				return fmt.Errorf("create index ix_ticket_stats: %w", err)
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			m := tx.Migrator()
			if err := m.DropIndex(&ticketStats2026120201{}, "ix_ticket_stats"); err != nil {
				return err
			}
			return m.DropColumn(&ticketStats2026120201{}, "ResponseBucket")
		},
	}
}

// ticketStats2026120201 is the part of tickets the migration adds or indexes.
type ticketStats2026120201 struct {
	StationID      uint      `gorm:"index:ix_ticket_stats,priority:1"`
	GroupID        *uint     `gorm:"index:ix_ticket_stats,priority:2"`
	Platform       string    `gorm:"size:16;index:ix_ticket_stats,priority:3"`
	ChatType       string    `gorm:"size:16;index:ix_ticket_stats,priority:4"`
	ChatID         string    `gorm:"size:128;index:ix_ticket_stats,priority:5"`
	ResponseBucket *int64    `gorm:"index:ix_ticket_stats,priority:6"`
	CreatedAt      time.Time `gorm:"index:ix_ticket_stats,priority:7"`
	Status         string    `gorm:"size:16;index:ix_ticket_stats,priority:8"`
	AutoAnswered   bool      `gorm:"index:ix_ticket_stats,priority:9"`
	Emergency      bool      `gorm:"index:ix_ticket_stats,priority:10"`
	Level          int       `gorm:"index:ix_ticket_stats,priority:11"`
	AfterHours     bool      `gorm:"index:ix_ticket_stats,priority:12"`
}

func (ticketStats2026120201) TableName() string { return "tickets" }

// responseBucketSQL is the SQL for a ticket's first-response time in
// tenths of a minute, rounded to its bucket (as responseBucket does in Go),
// for filling rows written before the column existed.
func responseBucketSQL(dialect string) string {
	integer := "INTEGER"
	tenths := "CAST(ROUND((julianday(first_response_at) - julianday(created_at)) * 14400) AS INTEGER)"
	if dialect == MySQL {
		integer = "SIGNED"
		tenths = "CAST(ROUND(TIMESTAMPDIFF(MICROSECOND, created_at, first_response_at) / 6000000) AS SIGNED)"
	}
	return "CASE WHEN " + tenths + " < 600 THEN " + tenths +
		" WHEN " + tenths + " < 14400 THEN CAST(ROUND(" + tenths + " / 10.0) * 10 AS " + integer + ")" +
		" ELSE CAST(ROUND(" + tenths + " / 600.0) * 600 AS " + integer + ") END"
}
