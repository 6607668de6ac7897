package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// AuditEntry is one line of the append-only audit trail: every change made
// through the console, the admin API, an officer's DM command or the CLI
// (roster, directory, FAQ, templates, broadcasts, ticket actions), every
// sign-in and failed sign-in, every use of an API token, and every view of
// a resident's personal data. Rows are only ever inserted, and removed only
// by PurgeAuditBefore once older than the audit retention, so a station can
// answer "who did this, from where, and what did it change" long after the
// tickets themselves are redacted.
type AuditEntry struct {
	ID uint      `gorm:"primaryKey"`
	At time.Time `gorm:"not null;index:ix_audit_at"`
	// ActorOfficerID is the officer who acted (nil for the break-glass
	// local admin, the CLI, or an unknown person failing to sign in).
	ActorOfficerID *uint `gorm:"index:ix_audit_actor"`
	// Actor is who acted as they were known at the time: an officer's code
	// and name, "admin:<name>" for a local admin, "cli", or what a failed
	// sign-in claimed to be.
	Actor string `gorm:"size:128;not null"`
	// Via is the channel: AuditConsole, AuditAPI, AuditDM or AuditCLI.
	Via string `gorm:"size:16;not null"`
	// Address is the client's network address, where there is one.
	Address string `gorm:"size:64"`
	// Action names what was done, dotted: "signin", "signin.failed",
	// "roster.shift.update", "ticket.view", "token.use", ...
	Action string `gorm:"size:64;not null;index:ix_audit_action"`
	// StationID scopes the row to a station, so a station admin's search
	// shows their own station's trail.
	StationID *uint `gorm:"index:ix_audit_station"`
	// TicketID and BroadcastID are typed references to what was acted on.
	TicketID    *uint
	BroadcastID *uint
	// Target says what was acted on, for people: "工单 #123", "值班 王警官 周一".
	Target string `gorm:"size:255"`
	// Before and After hold the changed fields as they were and became
	// (JSON or plain lines), empty for views and sign-ins.
	Before string `gorm:"column:before_text;type:text"`
	After  string `gorm:"column:after_text;type:text"`
	// Result is AuditOK, AuditDenied or AuditFailed; Reason says why for
	// the last two.
	Result string `gorm:"size:16;not null"`
	Reason string `gorm:"size:255"`
}

// Audit channels.
const (
	AuditConsole = "console"
	AuditAPI     = "api"
	AuditDM      = "dm"
	AuditCLI     = "cli"
)

// Audit results.
const (
	AuditOK     = "ok"
	AuditDenied = "denied"
	AuditFailed = "failed"
)

// AppendAudit writes audit rows on their own, for what changes no other row
// (a sign-in, a view, a refusal).
func (s *Store) AppendAudit(ctx context.Context, entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *gorm.DB) error { return insertAudit(tx, entries) })
}

// insertAudit writes entries inside tx, so a change and its audit rows
// commit together or not at all.
func insertAudit(tx *gorm.DB, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if entries[i].At.IsZero() {
			entries[i].At = time.Now()
		}
		entries[i].At = entries[i].At.UTC()
		if entries[i].Result == "" {
			entries[i].Result = AuditOK
		}
	}
	if err := tx.Create(&entries).Error; err != nil {
		return fmt.Errorf("write audit rows: %w", err)
	}
	return nil
}

// AuditFilter narrows ListAudit. Zero fields match everything.
type AuditFilter struct {
	From, To   time.Time
	StationIDs []uint // any of these stations (nil: all)
	ActorID    uint
	Action     string // an exact action, or a prefix ending in "."
	Search     string // a substring of actor, target, before or after
	// BeforeID pages backwards: rows with smaller ids only.
	BeforeID uint
	Limit    int
}

// ListAudit returns matching rows, newest first, at most f.Limit (default
// 200).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := s.db.WithContext(ctx).Model(&AuditEntry{})
	if !f.From.IsZero() {
		q = q.Where("at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		q = q.Where("at < ?", f.To.UTC())
	}
	if f.StationIDs != nil {
		q = q.Where("station_id IN ?", f.StationIDs)
	}
	if f.ActorID != 0 {
		q = q.Where("actor_officer_id = ?", f.ActorID)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q = q.Where("action LIKE ? ESCAPE '!'", likeEscape(f.Action)+"%")
		} else {
			q = q.Where("action = ?", f.Action)
		}
	}
	if f.Search != "" {
		like := "%" + likeEscape(f.Search) + "%"
		q = q.Where("(actor LIKE ? ESCAPE '!' OR target LIKE ? ESCAPE '!' OR before_text LIKE ? ESCAPE '!' OR after_text LIKE ? ESCAPE '!')", like, like, like, like)
	}
	if f.BeforeID != 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 200
	}
	var out []AuditEntry
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list audit rows: %w", err)
	}
	return out, nil
}

// PurgeAuditBefore deletes audit rows older than cutoff: the only way rows
// leave the trail, run by retention with the audit's own (longer) period.
func (s *Store) PurgeAuditBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("at < ?", cutoff.UTC()).Delete(&AuditEntry{})
	if res.Error != nil {
		return 0, fmt.Errorf("purge audit rows: %w", res.Error)
	}
	return res.RowsAffected, nil
}
