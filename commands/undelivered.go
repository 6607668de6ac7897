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
func (h *Hub) Undelivered(ctx context.Context, o *bot.Outbound, cause string) error {
	var ticketID, officerID uint
	var rest string
	if n, _ := fmt.Sscanf(o.Key, "t%d:answer:%d:%s", &ticketID, &officerID, &rest); n < 2 {
		return nil // not an answer: the parked message is there for admins
	}
	d := h.dir.Load()
	t, err := h.store.TicketByID(ctx, ticketID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	reason := bot.Mask(cause)
	if err := h.store.AppendTimeline(ctx, t.ID, store.TicketEvent{Kind: store.TLUndelivered, ActorID: &officerID, Detail: reason, At: h.now()}); err != nil {
		return err
	}
	officer := d.officers[officerID]
	if officer == nil {
		return nil
	}
	text := render(d.template("answer_undelivered"), "number", fmt.Sprint(t.Number), "group", chatName(d, t), "reason", reason)
	if m, ok := d.dm(officer, t.Platform, "undelivered:"+o.Key, fmt.Sprintf("工单 #%d 答复未送达", t.Number), text); ok {
		return h.outbox.Send(ctx, m)
	}
	return nil
}
