package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrate2026120251 adds the web console's accounts and sessions: local
// admins, enrolled authenticators, one-time sign-in codes, sessions and
// per-account API tokens.
func migrate2026120251() *gormigrate.Migration {
	tables := []any{&consoleAdmin2026120251{}, &consoleTOTP2026120251{}, &consoleCode2026120251{},
		&consoleSession2026120251{}, &apiToken2026120251{}}
	return &gormigrate.Migration{
		ID: "2026120251_console",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(tables...)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(tables...)
		},
	}
}

type consoleAdmin2026120251 struct {
	ID           uint   `gorm:"primaryKey"`
	Name         string `gorm:"size:64;uniqueIndex;not null"`
	PasswordHash string `gorm:"size:255;not null"`
	TOTPSecret   string `gorm:"size:64;not null;default:''"`
	CreatedAt    time.Time
}

func (consoleAdmin2026120251) TableName() string { return "console_admins" }

type consoleTOTP2026120251 struct {
	OfficerID  uint   `gorm:"primaryKey;autoIncrement:false"`
	Secret     string `gorm:"size:64;not null"`
	EnrolledAt time.Time
}

func (consoleTOTP2026120251) TableName() string { return "console_totps" }

type consoleCode2026120251 struct {
	ID        uint      `gorm:"primaryKey"`
	OfficerID uint      `gorm:"not null;index:ix_console_code_officer"`
	Salt      string    `gorm:"size:32;not null"`
	Hash      string    `gorm:"size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null"`
	UsedAt    *time.Time
}

func (consoleCode2026120251) TableName() string { return "console_codes" }

type consoleSession2026120251 struct {
	ID           uint   `gorm:"primaryKey"`
	TokenHash    string `gorm:"size:64;uniqueIndex;not null"`
	OfficerID    *uint
	AdminID      *uint
	Address      string    `gorm:"size:64"`
	CreatedAt    time.Time `gorm:"not null"`
	LastSeen     time.Time `gorm:"not null"`
	ExpiresAt    time.Time `gorm:"not null"`
	SecondFactor bool      `gorm:"not null;default:false"`
	EndedAt      *time.Time
}

func (consoleSession2026120251) TableName() string { return "console_sessions" }

type apiToken2026120251 struct {
	ID         uint   `gorm:"primaryKey"`
	OfficerID  *uint  `gorm:"index:ix_api_token_officer"`
	AdminID    *uint  `gorm:"index:ix_api_token_admin"`
	Name       string `gorm:"size:64;not null"`
	TokenHash  string `gorm:"size:64;uniqueIndex;not null"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func (apiToken2026120251) TableName() string { return "api_tokens" }
