package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
	"github.com/jingminhub/jingmin/store"
)

// ticketCommand is "#123 rest" (also the full-width ＃).
var ticketCommand = regexp.MustCompile(`^[#＃]\s*(\d{1,9})\s*(.*)$`)

// handleDirect takes a direct message to the bot. Staff use it to answer and
// manage tickets from their phones; anyone else gets the resident greeting.
func (h *Hub) handleDirect(ctx context.Context, e *bot.Event) error {
	d := h.dir.Load()
	o := d.officerByIdentity(string(e.Platform), e.Sender.ID)
	text := strings.TrimSpace(e.Text)
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	if e.Kind == bot.KindCardPress && e.Press != nil {
		return h.handlePress(ctx, d, e)
	}
	if o == nil {
		if ticketCommand.MatchString(text) {
			return reply(d.template("not_staff"))
		}
		return h.consult(ctx, d, e)
	}
	if e.Kind != bot.KindText {
		return reply(d.template("help"))
	}
	if m := ticketCommand.FindStringSubmatch(text); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return h.ticketCommand(ctx, d, e, o, n, strings.TrimSpace(m[2]))
	}
	if broadcastWord.MatchString(text) {
		return h.handleBroadcast(ctx, d, e, o, strings.TrimPrefix(text, "广播"))
	}
	if m := editDraftCommand.FindStringSubmatch(text); m != nil {
		return h.editDraft(ctx, d, e, o, m)
	}
	if verb, id, ok := parseBroadcastReply(strings.Join(strings.Fields(text), " ")); ok {
		return h.handleBroadcastReply(ctx, d, e, o, verb, id)
	}
	if handled, err := h.handleSwapDM(ctx, d, e, o, text); handled {
		return err
	}
	word := strings.ToLower(strings.Join(strings.Fields(text), " "))
	if m := dutyOnCommand.FindStringSubmatch(word); m != nil {
		return h.dutyOn(ctx, d, e, o, m[1], m[2])
	}
	switch word {
	case "值班 关", "值班关", "下班", "duty off":
		return h.dutyOff(ctx, d, e, o)
	case "待办", "todo", "list":
		return h.todo(ctx, d, e, o, 1)
	}
	if m := todoPageCommand.FindStringSubmatch(word); m != nil {
		page, _ := strconv.Atoi(m[1])
		return h.todo(ctx, d, e, o, page)
	}
	return reply(d.template("help"))
}

// dutyOnCommand is "值班 开", with an optional end: "值班 开 到 23:00".
var dutyOnCommand = regexp.MustCompile(`^(?:值班 ?开|上班|duty on)(?: ?(?:到|至|until|to) ?(\d{1,2})[:：](\d{2}))?$`)

// dutyOn puts an officer on duty from now until the end they gave, else
// the end of their rostered shift (the one they are in, or one starting
// within DutyOnFor), else for DutyOnFor; the reply says until when.
func (h *Hub) dutyOn(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, hh, mm string) error {
	now := h.now()
	loc := h.opts.Location
	var until time.Time
	if hh != "" {
		hour, _ := strconv.Atoi(hh)
		minute, _ := strconv.Atoi(mm)
		if hour > 23 || minute > 59 {
			return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template("duty_bad_end"), "end", hh+":"+mm)))
		}
		n := now.In(loc)
		until = time.Date(n.Year(), n.Month(), n.Day(), hour, minute, 0, 0, loc)
		if !until.After(now) {
			until = until.AddDate(0, 0, 1)
		}
	} else {
		until = now.Add(h.dutyOnFor())
		if s, ok := d.rosteredAt(o, now, loc); ok {
			until = s.end
		} else if next, ok := d.nextShiftOf(o, now, loc); ok && next.Before(now.Add(h.dutyOnFor())) {
			for _, s := range d.shiftsOn(o, next, loc) {
				if s.start.Equal(next) {
					until = s.end
				}
			}
		}
	}
	on := true
	return h.switchDuty(ctx, o, &on, now, &until, replyTo(e, "r:"+e.ID, render(d.template("duty_on"), "until", humanTime(until, now, loc))))
}

// switchDuty records a duty switch with its reply, in one transaction, and
// reloads the directory so routing follows it at once.
func (h *Hub) switchDuty(ctx context.Context, o *store.Officer, on *bool, now time.Time, until *time.Time, reply bot.Outbound) error {
	if err := reply.Validate(); err != nil {
		return bot.Permanent(err)
	}
	err := h.store.SetDutyOverride(ctx, o.ID, on, now, until, row(&reply))
	if errors.Is(err, store.ErrDuplicate) {
		return nil // this message was handled before
	}
	if err != nil {
		return err
	}
	if err := h.Reload(ctx); err != nil {
		return err
	}
	h.wake(ctx, []bot.Outbound{reply})
	return nil
}

