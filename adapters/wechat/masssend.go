package wechat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work/externalcontact"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Customer groups (客户群) take no post from the hub: an alert reaches them
// as a mass-send task for each owner (externalcontact/add_msg_template,
// chat_type group, sender the owner, chat_id_list the owner's groups in
// this broadcast), which the owner confirms in WeCom. The adapter creates
// the task when the relay hands it the owner's row, and follows each open
// task (get_groupmsg_task, get_groupmsg_send_result) until every group got
// it or was refused, recording each group's outcome.

// purposeMassSend is the outbound purpose of an owner's task;
// purposeMassSendCancel, of stopping it.
const (
	purposeMassSend       = bot.Purpose(store.PurposeMassSend)
	purposeMassSendCancel = bot.Purpose(store.PurposeMassSendCancel)
)

// massSendUnsettledWait is how long a cancellation waits for its task's
// creation, still in flight, to settle before it asks again.
const massSendUnsettledWait = 30 * time.Second

// MassSendState is what the mass sends read and record in the database;
// *store.Store implements it.
type MassSendState interface {
	OwnerChats(ctx context.Context, broadcastID, officerID uint) ([]string, error)
	OpenMassSendTasks(ctx context.Context, platform string) ([]store.MassSendTask, error)
	SettleOwnerDeliveries(ctx context.Context, broadcastID uint, results []store.OwnerResult) (int64, error)
	MassSendTaskID(ctx context.Context, broadcastID, officerID uint) (string, error)
}

var _ MassSendState = (*store.Store)(nil)

// WithMassSends lets the adapter create and follow customer groups' mass
// sends; without it, a mass-send row is refused with the reason.
func WithMassSends(state MassSendState) Option { return func(o *options) { o.mass = state } }

// DefaultMassSendPoll is how often open mass-send tasks are asked after.
const DefaultMassSendPoll = 2 * time.Minute

// WeCom's send statuses in get_groupmsg_send_result.
const (
	massNotSent     = 0
	massSent        = 1
	massNotFriend   = 2
	massOtherToday  = 3
	maxMassSendChat = 2000 // chat_id_list's limit
)

