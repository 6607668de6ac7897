package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ConsoleAdmin is a break-glass local account of the web console, made on
// the command line (`jingmin console admin create`) for when no officer can
// sign in through a platform. It acts district-wide, must enrol a second
// factor like any admin, and is named "admin:<name>" in the audit trail.
type ConsoleAdmin struct {
	ID           uint   `gorm:"primaryKey"`
	Name         string `gorm:"size:64;uniqueIndex;not null"`
	PasswordHash string `gorm:"size:255;not null"`
	// TOTPSecret is empty until the admin enrolled an authenticator.
	TOTPSecret string `gorm:"size:64;not null;default:''"`
	CreatedAt  time.Time
}

// ConsoleTOTP is an officer's enrolled authenticator (TOTP), the second
// factor station and district admins must have before they act.
type ConsoleTOTP struct {
	OfficerID  uint   `gorm:"primaryKey;autoIncrement:false"`
	Secret     string `gorm:"size:64;not null"`
	EnrolledAt time.Time
}

// ConsoleCode is a one-time sign-in code sent to an officer's own chat.
// Only a salted hash is kept; UsedAt makes it single use.
type ConsoleCode struct {
	ID        uint      `gorm:"primaryKey"`
	OfficerID uint      `gorm:"not null;index:ix_console_code_officer"`
	Salt      string    `gorm:"size:32;not null"`
	Hash      string    `gorm:"size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null"`
	UsedAt    *time.Time
}

// ConsoleSession is one signed-in browser. The cookie carries a random
// token; only its hash is stored, so a copy of the database signs nobody in.
type ConsoleSession struct {
	ID        uint   `gorm:"primaryKey"`
	TokenHash string `gorm:"size:64;uniqueIndex;not null"`
	OfficerID *uint
	AdminID   *uint
	Address   string    `gorm:"size:64"`
	CreatedAt time.Time `gorm:"not null"`
	LastSeen  time.Time `gorm:"not null"`
	// ExpiresAt is the absolute end, whatever the activity.
	ExpiresAt time.Time `gorm:"not null"`
	// SecondFactor is set once an admin passed (or enrolled) TOTP.
	SecondFactor bool `gorm:"not null;default:false"`
	EndedAt      *time.Time
}

