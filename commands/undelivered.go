package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Undelivered hears that a message could not be delivered for good (the
// platform refused it: a WeChat follower silent for over 48 hours, a bot
// removed from its group). When it was an officer's answer, the ticket
// records it and the officer is told, so nobody believes the resident got it.
// The failed message itself stays as a row, with the reason, for admins.
func (h *Hub) Undelivered(ctx context.Context, o *bot.Outbound, cause string) error {
	if o.Ref.Purpose != bot.PurposeAnswer || o.Ref.TicketID == 0 || o.Ref.OfficerID == 0 {
		return nil
	}
	d := h.dir.Load()
	t, err := h.store.TicketByID(ctx, o.Ref.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	officerID := o.Ref.OfficerID
	reason := bot.Mask(cause)
	var msgs []bot.Outbound
	if officer := d.officers[officerID]; officer != nil {
		text := func(esc func(string) string) string {
			return renderEsc(esc, d.template("answer_undelivered"), "number", fmt.Sprint(t.Number), "group", chatName(d, t), "reason", reason)
		}
		if m, ok := d.dm(officer, t.Platform, "undelivered:"+o.Key, fmt.Sprintf("工单 #%d 答复未送达", t.Number), text,
			bot.Ref{Purpose: bot.PurposeNotice, TicketID: t.ID}); ok {
			msgs = append(msgs, m)
		}
	}
	err = h.store.Apply(ctx, t.ID, changed([]store.TicketEvent{{Kind: store.TLUndelivered, ActorID: &officerID, Detail: reason, At: h.now()}}, msgs))
	return h.written(ctx, err, msgs)
}
