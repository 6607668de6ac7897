package commands

import (
	"context"
	"slices"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Answerable tells which of ticketIDs the user userID of platform may still
// answer with "#number ...": the tickets of their own station that are not
// closed, mapped to their numbers. Anyone who is not staff may answer none.
// It is the check ticketCommand makes, asked ahead, so a page can offer a
// reply only where a reply would be taken.
func (h *Hub) Answerable(ctx context.Context, platform bot.Platform, userID string, ticketIDs []uint) (map[uint]int64, error) {
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
	out := map[uint]int64{}
	for _, t := range ts {
		if t.StationID == o.StationID && t.Status != store.StatusClosed {
			out[t.ID] = t.Number
		}
	}
	return out, nil
}
