package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// RunTimers fires escalation timers and shift-start digests every interval
// until ctx ends. Timers live in the database, so a restart loses none, and
// each step is fenced so none fires twice.
func (h *Hub) RunTimers(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := h.Tick(ctx); err != nil && ctx.Err() == nil {
			h.opts.Log.Warn("timer tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Tick runs one round: due escalations, then digests for officers whose
// shift has started.
func (h *Hub) Tick(ctx context.Context) error {
	// A round fires a few batches (store.FireBatch a transaction) and
	// nudges the relays, so the first escalations go out while a storm of
	// due timers is still being fired.
	const perRound = 5 * store.FireBatch
	for {
		var sent []bot.Outbound
		n, err := h.store.FireDue(ctx, h.now(), perRound, h.escalate(&sent))
		h.wake(ctx, sent)
		if err != nil {
			return err
		}
		if n < perRound {
			break
		}
	}
	if err := h.gatherEscalations(ctx); err != nil {
		return err
	}
	return h.digests(ctx)
}

// DefaultEscalationWindow is how long escalation notices to one person
// are gathered (hub.escalation_digest_minutes).
const DefaultEscalationWindow = 5 * time.Minute

func (h *Hub) escalationWindow() time.Duration {
	if h.opts.EscalationWindow > 0 {
		return h.opts.EscalationWindow
	}
	return DefaultEscalationWindow
}

// gatherEscalations sends, for every window that has closed, the
// escalation notices held back in it as one digest per person: each
// ticket's line (number, group, waiting time, who had it) and the count.
func (h *Hub) gatherEscalations(ctx context.Context) error {
	d := h.dir.Load()
	now := h.now()
	for _, p := range []bot.Platform{bot.DingTalk, bot.WeChat, bot.Playground} {
		window := h.escalationWindowFor(p)
		written, err := h.store.GatherHeld(ctx, string(p), now, func(held []store.OutboundMessage) store.OutboundMessage {
			closes := held[0].DueAt.In(h.opts.Location)
			lines := make([]string, len(held))
			for i := range held {
				lines[i] = held[i].Text
			}
			m := held[0]
			m.Key = fmt.Sprintf("escdigest:%d:%s:%d", deref(m.OfficerID), m.ToUser, closes.Unix())
			m.Purpose, m.TicketID, m.State = string(bot.PurposeEscalation), nil, ""
			m.Title = fmt.Sprintf("%d 个工单超时未答复", len(held))
			m.Text = render(d.template(h.digestTemplate(ctx, d, held)), "count", fmt.Sprint(len(held)),
				"from", closes.Add(-window).Format("15:04"), "to", closes.Format("15:04"), "list", strings.Join(lines, "\n"))
			m.Text = bot.Truncate(m.Text, bot.MaxTextRunes)
			m.Card, m.Cards = "", nil
			if card := digestCard(held, m.Title); card != nil {
				// One card listing the tickets, each with its own buttons.
				card.Track = track(fmt.Sprintf("escd:%d", held[0].ID))
				b, _ := json.Marshal(card)
				m.Card = string(b)
				for _, it := range card.Items {
					m.Cards = append(m.Cards, store.Card{Track: card.Track, TicketID: it.TicketID, Platform: m.Platform, Card: m.Card})
				}
			}
			return m
		})
		if err != nil {
			return err
		}
		if len(written) > 0 && h.opts.Waker != nil {
			h.opts.Waker.Wake(ctx, p)
		}
	}
	return nil
}

// digestTemplate is the escalation digest's wording for held: the
// customer-group one when any of its tickets was asked in a customer group
// (the hub cannot answer there), or when the tickets cannot be read (the
// customer-group wording is true of every group; the other is not).
func (h *Hub) digestTemplate(ctx context.Context, d *directory, held []store.OutboundMessage) string {
	var ids []uint
	for _, m := range held {
		if m.TicketID != nil {
			ids = append(ids, *m.TicketID)
		}
	}
	if len(ids) == 0 {
		return "escalation_digest"
	}
	ts, err := h.store.TicketsByID(ctx, ids)
	if err != nil {
		h.opts.Log.Warn("escalation digest: tickets not read; customer-group wording used", "err", err)
		return "customer_escalation_digest"
	}
	for i := range ts {
		if d.inCustomerGroup(&ts[i]) {
			return "customer_escalation_digest"
		}
	}
	return "escalation_digest"
}

// escalate moves an unanswered ticket one step up the chain: its officer →
// the duty officer on duty now → the station leader; past the end of the
// chain everyone in it is reminded again, every SLA period, until someone
// answers. The DMs are rows written with the step, keyed by the ticket's
// fence: a step fires once and its messages are written once.
func (h *Hub) escalate(sent *[]bot.Outbound) func(t *store.Ticket) (store.Change, error) {
	return func(t *store.Ticket) (store.Change, error) {
		d := h.dir.Load()
		now := h.now()
		st := d.stations[t.StationID]
		if st == nil {
			return store.Change{}, fmt.Errorf("ticket %d: station %d is gone", t.ID, t.StationID)
		}
		var cur *store.Officer
		if t.AssigneeID != nil {
			cur = d.officers[*t.AssigneeID]
		}
		chain := d.escalationChain(st, cur, now, h.opts.Location)
		next := chain
		if cur != nil {
			next = chain[1:]
		}
		var targets []*store.Officer
		if len(next) > 0 {
			targets = next[:1]
		}
		detail := ""
		if len(targets) == 1 {
			t.AssigneeID = idOf(targets[0])
			detail = "→ " + targets[0].Name
		} else {
			// Past the end of the chain: everyone on it that was, and is
			// now, is reminded.
			seen := map[uint]bool{}
			for _, o := range append(append([]*store.Officer{cur}, chain...), d.escalationChain(st, nil, now, h.opts.Location)...) {
				if o != nil && !seen[o.ID] {
					seen[o.ID] = true
					targets = append(targets, o)
				}
			}
			detail = "再次提醒"
		}
		t.Level++
		due := now.Add(time.Duration(st.SLAMinutes) * time.Minute)
		t.EscalateAt = &due
		waited := fmt.Sprint(int(now.Sub(t.CreatedAt).Minutes()))
		group := chatName(d, t)
		had, chainText := officerName(cur), chainNames(chain)
		// Escalations to one person are gathered in windows (see
		// store.Notice): the first of a window now, the rest as one
		// digest when it closes.
		var (
			out     []bot.Outbound
			notices []store.Notice
		)
		for _, o := range targets {
			key := fmt.Sprintf("t%d:esc:%d:%d", t.ID, t.Fence, o.ID)
			ref := bot.Ref{Purpose: bot.PurposeEscalation, TicketID: t.ID}
			m, ok := d.dm(o, t.Platform, key, fmt.Sprintf("工单 #%d 超时", t.Number), func(esc func(string) string) string {
				return renderEsc(esc, d.template(d.customerVariant("escalation_dm", t)), "number", fmt.Sprint(t.Number), "group", group,
					"resident", residentLabel(t), "question", t.Question, "waited", waited, "had", had, "chain", chainText)
			}, ref)
			if !ok {
				continue
			}
			line, _ := d.dm(o, t.Platform, key, m.Title, func(esc func(string) string) string {
				return renderEsc(esc, d.template(d.customerVariant("escalation_digest_line", t)), "number", fmt.Sprint(t.Number), "group", group,
					"waited", waited, "had", had)
			}, ref)
			if h.cardsOn(string(m.Platform)) {
				// The first notice of a window is a card of its own; the
				// rest are gathered into one digest card (gatherEscalations).
				item := h.ticketItem(d, t, now)
				m.Card = &bot.Card{Track: track(key), Recipients: []string{m.ToUser}, Station: st.Code, Title: m.Title, Items: []bot.CardItem{item}}
				line.Card = &bot.Card{Recipients: []string{m.ToUser}, Station: st.Code, Items: []bot.CardItem{item}}
			}
			// Each person's notices are gathered in windows of their
			// platform's length (longer while its budget is spent).
			window := h.escalationWindowFor(m.Platform)
			start := now.Truncate(window)
			out = append(out, m)
			notices = append(notices, store.Notice{Window: fmt.Sprintf("escwin:%d:%d", o.ID, start.Unix()), Closes: start.Add(window), Now: row(&m), Later: row(&line)})
		}
		h.opts.Observer.Escalated(t.Level)
		*sent = append(*sent, out...)
		return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLEscalated, ActorID: t.AssigneeID, Detail: fmt.Sprintf("第%d次升级 %s", t.Level, detail), At: now}}, Notices: notices}, nil
	}
}

