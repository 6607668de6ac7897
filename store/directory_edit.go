package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrTaken refuses a row that would take a unique name another row holds
// (an officer code, a platform account, a group's chat).
var ErrTaken = errors.New("already in use")

// taken turns a unique-key violation into ErrTaken.
func taken(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(strings.ToLower(err.Error()), "unique") || strings.Contains(err.Error(), "Duplicate entry") {
		return fmt.Errorf("%s: %w", what, ErrTaken)
	}
	return err
}

// UpdateStation writes a station's name, SLA, duty account and leader over
// the row read at st.Version. The duty account and leader must be the
// station's own officers.
func (s *Store) UpdateStation(ctx context.Context, st *Station, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		for _, id := range []*uint{st.DutyAccountID, st.LeaderID} {
			if id != nil {
				if err := checkOfficer(tx, st.ID, *id); err != nil {
					return err
				}
			}
		}
		if err := updateVersioned(tx, &Station{}, st.ID, st.Version, map[string]any{"name": st.Name, "sla_minutes": st.SLAMinutes,
			"duty_account_id": st.DutyAccountID, "leader_id": st.LeaderID}); err != nil {
			return err
		}
		st.Version++
		return nil
	})
	if err != nil {
		return fmt.Errorf("update station %s: %w", st.Code, err)
	}
	return nil
}

// SaveOfficer adds o (ID 0) or updates its name, roles and aliases over the
// row read at o.Version, and makes its platform accounts ids (platform →
// user id) exactly.
func (s *Store) SaveOfficer(ctx context.Context, o *Officer, ids map[string]string, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		if o.ID == 0 {
			o.Version = 0
			if err := taken(tx.Create(o).Error, "officer code "+o.Code); err != nil {
				return err
			}
		} else {
			if err := updateVersioned(tx, &Officer{}, o.ID, o.Version, map[string]any{"name": o.Name, "roles": o.Roles, "aliases": o.Aliases}); err != nil {
				return err
			}
			o.Version++
		}
		if err := tx.Where("officer_id = ?", o.ID).Delete(&Identity{}).Error; err != nil {
			return err
		}
		for p, uid := range ids {
			if uid == "" {
				continue
			}
			if err := taken(tx.Create(&Identity{OfficerID: o.ID, Platform: p, UserID: uid}).Error, p+" account "+uid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save officer %s: %w", o.Code, err)
	}
	return nil
}

// SaveGroup adds g (ID 0: registering it, which also clears it from the
// unknown chats) or updates it over the row read at g.Version. Its officer
// must be of its station.
func (s *Store) SaveGroup(ctx context.Context, g *Group, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		if g.OfficerID != nil {
			if err := checkOfficer(tx, g.StationID, *g.OfficerID); err != nil {
				return err
			}
		}
		if g.ID == 0 {
			g.Version = 0
			if err := taken(tx.Create(g).Error, "group "+g.Platform+" "+g.ChatID); err != nil {
				return err
			}
			return tx.Where("platform = ? AND chat_id = ?", g.Platform, g.ChatID).Delete(&UnknownChat{}).Error
		}
		if err := updateVersioned(tx, &Group{}, g.ID, g.Version, map[string]any{"name": g.Name, "station_id": g.StationID,
			"officer_id": g.OfficerID, "tags": g.Tags, "kind": g.Kind}); err != nil {
			return err
		}
		g.Version++
		return nil
	})
	if err != nil {
		return fmt.Errorf("save group %s: %w", g.ChatID, err)
	}
	return nil
}

// DeleteGroup removes a group read at version (its tickets stay).
func (s *Store) DeleteGroup(ctx context.Context, id uint, version int64, c Edit) error {
	if err := s.directoryTx(ctx, c, func(tx *gorm.DB) error { return deleteVersioned(tx, &Group{}, id, version) }); err != nil {
		return fmt.Errorf("delete group %d: %w", id, err)
	}
	return nil
}

// SaveFAQ adds f (ID 0) or updates it over the row read at f.Version.
func (s *Store) SaveFAQ(ctx context.Context, f *FAQ, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		if f.ID == 0 {
			f.Version = 0
			return tx.Create(f).Error
		}
		if err := updateVersioned(tx, &FAQ{}, f.ID, f.Version, map[string]any{"station_id": f.StationID, "topic": f.Topic,
			"keywords": f.Keywords, "answer": f.Answer}); err != nil {
			return err
		}
		f.Version++
		return nil
	})
	if err != nil {
		return fmt.Errorf("save faq %q: %w", f.Topic, err)
	}
	return nil
}

// DeleteFAQ removes an entry read at version.
func (s *Store) DeleteFAQ(ctx context.Context, id uint, version int64, c Edit) error {
	if err := s.directoryTx(ctx, c, func(tx *gorm.DB) error { return deleteVersioned(tx, &FAQ{}, id, version) }); err != nil {
		return fmt.Errorf("delete faq %d: %w", id, err)
	}
	return nil
}

// SaveTemplate writes a message template's text over the row read at
// version.
func (s *Store) SaveTemplate(ctx context.Context, key, text string, version int64, c Edit) error {
	err := s.directoryTx(ctx, c, func(tx *gorm.DB) error {
		res := tx.Model(&Template{}).Where(clause.Eq{Column: "key", Value: key}).Where("version = ?", version).Updates(map[string]any{"text": text, "version": version + 1})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrConflict
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save template %s: %w", key, err)
	}
	return nil
}
