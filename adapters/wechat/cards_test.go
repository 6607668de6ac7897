package wechat

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
)

type counter struct{ calls map[string]int }

func (c *counter) CountCall(_ context.Context, _ bot.Platform, _, api string) { c.calls[api]++ }
func (c *counter) Exhausted(bot.Platform, string)                             {}

func ticketCard(track string, recipients ...string) *bot.Outbound {
	item := bot.CardItem{TicketID: 12, Number: 4, Lines: []bot.Line{
		{Label: "问题", Value: "小区门口有人发传单推销"}, {Label: "群", Value: "和谐小区业主群"},
		{Label: "居民", Value: "刘阿姨"}, {Label: "已等待", Value: "0分钟"}, {Label: "答复", Value: "回复“#4 内容”即在群里答复并@居民"},
	}, Actions: []bot.CardAction{{Label: "认领", Verb: bot.VerbClaim}, {Label: "转办", Verb: bot.VerbHandover}, {Label: "办结", Verb: bot.VerbClose}}}
	return &bot.Outbound{Key: "t12:dm:card:wechat:1", Platform: bot.WeChat, ToUser: recipients[0], Format: bot.FormatMarkdown,
		Title: "新工单 #4", Text: "### 新工单 #4\n- 问题：小区门口有人发传单推销", Ref: bot.Ref{Purpose: bot.PurposeAssign, TicketID: 12},
		Card: &bot.Card{Track: track, Recipients: recipients, Station: "taiping", Title: "新工单 #4", Items: []bot.CardItem{item}}}
}

// A card goes as one template card to all its recipients, its
// response_code the receipt; an update with that code redraws it for all;
// the code is then spent, and an update without a code is refused for
// good with the reason. The JSON sent is the golden file.
func TestTemplateCardSentOnceAndUpdatedForAll(t *testing.T) {
	f := newFixture(t)
	cnt := &counter{calls: map[string]int{}}
	f.a.counter = cnt
	ctx := context.Background()
	o := ticketCard("jm-t12-dm-card-wechat-1", "wang.jg", "zhang.w")
	code, err := f.a.SendReceipt(ctx, o)
	if err != nil || code == "" {
		t.Fatalf("send card: %q, %v", code, err)
	}
	card, ok := f.api.CardByTask(o.Card.Track)
	if !ok || strings.Join(card.Recipients, ",") != "wang.jg,zhang.w" || strings.Join(card.Buttons(), " ") != "认领 转办 办结" {
		t.Fatalf("card as sent: %+v", card)
	}
	var sent any
	_ = json.Unmarshal(card.Sent, &sent)
	golden.File(t, "testdata/cards/ticket_card.golden", golden.JSON(sent))

	up := *o
	c := *o.Card
	c.Items = []bot.CardItem{o.Card.Items[0]}
	c.Update, c.Handle = true, code
	c.Items[0].Status, c.Items[0].Done, c.Items[0].Actions = "张伟 已认领 22:41", true, nil
	up.Card = &c
	if _, err := f.a.SendReceipt(ctx, &up); err != nil {
		t.Fatal(err)
	}
	card, _ = f.api.CardByTask(o.Card.Track)
	if card.Replaced != "张伟 已认领 22:41" || card.Updates != 1 || len(card.Buttons()) != 0 {
		t.Errorf("card after the claim: replaced %q, %d updates, buttons %v", card.Replaced, card.Updates, card.Buttons())
	}
	// The code is spent: WeCom refuses it again.
	if _, err := f.a.SendReceipt(ctx, &up); err == nil || !isPermanent(err) {
		t.Errorf("update with a spent code: %v; want refused for good", err)
	}
	c.Handle = ""
	if _, err := f.a.SendReceipt(ctx, &up); err == nil || !isPermanent(err) || !strings.Contains(err.Error(), "response_code") {
		t.Errorf("update without a code: %v; want refused for good, naming the code", err)
	}
	if cnt.calls["message/send"] != 1 || cnt.calls["message/update_template_card"] != 2 {
		t.Errorf("calls counted %v", cnt.calls)
	}
	mustNotContain(t, "logs", f.logs.String(), code, "刘阿姨")
}

