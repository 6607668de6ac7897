package store

import (
	"context"
	"fmt"
	"time"
)

// MarkDigest records that officer got the waiting-list for the shift that
// started at start. It returns false when that was recorded already (another
// worker, or this one before a restart), so each shift gets one digest.
func (s *Store) MarkDigest(ctx context.Context, officerID uint, start time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Officer{}).
		Where("id = ? AND (digest_for IS NULL OR digest_for < ?)", officerID, start.UTC()).
		Update("digest_for", start.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("mark digest of officer %d: %w", officerID, res.Error)
	}
	return res.RowsAffected == 1, nil
}
