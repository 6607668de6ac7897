package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// A card's rows are written with its message; an update's rows replace the
// card's state for its own ticket only; a purge empties the cards of old
// finished tickets (their state holds the question and the resident), and
// a sent card's handle is kept for its next update, then spent.
func TestCardsFollowTheirMessagesAndArePurgedWithTheTicket(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		raw := b.raw(t)
		ctx := testContext(t)
		xcl, _, _ := twoStations(t, s)
		one := createTicket(t, s, question(xcl, "card-one"))
		two := createTicket(t, s, question(xcl, "card-two"))
		card := `{"items":[{"ticket_id":1,"status":""},{"ticket_id":2,"status":""}],"question":"楼道有焦味"}`
		msg := store.OutboundMessage{Key: "digest-card", Purpose: "escalation", Platform: "wechat", ToUser: "zhao.g", Format: "markdown", Text: "2 个工单", Card: card,
			Cards: []store.Card{{Track: "jm-escd-1", TicketID: one.ID, Platform: "wechat", Card: card}, {Track: "jm-escd-1", TicketID: two.ID, Platform: "wechat", Card: card}}}
		if err := s.Enqueue(ctx, msg); err != nil {
			t.Fatal(err)
		}
		rows, err := s.CardsByTrack(ctx, "jm-escd-1")
		if err != nil || len(rows) != 2 {
			t.Fatalf("card rows %+v %v", rows, err)
		}
		claimed, err := s.ClaimOutbound(ctx, "wechat", time.Now(), time.Minute, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim %+v %v", claimed, err)
		}
		err = s.SettleOutbound(ctx, []store.OutboundResult{{ID: claimed[0].ID, Fence: claimed[0].Fence, State: store.OutboundSent, MessageID: "rc-1", At: time.Now(), CardTrack: "jm-escd-1", CardHandle: "rc-1"}})
		if err != nil {
			t.Fatal(err)
		}
		update := `{"items":[{"ticket_id":1,"status":"赵刚 已办结"}]}`
		if err := s.Enqueue(ctx, store.OutboundMessage{Key: "upd", Purpose: "card_update", Platform: "wechat", ToUser: "zhao.g", Format: "markdown", Text: "#1", Card: update,
			Cards: []store.Card{{Track: "jm-escd-1", TicketID: one.ID, Platform: "wechat", Card: update}}}); err != nil {
			t.Fatal(err)
		}
		mine, err := s.CardsOfTicket(ctx, one.ID)
		if err != nil || len(mine) != 1 || mine[0].Card != update || mine[0].Handle != "rc-1" {
			t.Fatalf("ticket one's card row %+v %v; want the update's state, the handle kept", mine, err)
		}
		other, _ := s.CardsOfTicket(ctx, two.ID)
		if len(other) != 1 || other[0].Card != card {
			t.Errorf("ticket two's row changed by another ticket's update: %+v", other)
		}
		if err := s.SpendCardHandle(ctx, "jm-escd-1", "rc-1"); err != nil {
			t.Fatal(err)
		}
		if rows, _ := s.CardsByTrack(ctx, "jm-escd-1"); rows[0].Handle != "" || rows[1].Handle != "" {
			t.Errorf("handle not spent: %+v", rows)
		}
		// Ticket one finished long ago: its card row is emptied, ticket
		// two's (open) is kept.
		if _, err := s.Transition(ctx, one.ID, func(t *store.Ticket) (store.Change, error) {
			t.Status = store.StatusClosed
			return store.Change{}, nil
		}); err != nil {
			t.Fatal(err)
		}
		backdate(t, raw, "tickets", "updated_at", one.ID, time.Now().AddDate(0, 0, -200))
		if _, err := s.PurgeBefore(ctx, time.Now().AddDate(0, 0, -180), false); err != nil {
			t.Fatal(err)
		}
		mine, _ = s.CardsOfTicket(ctx, one.ID)
		other, _ = s.CardsOfTicket(ctx, two.ID)
		if mine[0].Card != "" || !strings.Contains(other[0].Card, "楼道有焦味") {
			t.Errorf("after the purge: ticket one's card %q, ticket two's %q", mine[0].Card, other[0].Card)
		}
	})
}
