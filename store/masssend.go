package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DeliveryAwaitingOwner is a delivery to a WeCom customer group: the hub
// cannot post there, so the alert went to the group's owner as a mass-send
// task, and the group has it only once the owner confirmed it in WeCom.
// It is never counted as delivered until then.
const DeliveryAwaitingOwner = "awaiting_owner"

// PurposeMassSend is the outbound row that asks WeCom to create an owner's
// mass-send task (externalcontact/add_msg_template) for their customer
// groups of one broadcast; the platform's task id becomes its message id.
const PurposeMassSend = "mass_send"

// OwnerGroups are one owner's customer groups in a broadcast.
type OwnerGroups struct {
	OfficerID uint
	ChatIDs   []string
}

// CustomerCap limits mass sends to one customer group: at most N since
// Since (WeCom lets a customer group receive one mass send a day).
type CustomerCap struct {
	N     int
	Since time.Time
	// Reason is what a delivery over the cap records.
	Reason string
}

// ConfirmBroadcastOwners is ConfirmBroadcast for a broadcast whose targets
// include customer groups, all in one transaction: their deliveries leave
// the sending lane, a group already at its cap fails with the cap as its
// reason, the rest await their owners, and compose's messages (one
// mass-send task per owner) are written with them.
func (s *Store) ConfirmBroadcastOwners(ctx context.Context, id uint, at time.Time, by Actor, limit CustomerCap, compose func(owners []OwnerGroups) []OutboundMessage) error {
	at = at.UTC()
	return s.broadcastUpdate(ctx, id, []string{BroadcastDraft, BroadcastAwaitingApproval}, map[string]any{
		"status": BroadcastSending, "confirmed_at": at, "round": 1, "updated_at": at,
		"confirmed_by_id": by.OfficerID, "confirmed_by": clip(by.Name, 128), "confirmed_via": clip(by.Via, 8), "confirmed_from": clip(by.From, 191),
	}, by.Audit, func(tx *gorm.DB) error {
		var targets []struct {
			ID        uint
			GroupID   uint
			ChatID    string
			OfficerID *uint
		}
		err := tx.Table("deliveries").Select("deliveries.id, deliveries.group_id, deliveries.chat_id, g.officer_id").
			Joins("JOIN `groups` g ON g.id = deliveries.group_id").
			Where("deliveries.broadcast_id = ? AND deliveries.status = ? AND g.kind = ?", id, DeliveryPending, GroupKindCustomer).
			Order("deliveries.chat_id").Scan(&targets).Error
		if err != nil || len(targets) == 0 {
			return err
		}
		byOwner := map[uint]*OwnerGroups{}
		var owners []OwnerGroups
		var order []uint
		for _, t := range targets {
			var n int64
			if limit.N > 0 {
				err := tx.Table("deliveries").Joins("JOIN broadcasts ON broadcasts.id = deliveries.broadcast_id").
					Where("deliveries.group_id = ? AND deliveries.broadcast_id <> ? AND deliveries.status IN ? AND broadcasts.confirmed_at >= ?",
						t.GroupID, id, []string{DeliveryAwaitingOwner, DeliverySent}, limit.Since.UTC()).Count(&n).Error
				if err != nil {
					return fmt.Errorf("count mass sends to group %d: %w", t.GroupID, err)
				}
			}
			fields := map[string]any{"status": DeliveryAwaitingOwner, "updated_at": at}
			switch {
			case limit.N > 0 && n >= int64(limit.N):
				fields = map[string]any{"status": DeliveryFailed, "reason": clip(limit.Reason, 500), "updated_at": at}
			case t.OfficerID == nil:
				fields = map[string]any{"status": DeliveryFailed, "reason": "客户群没有登记群主（officer），无法请群主群发", "updated_at": at}
			default:
				o := byOwner[*t.OfficerID]
				if o == nil {
					o = &OwnerGroups{OfficerID: *t.OfficerID}
					byOwner[*t.OfficerID] = o
					order = append(order, *t.OfficerID)
				}
				o.ChatIDs = append(o.ChatIDs, t.ChatID)
			}
			if err := tx.Model(&Delivery{}).Where("id = ?", t.ID).Updates(fields).Error; err != nil {
				return fmt.Errorf("mark delivery %d: %w", t.ID, err)
			}
		}
		for _, oid := range order {
			owners = append(owners, *byOwner[oid])
		}
		if len(owners) == 0 || compose == nil {
			return nil
		}
		return s.insertOutbound(tx, compose(owners))
	})
}

