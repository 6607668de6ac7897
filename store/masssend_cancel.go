package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// PurposeMassSendCancel is the outbound row that asks WeCom to stop an
// owner's mass-send task (externalcontact/cancel_groupmsg_send) when its
// broadcast is cancelled before the owner sent it: the owner can then no
// longer send a withdrawn alert from WeCom.
const PurposeMassSendCancel = "mass_send_cancel"

// MassSendOwner is an owner whose mass-send task of a broadcast was asked
// of the platform (or is being asked): what a cancellation must stop.
type MassSendOwner struct {
	OfficerID uint
	UserID    string // the owner's platform account
	Platform  string
}

// CancelBroadcastOwners is CancelBroadcast for a broadcast that may have
// customer groups, in one transaction: its deliveries still pending or
// awaiting their owner are cancelled, owners' tasks not yet asked for are
// not asked for, and compose's messages (one cancellation per task already
// asked for) are written with them. A finished broadcast can be cancelled
// while any of its customer groups still awaits its owner: the alert has
// not reached those groups yet.
func (s *Store) CancelBroadcastOwners(ctx context.Context, id uint, at time.Time, by Actor, compose func(owners []MassSendOwner) []OutboundMessage) error {
	at = at.UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE broadcasts SET status = ?, cancelled_at = ?, updated_at = ?, cancelled_by_id = ?, cancelled_by = ?, cancelled_via = ?, cancelled_from = ? "+
			"WHERE id = ? AND (status IN (?, ?) OR (status = ? AND EXISTS (SELECT 1 FROM deliveries WHERE deliveries.broadcast_id = broadcasts.id AND deliveries.status = ?)))",
			BroadcastCancelled, at, at, by.OfficerID, clip(by.Name, 128), clip(by.Via, 8), clip(by.From, 191),
			id, BroadcastDraft, BroadcastSending, BroadcastDone, DeliveryAwaitingOwner)
		if res.Error != nil {
			return fmt.Errorf("cancel broadcast B%d: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			var b Broadcast
			if err := tx.Where("id = ?", id).Take(&b).Error; err != nil {
				_, err = one(&b, err, fmt.Sprintf("broadcast B%d", id))
				return err
			}
			return fmt.Errorf("broadcast B%d is %s: %w", id, b.Status, ErrBroadcastState)
		}
		// Tasks created, or being created now (the cancellation waits for
		// the creation to settle, see MassSendTaskID), whose owner has not
		// sent them yet: a sent task cannot be stopped, and need not be.
		var rows []OutboundMessage
		if compose != nil {
			err := tx.Where("broadcast_id = ? AND purpose = ? AND state IN ? AND officer_id IS NOT NULL AND EXISTS "+
				"(SELECT 1 FROM deliveries JOIN `groups` g ON g.id = deliveries.group_id WHERE deliveries.broadcast_id = outbound_messages.broadcast_id "+
				"AND deliveries.status = ? AND g.officer_id = outbound_messages.officer_id)",
				id, PurposeMassSend, []string{OutboundSending, OutboundSent}, DeliveryAwaitingOwner).Order("id").Find(&rows).Error
			if err != nil {
				return fmt.Errorf("mass-send tasks of B%d: %w", id, err)
			}
		}
		if err := tx.Model(&Delivery{}).Where("broadcast_id = ? AND status IN ?", id, []string{DeliveryPending, DeliveryAwaitingOwner}).
			Updates(map[string]any{"status": DeliveryCancelled, "updated_at": at}).Error; err != nil {
			return fmt.Errorf("cancel deliveries of B%d: %w", id, err)
		}
		if err := tx.Model(&OutboundMessage{}).Where("broadcast_id = ? AND purpose = ? AND state = ?", id, PurposeMassSend, OutboundPending).
			Updates(map[string]any{"state": OutboundCancelled, "updated_at": at}).Error; err != nil {
			return fmt.Errorf("cancel unasked mass-send tasks of B%d: %w", id, err)
		}
		if len(rows) == 0 {
			return nil
		}
		owners := make([]MassSendOwner, len(rows))
		for i, r := range rows {
			owners[i] = MassSendOwner{OfficerID: *r.OfficerID, UserID: r.ToUser, Platform: r.Platform}
		}
		return s.insertOutbound(tx, compose(owners))
	})
}

// ErrTaskUnsettled: the owner's mass-send task is still being asked of the
// platform; its id is known once that settles.
var ErrTaskUnsettled = errors.New("the mass-send task is still being created")

// MassSendTaskID is the platform's id (msgid) of an owner's mass-send task
// of a broadcast: "" when none was created (refused, or never asked for),
// ErrTaskUnsettled while it is being asked for.
func (s *Store) MassSendTaskID(ctx context.Context, broadcastID, officerID uint) (string, error) {
	var rows []OutboundMessage
	if err := s.read(ctx).Select("state, message_id").Where("broadcast_id = ? AND officer_id = ? AND purpose = ?", broadcastID, officerID, PurposeMassSend).
		Order("id").Find(&rows).Error; err != nil {
		return "", fmt.Errorf("mass-send task of B%d for officer %d: %w", broadcastID, officerID, err)
	}
	for _, r := range rows {
		switch {
		case r.State == OutboundSending:
			return "", ErrTaskUnsettled
		case r.State == OutboundSent && r.MessageID != "":
			return r.MessageID, nil
		}
	}
	return "", nil
}
