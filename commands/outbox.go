package commands

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// rows turns the rules' messages into outbound rows: bounded, validated,
// with their typed references.
func rows(msgs []bot.Outbound) []store.OutboundMessage {
	out := make([]store.OutboundMessage, 0, len(msgs))
	for i := range msgs {
		out = append(out, row(&msgs[i]))
	}
	return out
}

func row(o *bot.Outbound) store.OutboundMessage {
	if o.Format == "" {
		o.Format = bot.FormatText
	}
	o.Text = bot.Truncate(o.Text, bot.MaxTextRunes)
	m := store.OutboundMessage{
		Key: o.Key, Purpose: string(o.Ref.Purpose), Platform: string(o.Platform), ToUser: o.ToUser,
		Format: string(o.Format), Title: o.Title, Text: o.Text, AtUsers: strings.Join(o.AtUsers, ","),
		ReplyHandle: o.ReplyHandle, TicketID: ref(o.Ref.TicketID), BroadcastID: ref(o.Ref.BroadcastID), OfficerID: ref(o.Ref.OfficerID),
	}
	if o.Chat != nil {
		m.ChatType, m.ChatID, m.ChatName = string(o.Chat.Type), o.Chat.ID, o.Chat.Name
	}
	if o.Card != nil {
		b, _ := json.Marshal(o.Card)
		m.Card = string(b)
		for _, it := range o.Card.Items {
			// An update is the truth about the ticket it is for only: the
			// card's other tickets keep their own rows.
			if it.TicketID != 0 && (!o.Card.Update || it.TicketID == o.Ref.TicketID) {
				m.Cards = append(m.Cards, store.Card{Track: o.Card.Track, TicketID: it.TicketID, Platform: string(o.Platform), Card: m.Card})
			}
		}
	}
	if o.ByHand {
		m.State = store.OutboundAwaitingHuman
	}
	return m
}

// message is the row as the relay hands it to an adapter.
func message(m *store.OutboundMessage) bot.Outbound {
	o := bot.Outbound{
		Key: m.Key, Platform: bot.Platform(m.Platform), ToUser: m.ToUser, Format: bot.Format(m.Format),
		Title: m.Title, Text: m.Text, ReplyHandle: m.ReplyHandle,
		Ref: bot.Ref{Purpose: bot.Purpose(m.Purpose), TicketID: deref(m.TicketID), BroadcastID: deref(m.BroadcastID), OfficerID: deref(m.OfficerID)},
	}
	if m.ChatID != "" {
		o.Chat = &bot.ChatRef{Platform: bot.Platform(m.Platform), ID: m.ChatID, Type: bot.ChatType(m.ChatType), Name: m.ChatName}
	}
	if m.AtUsers != "" {
		o.AtUsers = strings.Split(m.AtUsers, ",")
	}
	if m.Card != "" {
		var c bot.Card
		if err := json.Unmarshal([]byte(m.Card), &c); err == nil {
			o.Card = &c
		}
	}
	return o
}

func ref(id uint) *uint {
	if id == 0 {
		return nil
	}
	return &id
}

func deref(id *uint) uint {
	if id == nil {
		return 0
	}
	return *id
}

// send writes messages no state change goes with (an answer to a command
// that changed nothing). A first message that exists already means the
// cause was handled before: nothing more to do.
func (h *Hub) send(ctx context.Context, msgs ...bot.Outbound) error {
	for i := range msgs {
		if err := msgs[i].Validate(); err != nil {
			return bot.Permanent(err)
		}
	}
	return h.written(ctx, h.store.Enqueue(ctx, rows(msgs)...), msgs)
}

// written finishes a write of msgs: once committed, their relays are
// nudged; a write whose first message existed already was made before (the
// cause handled twice), which is not a failure.
func (h *Hub) written(ctx context.Context, err error, msgs []bot.Outbound) error {
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return nil
	case err != nil:
		return err
	}
	h.wake(ctx, msgs)
	return nil
}

