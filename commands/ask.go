package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// handleGroup takes a message in a group chat. Chatter not addressed to the
// bot or an officer is none of the hub's business.
func (h *Hub) handleGroup(ctx context.Context, e *bot.Event) error {
	d := h.dir.Load()
	if e.Archived {
		if handled, err := h.archived(ctx, d, e); handled || err != nil {
			return err
		}
	}
	g := d.group(string(e.Platform), e.Chat.ID)
	var st *store.Station
	if g != nil {
		st = d.stations[g.StationID]
	}
	mentioned, toBot := d.resolveMentions(e, st)
	if !e.AddressedToBot && !toBot && mentioned == nil {
		// Chatter is none of the hub's business, but where the platform
		// shows the hub every message, an emergency is, @ or not.
		if !e.SeesAllMessages || e.Kind != bot.KindText || !h.isEmergency(e.Text) {
			return nil
		}
	}
	if g == nil || st == nil {
		return h.unknownGroup(ctx, d, e)
	}
	if e.Kind != bot.KindText {
		return h.send(ctx, replyTo(e, "unsupported:"+e.ID, d.template("unsupported"), e.Sender.ID))
	}
	text := bot.Truncate(strings.TrimSpace(e.Text), h.opts.MaxTextRunes)
	if text == "" {
		return h.send(ctx, replyTo(e, "help:"+e.ID, d.template("resident_help"), e.Sender.ID))
	}
	emergency := h.isEmergency(text)
	if !emergency {
		if handled, err := h.throttle(ctx, d, e, text); handled || err != nil {
			return err
		}
	}
	return h.ask(ctx, d, e, g, st, mentioned, text, emergency)
}

// unknownGroup answers a group nobody registered: the resident is told
// politely, and the first time the group speaks the admins who can register
// it get a DM (platform, chat id, name, how), written with the group's
// record so they hear of it once.
func (h *Hub) unknownGroup(ctx context.Context, d *directory, e *bot.Event) error {
	admins := d.adminsFor(d.stationOfSpeakers(e))
	var notices []bot.Outbound
	for _, a := range admins {
		m, ok := d.dm(a, string(e.Platform), fmt.Sprintf("unknown-chat:%s:%s:%d", e.Platform, e.Chat.ID, a.ID), "未登记的群",
			func(esc func(string) string) string {
				name := e.Chat.Name
				if name == "" {
					name = "（平台没有给出群名）"
				}
				return renderEsc(esc, d.template("unknown_group_admin"), "platform", string(e.Platform), "platform_name", PlatformLabel(string(e.Platform)),
					"chat_id", e.Chat.ID, "name", name)
			}, bot.Ref{Purpose: bot.PurposeNotice})
		if ok {
			notices = append(notices, m)
		}
	}
	reply := replyTo(e, "unknown:"+e.ID, d.template("unknown_group"))
	if err := reply.Validate(); err != nil {
		return bot.Permanent(err)
	}
	// The reply is written with the count: a message handled twice is
	// counted once.
	first, err := h.store.RecordUnknownChat(ctx, string(e.Platform), e.Chat.ID, e.Chat.Name, []store.OutboundMessage{row(&reply)}, rows(notices))
	if err != nil {
		return h.written(ctx, err, nil)
	}
	if first {
		notices = append(notices, reply)
	} else {
		notices = []bot.Outbound{reply}
	}
	h.wake(ctx, notices)
	return nil
}

// stationOfSpeakers is the station an unregistered group most likely
// belongs to: that of an officer who speaks or is @-ed in it by platform
// id; nil when nobody there is known.
func (d *directory) stationOfSpeakers(e *bot.Event) *store.Station {
	if o := d.officerByIdentity(string(e.Platform), e.Sender.ID); o != nil {
		return d.stations[o.StationID]
	}
	for _, m := range e.Mentions {
		if m.UserID == "" {
			continue
		}
		if o := d.officerByIdentity(string(e.Platform), m.UserID); o != nil {
			return d.stations[o.StationID]
		}
	}
	return nil
}