// dutyOff takes an officer out of routing until their next rostered shift
// starts; questions go to whoever is next in line meanwhile.
func (h *Hub) dutyOff(ctx context.Context, d *directory, e *bot.Event, o *store.Officer) error {
	now := h.now()
	loc := h.opts.Location
	off := false
	next, ok := d.nextShiftOf(o, now, loc)
	var until *time.Time
	if ok {
		until = &next
	}
	reply := replyTo(e, "r:"+e.ID, d.template("duty_off_no_shift"))
	if ok {
		reply = replyTo(e, "r:"+e.ID, render(d.template("duty_off"), "next", humanTime(next, now, loc)))
	}
	return h.switchDuty(ctx, o, &off, now, until, reply)
}

// dutyOnFor is how long "值班 开" lasts with no end given and no shift.
func (h *Hub) dutyOnFor() time.Duration {
	if h.opts.DutyOnFor > 0 {
		return h.opts.DutyOnFor
	}
	return DefaultDutyOnFor
}

// DefaultDutyOnFor is hub.duty_on_hours' default.
const DefaultDutyOnFor = 4 * time.Hour

// todoPage is how many tickets one "待办" reply lists: a page stays far
// below what one message may hold, so no line is ever cut.
const todoPage = 20

// todoPageCommand is "待办 2": a further page of the list.
var todoPageCommand = regexp.MustCompile(`^(?:待办|todo|list) ?(\d{1,6})$`)

// todo lists an officer's open tickets a page at a time, saying how many
// there are and how to see the next page.
func (h *Hub) todo(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, page int) error {
	open, err := h.store.OpenTicketsFor(ctx, o.ID)
	if err != nil {
		return err
	}
	pages := (len(open) + todoPage - 1) / todoPage
	if page < 1 {
		page = 1
	}
	if pages > 0 && page > pages {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template("todo_no_page"), "page", fmt.Sprint(page), "pages", fmt.Sprint(pages), "count", fmt.Sprint(len(open)))))
	}
	from := (page - 1) * todoPage
	shown := open[from:min(from+todoPage, len(open))]
	// The list in the officer's own chat is the digest the officer gets
	// when a shift starts: markdown, residents' words escaped.
	esc := func(s string) string { return markdown.Escape(e.Platform, s) }
	text := render(d.template("digest"), "count", fmt.Sprint(len(open)), "list", d.ticketList(shown, esc))
	if pages > 1 {
		more := "todo_last_page"
		if page < pages {
			more = "todo_more"
		}
		text += "\n" + render(d.template(more), "page", fmt.Sprint(page), "pages", fmt.Sprint(pages), "count", fmt.Sprint(len(open)),
			"from", fmt.Sprint(from+1), "to", fmt.Sprint(from+len(shown)), "next", fmt.Sprint(page+1))
	}
	m := replyTo(e, "r:"+e.ID, text)
	m.Format, m.Title = bot.FormatMarkdown, "待办工单"
	return h.send(ctx, m)
}

// ticketList is one line per ticket: number, group, the question's start.
func (d *directory) ticketList(ts []store.Ticket, esc func(string) string) string {
	var b strings.Builder
	for _, t := range ts {
		where := esc(chatName(d, &t))
		if d.inCustomerGroup(&t) {
			// The hub cannot answer there: the officer sends it from the
			// group's chat toolbar.
			where += "（客户群，在聊天工具栏一键发送）"
		}
		fmt.Fprintf(&b, "- #%d %s：%s\n", t.Number, where, esc(bot.Truncate(t.Question, 30)))
	}
	return strings.TrimRight(b.String(), "\n")
}

// errRefused carries the template a refused ticket command answers with.
type errRefused struct{ template string }

func (e errRefused) Error() string { return "refused: " + e.template }

// ticketCommand handles "#123 ..." from an officer: claim, hand over, close,
// or (anything else) an answer to post in the group.
func (h *Hub) ticketCommand(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, n int64, rest string) error {
	number := fmt.Sprint(n)
	reply := func(tmpl string, kv ...string) error {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template(tmpl), append([]string{"number", number}, kv...)...)))
	}
	t, err := h.store.TicketByNumber(ctx, o.StationID, n)
	if errors.Is(err, store.ErrNotFound) {
		others, err := h.store.TicketsByNumber(ctx, n)
		if err != nil {
			return err
		}
		if len(others) > 0 {
			return reply("other_station")
		}
		return reply("no_ticket")
	}
	if err != nil {
		return err
	}
	return h.act(ctx, d, e, o, t, rest, nil)
}

