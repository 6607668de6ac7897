package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026112201 creates the first tables: the directory, the roster,
// tickets with their timelines, FAQ, templates, unknown chats and parked
// messages, as the models were when it was released.
func migrate2026112201() *gormigrate.Migration {
	tables := []any{&station2026112201{}, &group2026112201{}, &officer2026112201{}, &identity2026112201{},
		&shift2026112201{}, &override2026112201{}, &holiday2026112201{}, &ticket2026112201{}, &ticketEvent2026112201{},
		&faq2026112201{}, &template2026112201{}, &unknownChat2026112201{}, &parkedMessage2026112201{}}
	return &gormigrate.Migration{
		ID:      "2026112201_initial",
		Migrate: func(tx *gorm.DB) error { return tx.AutoMigrate(tables...) },
		Rollback: func(tx *gorm.DB) error {
			reversed := make([]any, 0, len(tables))
			for i := len(tables) - 1; i >= 0; i-- {
				reversed = append(reversed, tables[i])
			}
			return tx.Migrator().DropTable(reversed...)
		},
	}
}

type station2026112201 struct {
	ID            uint   `gorm:"primaryKey"`
	Code          string `gorm:"size:64;uniqueIndex;not null"`
	Name          string `gorm:"size:128;not null"`
	SLAMinutes    int    `gorm:"not null"`
	DutyAccountID *uint
	LeaderID      *uint
	NextTicket    int64 `gorm:"not null;default:0"`
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (station2026112201) TableName() string { return "stations" }

type group2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_group_chat"`
	ChatID    string `gorm:"size:128;not null;uniqueIndex:ux_group_chat"`
	Name      string `gorm:"size:128;not null"`
	StationID uint   `gorm:"not null;index"`
	OfficerID *uint
	Tags      string `gorm:"size:512"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (group2026112201) TableName() string { return "groups" }

type officer2026112201 struct {
	ID           uint   `gorm:"primaryKey"`
	Code         string `gorm:"size:64;uniqueIndex;not null"`
	StationID    uint   `gorm:"not null;index"`
	Name         string `gorm:"size:64;not null"`
	Roles        string `gorm:"size:256"`
	Aliases      string `gorm:"size:512"`
	DutyOverride *bool
	DutySince    *time.Time
	DigestFor    *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (officer2026112201) TableName() string { return "officers" }

type identity2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	OfficerID uint   `gorm:"not null;index"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_identity"`
	UserID    string `gorm:"size:128;not null;uniqueIndex:ux_identity"`
}

func (identity2026112201) TableName() string { return "identities" }

type shift2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	StationID uint   `gorm:"not null;index"`
	OfficerID uint   `gorm:"not null;index"`
	Weekday   int    `gorm:"not null"`
	DayKind   string `gorm:"size:16"`
	Start     string `gorm:"size:5;not null"`
	End       string `gorm:"size:5;not null"`
	Kind      string `gorm:"size:16;not null"`
}

func (shift2026112201) TableName() string { return "shifts" }

type override2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	StationID uint   `gorm:"not null;index"`
	OfficerID uint   `gorm:"not null;index"`
	Date      string `gorm:"size:10;not null;index"`
	Start     string `gorm:"size:5"`
	End       string `gorm:"size:5"`
	Off       bool
}

func (override2026112201) TableName() string { return "overrides" }

type holiday2026112201 struct {
	Date string `gorm:"primaryKey;size:10"`
	Kind string `gorm:"size:16;not null"`
	Name string `gorm:"size:64"`
}

func (holiday2026112201) TableName() string { return "holidays" }

type ticket2026112201 struct {
	ID              uint   `gorm:"primaryKey"`
	StationID       uint   `gorm:"not null;uniqueIndex:ux_ticket_number;index:ix_ticket_station_created"`
	Number          int64  `gorm:"not null;uniqueIndex:ux_ticket_number"`
	SourceEventID   string `gorm:"size:191;not null;uniqueIndex"`
	GroupID         *uint
	Platform        string `gorm:"size:16;not null"`
	ChatID          string `gorm:"size:128;not null"`
	ChatType        string `gorm:"size:16;not null"`
	ResidentID      string `gorm:"size:128;not null"`
	ResidentName    string `gorm:"size:128"`
	Question        string `gorm:"type:text;not null"`
	ReplyHandle     string `gorm:"type:text"`
	Status          string `gorm:"size:16;not null;index:ix_ticket_assignee,priority:2"`
	Emergency       bool
	AfterHours      bool
	AutoAnswered    bool
	AssigneeID      *uint      `gorm:"index:ix_ticket_assignee,priority:1"`
	Level           int        `gorm:"not null;default:0"`
	EscalateAt      *time.Time `gorm:"index"`
	Fence           int64      `gorm:"not null;default:0"`
	CreatedAt       time.Time  `gorm:"index:ix_ticket_station_created"`
	FirstResponseAt *time.Time
	AnsweredBy      *uint
	ClosedAt        *time.Time
	UpdatedAt       time.Time
}

func (ticket2026112201) TableName() string { return "tickets" }

type ticketEvent2026112201 struct {
	ID       uint   `gorm:"primaryKey"`
	TicketID uint   `gorm:"not null;index"`
	Kind     string `gorm:"size:32;not null"`
	ActorID  *uint
	Detail   string    `gorm:"type:text"`
	At       time.Time `gorm:"not null"`
}

func (ticketEvent2026112201) TableName() string { return "ticket_events" }

type faq2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	StationID *uint  `gorm:"index"`
	Topic     string `gorm:"size:128;not null"`
	Keywords  string `gorm:"size:512;not null"`
	Answer    string `gorm:"type:text;not null"`
}

func (faq2026112201) TableName() string { return "faqs" }

type template2026112201 struct {
	Key  string `gorm:"primaryKey;size:64"`
	Text string `gorm:"type:text;not null"`
}

func (template2026112201) TableName() string { return "templates" }

type unknownChat2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_unknown_chat"`
	ChatID    string `gorm:"size:128;not null;uniqueIndex:ux_unknown_chat"`
	Name      string `gorm:"size:128"`
	Messages  int64  `gorm:"not null;default:0"`
	FirstSeen time.Time
	LastSeen  time.Time
}

func (unknownChat2026112201) TableName() string { return "unknown_chats" }

type parkedMessage2026112201 struct {
	ID        uint   `gorm:"primaryKey"`
	Topic     string `gorm:"size:128;not null;index"`
	MessageID string `gorm:"size:191"`
	Payload   []byte
	Cause     string    `gorm:"type:text"`
	At        time.Time `gorm:"not null"`
}

func (parkedMessage2026112201) TableName() string { return "parked_messages" }