// adminsFor is who registers groups: the station's admins; the district
// admins when the station is unknown or has none; every station's admins
// when there are no district admins either, so someone always hears.
func (d *directory) adminsFor(st *store.Station) []*store.Officer {
	pick := func(role string, station *store.Station) []*store.Officer {
		var out []*store.Officer
		for _, o := range d.sortedOfficers() {
			if o.HasRole(role) && (station == nil || o.StationID == station.ID) {
				out = append(out, o)
			}
		}
		return out
	}
	if st != nil {
		if out := pick(store.RoleAdmin, st); len(out) > 0 {
			return out
		}
	}
	if out := pick(store.RoleDistrictAdmin, nil); len(out) > 0 {
		return out
	}
	return pick(store.RoleAdmin, nil)
}

// sortedOfficers lists every officer by id.
func (d *directory) sortedOfficers() []*store.Officer {
	out := make([]*store.Officer, 0, len(d.officers))
	for _, o := range d.officers {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// resolveMentions finds the officer a resident @-ed: by platform user id
// first, then by name or alias within the group's station. A mention of the
// station's duty account is a mention of the bot (on WeCom the robot carries
// the duty account's name).
func (d *directory) resolveMentions(e *bot.Event, st *store.Station) (officer *store.Officer, toBot bool) {
	var byName *store.Officer
	for _, m := range e.Mentions {
		if m.IsBot {
			toBot = true
			continue
		}
		var o *store.Officer
		if m.UserID != "" {
			o = d.officerByIdentity(string(e.Platform), m.UserID)
		}
		if o == nil && m.Name != "" && st != nil {
			o = d.officerByName(st.ID, m.Name)
		}
		switch {
		case o == nil:
		case o.HasRole(store.RoleDutyAccount):
			toBot = true
		case m.UserID != "" && officer == nil:
			officer = o
		case byName == nil:
			byName = o
		}
	}
	if officer == nil {
		officer = byName
	}
	if officer != nil && st != nil && officer.StationID != st.ID {
		officer = nil // an officer of another station is not this group's to route to
	}
	return officer, toBot
}

// isUrgent: the resident marked the question urgent (hub.urgent_keywords).
func (h *Hub) isUrgent(text string) bool {
	for _, k := range h.opts.UrgentKeywords {
		if k != "" && strings.Contains(text, k) {
			return true
		}
	}
	return false
}

// clockFrom is when the answer clock of ticket t, held by o, starts at
// now: at once for an emergency, a question the resident marked urgent,
// or when o is on duty (for the duty account: when anyone of the station
// is); else at the start of the next shift of whoever will answer (o's
// own, or the station's next for the duty account), the time residents
// are promised. Without any shift ahead it starts at once.
func (h *Hub) clockFrom(d *directory, st *store.Station, o *store.Officer, t *store.Ticket, now time.Time) time.Time {
	loc := h.opts.Location
	if t.Emergency || h.isUrgent(t.Question) {
		return now
	}
	if o != nil && !o.HasRole(store.RoleDutyAccount) {
		if _, on := d.onDuty(o, now, loc); on {
			return now
		}
		if next, ok := d.nextShiftOf(o, now, loc); ok {
			return next
		}
		return now
	}
	if best, _ := d.bestOnDuty(st, now, loc, nil); best != nil {
		return now
	}
	if next, ok := d.nextStart(st, now, loc); ok {
		return next
	}
	return now
}

func (h *Hub) isEmergency(text string) bool {
	for _, k := range h.opts.EmergencyKeywords {
		if k != "" && strings.Contains(text, k) {
			return true
		}
	}
	return false
}

// throttle keeps one resident from flooding a group with tickets. Over the
// limit, the message is added to their latest ticket (nothing is lost) and
// they are asked to wait.
func (h *Hub) throttle(ctx context.Context, d *directory, e *bot.Event, text string) (bool, error) {
	limit := h.opts.QuestionsPerMinute
	if limit <= 0 {
		return false, nil
	}
	now := h.now()
	key := e.Chat.Key() + "\x00" + e.Sender.ID
	h.throttleMu.Lock()
	r := h.recent[key]
	kept := r.asked[:0]
	for _, t := range r.asked {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	r.asked = kept
	over := len(r.asked) >= limit && r.lastTicket != 0
	if !over {
		r.asked = append(r.asked, now)
	}
	h.recent[key] = r
	h.forgetIdle(now)
	h.throttleMu.Unlock()
	if !over {
		return false, nil
	}
	// A question the platform delivers again is not a further one: its
	// ticket was filed with its messages. Asked only over the limit, so a
	// question under it costs no query.
	switch _, err := h.store.TicketBySource(ctx, e.ID); {
	case err == nil:
		return true, nil
	case !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	msg := about(replyTo(e, "throttled:"+e.ID, render(d.template("throttled"), "number", fmt.Sprint(r.lastNumber)), e.Sender.ID), bot.PurposeReply, r.lastTicket)
	err := h.store.Apply(ctx, r.lastTicket, changed([]store.TicketEvent{{Kind: store.TLFollowUp, Detail: text, At: now}}, []bot.Outbound{msg}))
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return true, nil
	case err != nil:
		return false, err
	}
	h.wake(ctx, []bot.Outbound{msg})
	return true, nil
}

// forgetIdle drops, once a minute, the residents who asked nothing in the
// last minute: the limit no longer applies to them, and their next question
// starts a ticket of its own. The map then holds the residents of the last
// minute or two, whatever the traffic of the day; one pass a minute costs
// each question a constant share. The clock going back (a test's, a
// corrected wall clock) sweeps at once. Call it holding throttleMu.
func (h *Hub) forgetIdle(now time.Time) {
	if now.Sub(h.swept) < time.Minute && !now.Before(h.swept) {
		return
	}
	h.swept = now
	for k, v := range h.recent {
		if len(v.asked) == 0 || now.Sub(v.asked[len(v.asked)-1]) >= time.Minute {
			delete(h.recent, k)
		}
	}
}

// remember notes a resident's latest ticket, where throttled follow-ups go;
// without a limit nothing is throttled, and nothing is kept.
func (h *Hub) remember(e *bot.Event, t *store.Ticket) {
	if h.opts.QuestionsPerMinute <= 0 {
		return
	}
	key := e.Chat.Key() + "\x00" + e.Sender.ID
	h.throttleMu.Lock()
	r := h.recent[key]
	r.lastTicket, r.lastNumber = t.ID, t.Number
	h.recent[key] = r
	h.throttleMu.Unlock()
}

// matchFAQ finds the FAQ entry whose longest keyword the question contains,
// the station's own entries before the shared ones.
func (d *directory) matchFAQ(st *store.Station, text string) *store.FAQ {
	var (
		best    *store.FAQ
		bestLen int
	)
	for i := range d.faqs {
		f := &d.faqs[i]
		if f.StationID != nil && *f.StationID != st.ID {
			continue
		}
		for _, k := range f.KeywordList() {
			l := len(k)
			if f.StationID != nil {
				l += 1 << 16
			}
			if strings.Contains(text, k) && l > bestLen {
				best, bestLen = f, l
			}
		}
	}
	return best
}

// ask files a ticket for a question and sends what DESIGN promises: an
// acknowledgement in the group at once, the question to whoever must answer,
// 110 guidance and pages for emergencies, an FAQ answer after hours.
func (h *Hub) ask(ctx context.Context, d *directory, e *bot.Event, g *store.Group, st *store.Station, mentioned *store.Officer, text string, emergency bool) error {
	now := h.now()
	loc := h.opts.Location
	r := d.route(st, g, mentioned, now, loc)
	sla := time.Duration(st.SLAMinutes) * time.Minute
	var faq *store.FAQ
	if r.AfterHours() && !emergency {
		faq = d.matchFAQ(st, text)
	}
	t := &store.Ticket{
		StationID: st.ID, SourceEventID: e.ID, GroupID: groupID(g),
		Platform: string(e.Platform), ChatID: e.Chat.ID, ChatType: string(e.Chat.Type),
		ResidentID: e.Sender.ID, ResidentName: e.Sender.Name, Question: text, ReplyHandle: e.ReplyHandle,
		Status: store.StatusOpen, Emergency: emergency, AfterHours: r.AfterHours(), AssigneeID: idOf(r.Officer),
		CreatedAt: now,
	}
	// Asked, assigned, acknowledged and DM sent happen now, together: the
	// ticket's Routing records them (Hub.Timeline derives them); only what
	// varies gets a timeline row of its own.
	t.Routing = r.Reason + "：" + officerName(r.Officer)
	var timeline []store.TicketEvent
	due := now.Add(sla)
	switch {
	case faq != nil && !customer(g):
		// In a customer group the FAQ answer waits for a person's tap:
		// the ticket is filed like any other after hours (customer.go).
		t.Status, t.FirstResponseAt, t.AnsweredBy, t.AutoAnswered = store.StatusAnswered, &now, idOf(r.Officer), true
		timeline = append(timeline, store.TicketEvent{Kind: store.TLAutoAnswered, Detail: faq.Topic, At: now})
	case r.AfterHours() && !emergency:
		due = h.clockFrom(d, st, r.Officer, t, now).Add(sla)
		t.EscalateAt = &due
		timeline = append(timeline, store.TicketEvent{Kind: store.TLFiled, At: now})
	default:
		t.EscalateAt = &due
	}
	if emergency {
		timeline = append(timeline, store.TicketEvent{Kind: store.TLPaged, At: now})
	}
	var msgs []bot.Outbound
	t, created, err := h.store.CreateTicket(ctx, t, timeline, func(t *store.Ticket) []store.OutboundMessage {
		msgs = h.askMessages(d, e, t, g, st, faq, now)
		if askedInCustomerGroup(g, t) {
			msgs = h.byHand(d, g, t, msgs)
		}
		return rows(msgs)
	})
	if err != nil {
		return fmt.Errorf("file ticket for %s: %w", e.ID, err)
	}
	h.remember(e, t)
	if created {
		// A redelivered message finds its ticket filed, and its messages
		// written with it.
		h.opts.Observer.Routed(r.Reason, emergency)
		h.wake(ctx, msgs)
	}
	return nil
}

// askMessages are the outbound side of ask, derived from the numbered
// ticket inside its transaction.
func (h *Hub) askMessages(d *directory, e *bot.Event, t *store.Ticket, g *store.Group, st *store.Station, faq *store.FAQ, now time.Time) []bot.Outbound {
	number := fmt.Sprint(t.Number)
	var assignee *store.Officer
	if t.AssigneeID != nil {
		assignee = d.officers[*t.AssigneeID]
	}
	key := fmt.Sprintf("t%d:", t.ID)
	resident := residentLabel(t)
	card := []string{"number", number, "group", chatName(d, t), "resident", resident, "question", t.Question}
	var out []bot.Outbound
	switch {
	case t.Emergency:
		out = append(out, about(replyTo(e, key+"ack", render(d.template("emergency"), "number", number), t.ResidentID), bot.PurposeAck, t.ID))
		paged := map[uint]bool{}
		var pageTo []*store.Officer
		for _, o := range []*store.Officer{assignee, d.dutyOfficerNow(st, now, h.opts.Location), d.leader(st)} {
			if o == nil || paged[o.ID] {
				continue
			}
			paged[o.ID] = true
			pageTo = append(pageTo, o)
		}
		// One card for everyone paged on a platform: when one of them
		// claims it, the others' cards say who.
		out = append(out, h.cardDMs(d, pageTo, t.Platform, key+"page", "紧急工单 #"+number,
			func(esc func(string) string) string { return renderEsc(esc, d.template("page"), card...) },
			bot.Ref{Purpose: bot.PurposePage, TicketID: t.ID}, st, h.ticketItem(d, t, now))...)
		return out
	case faq != nil:
		out = append(out, about(replyTo(e, key+"ack", render(d.template("faq_answer"), "number", number, "answer", faq.Answer), t.ResidentID), bot.PurposeAck, t.ID))
		return out
	case t.AfterHours && h.isUrgent(t.Question):
		out = append(out, about(replyTo(e, key+"ack", render(d.template("ack_after_hours_urgent"), "number", number), t.ResidentID), bot.PurposeAck, t.ID))
	case t.AfterHours:
		next := "上班后"
		if at, ok := d.nextStart(st, now, h.opts.Location); ok {
			next = humanTime(at, now, h.opts.Location)
		}
		out = append(out, about(replyTo(e, key+"ack", render(d.template("ack_after_hours"), "number", number, "next", next), t.ResidentID), bot.PurposeAck, t.ID))
	default:
		out = append(out, about(replyTo(e, key+"ack", render(d.template("ack"), "number", number, "assignee", title(assignee)), t.ResidentID), bot.PurposeAck, t.ID))
	}
	if assignee != nil {
		out = append(out, h.cardDMs(d, []*store.Officer{assignee}, t.Platform, key+"dm", "新工单 #"+number,
			func(esc func(string) string) string { return renderEsc(esc, d.template("officer_dm"), card...) },
			bot.Ref{Purpose: bot.PurposeAssign, TicketID: t.ID}, st, h.ticketItem(d, t, now))...)
	}
	return out
}

func groupID(g *store.Group) *uint {
	if g == nil {
		return nil
	}
	return &g.ID
}

// chatName is where a ticket was asked, as officers read it: the group's
// name, or a one-to-one consultation.
func chatName(d *directory, t *store.Ticket) string {
	if t.GroupID != nil {
		if g := d.groupByID[*t.GroupID]; g != nil {
			return g.Name
		}
	}
	if t.ChatType == string(bot.Direct) {
		return "私信咨询（" + t.Platform + "）"
	}
	return t.ChatID
}

func residentLabel(t *store.Ticket) string {
	if t.ResidentName != "" {
		return t.ResidentName
	}
	return t.ResidentID
}

// title is how residents are told who will answer.
func title(o *store.Officer) string {
	switch {
	case o == nil, o.HasRole(store.RoleDutyAccount):
		return "值班民警"
	case o.HasRole(store.RoleAuxiliary):
		return o.Name + "辅警"
	case o.HasRole(store.RoleDutyOfficer) && !o.HasRole(store.RoleOfficer):
		return "值班民警" + o.Name
	}
	return o.Name + "警官"
}

// humanTime says when in words a resident reads at a glance: the day
// (today, tomorrow, the day after, or the date) with its weekday, so a
// promise over a holiday or onto a make-up working day reads plainly.
func humanTime(at, now time.Time, loc *time.Location) string {
	a, n := at.In(loc), now.In(loc)
	ay, am, ad := a.Date()
	ny, nm, nd := n.Date()
	today := time.Date(ny, nm, nd, 0, 0, 0, 0, loc)
	day := time.Date(ay, am, ad, 0, 0, 0, 0, loc)
	wd := "（" + weekdayNames[a.Weekday()] + "）"
	switch int(day.Sub(today).Hours() / 24) {
	case 0:
		return "今天" + a.Format("15:04")
	case 1:
		return "明天" + wd + a.Format("15:04")
	case 2:
		return "后天" + wd + a.Format("15:04")
	}
	return fmt.Sprintf("%d月%d日%s%s", am, ad, wd, a.Format("15:04"))
}

var weekdayNames = [...]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}
