package commands

import (
	"context"
	"fmt"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Timeline is a ticket's whole history: the lines its filing implies
// (asked; assigned and why; acknowledged and DM sent, each with what became
// of the message), then every line stored since, in order. Filing writes
// only the ticket and its messages; these first lines are derived here, by
// the rules that know what filing does.
func (h *Hub) Timeline(ctx context.Context, ticketID uint) ([]store.TicketEvent, error) {
	t, err := h.store.TicketByID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	stored, err := h.store.Timeline(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	if t.Routing == "" {
		return stored, nil
	}
	msgs, err := h.store.OutboundOf(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	state := func(p bot.Purpose) string {
		for _, m := range msgs {
			if m.Purpose == string(p) {
				if m.Reason != "" && m.State != store.OutboundSent {
					return fmt.Sprintf("%s：%s", m.State, m.Reason)
				}
				return m.State
			}
		}
		return ""
	}
	at := t.CreatedAt
	out := []store.TicketEvent{
		{TicketID: t.ID, Kind: store.TLAsked, At: at},
		{TicketID: t.ID, Kind: store.TLAssigned, Detail: t.Routing, At: at},
		{TicketID: t.ID, Kind: store.TLAcknowledged, Detail: state(bot.PurposeAck), At: at},
	}
	if !t.AutoAnswered && !t.Emergency {
		out = append(out, store.TicketEvent{TicketID: t.ID, Kind: store.TLNotified, Detail: state(bot.PurposeAssign), At: at})
	}
	return append(out, stored...), nil
}
