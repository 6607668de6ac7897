package commands_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// withCards gives the playground's officers cards.
func withCards(o *commands.Options) { o.Cards = map[bot.Platform]bool{bot.Playground: true} }

// press is officer from pressing a card button of ticket id.
func (r *rig) press(from string, ticketID uint, verb, arg string) *bot.Event {
	e := r.dm(from, "")
	e.Kind = bot.KindCardPress
	e.Press = &bot.CardPress{TicketID: ticketID, Verb: verb, Arg: arg}
	return e
}

// cardOf decodes a row's card.
func cardOf(t *testing.T, m store.OutboundMessage) bot.Card {
	t.Helper()
	var c bot.Card
	if m.Card == "" {
		t.Fatalf("%s → %s carries no card", m.Purpose, where(&m))
	}
	if err := json.Unmarshal([]byte(m.Card), &c); err != nil {
		t.Fatalf("card of %s: %v", m.Key, err)
	}
	return c
}

func summary(c bot.Card) string {
	var b strings.Builder
	fmt.Fprintf(&b, "to=%s update=%v", strings.Join(c.Recipients, ","), c.Update)
	for _, it := range c.Items {
		var verbs []string
		for _, a := range it.Actions {
			verbs = append(verbs, a.Label)
		}
		fmt.Fprintf(&b, " | #%d %q done=%v [%s]", it.Number, it.Status, it.Done, strings.Join(verbs, " "))
	}
	return b.String()
}

// An emergency pages the duty officer and the leader with one card; when
// the leader presses 认领, that card (everyone's) says who took it and its
// buttons go; a press from another station, or on a closed ticket, is
// answered politely and changes nothing.
func TestEmergencyCardClaimedByOneShowsEveryone(t *testing.T) {
	r := newRig(t, "2026-11-23 19:00", withCards)
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "楼道着火了有烟"))
	rows := r.written()
	var page []store.OutboundMessage
	for _, m := range rows {
		if m.Purpose == string(bot.PurposePage) {
			page = append(page, m)
		}
	}
	if len(page) != 1 {
		t.Fatalf("page messages: %s; want one card for everyone paged", describe(rows))
	}
	card := cardOf(t, page[0])
	if got, want := summary(card), `to=zhang,zhao update=false | #1 "" done=false [认领 转办 办结]`; got != want {
		t.Errorf("page card:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(page[0].Text, "紧急工单 #1") {
		t.Errorf("page card's plain text %q lacks the page", page[0].Text)
	}
	tk := r.ticket("taiping", 1)

	r.setClock("2026-11-23 19:01")
	r.handle(r.press("zhao", tk.ID, bot.VerbClaim, ""))
	rows = r.written()
	if len(rows) != 1 || rows[0].Purpose != string(bot.PurposeCardUpdate) {
		t.Fatalf("after the claim: %s; want one card update and nothing else", describe(rows))
	}
	if got, want := summary(cardOf(t, rows[0])), `to=zhang,zhao update=true | #1 "赵刚 已认领 19:01" done=true []`; got != want {
		t.Errorf("updated card:\n got %s\nwant %s", got, want)
	}
	r.check(r.ticket("taiping", 1), ticketWant{status: store.StatusClaimed, assignee: "zhao", flags: "emergency"})

	r.handle(r.press("sun", tk.ID, bot.VerbClose, ""))
	r.expect("a press from another station", msg{bot.PurposeReply, "chat sun", []string{"不属于您所在的派出所"}})
	r.check(r.ticket("taiping", 1), ticketWant{status: store.StatusClaimed, assignee: "zhao", flags: "emergency"})

	r.handle(r.press("wang-nobody", tk.ID, bot.VerbClose, ""))
	r.expect("a press from someone not on the staff", msg{bot.PurposeReply, "chat wang-nobody", []string{"没有登记为民警"}})

	// Closed by a typed command: the card follows.
	r.setClock("2026-11-23 19:05")
	r.handle(r.dm("zhao", "#1 办结"))
	rows = r.written()
	if len(rows) != 2 || rows[1].Purpose != string(bot.PurposeCardUpdate) {
		t.Fatalf("after #1 办结: %s; want the reply and a card update", describe(rows))
	}
	if got, want := summary(cardOf(t, rows[1])), `to=zhang,zhao update=true | #1 "赵刚 已办结 19:05" done=true []`; got != want {
		t.Errorf("card after closing:\n got %s\nwant %s", got, want)
	}
	r.handle(r.press("zhang", tk.ID, bot.VerbClaim, ""))
	r.expect("a press on a closed ticket", msg{bot.PurposeReply, "chat zhang", []string{"已办结"}})
	r.handle(r.press("zhang", 9999, bot.VerbClaim, ""))
	r.expect("a press on a ticket that is gone", msg{bot.PurposeReply, "chat zhang", []string{"不存在"}})
}

// 转办 on a card offers the colleagues on shift now; choosing one hands the
// ticket over: the colleague's card arrives and the old card says so.
func TestCardHandoverOffersColleaguesOnShift(t *testing.T) {
	r := newRig(t, "2026-11-23 10:00", withCards)
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "小区门口有人发传单推销"))
	rows := r.written()
	if len(rows) != 2 || summary(cardOf(t, rows[1])) != `to=wang update=false | #1 "" done=false [认领 转办 办结]` {
		t.Fatalf("new ticket: %s; want the ack and wang's card", describe(rows))
	}
	tk := r.ticket("taiping", 1)
	r.handle(r.press("wang", tk.ID, bot.VerbHandover, ""))
	rows = r.written()
	if len(rows) != 1 || rows[0].ToUser != "wang" {
		t.Fatalf("转办: %s; want one card to wang", describe(rows))
	}
	pick := cardOf(t, rows[0])
	if got, want := summary(pick), `to=wang update=false | #1 "" done=false [李明]`; got != want {
		t.Errorf("colleagues offered:\n got %s\nwant %s", got, want)
	}
	li := pick.Items[0].Actions[0]
	r.setClock("2026-11-23 10:03")
	r.handle(r.press("wang", tk.ID, li.Verb, li.Arg))
	rows = r.written()
	var got []string
	for _, m := range rows {
		got = append(got, m.Purpose+" "+where(&m)+" "+summary(cardOf(t, m)))
	}
	want := []string{
		`assign dm li to=li update=false | #1 "" done=false [认领 转办 办结]`,
		`card_update dm wang to=wang update=true | #1 "王建国 已转交李明 10:03" done=true []`,
		`card_update dm wang to=wang update=true | #1 "王建国 已转交李明 10:03" done=true []`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after choosing 李明:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.check(r.ticket("taiping", 1), ticketWant{status: store.StatusOpen, assignee: "li", escalate: "2026-11-23 10:18"})
}
