package commands

import (
	"context"
	"slices"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// OwnTicket is a ticket as a staff member's "#number ..." reaches it.
type OwnTicket struct {
	Number int64
	// Open: not closed, so an answer, a claim or a hand-over is taken.
	Open bool
}

// OwnTickets tells which of ticketIDs the user userID of platform reaches
// with "#number ...": the tickets of their own station, by number, and
// whether each still takes an answer. Anyone who is not staff reaches none.
// It is the check ticketCommand makes, asked ahead, so a page can offer a
// reply only where a reply would be taken.
func (h *Hub) OwnTickets(ctx context.Context, platform bot.Platform, userID string, ticketIDs []uint) (map[uint]OwnTicket, error) {
	o := h.dir.Load().officerByIdentity(string(platform), userID)
	if o == nil || len(ticketIDs) == 0 {
		return nil, nil
	}
	ids := slices.Clone(ticketIDs)
	slices.Sort(ids)
	ts, err := h.store.TicketsByID(ctx, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	out := map[uint]OwnTicket{}
	for _, t := range ts {
		if t.StationID == o.StationID {
			out[t.ID] = OwnTicket{Number: t.Number, Open: t.Status != store.StatusClosed}
		}
	}
	return out, nil
}