// digests hands each officer whose shift has started the questions that
// waited for them: tickets the duty account filed after hours in their
// groups (or, for the duty officer, in groups without an officer on duty).
func (h *Hub) digests(ctx context.Context) error {
	d := h.dir.Load()
	now := h.now()
	loc := h.opts.Location
	for _, st := range d.stations {
		duty := d.dutyAccount(st)
		var waiting []store.Ticket
		loaded := false
		for _, o := range d.staff[st.ID] {
			if rolePriority(o) < 0 {
				continue
			}
			s, ok := d.rosteredAt(o, now, loc)
			if !ok {
				continue
			}
			if last, ok := h.digested.Load(o.ID); ok && !last.(time.Time).Before(s.start) {
				continue
			}
			if !loaded && duty != nil {
				// Only the duty account's open tickets can be waiting for
				// a shift: one indexed read (assignee, status), however
				// many tickets the station has closed.
				var err error
				if waiting, err = h.store.OpenTicketsFor(ctx, duty.ID); err != nil {
					return err
				}
				loaded = true
			}
			mine, err := h.takeWaiting(ctx, d, st, duty, o, waiting, now)
			if err != nil {
				return err
			}
			var msgs []bot.Outbound
			if len(mine) > 0 {
				text := func(esc func(string) string) string {
					return render(d.template("digest"), "count", fmt.Sprint(len(mine)), "list", d.ticketList(mine, esc))
				}
				if m, ok := d.dm(o, "", fmt.Sprintf("digest:%d:%d", o.ID, s.start.Unix()), "待处理工单", text, bot.Ref{Purpose: bot.PurposeDigest}); ok {
					msgs = append(msgs, m)
				}
			}
			fresh, err := h.store.MarkDigest(ctx, o.ID, s.start, rows(msgs))
			if err != nil {
				return err
			}
			h.digested.Store(o.ID, s.start)
			if fresh {
				h.wake(ctx, msgs)
			}
		}
	}
	return nil
}

