package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// forwardAlert is an officer's "#123 预警": the scam text a resident posted
// becomes a draft alert for the station's admin, who edits ("修改 B12 …"),
// confirms or cancels it. The officer cannot broadcast; the admin decides.
func (h *Hub) forwardAlert(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, t *store.Ticket) error {
	number := fmt.Sprint(t.Number)
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	st := d.stations[t.StationID]
	var admin *store.Officer
	var platform, user string
	for _, cand := range d.staff[t.StationID] {
		if cand.HasRole(store.RoleAdmin) {
			if p, u, ok := d.address(cand, t.Platform); ok {
				admin, platform, user = cand, p, u
				break
			}
		}
	}
	if admin == nil {
		return reply(render(d.template("alert_no_admin"), "number", number))
	}
	text := render(d.template("alert_from_ticket"), "question", t.Question)
	plan, err := h.PlanBroadcast(ctx, admin, chatOrigin(e), Scope{Kind: "station", Arg: st.Code}, text, platform, user, func(plan *BroadcastPlan) []bot.Outbound {
		id := fmt.Sprint(plan.Broadcast.ID)
		intro := render(d.template("alert_draft_intro"), "officer", o.Name, "number", number) + "\n\n" + h.Preview(plan)
		r := bot.Ref{Purpose: bot.PurposeNotice, TicketID: t.ID, BroadcastID: plan.Broadcast.ID}
		return []bot.Outbound{
			about(replyTo(e, "r:"+e.ID, render(d.template("alert_forwarded"), "number", number, "admin", admin.Name, "id", id)), bot.PurposeReply, t.ID),
			{Key: "alert:" + e.ID, Platform: bot.Platform(platform), ToUser: user, Format: bot.FormatMarkdown,
				Title: "预警广播草稿 B" + id, Text: intro, Ref: bot.Ref{Purpose: r.Purpose, TicketID: r.TicketID, BroadcastID: r.BroadcastID, OfficerID: admin.ID}},
		}
	})
	var refusal *BroadcastRefusal
	switch {
	case errors.As(err, &refusal):
		return reply(refusal.Message)
	case errors.Is(err, store.ErrDuplicate):
		return nil
	case err != nil:
		return err
	}
	return h.store.Apply(ctx, t.ID, store.Change{Timeline: []store.TicketEvent{{Kind: store.TLAlertDrafted, ActorID: &o.ID, Detail: fmt.Sprintf("B%d", plan.Broadcast.ID), At: h.now()}}})
}

// editDraft is "修改 B12 新内容": the author replaces a draft's text. The
// old draft is cancelled and a new one made with the same scope, so the new
// text passes every check a draft does and the record keeps both.
var editDraftCommand = regexp.MustCompile(`^修改\s*[Bb](\d{1,9})\s+(?s)(.+)$`)

func (h *Hub) editDraft(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, m []string) error {
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	n, _ := strconv.ParseUint(m[1], 10, 32)
	old, err := h.broadcastFor(ctx, d, o, uint(n), false)
	var refusal *BroadcastRefusal
	if errors.As(err, &refusal) {
		return reply(refusal.Message)
	}
	if err != nil {
		return err
	}
	if old.Status != store.BroadcastDraft {
		return reply(render(d.template("alert_not_draft"), "id", m[1]))
	}
	sc, err := ParseScope(old.Scope)
	if err != nil {
		return err
	}
	_, err = h.PlanBroadcast(ctx, o, chatOrigin(e), sc, strings.TrimSpace(m[2]), old.ReportPlatform, old.ReportUser, func(plan *BroadcastPlan) []bot.Outbound {
		msg := replyTo(e, "r:"+e.ID, render(d.template("alert_edited"), "old", m[1])+"\n\n"+h.Preview(plan))
		msg.Format, msg.Title = bot.FormatMarkdown, "预警广播草稿 B"+fmt.Sprint(plan.Broadcast.ID)
		msg.Ref.BroadcastID = plan.Broadcast.ID
		return []bot.Outbound{msg}
	})
	switch {
	case errors.As(err, &refusal):
		return reply(refusal.Message)
	case errors.Is(err, store.ErrDuplicate):
		return nil
	case err != nil:
		return err
	}
	// The new draft is written; the old one is void. A failure here leaves
	// the old draft unconfirmable by nobody's mistake: cancelling is safe to
	// repeat, so the error is the caller's to retry.
	return h.store.CancelBroadcast(ctx, old.ID, h.now(), actor(o, chatOrigin(e)))
}
