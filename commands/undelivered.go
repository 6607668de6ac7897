package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// undelivered is what follows a message the platform refused for good (a
// WeChat follower silent for over 48 hours, a bot removed from its group):
// when it was an officer's answer, the ticket records it and the officer is
// told, so nobody believes the resident got it. It is written in the same
// transaction that marks the message failed (see outboxQueue.Settle); the
// failed message itself stays as a row, with the reason, for admins.
func (h *Hub) undelivered(ctx context.Context, o *bot.Outbound, cause string) (ticketID uint, c store.Change, msgs []bot.Outbound, err error) {
	if o.Ref.Purpose != bot.PurposeAnswer || o.Ref.TicketID == 0 || o.Ref.OfficerID == 0 {
		return 0, store.Change{}, nil, nil
	}
	d := h.dir.Load()
	t, err := h.store.TicketByID(ctx, o.Ref.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, store.Change{}, nil, nil
	}
	if err != nil {
		return 0, store.Change{}, nil, err
	}
	officerID := o.Ref.OfficerID
	reason := bot.Mask(cause)
	if officer := d.officers[officerID]; officer != nil {
		text := func(esc func(string) string) string {
			return renderEsc(esc, d.template("answer_undelivered"), "number", fmt.Sprint(t.Number), "group", chatName(d, t), "reason", reason)
		}
		if m, ok := d.dm(officer, t.Platform, "undelivered:"+o.Key, fmt.Sprintf("工单 #%d 答复未送达", t.Number), text,
			bot.Ref{Purpose: bot.PurposeNotice, TicketID: t.ID}); ok {
			msgs = append(msgs, m)
		}
	}
	return t.ID, changed([]store.TicketEvent{{Kind: store.TLUndelivered, ActorID: &officerID, Detail: reason, At: h.now()}}, msgs), msgs, nil
}
