package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// ErrConflict is returned by an edit whose row another admin changed or
// deleted since it was read: nothing is written, and the editor reloads and
// decides again with what is there now.
var ErrConflict = errors.New("changed or deleted by someone else meanwhile")

// ErrUnknownOfficer and ErrOtherStation refuse a roster row for an officer
// who does not exist, or who belongs to another station than the roster's.
var (
	ErrUnknownOfficer = errors.New("no such officer")
	ErrOtherStation   = errors.New("officer belongs to another station")
)

// DirectoryVersion is the directory revision: one read of one row, made by
// every process on a short interval (see DirectoryRevision).
func (s *Store) DirectoryVersion(ctx context.Context) (int64, error) {
	var r DirectoryRevision
	err := s.read(ctx).Where("id = 1").Limit(1).Find(&r).Error
	if err != nil {
		return 0, fmt.Errorf("read directory version: %w", err)
	}
	return r.Version, nil
}

// bumpDirectory moves the revision on inside tx: the change commits with
// it, so no process can see the new version without the change.
func bumpDirectory(tx *gorm.DB) error {
	res := tx.Model(&DirectoryRevision{}).Where("id = 1").Update("version", gorm.Expr("version + 1"))
	if res.Error != nil {
		return fmt.Errorf("bump directory version: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		if err := tx.Create(&DirectoryRevision{ID: 1, Version: 1}).Error; err != nil {
			return fmt.Errorf("bump directory version: %w", err)
		}
	}
	return nil
}

// Edit is a directory edit's companions: the audit rows and
// messages committed with it.
type Edit struct {
	Audit    []AuditEntry
	Outbound []OutboundMessage
}

// directoryTx runs an edit of the directory with its audit rows and
// messages, bumping the revision, all in one transaction.
func (s *Store) directoryTx(ctx context.Context, c Edit, f func(tx *gorm.DB) error) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.insertOutbound(tx, c.Outbound); err != nil {
			return err
		}
		if err := f(tx); err != nil {
			return err
		}
		if err := insertAudit(tx, c.Audit); err != nil {
			return err
		}
		return bumpDirectory(tx)
	})
}

// checkOfficer makes sure officerID is an officer of station.
func checkOfficer(tx *gorm.DB, stationID, officerID uint) error {
	var o Officer
	if err := tx.Where("id = ?", officerID).Limit(1).Find(&o).Error; err != nil {
		return err
	}
	switch {
	case o.ID == 0:
		return fmt.Errorf("officer %d: %w", officerID, ErrUnknownOfficer)
	case o.StationID != stationID:
		return fmt.Errorf("officer %s: %w", o.Name, ErrOtherStation)
	}
	return nil
}

// updateVersioned writes fields over the row of model with id, only if its
// version is still version, and moves the version on; otherwise
// ErrConflict (the row changed, or is gone).
func updateVersioned(tx *gorm.DB, model any, id uint, version int64, fields map[string]any) error {
	fields["version"] = version + 1
	res := tx.Model(model).Where("id = ? AND version = ?", id, version).Updates(fields)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrConflict
	}
	return nil
}

// deleteVersioned deletes the row of model with id if its version is still
// version; otherwise ErrConflict.
func deleteVersioned(tx *gorm.DB, model any, id uint, version int64) error {
	res := tx.Where("id = ? AND version = ?", id, version).Delete(model)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrConflict
	}
	return nil
}

// SaveShift adds sh (ID 0) or updates it (ID and Version as read), with c.
// The officer must be of sh's station. sh comes back as stored.
func (s *Store) SaveShift(ctx context.Context, sh *Shift, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		if err := checkOfficer(tx, sh.StationID, sh.OfficerID); err != nil {
			return err
		}
		if sh.ID == 0 {
			sh.Version = 0
			return tx.Create(sh).Error
		}
		if err := updateVersioned(tx, &Shift{}, sh.ID, sh.Version, map[string]any{"officer_id": sh.OfficerID, "weekday": sh.Weekday,
			"day_kind": sh.DayKind, "start": sh.Start, "end": sh.End, "kind": sh.Kind}); err != nil {
			return err
		}
		sh.Version++
		return nil
	})
	if err != nil {
		return fmt.Errorf("save shift: %w", err)
	}
	return nil
}