// wake nudges the relays of the platforms msgs go to, after their commit.
func (h *Hub) wake(ctx context.Context, msgs []bot.Outbound) {
	if h.opts.Waker == nil {
		return
	}
	var woken []bot.Platform
	for _, m := range msgs {
		if !slices.Contains(woken, m.Platform) {
			h.opts.Waker.Wake(ctx, m.Platform)
			woken = append(woken, m.Platform)
		}
	}
}

// changed is the messages and timeline of a ticket's change, as rows.
func changed(timeline []store.TicketEvent, msgs []bot.Outbound) store.Change {
	return store.Change{Timeline: timeline, Outbound: rows(msgs)}
}

// Outbox is the queue of the outbound rows, for a platform's relay.
func (h *Hub) Outbox() bot.Queue { return outboxQueue{h.store, h} }

// outboxQueue is the outbound rows as a relay's queue. With the rules at
// hand (h), a message refused for good is recorded together with what
// follows from it (the officer told of an undelivered answer).
type outboxQueue struct {
	st *store.Store
	h  *Hub
}

func (q outboxQueue) Claim(ctx context.Context, p bot.Platform, now time.Time, lease time.Duration, limit int) ([]bot.Claimed, error) {
	got, err := q.st.ClaimOutbound(ctx, string(p), now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]bot.Claimed, len(got))
	for i := range got {
		out[i] = bot.Claimed{Msg: message(&got[i]), Row: got[i].ID, Fence: got[i].Fence, Attempts: got[i].Attempts}
		if c := out[i].Msg.Card; c != nil && c.Update {
			// An update shows the card as its rows say now (a change to
			// another of its tickets may have come since it was written)
			// and takes the card's handle as it is now (a press brings a
			// fresh one).
			if rows, err := q.st.CardsByTrack(ctx, c.Track); err == nil && len(rows) > 0 {
				if cur, handle, err := mergeCard(rows); err == nil {
					c.Items, c.Handle = cur.Items, handle
				}
			}
		}
	}
	return out, nil
}

func (q outboxQueue) Settle(ctx context.Context, results []bot.Result) error {
	out := make([]store.OutboundResult, len(results))
	var follow []bot.Outbound
	for i, r := range results {
		s := store.OutboundResult{ID: r.Row, Fence: r.Fence, MessageID: r.MessageID, Reason: r.Reason, At: r.At, CountAttempt: r.Counted}
		switch r.Outcome {
		case bot.Sent:
			s.State = store.OutboundSent
		case bot.Failed:
			s.State = store.OutboundFailed
		case bot.Retry:
			s.State, s.DueAt = store.OutboundPending, r.RetryAt
		case bot.Released:
			s.State, s.DueAt = store.OutboundPending, r.At
		}
		if c := r.Msg.Card; c != nil && r.Outcome == bot.Sent {
			s.CardTrack = c.Track
			if reason, fell := bot.IsFellBack(r.MessageID); fell {
				s.MessageID, s.CardGone = "", true
				if q.h != nil {
					msgs, err := q.h.cardRefused(ctx, &r.Msg, reason)
					if err != nil {
						return err
					}
					s.Then.Outbound = append(s.Then.Outbound, rows(msgs)...)
					follow = append(follow, msgs...)
				}
			} else if r.MessageID == bot.SentPlain {
				s.MessageID, s.CardGone = "", true
			} else if c.Update {
				s.SpentHandle = c.Handle
			} else {
				s.CardHandle = r.MessageID
			}
		}
		if r.Outcome == bot.Failed && q.h != nil {
			ticketID, then, msgs, err := q.h.undelivered(ctx, &r.Msg, r.Reason)
			if err != nil {
				return err
			}
			s.ThenTicket, s.Then = ticketID, then
			follow = append(follow, msgs...)
		}
		out[i] = s
	}
	if err := q.st.SettleOutbound(ctx, out); err != nil {
		return err
	}
	if q.h != nil {
		q.h.wake(ctx, follow)
	}
	return nil
}
