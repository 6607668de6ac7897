package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Defaults for customer groups (WeCom 客户群), where every post waits for
// the owner's tap.
const (
	// DefaultCustomerGroupCap is how many mass sends one customer group
	// takes a day: WeCom's own limit.
	DefaultCustomerGroupCap = 1
	// DefaultOwnerRemindAfter is how long after a broadcast's confirmation
	// an owner who has not sent its mass send is reminded.
	DefaultOwnerRemindAfter = 30 * time.Minute
)

// PurposeMassSend is an owner's mass-send task, asked of the platform.
const PurposeMassSend bot.Purpose = store.PurposeMassSend

// confirmWithOwners confirms a broadcast and, in the same transaction,
// turns its customer groups into one mass-send task per owner (an outbound
// row: the relay asks the platform for it) or, for a group already at its
// daily cap, a failure with that reason.
func (h *Hub) confirmWithOwners(ctx context.Context, d *directory, id uint, at time.Time, by store.Actor) ([]bot.Outbound, error) {
	b, err := h.store.BroadcastByID(ctx, id)
	if err != nil {
		return nil, err
	}
	capN := h.opts.CustomerGroupCap
	if capN == 0 {
		capN = DefaultCustomerGroupCap
	}
	loc := h.opts.Location
	if loc == nil {
		loc = time.UTC
	}
	local := at.In(loc)
	dayStart := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	limit := store.CustomerCap{N: capN, Since: dayStart,
		Reason: render(d.template("mass_send_capped"), "limit", fmt.Sprint(capN))}
	if capN < 0 {
		limit.N = 0 // no cap
	}
	text := h.alertText(d, b.Text)
	var tasks []bot.Outbound
	err = h.store.ConfirmBroadcastOwners(ctx, id, at, by, limit, func(owners []store.OwnerGroups) []store.OutboundMessage {
		tasks = tasks[:0]
		for _, og := range owners {
			o := d.officers[og.OfficerID]
			if o == nil {
				continue
			}
			p, uid, ok := d.address(o, string(bot.WeChat))
			if !ok || p != string(bot.WeChat) {
				continue // no WeCom account: the groups stay awaiting, and the owner's reminder says so
			}
			tasks = append(tasks, bot.Outbound{
				Key: fmt.Sprintf("bc%d:mass:%d", id, o.ID), Platform: bot.WeChat, ToUser: uid,
				Format: bot.FormatText, Title: "警方预警", Text: text,
				Ref: bot.Ref{Purpose: PurposeMassSend, BroadcastID: id, OfficerID: o.ID},
			})
		}
		return rows(tasks)
	})
	return tasks, err
}

// PurposeMassSendCancel stops an owner's mass-send task, asked of the
// platform when its broadcast is cancelled.
const PurposeMassSendCancel bot.Purpose = store.PurposeMassSendCancel

// massSendCancels are the rows that stop the owners' tasks of a cancelled
// broadcast: the owners' groups then never get the withdrawn alert, even
// if an owner taps send in WeCom later.
func massSendCancels(id uint, owners []store.MassSendOwner) []bot.Outbound {
	out := make([]bot.Outbound, 0, len(owners))
	for _, o := range owners {
		out = append(out, bot.Outbound{
			Key: fmt.Sprintf("bc%d:mass-cancel:%d", id, o.OfficerID), Platform: bot.Platform(o.Platform), ToUser: o.UserID,
			Format: bot.FormatText, Title: "撤回群发预警", Text: fmt.Sprintf("停止预警广播 B%d 的客户群群发任务", id),
			Ref: bot.Ref{Purpose: PurposeMassSendCancel, BroadcastID: id, OfficerID: o.OfficerID},
		})
	}
	return out
}

// remindOwners tells each owner whose customer groups still wait for them,
// once per broadcast, OwnerRemindAfter after its confirmation: the alert
// reaches those groups only when they tap send in WeCom.
func (h *Hub) remindOwners(ctx context.Context) error {
	after := h.opts.OwnerRemindAfter
	if after == 0 {
		after = DefaultOwnerRemindAfter
	}
	now := h.now()
	if minute := now.Unix() / 60; h.remindedAt.Swap(minute) == minute {
		return nil // looked this minute already
	}
	waiting, err := h.store.AwaitingOwners(ctx, now.Add(-after))
	if err != nil || len(waiting) == 0 {
		return err
	}
	d := h.dir.Load()
	for _, w := range waiting {
		o := d.officers[w.OfficerID]
		if o == nil {
			continue
		}
		m, ok := d.dm(o, string(bot.WeChat), fmt.Sprintf("bc%d:owner-remind:%d", w.BroadcastID, o.ID), "请确认群发预警",
			func(esc func(string) string) string {
				return renderEsc(esc, d.template("mass_send_remind"), "id", fmt.Sprint(w.BroadcastID), "groups", fmt.Sprint(w.Groups), "owner", o.Name)
			}, bot.Ref{Purpose: bot.PurposeNotice, BroadcastID: w.BroadcastID})
		if !ok {
			continue
		}
		switch err := h.store.Enqueue(ctx, row(&m)); {
		case errors.Is(err, store.ErrDuplicate): // reminded already
			continue
		case err != nil:
			return err
		}
		h.opts.Log.Info("mass-send owner reminded", "broadcast", w.BroadcastID, "officer", o.ID, "groups", w.Groups)
		h.wake(ctx, []bot.Outbound{m})
	}
	return nil
}

// awaitingLine is the report's line on customer groups whose owners have
// not sent the alert yet: counted apart, never as delivered.
func (h *Hub) awaitingLine(d *directory, counts map[string]int) string {
	n := counts[store.DeliveryAwaitingOwner]
	if n == 0 {
		return ""
	}
	return "\n" + render(d.template("mass_send_awaiting"), "unconfirmed", fmt.Sprint(n))
}

// massSendRefused records, on each of the owner's groups, why an owner's
// mass-send task could not be created: those groups will not get the alert,
// and the report says why.
func (h *Hub) massSendRefused(ctx context.Context, o *bot.Outbound, reason string) error {
	chats, err := h.store.OwnerChats(ctx, o.Ref.BroadcastID, o.Ref.OfficerID)
	if err != nil || len(chats) == 0 {
		return err
	}
	now := h.now()
	results := make([]store.OwnerResult, len(chats))
	for i, c := range chats {
		results[i] = store.OwnerResult{ChatID: c, At: now, Reason: "群发任务未能创建：" + reason}
	}
	_, err = h.store.SettleOwnerDeliveries(ctx, o.Ref.BroadcastID, results)
	return err
}