// takeWaiting reassigns to o the after-hours tickets that are theirs now and
// returns them. Tickets already assigned to o were sent to o when assigned.
func (h *Hub) takeWaiting(ctx context.Context, d *directory, st *store.Station, duty, o *store.Officer, waiting []store.Ticket, now time.Time) ([]store.Ticket, error) {
	var mine []store.Ticket
	sla := time.Duration(st.SLAMinutes) * time.Minute
	for _, t := range waiting {
		switch {
		case duty != nil && t.AssigneeID != nil && *t.AssigneeID == duty.ID && h.ownsWaiting(d, st, o, t, now):
			taken, err := h.store.Transition(ctx, t.ID, func(cur *store.Ticket) (store.Change, error) {
				if cur.AssigneeID == nil || *cur.AssigneeID != duty.ID || (cur.Status != store.StatusOpen && cur.Status != store.StatusClaimed) {
					return store.Change{}, store.ErrStale
				}
				cur.AssigneeID = idOf(o)
				due := now.Add(sla)
				cur.EscalateAt = &due
				return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLAssigned, ActorID: idOf(o), Detail: "shift_start：" + o.Name, At: now}}}, nil
			})
			if err == store.ErrStale {
				continue
			}
			if err != nil {
				return nil, err
			}
			mine = append(mine, *taken)
		}
	}
	return mine, nil
}

// ownsWaiting: a filed ticket goes to its group's own officer when they come
// on duty, and to the station's on-duty officer when the group has none or
// its officer is away.
func (h *Hub) ownsWaiting(d *directory, st *store.Station, o *store.Officer, t store.Ticket, now time.Time) bool {
	var g *store.Group
	if t.GroupID != nil {
		g = d.groupByID[*t.GroupID]
	}
	if g != nil && g.OfficerID != nil {
		if *g.OfficerID == o.ID {
			return true
		}
		if own := d.officers[*g.OfficerID]; own != nil {
			if _, on := d.onDuty(own, now, h.opts.Location); on {
				return false
			}
		}
	}
	best, _ := d.bestOnDuty(st, now, h.opts.Location, nil)
	return best != nil && best.ID == o.ID
}

// digestCard gathers the cards of held escalation notices into one, a
// ticket each (nil when they carry none: their platform has no cards).
func digestCard(held []store.OutboundMessage, title string) *bot.Card {
	var out *bot.Card
	seen := map[uint]bool{}
	for i := range held {
		if held[i].Card == "" {
			continue
		}
		var c bot.Card
		if err := json.Unmarshal([]byte(held[i].Card), &c); err != nil {
			continue
		}
		if out == nil {
			out = &bot.Card{Recipients: c.Recipients, Station: c.Station, Title: title}
		}
		for _, it := range c.Items {
			if !seen[it.TicketID] {
				seen[it.TicketID] = true
				out.Items = append(out.Items, it)
			}
		}
	}
	if out == nil || len(out.Items) == 0 {
		return nil
	}
	return out
}