// DeleteShift removes a shift read at version.
func (s *Store) DeleteShift(ctx context.Context, id uint, version int64, c Edit) error {
	if err := s.directoryTx(ctx, c, func(tx *gorm.DB) error { return deleteVersioned(tx, &Shift{}, id, version) }); err != nil {
		return fmt.Errorf("delete shift %d: %w", id, err)
	}
	return nil
}

// SaveOverrides adds ovs (all of one roster change: "off" and the hours
// worked instead, or leave for one and cover for another), with c.
func (s *Store) SaveOverrides(ctx context.Context, ovs []Override, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		for i := range ovs {
			if err := checkOfficer(tx, ovs[i].StationID, ovs[i].OfficerID); err != nil {
				return err
			}
		}
		if len(ovs) == 0 {
			return nil
		}
		return tx.Create(&ovs).Error
	})
	if err != nil {
		return fmt.Errorf("save overrides: %w", err)
	}
	return nil
}

// DeleteOverride removes an override read at version.
func (s *Store) DeleteOverride(ctx context.Context, id uint, version int64, c Edit) error {
	if err := s.directoryTx(ctx, c, func(tx *gorm.DB) error { return deleteVersioned(tx, &Override{}, id, version) }); err != nil {
		return fmt.Errorf("delete override %d: %w", id, err)
	}
	return nil
}

// Shift and OverrideByID read one row as it is now.
func (s *Store) Shift(ctx context.Context, id uint) (*Shift, error) {
	var sh Shift
	if err := s.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&sh).Error; err != nil {
		return nil, fmt.Errorf("read shift %d: %w", id, err)
	}
	if sh.ID == 0 {
		return nil, fmt.Errorf("shift %d: %w", id, ErrNotFound)
	}
	return &sh, nil
}

func (s *Store) OverrideByID(ctx context.Context, id uint) (*Override, error) {
	var o Override
	if err := s.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&o).Error; err != nil {
		return nil, fmt.Errorf("read override %d: %w", id, err)
	}
	if o.ID == 0 {
		return nil, fmt.Errorf("override %d: %w", id, ErrNotFound)
	}
	return &o, nil
}

// CreateSwap records a swap request with c, and the messages compose
// makes once the swap has its number, in one transaction.
func (s *Store) CreateSwap(ctx context.Context, sw *ShiftSwap, c Edit, compose func(*ShiftSwap) []OutboundMessage) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := checkOfficer(tx, sw.StationID, sw.RequesterID); err != nil {
			return err
		}
		if err := checkOfficer(tx, sw.StationID, sw.ColleagueID); err != nil {
			return err
		}
		sw.Status, sw.Version = SwapRequested, 0
		if err := tx.Create(sw).Error; err != nil {
			return err
		}
		if err := s.insertOutbound(tx, append(c.Outbound, compose(sw)...)); err != nil {
			return err
		}
		for i := range c.Audit {
			c.Audit[i].Target = fmt.Sprintf("换班 S%d %s", sw.ID, c.Audit[i].Target)
		}
		return insertAudit(tx, c.Audit)
	})
	if err != nil {
		return fmt.Errorf("request swap: %w", err)
	}
	return nil
}

// Swap reads one swap.
func (s *Store) Swap(ctx context.Context, id uint) (*ShiftSwap, error) {
	var sw ShiftSwap
	if err := s.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&sw).Error; err != nil {
		return nil, fmt.Errorf("read swap %d: %w", id, err)
	}
	if sw.ID == 0 {
		return nil, fmt.Errorf("swap S%d: %w", id, ErrNotFound)
	}
	return &sw, nil
}

