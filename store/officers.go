package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// MarkDigest records that officer got the waiting-list for the shift that
// started at start. It returns false when that was recorded already (another
// worker, or this one before a restart), so each shift gets one digest. The
// digest's messages are written in the same transaction: marked means sent.
func (s *Store) MarkDigest(ctx context.Context, officerID uint, start time.Time, msgs []OutboundMessage) (bool, error) {
	fresh := false
	err := s.tx(ctx, func(tx *gorm.DB) error {
		fresh = false
		res := tx.Model(&Officer{}).
			Where("id = ? AND (digest_for IS NULL OR digest_for < ?)", officerID, start.UTC()).
			Update("digest_for", start.UTC())
		if res.Error != nil {
			return fmt.Errorf("mark digest of officer %d: %w", officerID, res.Error)
		}
		if res.RowsAffected != 1 {
			return nil
		}
		fresh = true
		if err := s.insertOutbound(tx, msgs); err != nil && !errors.Is(err, ErrDuplicate) {
			return err
		}
		return nil
	})
	return fresh, err
}
