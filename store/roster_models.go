package store

import "time"

// DirectoryRevision is one row (ID 1) whose Version every change of the
// directory (roster, overrides, swaps approved, stations, officers, groups,
// FAQ, templates, a sync, a duty switch) bumps in its own transaction: a
// process checks it with one cheap read and reloads its routing view only
// when it moved, so a change made in any process is routed by every other
// within a check interval, with no restart.
type DirectoryRevision struct {
	ID      uint  `gorm:"primaryKey;autoIncrement:false"`
	Version int64 `gorm:"not null;default:0"`
}

// Swap states. A requested swap waits for the colleague; an accepted one
// waits for a station admin when the deployment wants approval; approved
// ones are in the roster (as overrides); declined, rejected and withdrawn
// ones are finished.
const (
	SwapRequested = "requested"
	SwapAccepted  = "accepted"
	SwapApproved  = "approved"
	SwapDeclined  = "declined" // the colleague said no
	SwapRejected  = "rejected" // an admin said no
)

// ShiftSwap is an officer's request that a colleague of the same station
// works their shifts of one date. Approved, it becomes overrides: the
// requester off that day, the colleague on at the requester's hours.
type ShiftSwap struct {
	ID          uint   `gorm:"primaryKey"`
	StationID   uint   `gorm:"not null;index"`
	RequesterID uint   `gorm:"not null;index"`
	ColleagueID uint   `gorm:"not null;index"`
	Date        string `gorm:"size:10;not null"`
	Status      string `gorm:"size:16;not null;index"`
	// DecidedByID is the admin who approved or rejected it (or, with no
	// approval needed, the colleague who accepted it).
	DecidedByID *uint
	Reason      string `gorm:"size:255"`
	Version     int64  `gorm:"not null;default:0"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// CalendarFeed is an officer's secret iCalendar address: only the token's
// SHA-256 is kept, so the table read does not give the feed away; revoking
// sets RevokedAt and the address stops answering.
type CalendarFeed struct {
	ID        uint   `gorm:"primaryKey"`
	OfficerID uint   `gorm:"not null;index"`
	TokenHash string `gorm:"size:64;not null;uniqueIndex"`
	CreatedAt time.Time
	RevokedAt *time.Time
}