// APIToken is a per-account bearer token for the admin API: every call made
// with it acts as its account. Only its hash is stored; it is shown once.
type APIToken struct {
	ID         uint   `gorm:"primaryKey"`
	OfficerID  *uint  `gorm:"index:ix_api_token_officer"`
	AdminID    *uint  `gorm:"index:ix_api_token_admin"`
	Name       string `gorm:"size:64;not null"`
	TokenHash  string `gorm:"size:64;uniqueIndex;not null"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// ErrCodeExpired, ErrCodeUsed and ErrCodeWrong say why a sign-in code was
// refused.
var (
	ErrCodeExpired = errors.New("sign-in code expired")
	ErrCodeUsed    = errors.New("sign-in code already used")
	ErrCodeWrong   = errors.New("sign-in code wrong")
)

// CreateConsoleCode stores a code with the message that carries it to the
// officer and its audit row, in one transaction: the relay delivers the
// message after the commit.
func (s *Store) CreateConsoleCode(ctx context.Context, c *ConsoleCode, msgs []OutboundMessage, audit []AuditEntry) error {
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(c).Error; err != nil {
			return fmt.Errorf("store sign-in code: %w", err)
		}
		if err := s.insertOutbound(tx, msgs); err != nil {
			return err
		}
		return insertAudit(tx, audit)
	})
}

// UseConsoleCode spends the officer's code that matches (match compares a
// stored salt and hash with what was typed). It reports ErrCodeUsed for a
// code spent before, ErrCodeExpired for one past its time and ErrCodeWrong
// when none of the officer's recent codes matches. Spending is conditional
// on the code being unused, so of two requests racing with one code only
// one signs in.
func (s *Store) UseConsoleCode(ctx context.Context, officerID uint, now time.Time, match func(salt, hash string) bool) error {
	var codes []ConsoleCode
	if err := s.db.WithContext(ctx).Where("officer_id = ? AND created_at >= ?", officerID, now.Add(-24*time.Hour).UTC()).
		Order("id DESC").Limit(20).Find(&codes).Error; err != nil {
		return fmt.Errorf("read sign-in codes: %w", err)
	}
	for _, c := range codes {
		if !match(c.Salt, c.Hash) {
			continue
		}
		switch {
		case c.UsedAt != nil:
			return ErrCodeUsed
		case !now.Before(c.ExpiresAt):
			return ErrCodeExpired
		}
		res := s.db.WithContext(ctx).Model(&ConsoleCode{}).Where("id = ? AND used_at IS NULL", c.ID).Update("used_at", now.UTC())
		if res.Error != nil {
			return fmt.Errorf("spend sign-in code: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrCodeUsed
		}
		return nil
	}
	return ErrCodeWrong
}

// CountAudit counts audit rows of one action since a time, by one officer
// (when officerID is not nil) or from one address (when address is not
// empty): the sign-in lockout counts the failures the trail records.
func (s *Store) CountAudit(ctx context.Context, action string, since time.Time, officerID *uint, address string) (int64, error) {
	q := s.db.WithContext(ctx).Model(&AuditEntry{}).Where("action = ? AND at >= ?", action, since.UTC())
	if officerID != nil {
		q = q.Where("actor_officer_id = ?", *officerID)
	}
	if address != "" {
		q = q.Where("address = ?", address)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count audit rows: %w", err)
	}
	return n, nil
}

// CreateConsoleSession stores a new session with its audit row.
func (s *Store) CreateConsoleSession(ctx context.Context, sess *ConsoleSession, audit ...AuditEntry) error {
	sess.CreatedAt, sess.LastSeen, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.LastSeen.UTC(), sess.ExpiresAt.UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(sess).Error; err != nil {
			return fmt.Errorf("store session: %w", err)
		}
		return insertAudit(tx, audit)
	})
}

// ConsoleSessionByHash finds a session that has not ended.
func (s *Store) ConsoleSessionByHash(ctx context.Context, hash string) (*ConsoleSession, error) {
	var sess ConsoleSession
	err := s.db.WithContext(ctx).Where("token_hash = ? AND ended_at IS NULL", hash).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return &sess, nil
}

// TouchConsoleSession records activity on a session (its idle clock).
func (s *Store) TouchConsoleSession(ctx context.Context, id uint, at time.Time) error {
	if err := s.db.WithContext(ctx).Model(&ConsoleSession{}).Where("id = ?", id).Update("last_seen", at.UTC()).Error; err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// EndConsoleSession ends a session (sign-out, idle or absolute timeout),
// with its audit row.
func (s *Store) EndConsoleSession(ctx context.Context, id uint, at time.Time, audit ...AuditEntry) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&ConsoleSession{}).Where("id = ? AND ended_at IS NULL", id).Update("ended_at", at.UTC()).Error; err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		return insertAudit(tx, audit)
	})
}

// PassSecondFactor marks a session as past its second factor; secret, when
// not empty, is the officer's (or local admin's) newly enrolled TOTP secret,
// stored in the same transaction.
func (s *Store) PassSecondFactor(ctx context.Context, sess *ConsoleSession, secret string, at time.Time, audit ...AuditEntry) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if secret != "" {
			switch {
			case sess.OfficerID != nil:
				if err := tx.Save(&ConsoleTOTP{OfficerID: *sess.OfficerID, Secret: secret, EnrolledAt: at.UTC()}).Error; err != nil {
					return fmt.Errorf("store authenticator: %w", err)
				}
			case sess.AdminID != nil:
				if err := tx.Model(&ConsoleAdmin{}).Where("id = ?", *sess.AdminID).Update("totp_secret", secret).Error; err != nil {
					return fmt.Errorf("store authenticator: %w", err)
				}
			}
		}
		if err := tx.Model(&ConsoleSession{}).Where("id = ?", sess.ID).Update("second_factor", true).Error; err != nil {
			return fmt.Errorf("mark second factor: %w", err)
		}
		return insertAudit(tx, audit)
	})
}

// OfficerTOTP is an officer's enrolled TOTP secret ("" when none).
func (s *Store) OfficerTOTP(ctx context.Context, officerID uint) (string, error) {
	var t ConsoleTOTP
	err := s.db.WithContext(ctx).Where("officer_id = ?", officerID).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read authenticator: %w", err)
	}
	return t.Secret, nil
}

// CreateConsoleAdmin stores a local admin.
func (s *Store) CreateConsoleAdmin(ctx context.Context, a *ConsoleAdmin, audit ...AuditEntry) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(a).Error; err != nil {
			return fmt.Errorf("create console admin %q: %w", a.Name, err)
		}
		return insertAudit(tx, audit)
	})
}

// ConsoleAdminByName finds a local admin.
func (s *Store) ConsoleAdminByName(ctx context.Context, name string) (*ConsoleAdmin, error) {
	var a ConsoleAdmin
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("console admin %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read console admin: %w", err)
	}
	return &a, nil
}

// ConsoleAdminByID finds a local admin.
func (s *Store) ConsoleAdminByID(ctx context.Context, id uint) (*ConsoleAdmin, error) {
	var a ConsoleAdmin
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("console admin %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read console admin: %w", err)
	}
	return &a, nil
}

// CreateAPIToken stores a token (its hash) with its audit row.
func (s *Store) CreateAPIToken(ctx context.Context, t *APIToken, audit ...AuditEntry) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			return fmt.Errorf("create API token: %w", err)
		}
		return insertAudit(tx, audit)
	})
}

// APITokensOf lists an account's tokens, newest first.
func (s *Store) APITokensOf(ctx context.Context, officerID, adminID *uint) ([]APIToken, error) {
	q := s.db.WithContext(ctx)
	if officerID != nil {
		q = q.Where("officer_id = ?", *officerID)
	} else if adminID != nil {
		q = q.Where("admin_id = ?", *adminID)
	} else {
		return nil, nil
	}
	var out []APIToken
	if err := q.Order("id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes one of an account's tokens; ErrNotFound when the
// account has no such live token.
func (s *Store) RevokeAPIToken(ctx context.Context, id uint, officerID, adminID *uint, at time.Time, audit ...AuditEntry) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&APIToken{}).Where("id = ? AND revoked_at IS NULL", id)
		if officerID != nil {
			q = q.Where("officer_id = ?", *officerID)
		} else {
			q = q.Where("admin_id = ?", idOrZero(adminID))
		}
		res := q.Update("revoked_at", at.UTC())
		if res.Error != nil {
			return fmt.Errorf("revoke API token: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("API token %d: %w", id, ErrNotFound)
		}
		return insertAudit(tx, audit)
	})
}

// UseAPIToken finds a live token by its hash and records its use, with
// the use's audit row.
func (s *Store) UseAPIToken(ctx context.Context, hash string, at time.Time, audit func(t *APIToken) AuditEntry) (*APIToken, error) {
	var t APIToken
	err := s.db.WithContext(ctx).Where("token_hash = ? AND revoked_at IS NULL", hash).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("API token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&APIToken{}).Where("id = ?", t.ID).Update("last_used_at", at.UTC()).Error; err != nil {
			return fmt.Errorf("record API token use: %w", err)
		}
		return insertAudit(tx, []AuditEntry{audit(&t)})
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func idOrZero(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

// TicketFilter narrows ListTickets. Zero fields match everything.
type TicketFilter struct {
	StationIDs []uint // any of these (nil: all)
	GroupID    uint
	Status     string
	AssigneeID uint
	From, To   time.Time // created in [From, To)
	Emergency  bool      // only emergencies
	BeforeID   uint      // page backwards
	Limit      int       // default 100
}

// ListTickets lists tickets, newest first.
func (s *Store) ListTickets(ctx context.Context, f TicketFilter) ([]Ticket, error) {
	q := s.read(ctx).Model(&Ticket{})
	if f.StationIDs != nil {
		q = q.Where("station_id IN ?", f.StationIDs)
	}
	if f.GroupID != 0 {
		q = q.Where("group_id = ?", f.GroupID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.AssigneeID != 0 {
		q = q.Where("assignee_id = ?", f.AssigneeID)
	}
	if !f.From.IsZero() {
		q = q.Where("created_at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		q = q.Where("created_at < ?", f.To.UTC())
	}
	if f.Emergency {
		q = q.Where("emergency = ?", true)
	}
	if f.BeforeID != 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Ticket
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// ListBroadcasts lists broadcasts, newest first: of the given stations
// (nil: every one) or authored by authorID.
func (s *Store) ListBroadcasts(ctx context.Context, stationIDs []uint, authorID *uint, limit int) ([]Broadcast, error) {
	q := s.read(ctx).Model(&Broadcast{})
	if stationIDs != nil {
		if authorID != nil {
			q = q.Where("station_id IN ? OR author_id = ?", stationIDs, *authorID)
		} else {
			q = q.Where("station_id IN ?", stationIDs)
		}
	}
	if limit <= 0 {
		limit = 50
	}
	var out []Broadcast
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list broadcasts: %w", err)
	}
	return out, nil
}

// TicketTime is what the console's charts need of one ticket.
type TicketTime struct {
	CreatedAt    time.Time
	AfterHours   bool
	AutoAnswered bool
}

// TicketTimes lists, for tickets created in [from, to) of the given
// stations (nil: all), when each was asked and how it was handled: the
// few columns the charts bucket by day and hour.
func (s *Store) TicketTimes(ctx context.Context, stationIDs []uint, from, to time.Time) ([]TicketTime, error) {
	q := s.read(ctx).Model(&Ticket{}).Select("created_at, after_hours, auto_answered").
		Where("created_at >= ? AND created_at < ?", from.UTC(), to.UTC())
	if stationIDs != nil {
		q = q.Where("station_id IN ?", stationIDs)
	}
	var out []TicketTime
	if err := q.Order("created_at").Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("list ticket times: %w", err)
	}
	return out, nil
}
