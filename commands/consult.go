package commands

import (
	"context"
	"strings"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// consult takes a resident's direct message to the bot (an Official Account
// follower, or someone writing to the bot one-to-one) as a consultation: a
// ticket of the consultation station, answered in that direct chat. Without
// a consultation station the resident is told how to reach the police.
func (h *Hub) consult(ctx context.Context, d *directory, e *bot.Event) error {
	st := d.stationByCode(h.opts.ConsultationStation)
	// A conversation opened from a group's link (WeChat customer service)
	// is that group's question: its station, its officer, its name on the
	// ticket; the answer still goes to the one-to-one chat.
	var g *store.Group
	if e.Via != nil {
		if g = d.group(string(e.Via.Platform), e.Via.ID); g != nil {
			if gs := d.stations[g.StationID]; gs != nil {
				st = gs
			} else {
				g = nil
			}
		}
	}
	text := bot.Truncate(strings.TrimSpace(e.Text), h.opts.MaxTextRunes)
	switch {
	case st == nil:
		return h.send(ctx, replyTo(e, "r:"+e.ID, d.template("resident_help")))
	case e.Kind != bot.KindText:
		return h.send(ctx, replyTo(e, "unsupported:"+e.ID, d.template("unsupported")))
	case text == "":
		return h.send(ctx, replyTo(e, "help:"+e.ID, d.template("resident_help")))
	}
	emergency := h.isEmergency(text)
	if !emergency {
		if handled, err := h.throttle(ctx, d, e, text); handled || err != nil {
			return err
		}
	}
	return h.ask(ctx, d, e, g, st, nil, text, emergency)
}