// OwnerChats are the customer groups of one broadcast still awaiting one
// owner: what that owner's mass-send task is for.
func (s *Store) OwnerChats(ctx context.Context, broadcastID, officerID uint) ([]string, error) {
	var out []string
	err := s.read(ctx).Table("deliveries").Joins("JOIN `groups` g ON g.id = deliveries.group_id").
		Where("deliveries.broadcast_id = ? AND deliveries.status = ? AND g.officer_id = ?", broadcastID, DeliveryAwaitingOwner, officerID).
		Order("deliveries.chat_id").Pluck("deliveries.chat_id", &out).Error
	if err != nil {
		return nil, fmt.Errorf("customer groups of B%d awaiting officer %d: %w", broadcastID, officerID, err)
	}
	return out, nil
}

// MassSendTask is an owner's mass-send task WeCom created, to be followed
// until the owner sent it.
type MassSendTask struct {
	BroadcastID uint
	OfficerID   uint
	UserID      string // the owner's platform account
	TaskID      string // WeCom's msgid
}

// OpenMassSendTasks lists the tasks created on a platform whose groups
// still await their owner.
func (s *Store) OpenMassSendTasks(ctx context.Context, platform string) ([]MassSendTask, error) {
	var rows []OutboundMessage
	err := s.read(ctx).Where("purpose = ? AND platform = ? AND state = ? AND message_id <> '' AND EXISTS "+
		"(SELECT 1 FROM deliveries JOIN `groups` g ON g.id = deliveries.group_id WHERE deliveries.broadcast_id = outbound_messages.broadcast_id "+
		"AND deliveries.status = ? AND g.officer_id = outbound_messages.officer_id)",
		PurposeMassSend, platform, OutboundSent, DeliveryAwaitingOwner).Order("id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("open mass-send tasks: %w", err)
	}
	out := make([]MassSendTask, 0, len(rows))
	for _, r := range rows {
		if r.BroadcastID == nil || r.OfficerID == nil {
			continue
		}
		out = append(out, MassSendTask{BroadcastID: *r.BroadcastID, OfficerID: *r.OfficerID, UserID: r.ToUser, TaskID: r.MessageID})
	}
	return out, nil
}

// OwnerResult is what became of a mass send in one customer group.
type OwnerResult struct {
	ChatID string
	Sent   bool
	At     time.Time
	// Reason is why the group did not get it (Sent false); empty while
	// the owner has not acted.
	Reason string
}

// SettleOwnerDeliveries records what the owner's task did in each group:
// sent, or refused with the reason. Only deliveries still awaiting the
// owner change; it reports how many did.
func (s *Store) SettleOwnerDeliveries(ctx context.Context, broadcastID uint, results []OwnerResult) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		n = 0
		for _, r := range results {
			var fields map[string]any
			switch {
			case r.Sent:
				fields = map[string]any{"status": DeliverySent, "sent_at": r.At.UTC(), "updated_at": r.At.UTC()}
			case r.Reason != "":
				fields = map[string]any{"status": DeliveryFailed, "reason": clip(r.Reason, 500), "updated_at": r.At.UTC()}
			default:
				continue
			}
			res := tx.Model(&Delivery{}).Where("broadcast_id = ? AND chat_id = ? AND status = ?", broadcastID, r.ChatID, DeliveryAwaitingOwner).Updates(fields)
			if res.Error != nil {
				return res.Error
			}
			n += res.RowsAffected
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("settle owners' deliveries of B%d: %w", broadcastID, err)
	}
	return n, nil
}

// AwaitingOwner is one owner's groups of a broadcast still unconfirmed.
type AwaitingOwner struct {
	BroadcastID uint
	OfficerID   uint
	Groups      int `gorm:"column:group_count"`
}

// AwaitingOwners lists, per broadcast confirmed before `before`, the owners
// whose customer groups still await them: whom to remind.
func (s *Store) AwaitingOwners(ctx context.Context, before time.Time) ([]AwaitingOwner, error) {
	var out []AwaitingOwner
	err := s.read(ctx).Table("deliveries").
		Select("deliveries.broadcast_id AS broadcast_id, g.officer_id AS officer_id, count(*) AS group_count").
		Joins("JOIN `groups` g ON g.id = deliveries.group_id").
		Joins("JOIN broadcasts ON broadcasts.id = deliveries.broadcast_id").
		Where("deliveries.status = ? AND g.officer_id IS NOT NULL AND broadcasts.confirmed_at <= ? AND broadcasts.status <> ?", DeliveryAwaitingOwner, before.UTC(), BroadcastCancelled).
		Group("deliveries.broadcast_id, g.officer_id").Order("deliveries.broadcast_id, g.officer_id").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("owners awaited: %w", err)
	}
	return out, nil
}
