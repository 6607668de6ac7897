package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// KFCursor is where WeChat customer service's sync_msg stopped for one
// customer-service account: the next pull starts there, so a restart neither
// loses a resident's message nor (past the edge's de-duplication) handles
// one twice.
type KFCursor struct {
	OpenKFID  string `gorm:"column:open_kfid;primaryKey;size:64"`
	Cursor    string `gorm:"column:next_cursor;size:128;not null"`
	UpdatedAt time.Time
}

func (KFCursor) TableName() string { return "kf_cursors" }

// KFSession is one resident's customer-service conversation: the group
// whose link opened it (Scene), when the resident last wrote (WeChat lets
// the account answer for 48 hours after that) and how many answers were sent
// since (at most 5).
type KFSession struct {
	OpenKFID       string `gorm:"column:open_kfid;primaryKey;size:64"`
	ExternalUserID string `gorm:"primaryKey;size:128"`
	Scene          string `gorm:"size:32;not null;default:''"`
	LastInAt       *time.Time
	Answers        int `gorm:"not null;default:0"`
	UpdatedAt      time.Time
}

func (KFSession) TableName() string { return "kf_sessions" }

// KFLink is the customer-service link made for one group (kf/add_contact_way
// with the group's scene), to pin in the group's notice.
type KFLink struct {
	ChatID    string `gorm:"primaryKey;size:128"`
	Scene     string `gorm:"size:32;not null;uniqueIndex:idx_kf_links_scene"`
	URL       string `gorm:"size:512;not null"`
	CreatedAt time.Time
}

func (KFLink) TableName() string { return "kf_links" }

// KFCursor returns the stored sync_msg cursor of an account, "" before the
// first pull.
func (s *Store) KFCursor(ctx context.Context, openKFID string) (string, error) {
	var c KFCursor
	err := s.read(ctx).Where("open_kfid = ?", openKFID).Take(&c).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read kf cursor: %w", err)
	}
	return c.Cursor, nil
}

// SaveKFCursor records where the next pull of an account starts.
func (s *Store) SaveKFCursor(ctx context.Context, openKFID, cursor string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "open_kfid"}},
			DoUpdates: clause.AssignmentColumns([]string{"next_cursor", "updated_at"})}).
			Create(&KFCursor{OpenKFID: openKFID, Cursor: cursor, UpdatedAt: tx.NowFunc()}).Error
	})
	if err != nil {
		return fmt.Errorf("save kf cursor: %w", err)
	}
	return nil
}

var kfSessionKey = []clause.Column{{Name: "open_kfid"}, {Name: "external_user_id"}}

// NoteKFScene records the group link a resident came through. A later
// entry through another group's link replaces it.
func (s *Store) NoteKFScene(ctx context.Context, openKFID, user, scene string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{Columns: kfSessionKey, DoUpdates: clause.AssignmentColumns([]string{"scene", "updated_at"})}).
			Create(&KFSession{OpenKFID: openKFID, ExternalUserID: user, Scene: scene, UpdatedAt: tx.NowFunc()}).Error
	})
	if err != nil {
		return fmt.Errorf("note kf scene: %w", err)
	}
	return nil
}

// NoteKFMessage records that a resident wrote at `at`: a new 48-hour window
// opens, with its five answers. An older message (a page pulled again) does
// not move the window back.
func (s *Store) NoteKFMessage(ctx context.Context, openKFID, user string, at time.Time) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&KFSession{}).Where("open_kfid = ? AND external_user_id = ? AND (last_in_at IS NULL OR last_in_at < ?)", openKFID, user, at).
			Updates(map[string]any{"last_in_at": at, "answers": 0, "updated_at": tx.NowFunc()})
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		return tx.Clauses(clause.OnConflict{Columns: kfSessionKey, DoNothing: true}).
			Create(&KFSession{OpenKFID: openKFID, ExternalUserID: user, LastInAt: &at, UpdatedAt: tx.NowFunc()}).Error
	})
	if err != nil {
		return fmt.Errorf("note kf message: %w", err)
	}
	return nil
}

// KFSessionOf returns a resident's conversation, ErrNotFound when they never
// wrote.
func (s *Store) KFSessionOf(ctx context.Context, openKFID, user string) (*KFSession, error) {
	var out KFSession
	err := s.read(ctx).Where("open_kfid = ? AND external_user_id = ?", openKFID, user).Take(&out).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("read kf session: %w", err)
	}
	return &out, nil
}

// CountKFAnswer records one answer sent in the resident's current window.
func (s *Store) CountKFAnswer(ctx context.Context, openKFID, user string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		return tx.Model(&KFSession{}).Where("open_kfid = ? AND external_user_id = ?", openKFID, user).
			Updates(map[string]any{"answers": gorm.Expr("answers + 1"), "updated_at": tx.NowFunc()}).Error
	})
	if err != nil {
		return fmt.Errorf("count kf answer: %w", err)
	}
	return nil
}

// SaveKFLink records a group's customer-service link.
func (s *Store) SaveKFLink(ctx context.Context, l KFLink) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if l.CreatedAt.IsZero() {
			l.CreatedAt = tx.NowFunc()
		}
		return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "chat_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"scene", "url"})}).Create(&l).Error
	})
	if err != nil {
		return fmt.Errorf("save kf link: %w", err)
	}
	return nil
}

// KFLinks lists every group's customer-service link.
func (s *Store) KFLinks(ctx context.Context) ([]KFLink, error) {
	var out []KFLink
	if err := s.read(ctx).Order("chat_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list kf links: %w", err)
	}
	return out, nil
}

// KFLinkByScene returns the link of a scene, ErrNotFound when no group has it.
func (s *Store) KFLinkByScene(ctx context.Context, scene string) (*KFLink, error) {
	var out KFLink
	err := s.read(ctx).Where("scene = ?", scene).Take(&out).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("read kf link: %w", err)
	}
	return &out, nil
}
