package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Customer groups (客户群): WeCom groups of residents on personal WeChat,
// owned by the community officer, which the hub reads through the
// conversation archive and cannot post in. The hub sees every message
// there, so a resident's message that @s an officer or the duty account,
// or carries an emergency keyword, becomes a ticket as anywhere else; what
// it would post in the group is kept awaiting_human for the owner to send
// with one tap from the chat-toolbar page, and the owner is told by direct
// message at once. The first message of an officer or the duty account in
// the group that answers the ticket (names its number or @s the resident)
// is the answer: it closes the first-response clock that escalation runs
// on.

// customer reports whether g is a customer group.
func customer(g *store.Group) bool { return g != nil && g.Kind == store.GroupKindCustomer }

// askedInCustomerGroup: t was asked inside customer group g, where the hub
// cannot post. A ticket of g's asked one to one (through g's
// customer-service link) is answered where it was asked, by the hub.
func askedInCustomerGroup(g *store.Group, t *store.Ticket) bool {
	return customer(g) && t.Platform == g.Platform && t.ChatID == g.ChatID
}

// inCustomerGroup: t was asked in a customer group, so what tells an
// officer how to answer it must send them to the chat-toolbar page, not
// promise that the hub answers in the group.
func (d *directory) inCustomerGroup(t *store.Ticket) bool {
	return askedInCustomerGroup(d.group(t.Platform, t.ChatID), t)
}

// customerVariant is tmpl's customer-group wording for t when t was asked
// in a customer group, tmpl itself otherwise.
func (d *directory) customerVariant(tmpl string, t *store.Ticket) string {
	if d.inCustomerGroup(t) {
		return "customer_" + tmpl
	}
	return tmpl
}

// archived takes a message read from the archive. It reports handled when
// the message is not the ordinary rules' (a group that is not a customer
// group, staff speaking); a resident's message goes on to them.
func (h *Hub) archived(ctx context.Context, d *directory, e *bot.Event) (bool, error) {
	g := d.group(string(e.Platform), e.Chat.ID)
	if !customer(g) {
		// Internal groups have the robot; rooms nobody registered as
		// customer groups are not the hub's to read.
		return true, nil
	}
	if !e.FromStaff {
		return false, nil
	}
	o := d.officerByIdentity(string(e.Platform), e.Sender.ID)
	if o == nil || e.Kind != bot.KindText {
		return true, nil
	}
	return true, h.detectAnswer(ctx, d, e, g, o)
}

// detectAnswer records an officer's message in a customer group on the
// open tickets of that group it answers: the ticket's number in it, or an
// @ of its resident. The prepared acknowledgement sent as it was is not an
// answer: it is recorded as sent, and the clock runs on.
func (h *Hub) detectAnswer(ctx context.Context, d *directory, e *bot.Event, g *store.Group, o *store.Officer) error {
	open, err := h.store.OpenTicketsInChat(ctx, string(e.Platform), e.Chat.ID)
	if err != nil {
		return err
	}
	said := flat(e.Text)
	for i := range open {
		t := &open[i]
		if !answers(t, e) {
			continue
		}
		prepared, err := h.store.OutboundOf(ctx, t.ID)
		if err != nil {
			return err
		}
		var sent []uint
		ackOnly := false
		for _, m := range prepared {
			if m.State == store.OutboundAwaitingHuman && flat(m.Text) == said {
				sent = append(sent, m.ID)
				ackOnly = ackOnly || m.Purpose == string(bot.PurposeAck)
			}
		}
		if len(sent) > 0 {
			if err := h.store.SentByHand(ctx, sent, e.MessageID, h.now()); err != nil {
				return err
			}
		}
		if ackOnly {
			continue
		}
		now := h.now()
		_, err = h.store.TransitionFrom(ctx, t, func(t *store.Ticket) (store.Change, error) {
			if t.Status != store.StatusOpen && t.Status != store.StatusClaimed {
				return store.Change{}, errAlreadyAnswered
			}
			t.Status, t.EscalateAt = store.StatusAnswered, nil
			if t.FirstResponseAt == nil {
				t.FirstResponseAt, t.AnsweredBy = &now, idOf(o)
			}
			return changed([]store.TicketEvent{{Kind: store.TLAnswered, ActorID: idOf(o), Detail: "群内答复：" + bot.Truncate(e.Text, 500), At: now}}, nil), nil
		})
		if err != nil && !errors.Is(err, errAlreadyAnswered) {
			return fmt.Errorf("record the answer to ticket %d: %w", t.ID, err)
		}
	}
	return nil
}