// Swaps lists a station's swaps, newest first, optionally only in status.
func (s *Store) Swaps(ctx context.Context, stationID uint, status ...string) ([]ShiftSwap, error) {
	q := s.read(ctx).Where("station_id = ?", stationID)
	if len(status) > 0 {
		q = q.Where("status IN ?", status)
	}
	var out []ShiftSwap
	if err := q.Order("id DESC").Limit(200).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	return out, nil
}

// MoveSwap moves sw from the status it was read in (at its version) to
// status; overrides (an approved swap's roster change) are written with it
// and bump the directory. A swap moved by someone else meanwhile:
// ErrConflict.
func (s *Store) MoveSwap(ctx context.Context, sw *ShiftSwap, status string, decidedBy *uint, ovs []Override, c Edit) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := updateVersioned(tx, &ShiftSwap{}, sw.ID, sw.Version, map[string]any{"status": status, "decided_by_id": decidedBy, "updated_at": tx.NowFunc()}); err != nil {
			return err
		}
		if len(ovs) > 0 {
			for i := range ovs {
				if err := checkOfficer(tx, ovs[i].StationID, ovs[i].OfficerID); err != nil {
					return err
				}
			}
			if err := tx.Create(&ovs).Error; err != nil {
				return err
			}
			if err := bumpDirectory(tx); err != nil {
				return err
			}
		}
		if err := s.insertOutbound(tx, c.Outbound); err != nil {
			return err
		}
		return insertAudit(tx, c.Audit)
	})
	if err != nil {
		return fmt.Errorf("swap S%d to %s: %w", sw.ID, status, err)
	}
	sw.Status, sw.DecidedByID = status, decidedBy
	sw.Version++
	return nil
}

// NewCalendarFeed gives officer a fresh secret feed token, revoking any
// earlier one (a leaked address is replaced by making a new one). Only the
// token's hash is stored; the token is returned once.
func (s *Store) NewCalendarFeed(ctx context.Context, officerID uint, c Edit) (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make feed token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := tx.NowFunc()
		if err := tx.Model(&CalendarFeed{}).Where("officer_id = ? AND revoked_at IS NULL", officerID).Update("revoked_at", now).Error; err != nil {
			return err
		}
		if err := tx.Create(&CalendarFeed{OfficerID: officerID, TokenHash: hashToken(token), CreatedAt: now}).Error; err != nil {
			return err
		}
		return insertAudit(tx, c.Audit)
	})
	if err != nil {
		return "", fmt.Errorf("create calendar feed: %w", err)
	}
	return token, nil
}

// RevokeCalendarFeeds stops every feed address of officer.
func (s *Store) RevokeCalendarFeeds(ctx context.Context, officerID uint, c Edit) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&CalendarFeed{}).Where("officer_id = ? AND revoked_at IS NULL", officerID).Update("revoked_at", tx.NowFunc()).Error; err != nil {
			return err
		}
		return insertAudit(tx, c.Audit)
	})
	if err != nil {
		return fmt.Errorf("revoke calendar feeds: %w", err)
	}
	return nil
}

// CalendarFeedOfficer is the officer a feed token belongs to, or
// ErrNotFound for a wrong or revoked one.
func (s *Store) CalendarFeedOfficer(ctx context.Context, token string) (uint, error) {
	var f CalendarFeed
	if err := s.read(ctx).Where("token_hash = ? AND revoked_at IS NULL", hashToken(token)).Limit(1).Find(&f).Error; err != nil {
		return 0, fmt.Errorf("read calendar feed: %w", err)
	}
	if f.ID == 0 {
		return 0, fmt.Errorf("calendar feed: %w", ErrNotFound)
	}
	return f.OfficerID, nil
}

// HasCalendarFeed reports whether officer has a live feed address.
func (s *Store) HasCalendarFeed(ctx context.Context, officerID uint) (bool, error) {
	var n int64
	if err := s.read(ctx).Model(&CalendarFeed{}).Where("officer_id = ? AND revoked_at IS NULL", officerID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("read calendar feeds: %w", err)
	}
	return n > 0, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