// act carries out an officer's command on a ticket of their station: typed
// ("#123 认领") or pressed on a card. target, when set, is the colleague a
// card's 转办 choice named (a typed handover names them in rest). Every
// card showing the ticket is redrawn in the same transaction.
func (h *Hub) act(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, t *store.Ticket, rest string, target *store.Officer) error {
	number := fmt.Sprint(t.Number)
	reply := func(tmpl string, kv ...string) error {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template(tmpl), append([]string{"number", number}, kv...)...)))
	}
	cards, err := h.cardsOf(ctx, t)
	if err != nil {
		return err
	}
	now := h.now()
	st := d.stations[t.StationID]
	sla := time.Duration(st.SLAMinutes) * time.Minute
	lower := strings.ToLower(rest)
	var (
		decide func(t *store.Ticket) ([]store.TicketEvent, error)
		after  func(t *store.Ticket) []bot.Outbound
	)
	// "#12 转 李明" hands over; "#12 转账前请核实" is an answer that happens to
	// start with 转, told apart by whether the rest names a colleague.
	handoverName := strings.TrimSpace(trimAnyPrefix(trimAnyPrefix(rest, "转交", "转给", "转", "to ", "TO ", "To "), "给"))
	handoverTarget := target
	if target == nil && (hasAnyPrefix(rest, "转") || strings.HasPrefix(lower, "to ")) {
		handoverTarget = d.officerByName(o.StationID, handoverName)
	}
	// What every card showing the ticket says once the change is made.
	var (
		cardStatus string
		cardCause  = e.ID
	)
	open := func(t *store.Ticket) error {
		if t.Status == store.StatusClosed {
			return errRefused{"ticket_closed"}
		}
		return nil
	}
	switch {
	case rest == "认领" || lower == "claim":
		decide = func(t *store.Ticket) ([]store.TicketEvent, error) {
			if err := open(t); err != nil {
				return nil, err
			}
			if t.Status == store.StatusAnswered {
				return nil, errRefused{"claim_answered"}
			}
			t.AssigneeID = idOf(o)
			if t.Status == store.StatusOpen {
				t.Status = store.StatusClaimed
			}
			due := h.clockFrom(d, st, o, t, now).Add(sla)
			t.EscalateAt = &due
			cardStatus = render(d.template("card_claimed"), "officer", o.Name, "time", clock(now, h.opts.Location))
			return []store.TicketEvent{{Kind: store.TLClaimed, ActorID: idOf(o), At: now}}, nil
		}
		after = func(t *store.Ticket) []bot.Outbound {
			tmpl := "claimed_ok"
			if t.EscalateAt != nil && t.EscalateAt.Sub(now) > sla {
				tmpl = "claimed_ok_later" // its clock starts with the next shift
			}
			due := ""
			if t.EscalateAt != nil {
				due = humanTime(*t.EscalateAt, now, h.opts.Location)
			}
			return []bot.Outbound{about(replyTo(e, "r:"+e.ID, render(d.template(tmpl), "number", number, "minutes", fmt.Sprint(st.SLAMinutes), "due", due)), bot.PurposeReply, t.ID)}
		}
	case target == nil && explicitHandover(rest, lower) && handoverTarget == nil:
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template("unknown_officer"), "name", handoverName)))
	case handoverTarget != nil:
		target := handoverTarget
		decide = func(t *store.Ticket) ([]store.TicketEvent, error) {
			if err := open(t); err != nil {
				return nil, err
			}
			if t.AssigneeID != nil && *t.AssigneeID == target.ID {
				// Already theirs (the same command sent twice, or a
				// handover to oneself): nothing changes, nobody is told twice.
				return nil, errRefused{"handover_same"}
			}
			t.AssigneeID = idOf(target)
			due := h.clockFrom(d, st, target, t, now).Add(sla)
			t.EscalateAt = &due
			cardStatus = render(d.template("card_handed_over"), "from", o.Name, "officer", target.Name, "time", clock(now, h.opts.Location))
			return []store.TicketEvent{{Kind: store.TLHandedOver, ActorID: idOf(o), Detail: "→ " + target.Name, At: now}}, nil
		}
		after = func(t *store.Ticket) []bot.Outbound {
			out := []bot.Outbound{about(replyTo(e, "r:"+e.ID, render(d.template("handed_over_ok"), "number", number, "officer", target.Name)), bot.PurposeReply, t.ID)}
			group := chatName(d, t)
			key := fmt.Sprintf("t%d:handover:%s", t.ID, e.ID)
			out = append(out, h.cardDMs(d, []*store.Officer{target}, t.Platform, key, "转交工单 #"+number,
				func(esc func(string) string) string {
					return renderEsc(esc, d.template(d.customerVariant("handed_over_dm", t)), "number", number, "from", o.Name, "group", group, "resident", residentLabel(t), "question", t.Question)
				},
				bot.Ref{Purpose: bot.PurposeAssign, TicketID: t.ID}, st, h.ticketItem(d, t, now))...)
			return out
		}
	case rest == "办结" || rest == "关闭" || lower == "close" || lower == "done":
		decide = func(t *store.Ticket) ([]store.TicketEvent, error) {
			if err := open(t); err != nil {
				return nil, err
			}
			t.Status, t.ClosedAt, t.EscalateAt = store.StatusClosed, &now, nil
			cardStatus = render(d.template("card_closed"), "officer", o.Name, "time", clock(now, h.opts.Location))
			return []store.TicketEvent{{Kind: store.TLClosed, ActorID: idOf(o), At: now}}, nil
		}
		after = func(t *store.Ticket) []bot.Outbound {
			return []bot.Outbound{about(replyTo(e, "r:"+e.ID, render(d.template("closed_ok"), "number", number)), bot.PurposeReply, t.ID)}
		}
	case rest == "预警" || lower == "alert":
		return h.forwardAlert(ctx, d, e, o, t)
	case rest == "":
		return reply("empty_answer")
	default:
		answer := bot.Truncate(rest, h.opts.MaxTextRunes)
		if t.GroupID != nil && askedInCustomerGroup(d.groupByID[*t.GroupID], t) {
			return h.prepareAnswer(ctx, d, e, o, t, answer)
		}
		decide = func(t *store.Ticket) ([]store.TicketEvent, error) {
			if err := open(t); err != nil {
				return nil, err
			}
			t.Status, t.EscalateAt = store.StatusAnswered, nil
			if t.FirstResponseAt == nil {
				t.FirstResponseAt, t.AnsweredBy = &now, idOf(o)
			}
			cardStatus = render(d.template("card_answered"), "officer", o.Name, "time", clock(now, h.opts.Location))
			return []store.TicketEvent{{Kind: store.TLAnswered, ActorID: idOf(o), Detail: answer, At: now}}, nil
		}
		after = func(t *store.Ticket) []bot.Outbound {
			chat := bot.ChatRef{Platform: bot.Platform(t.Platform), ID: t.ChatID, Type: bot.ChatType(t.ChatType)}
			group := chatName(d, t)
			var at []string
			if chat.Type == bot.Group { // in a one-to-one chat there is nobody else to @
				at = []string{t.ResidentID}
			}
			return []bot.Outbound{
				{Key: fmt.Sprintf("t%d:answer:%d:%s", t.ID, o.ID, e.ID), Platform: chat.Platform, Chat: &chat, Format: bot.FormatText,
					Text: render(d.template("answer"), "answer", answer, "officer", title(o), "number", number), AtUsers: at, ReplyHandle: t.ReplyHandle,
					Ref: bot.Ref{Purpose: bot.PurposeAnswer, TicketID: t.ID, OfficerID: o.ID}},
				about(replyTo(e, "r:"+e.ID, render(d.template("answered_ok"), "number", number, "group", group)), bot.PurposeReply, t.ID),
			}
		}
	}
	var msgs []bot.Outbound
	_, err = h.store.TransitionFrom(ctx, t, func(t *store.Ticket) (store.Change, error) {
		timeline, err := decide(t)
		if err != nil {
			return store.Change{}, err
		}
		msgs = after(t)
		if e.Press != nil {
			// A press is answered by its card, redrawn for everyone:
			// no reply besides, which would cost a platform call.
			msgs = slices.DeleteFunc(msgs, func(m bot.Outbound) bool { return m.Ref.Purpose == bot.PurposeReply })
		}
		msgs = append(msgs, h.cardUpdates(d, cards, t, cardStatus, cardCause)...)
		return changed(timeline, msgs), nil
	})
	var refused errRefused
	switch {
	case errors.As(err, &refused):
		name := ""
		if handoverTarget != nil {
			name = handoverTarget.Name
		}
		return reply(refused.template, "officer", name)
	case errors.Is(err, store.ErrDuplicate):
		return nil // this message was handled before
	case err != nil:
		return err
	}
	h.wake(ctx, msgs)
	return nil
}

// explicitHandover: the officer clearly meant to hand over, even if the name
// is wrong, so a typo is reported instead of posted to residents.
func explicitHandover(rest, lower string) bool {
	return hasAnyPrefix(rest, "转交", "转给") || strings.HasPrefix(lower, "to ") ||
		(strings.HasPrefix(rest, "转 ") && len([]rune(strings.TrimSpace(rest))) <= 12)
}

func hasAnyPrefix(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func trimAnyPrefix(s string, ps ...string) string {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return strings.TrimPrefix(s, p)
		}
	}
	return s
}