// A digest of several tickets: a line each and buttons per ticket, six at most.
func TestDigestTemplateCardListsTicketsWithTheirButtons(t *testing.T) {
	o := ticketCard("jm-escd-9", "zhao.g")
	second := o.Card.Items[0]
	second.TicketID, second.Number = 13, 5
	second.Lines = []bot.Line{{Label: "问题", Value: "噪音扰民"}, {Label: "群", Value: "阳光花园邻里群"}}
	first := o.Card.Items[0]
	first.Actions = []bot.CardAction{{Label: "认领", Verb: bot.VerbClaim}, {Label: "办结", Verb: bot.VerbClose}}
	second.Actions = first.Actions
	o.Card.Items = []bot.CardItem{first, second}
	o.Card.Title = "2 个工单超时未答复"
	golden.File(t, "testdata/cards/digest_card.golden", golden.JSON(renderTemplateCard(o.Card)))
}

// Over budget a card goes as its text, once, to all recipients.
func TestPlainCardIsOneMessageToAll(t *testing.T) {
	f := newFixture(t)
	o := ticketCard("jm-x", "wang.jg", "zhang.w")
	o.Card.Plain = true
	id, err := f.a.SendReceipt(context.Background(), o)
	if err != nil || id != bot.SentPlain {
		t.Fatalf("plain card: %q %v", id, err)
	}
	app := f.api.SentOn("app")
	if len(app) != 1 || app[0].To != "wang.jg|zhang.w" || app[0].MsgType != "markdown" || !strings.Contains(app[0].Text, "新工单 #4") {
		t.Errorf("app messages %+v", app)
	}
}

// A press comes back on the app callback: verified like any callback,
// published once (WeCom's retry of the same press is dropped), its fresh
// ResponseCode carried for the update.
func TestCardPressCallbackIsPublishedOnce(t *testing.T) {
	f := newFixture(t)
	o := ticketCard("jm-t12-dm-card-wechat-1", "wang.jg")
	if _, err := f.a.SendReceipt(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	card, _ := f.api.CardByTask(o.Card.Track)
	msg, code := f.api.Press(testCorp, testAgent, "wang.jg", o.Card.Track, card.Key("认领"), f.clock.Now())
	for range 2 {
		if status, body := f.app(msg); status != 200 {
			t.Fatalf("press: %d %s", status, body)
		}
	}
	evs := f.events()
	if len(evs) != 1 {
		t.Fatalf("events: %d, want the press once", len(evs))
	}
	e := evs[0]
	if e.Kind != bot.KindCardPress || e.Press.TicketID != 12 || e.Press.Verb != bot.VerbClaim || e.Press.Handle != code ||
		e.Press.Track != o.Card.Track || e.Sender.ID != "wang.jg" {
		t.Errorf("press event %+v %+v", e, e.Press)
	}
	mustNotContain(t, "logs", f.logs.String(), code)
	// A forged press (wrong signature) is refused before anything is read.
	cb, err := wecomtest.SealXML("wrong-token", appAESKey, testCorp, testAgent, msg, f.clock.Now(), wecomtest.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := f.do("POST", cb.Path(PathApp), cb.Body); status == 200 {
		t.Error("a forged press was taken")
	}
	if evs := f.events(); len(evs) != 0 {
		t.Errorf("forged press published %+v", evs)
	}
}

// Calls says what Send costs: for each kind of message, the calls counted
// while sending it equal Calls.
func TestCallsMatchWhatIsCounted(t *testing.T) {
	f := newFixture(t)
	cnt := &counter{calls: map[string]int{}}
	f.a.counter = cnt
	ctx := context.Background()
	card := ticketCard("jm-calls", "wang.jg", "zhang.w")
	code, err := f.a.SendReceipt(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	update := ticketCard("jm-calls", "wang.jg", "zhang.w")
	update.Card.Update, update.Card.Handle = true, code
	plain := ticketCard("jm-plain", "wang.jg")
	plain.Card.Plain = true
	plainUpdate := ticketCard("jm-plain", "wang.jg")
	plainUpdate.Card.Plain, plainUpdate.Card.Update = true, true
	dm := &bot.Outbound{Key: "d", Platform: bot.WeChat, ToUser: "wang.jg", Format: bot.FormatMarkdown, Text: "x"}
	group := groupOut("g", "x", "")
	if got := cnt.calls["message/send"]; got != Calls(card) {
		t.Errorf("card: %d calls, Calls says %d", got, Calls(card))
	}
	for _, o := range []*bot.Outbound{update, plain, plainUpdate, dm, group} {
		before := 0
		for _, v := range cnt.calls {
			before += v
		}
		if _, err := f.a.SendReceipt(ctx, o); err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		after := 0
		for _, v := range cnt.calls {
			after += v
		}
		if after-before != Calls(o) {
			t.Errorf("%s: %d calls counted, Calls says %d", o.Key, after-before, Calls(o))
		}
	}
}