var errAlreadyAnswered = errors.New("ticket answered already")

// answers: e names t's number ("#12", not "#123") or @s t's resident.
func answers(t *store.Ticket, e *bot.Event) bool {
	num := fmt.Sprintf("#%d", t.Number)
	for s := e.Text; ; {
		i := strings.Index(s, num)
		if i < 0 {
			break
		}
		rest := s[i+len(num):]
		if rest == "" || rest[0] < '0' || rest[0] > '9' {
			return true
		}
		s = rest
	}
	if t.ResidentName == "" {
		return false
	}
	for _, m := range e.Mentions {
		if m.Name == t.ResidentName {
			return true
		}
	}
	return false
}

// flat compares texts as a person reads them: spacing aside.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// byHand turns a new ticket's messages in a customer group into what a
// person sends: the group messages wait for a tap, the owner's and the
// assignee's direct messages carry the prepared text and the way to the
// toolbar page, and the owner is told even when the ticket went to
// someone else (only the group's members can post in it).
func (h *Hub) byHand(d *directory, g *store.Group, t *store.Ticket, msgs []bot.Outbound) []bot.Outbound {
	var prepared string
	told := map[uint]bool{}
	for i := range msgs {
		m := &msgs[i]
		if m.Chat != nil {
			m.ByHand = true
			if m.Ref.Purpose == bot.PurposeAck && prepared == "" {
				prepared = m.Text
			}
		}
	}
	number := fmt.Sprint(t.Number)
	card := func(tmpl string) func(esc func(string) string) string {
		return func(esc func(string) string) string {
			text := renderEsc(esc, d.template(tmpl), "number", number, "group", chatName(d, t), "resident", residentLabel(t),
				"question", t.Question, "ack", prepared)
			if h.opts.ToolbarURL != "" {
				text += "\n\n[打开答复页](" + h.opts.ToolbarURL + ")"
			}
			return text
		}
	}
	tmpl, purpose, title := "customer_dm", bot.PurposeAssign, "新工单 #"+number+"（客户群）"
	if t.Emergency {
		tmpl, purpose, title = "customer_page", bot.PurposePage, "紧急工单 #"+number+"（客户群）"
	}
	for i := range msgs {
		m := &msgs[i]
		if m.ToUser == "" || (m.Ref.Purpose != bot.PurposeAssign && m.Ref.Purpose != bot.PurposePage) {
			continue
		}
		o := d.officers[m.Ref.OfficerID]
		if o == nil {
			continue
		}
		told[o.ID] = true
		if re, ok := d.dm(o, t.Platform, m.Key, title, card(tmpl), bot.Ref{Purpose: purpose, TicketID: t.ID}); ok {
			*m = re
		}
	}
	if g.OfficerID != nil && !told[*g.OfficerID] {
		if owner := d.officers[*g.OfficerID]; owner != nil {
			told[owner.ID] = true
			if m, ok := d.dm(owner, t.Platform, fmt.Sprintf("t%d:owner:%d", t.ID, owner.ID), title, card(tmpl), bot.Ref{Purpose: purpose, TicketID: t.ID}); ok {
				msgs = append(msgs, m)
			}
		}
	}
	if t.Emergency {
		// A page reaches a person wherever they are: also on DingTalk,
		// for those who have it, beside the WeCom app message.
		for _, o := range d.sortedOfficers() {
			if !told[o.ID] || !d.hasIdentity(o, string(bot.DingTalk)) || t.Platform == string(bot.DingTalk) {
				continue
			}
			if m, ok := d.dm(o, string(bot.DingTalk), fmt.Sprintf("t%d:page:%d:dingtalk", t.ID, o.ID), title, card(tmpl), bot.Ref{Purpose: purpose, TicketID: t.ID}); ok {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs
}

// hasIdentity: o has an account on platform.
func (d *directory) hasIdentity(o *store.Officer, platform string) bool {
	for _, id := range d.identities[o.ID] {
		if id.Platform == platform {
			return true
		}
	}
	return false
}

// prepareAnswer keeps an officer's "#12 内容" for a customer-group ticket
// as a message awaiting a tap: the ticket is answered only when the
// answer is seen in the group.
func (h *Hub) prepareAnswer(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, t *store.Ticket, answer string) error {
	if t.Status == store.StatusClosed {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template("ticket_closed"), "number", fmt.Sprint(t.Number))))
	}
	number := fmt.Sprint(t.Number)
	chat := bot.ChatRef{Platform: bot.Platform(t.Platform), ID: t.ChatID, Type: bot.ChatType(t.ChatType)}
	msgs := []bot.Outbound{
		{Key: fmt.Sprintf("t%d:answer:%d:%s", t.ID, o.ID, e.ID), Platform: chat.Platform, Chat: &chat, Format: bot.FormatText,
			Text: render(d.template("answer"), "answer", answer, "officer", title(o), "number", number), ByHand: true,
			Ref: bot.Ref{Purpose: bot.PurposeAnswer, TicketID: t.ID, OfficerID: o.ID}},
		about(replyTo(e, "r:"+e.ID, render(d.template("answer_prepared_ok"), "number", number, "group", chatName(d, t))), bot.PurposeReply, t.ID),
	}
	err := h.store.Apply(ctx, t.ID, changed([]store.TicketEvent{{Kind: store.TLAnswerPrepared, ActorID: idOf(o), Detail: answer, At: h.now()}}, msgs))
	return h.written(ctx, err, msgs)
}