// createMassSend asks WeCom for one owner's task over their customer groups
// still awaiting this broadcast.
func (a *Adapter) createMassSend(ctx context.Context, o *bot.Outbound) (string, error) {
	if a.mass == nil {
		return "", bot.Permanent(errors.New("this adapter does not create customer-group mass sends (no database state given)"))
	}
	if o.ToUser == "" || o.Ref.BroadcastID == 0 || o.Ref.OfficerID == 0 {
		return "", bot.Permanent(errors.New("a mass-send task needs its owner and its broadcast"))
	}
	chats, err := a.mass.OwnerChats(ctx, o.Ref.BroadcastID, o.Ref.OfficerID)
	if err != nil {
		return "", err
	}
	if len(chats) == 0 {
		return "", bot.Permanent(errors.New("none of the owner's customer groups awaits this alert any more"))
	}
	if len(chats) > maxMassSendChat {
		chats = chats[:maxMassSendChat]
	}
	req := &externalcontact.AddMsgTemplateRequest{
		ChatType: "group", Sender: o.ToUser, ChatIDList: chats,
		Text: externalcontact.MsgText{Content: fit(plainText(o, o.Text), maxTextBytes)},
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// The SDK's call takes no context; the HTTP client's timeout bounds it.
	res, err := a.contacts.AddMsgTemplate(req)
	var ce *util.CommonError
	switch {
	case errors.As(err, &ce):
		if ce.ErrCode == codeTokenInvalid || ce.ErrCode == codeTokenExpired {
			a.forgetWorkToken()
		}
		return "", classify(fmt.Errorf("mass send for %s: errcode %d: %s", o.ToUser, ce.ErrCode, clip(ce.ErrMsg, 120)), ce.ErrCode)
	case err != nil:
		return "", fmt.Errorf("mass send for %s: %w", o.ToUser, redact(err))
	case res.MsgID == "":
		return "", errors.New("mass send: WeCom answered no msgid")
	}
	a.log.Info("mass-send task created", "broadcast", o.Ref.BroadcastID, "owner", o.ToUser, "groups", len(chats))
	return res.MsgID, nil
}

// cancelMassSend stops an owner's task of a cancelled broadcast
// (externalcontact/cancel_groupmsg_send with the task's msgid), so the
// owner can no longer send the withdrawn alert from WeCom.
func (a *Adapter) cancelMassSend(ctx context.Context, o *bot.Outbound) error {
	if a.mass == nil {
		return bot.Permanent(errors.New("this adapter does not stop customer-group mass sends (no database state given)"))
	}
	if o.Ref.BroadcastID == 0 || o.Ref.OfficerID == 0 {
		return bot.Permanent(errors.New("stopping a mass-send task needs its owner and its broadcast"))
	}
	id, err := a.mass.MassSendTaskID(ctx, o.Ref.BroadcastID, o.Ref.OfficerID)
	switch {
	case errors.Is(err, store.ErrTaskUnsettled):
		return bot.RetryAfter(massSendUnsettledWait, err)
	case err != nil:
		return err
	case id == "":
		return bot.Permanent(errors.New("the owner's mass-send task was never created: there is nothing to stop"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The SDK's call takes no context; the HTTP client's timeout bounds it.
	err = a.contacts.CancelGroupMsgSend(&externalcontact.CancelGroupMsgSendRequest{MsgID: id})
	var ce *util.CommonError
	switch {
	case errors.As(err, &ce):
		if ce.ErrCode == codeTokenInvalid || ce.ErrCode == codeTokenExpired {
			a.forgetWorkToken()
		}
		return classify(fmt.Errorf("stop mass send of B%d for %s: errcode %d: %s", o.Ref.BroadcastID, o.ToUser, ce.ErrCode, clip(ce.ErrMsg, 120)), ce.ErrCode)
	case err != nil:
		return fmt.Errorf("stop mass send of B%d for %s: %w", o.Ref.BroadcastID, o.ToUser, redact(err))
	}
	a.log.Info("mass-send task stopped", "broadcast", o.Ref.BroadcastID, "owner", o.ToUser)
	return nil
}

// followMassSends asks after the open tasks every poll until ctx ends.
func (a *Adapter) followMassSends(ctx context.Context) error {
	t := time.NewTicker(a.cfg.MassSendPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := a.followOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("following mass sends", "err", err)
		}
	}
}

// followOnce records what became of each open task's groups: sent, or the
// reason WeCom gives. A task the owner has not confirmed changes nothing:
// its groups stay awaiting, never counted as delivered.
func (a *Adapter) followOnce(ctx context.Context) error {
	tasks, err := a.mass.OpenMassSendTasks(ctx, string(bot.WeChat))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if ctx.Err() != nil {
			return nil
		}
		st, err := a.contacts.GetGroupMsgTask(&externalcontact.GetGroupMsgTaskRequest{MsgID: t.TaskID, Limit: 1000})
		if err != nil {
			a.log.Warn("mass-send task status", "broadcast", t.BroadcastID, "err", redact(err))
			continue
		}
		confirmed := false
		for _, x := range st.TaskList {
			if x.UserID == t.UserID && x.Status == 2 {
				confirmed = true
			}
		}
		if !confirmed {
			continue
		}
		var results []store.OwnerResult
		cursor := ""
		for page := 0; page < 100; page++ {
			res, err := a.contacts.GetGroupMsgSendResult(&externalcontact.GetGroupMsgSendResultRequest{MsgID: t.TaskID, UserID: t.UserID, Limit: 1000, Cursor: cursor})
			if err != nil {
				return fmt.Errorf("mass-send result of B%d: %w", t.BroadcastID, redact(err))
			}
			for _, s := range res.SendList {
				if s.ChatID == "" {
					continue
				}
				r := store.OwnerResult{ChatID: s.ChatID, At: a.now()}
				switch s.Status {
				case massSent:
					r.Sent = true
					if s.SendTime > 0 {
						r.At = time.Unix(int64(s.SendTime), 0)
					}
				case massNotFriend:
					r.Reason = "企业微信未发出：群主与客户不再是好友"
				case massOtherToday:
					r.Reason = "企业微信未发出：本群今天已收到过其他群发"
				case massNotSent:
					continue
				default:
					r.Reason = fmt.Sprintf("企业微信未发出（状态 %d）", s.Status)
				}
				results = append(results, r)
			}
			if res.NextCursor == "" || res.NextCursor == cursor {
				break
			}
			cursor = res.NextCursor
		}
		if len(results) == 0 {
			continue
		}
		n, err := a.mass.SettleOwnerDeliveries(ctx, t.BroadcastID, results)
		if err != nil {
			return err
		}
		if n > 0 {
			a.log.Info("mass send confirmed by its owner", "broadcast", t.BroadcastID, "owner", t.UserID, "groups", n)
		}
	}
	return nil
}
