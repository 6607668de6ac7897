package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
	"github.com/jingminhub/jingmin/store"
)

// maxCardRecipients is how many people one card instance goes to: DingTalk
// delivers to at most 20 spaces a call, as batchSend takes 20 users.
const maxCardRecipients = 20

// cardsOn reports whether officers on platform p get tap-to-act cards
// (a platform without them keeps markdown direct messages).
func (h *Hub) cardsOn(p string) bool { return h.opts.Cards[bot.Platform(p)] }

// cardsOf lists the rows of every card that shows t (all their tickets'
// rows), when any platform has cards.
func (h *Hub) cardsOf(ctx context.Context, t *store.Ticket) ([]store.Card, error) {
	if len(h.opts.Cards) == 0 {
		return nil, nil
	}
	mine, err := h.store.CardsOfTicket(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	var out []store.Card
	seen := map[string]bool{}
	for _, c := range mine {
		if seen[c.Track] {
			continue
		}
		seen[c.Track] = true
		rows, err := h.store.CardsByTrack(ctx, c.Track)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// mergeCard is a card instance as its rows say now: the layout of its
// latest row, each ticket's item from that ticket's own row.
func mergeCard(rows []store.Card) (*bot.Card, string, error) {
	if len(rows) == 0 {
		return nil, "", errors.New("card has no rows")
	}
	latest := rows[0]
	handle := ""
	items := map[uint]bot.CardItem{}
	for _, r := range rows {
		if r.UpdatedAt.After(latest.UpdatedAt) || (r.UpdatedAt.Equal(latest.UpdatedAt) && r.ID > latest.ID) {
			latest = r
		}
		if r.Handle != "" {
			handle = r.Handle
		}
		var c bot.Card
		if err := json.Unmarshal([]byte(r.Card), &c); err != nil {
			return nil, "", fmt.Errorf("card %s: %w", r.Track, err)
		}
		for _, it := range c.Items {
			if it.TicketID == r.TicketID {
				items[r.TicketID] = it
			}
		}
	}
	var card bot.Card
	if err := json.Unmarshal([]byte(latest.Card), &card); err != nil {
		return nil, "", fmt.Errorf("card %s: %w", latest.Track, err)
	}
	for i, it := range card.Items {
		if own, ok := items[it.TicketID]; ok {
			card.Items[i] = own
		}
	}
	return &card, handle, nil
}

// clock is the time of day a card's status line shows.
func clock(at time.Time, loc *time.Location) string { return at.In(loc).Format("15:04") }

// ticketActions are an open ticket's buttons.
var ticketActions = []bot.CardAction{
	{Label: "认领", Verb: bot.VerbClaim},
	{Label: "转办", Verb: bot.VerbHandover},
	{Label: "办结", Verb: bot.VerbClose},
}

// ticketItem is a ticket as one item of a card: what was asked, where, by
// whom, how long it has waited, how to answer, and its buttons.
func (h *Hub) ticketItem(d *directory, t *store.Ticket, now time.Time) bot.CardItem {
	waited := max(int(now.Sub(t.CreatedAt).Minutes()), 0)
	answer := fmt.Sprintf("回复“#%d 内容”即在群里答复并@居民", t.Number)
	if d.inCustomerGroup(t) {
		answer = "客户群里机器人不能发言：答复已备好，请在该群聊天工具栏打开“警务答复”点一下发送"
	}
	return bot.CardItem{
		TicketID: t.ID, Number: t.Number,
		Lines: []bot.Line{
			{Label: "问题", Value: bot.Truncate(t.Question, 300)},
			{Label: "群", Value: chatName(d, t)},
			{Label: "居民", Value: residentLabel(t)},
			{Label: "已等待", Value: fmt.Sprintf("%d分钟", waited)},
			{Label: "答复", Value: answer},
		},
		Actions: ticketActions,
	}
}

// track names a card instance after the message that creates it: the
// platforms take letters, digits and "_-@" (WeCom's task_id, at most 128).
func track(key string) string {
	var b strings.Builder
	b.WriteString("jm-")
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '@':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// cardDMs tells officers of a ticket: on a platform with cards, one card
// for all of them there (one instance, so one update redraws it for
// everyone); elsewhere a markdown direct message each, as before. key is
// the messages' key stem; text the markdown every card also carries, sent
// instead where a card cannot be.
func (h *Hub) cardDMs(d *directory, officers []*store.Officer, preferred, key, title string, text func(esc func(string) string) string, r bot.Ref, st *store.Station, items ...bot.CardItem) []bot.Outbound {
	var out []bot.Outbound
	cardAt := map[bot.Platform]int{} // platform → index in out of its card
	for _, o := range officers {
		m, ok := d.dm(o, preferred, fmt.Sprintf("%s:%d", key, o.ID), title, text, r)
		if !ok {
			continue
		}
		if !h.cardsOn(string(m.Platform)) || len(items) == 0 {
			out = append(out, m)
			continue
		}
		if i, ok := cardAt[m.Platform]; ok && len(out[i].Card.Recipients) < maxCardRecipients {
			out[i].Card.Recipients = append(out[i].Card.Recipients, m.ToUser)
			continue
		}
		m.Key = fmt.Sprintf("%s:card:%s:%d", key, m.Platform, o.ID)
		m.Card = &bot.Card{Track: track(m.Key), Recipients: []string{m.ToUser}, Title: title, Items: items, Urgent: r.Purpose == bot.PurposePage}
		if st != nil {
			m.Card.Station = st.Code
		}
		cardAt[m.Platform] = len(out)
		out = append(out, m)
	}
	return out
}

// cardUpdates redraws every card that shows t after a change: one message
// per card instance, whatever its number of recipients. status replaces
// the ticket's buttons ("张伟 已认领 22:41"); cause makes the keys unique
// per change. Cards of other tickets on the same card (a digest) keep
// what they showed.
func (h *Hub) cardUpdates(d *directory, cards []store.Card, t *store.Ticket, status, cause string) []bot.Outbound {
	if status == "" {
		return nil
	}
	var out []bot.Outbound
	byTrack := map[string][]store.Card{}
	var tracks []string
	for _, c := range cards {
		if _, ok := byTrack[c.Track]; !ok {
			tracks = append(tracks, c.Track)
		}
		byTrack[c.Track] = append(byTrack[c.Track], c)
	}
	for _, tr := range tracks {
		c := byTrack[tr][0]
		merged, _, err := mergeCard(byTrack[tr])
		if err != nil || len(merged.Recipients) == 0 {
			h.opts.Log.Warn("card state unreadable; not redrawn", "track", c.Track, "err", err)
			continue
		}
		card := *merged
		var lines []string
		for i := range card.Items {
			it := &card.Items[i]
			if it.TicketID == t.ID {
				it.Status, it.Done, it.Actions = status, true, nil
			}
			line := fmt.Sprintf("#%d", it.Number)
			if it.Status != "" {
				line += " " + it.Status
			}
			lines = append(lines, line)
		}
		card.Update, card.Handle = true, ""
		esc := func(s string) string { return markdown.Escape(bot.Platform(c.Platform), s) }
		out = append(out, bot.Outbound{
			Key: fmt.Sprintf("cardupd:%s:%d:%s", c.Track, t.ID, cause), Platform: bot.Platform(c.Platform), ToUser: card.Recipients[0],
			Format: bot.FormatMarkdown, Title: card.Title, Text: esc(strings.Join(lines, "\n")), Card: &card,
			Ref: bot.Ref{Purpose: bot.PurposeCardUpdate, TicketID: t.ID},
		})
	}
	return out
}

// handlePress takes a pressed card button: only staff of the ticket's
// station act; a press on a closed or vanished ticket is answered
// politely; the rest is the command the button stands for.
func (h *Hub) handlePress(ctx context.Context, d *directory, e *bot.Event) error {
	p := e.Press
	o := d.officerByIdentity(string(e.Platform), e.Sender.ID)
	reply := func(tmpl string, kv ...string) error {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template(tmpl), kv...)))
	}
	if o == nil {
		return reply("not_staff")
	}
	if p.Handle != "" && p.Track != "" {
		// The press's fresh handle is what the card's next update takes.
		if err := h.store.SetCardHandle(ctx, p.Track, p.Handle); err != nil {
			return err
		}
	}
	t, err := h.store.TicketByID(ctx, p.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return reply("card_gone")
	}
	if err != nil {
		return err
	}
	number := fmt.Sprint(t.Number)
	if t.StationID != o.StationID {
		return reply("other_station", "number", number)
	}
	if t.Status == store.StatusClosed {
		return reply("ticket_closed", "number", number)
	}
	switch p.Verb {
	case bot.VerbClaim:
		return h.act(ctx, d, e, o, t, "认领", nil)
	case bot.VerbClose:
		return h.act(ctx, d, e, o, t, "办结", nil)
	case bot.VerbHandover:
		return h.offerColleagues(ctx, d, e, o, t)
	case bot.VerbHandoverTo:
		id, _ := strconv.ParseUint(p.Arg, 10, 32)
		target := d.officers[uint(id)]
		if target == nil || target.StationID != o.StationID {
			return reply("unknown_officer", "name", "（该同事）")
		}
		return h.act(ctx, d, e, o, t, "转", target)
	}
	return reply("help")
}

// maxChoices is how many colleagues a 转办 card offers (WeCom's button
// cards take six buttons).
const maxChoices = 6

// offerColleagues answers a 转办 press with a card listing the colleagues
// on shift now, each a button that hands the ticket over.
func (h *Hub) offerColleagues(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, t *store.Ticket) error {
	now := h.now()
	number := fmt.Sprint(t.Number)
	var choices []bot.CardAction
	var names []string
	for _, c := range d.staff[o.StationID] {
		if c.ID == o.ID || c.HasRole(store.RoleDutyAccount) || (t.AssigneeID != nil && *t.AssigneeID == c.ID) {
			continue
		}
		if _, on := d.onDuty(c, now, h.opts.Location); !on {
			continue
		}
		if _, _, ok := d.address(c, string(e.Platform)); !ok {
			continue
		}
		choices = append(choices, bot.CardAction{Label: c.Name, Verb: bot.VerbHandoverTo, Arg: strconv.FormatUint(uint64(c.ID), 10)})
		names = append(names, c.Name)
		if len(choices) == maxChoices {
			break
		}
	}
	if len(choices) == 0 {
		return h.send(ctx, replyTo(e, "r:"+e.ID, render(d.template("card_no_colleague"), "number", number)))
	}
	esc := func(s string) string { return markdown.Escape(e.Platform, s) }
	text := render(d.template("card_pick_colleague"), "number", number, "list", esc(strings.Join(names, "、")))
	m := replyTo(e, "r:"+e.ID, text)
	m.Format, m.Title = bot.FormatMarkdown, "转办工单 #"+number
	m.Ref = bot.Ref{Purpose: bot.PurposeReply, TicketID: t.ID, OfficerID: o.ID}
	if h.cardsOn(string(e.Platform)) {
		item := h.ticketItem(d, t, now)
		item.Actions = choices
		m.Chat, m.ToUser = nil, e.Sender.ID
		m.Card = &bot.Card{Track: track(fmt.Sprintf("t%d:pick:%s", t.ID, shortHash(e.ID))), Recipients: []string{e.Sender.ID}, Title: m.Title, Items: []bot.CardItem{item}}
		if st := d.stations[t.StationID]; st != nil {
			m.Card.Station = st.Code
		}
	}
	return h.send(ctx, m)
}

// shortHash is a short stable digest of an id, for names the platforms
// bound in length and characters.
func shortHash(s string) string {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return strconv.FormatUint(h, 36)
}

// cardRefused tells the station's admins, once, that the platform refused
// its cards (a template id it does not know) and that officers get plain
// messages meanwhile.
func (h *Hub) cardRefused(_ context.Context, o *bot.Outbound, reason string) ([]bot.Outbound, error) {
	d := h.dir.Load()
	st := d.stationByCode(o.Card.Station)
	if st == nil {
		return nil, nil
	}
	platform := platformName(o.Platform)
	var out []bot.Outbound
	for _, a := range d.adminsFor(st) {
		text := func(esc func(string) string) string {
			return render(d.template("card_refused_admin"), "platform", platform, "reason", esc(bot.Mask(reason)))
		}
		m, ok := d.dm(a, string(o.Platform), fmt.Sprintf("cardrefused:%s:%s:%d", o.Platform, st.Code, a.ID), "卡片未能发送", text, bot.Ref{Purpose: bot.PurposeNotice})
		if ok {
			m.Format = bot.FormatText
			out = append(out, m)
		}
	}
	return out, nil
}

// platformName is a platform as staff call it.
func platformName(p bot.Platform) string {
	switch p {
	case bot.DingTalk:
		return "钉钉"
	case bot.WeChat:
		return "企业微信"
	}
	return string(p)
}