// ArchiveTrouble tells the admins that the archive reader has been in
// trouble since since: once per trouble.
func (h *Hub) ArchiveTrouble(ctx context.Context, corp, reason string, since time.Time) error {
	d := h.dir.Load()
	return h.tellAdmins(ctx, d, fmt.Sprintf("archive-trouble:%s:%d", corp, since.UnixNano()), "会话存档读取异常",
		func(esc func(string) string) string {
			return renderEsc(esc, d.template("archive_trouble"), "corp", corp, "since", since.In(h.opts.Location).Format("01-02 15:04"), "reason", bot.Mask(reason))
		})
}

// ArchiveUndecryptable tells the admins of an archived message that could
// not be decrypted; it was recorded with the reason.
func (h *Hub) ArchiveUndecryptable(ctx context.Context, corp, msgID, roomID, reason string) error {
	d := h.dir.Load()
	return h.tellAdmins(ctx, d, "archive-undecryptable:"+corp+":"+msgID, "存档消息无法解密",
		func(esc func(string) string) string {
			return renderEsc(esc, d.template("archive_undecryptable"), "msgid", msgID, "reason", reason)
		})
}

// tellAdmins sends one notice to the admins who keep the hub running (the
// district admins, else every station admin), keyed per admin.
func (h *Hub) tellAdmins(ctx context.Context, d *directory, key, title string, text func(esc func(string) string) string) error {
	var msgs []bot.Outbound
	for _, a := range d.adminsFor(nil) {
		if m, ok := d.dm(a, string(bot.WeChat), fmt.Sprintf("%s:%d", key, a.ID), title, text, bot.Ref{Purpose: bot.PurposeNotice}); ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		h.opts.Log.Warn("nobody to tell: no admin has an account", "notice", title)
		return nil
	}
	return h.send(ctx, msgs...)
}

// MentionNames are the names residents @ staff by (officers' names and
// aliases, the duty accounts'): the archive has no structured @ list, so
// its reader matches "@名字" against them.
func (h *Hub) MentionNames() []string {
	d := h.dir.Load()
	var out []string
	for _, o := range d.sortedOfficers() {
		out = append(out, o.Name)
		out = append(out, o.AliasList()...)
	}
	return out
}
