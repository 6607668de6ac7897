package dingtalk

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// pageCard is an emergency page to three officers, as the rules write it.
func pageCard() *bot.Outbound {
	item := bot.CardItem{TicketID: 7, Number: 3, Lines: []bot.Line{
		{Label: "问题", Value: "楼道着火了 *有烟* 电话13812345678"}, {Label: "群", Value: "和谐小区业主群"},
		{Label: "居民", Value: "刘阿姨"}, {Label: "已等待", Value: "0分钟"}, {Label: "答复", Value: "回复“#3 内容”即在群里答复并@居民"},
	}, Actions: []bot.CardAction{{Label: "认领", Verb: bot.VerbClaim}, {Label: "转办", Verb: bot.VerbHandover}, {Label: "办结", Verb: bot.VerbClose}}}
	return &bot.Outbound{Key: "t7:page:card:dingtalk:1", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatMarkdown,
		Title: "紧急工单 #3", Text: "### 🚨 紧急工单 #3\n- 内容：楼道着火了",
		Ref:  bot.Ref{Purpose: bot.PurposePage, TicketID: 7},
		Card: &bot.Card{Track: "jm-t7-page-card-dingtalk-1", Recipients: []string{"staff-wang", "staff-zhang", "staff-zhao"}, Station: "taiping", Title: "紧急工单 #3", Items: []bot.CardItem{item}}}
}

// counter counts calls as the budget does.
type counter struct {
	calls     map[string]int
	exhausted bool
}

func (c *counter) CountCall(_ context.Context, _ bot.Platform, _, api string) { c.calls[api]++ }
func (c *counter) Exhausted(bot.Platform, string)                             { c.exhausted = true }

// A page to three officers is one card instance (one call); when one
// claims it, one update redraws it for all three. The bodies sent are the
// golden files.
func TestCardIsDeliveredOnceToAllAndUpdatedOnceForAll(t *testing.T) {
	cnt := &counter{calls: map[string]int{}}
	r := newRig(t, rigOpt{noRun: true, cfg: func(c *Config) { c.CardTemplateID = "jingmin-ticket.schema" }, opts: []Option{WithCounter(cnt)}})
	r.srv.Templates("jingmin-ticket.schema")
	o := pageCard()
	id, err := r.a.SendReceipt(context.Background(), o)
	if err != nil || id != o.Card.Track {
		t.Fatalf("send card: receipt %q, %v", id, err)
	}
	for _, u := range o.Card.Recipients {
		if cards := r.srv.Cards(u); len(cards) != 1 || cards[0].Data["status"] != "" || cards[0].Data["done"] != "false" {
			t.Errorf("%s sees cards %+v", u, cards)
		}
	}
	up := *o
	c := *o.Card
	c.Update, c.Items = true, []bot.CardItem{o.Card.Items[0]}
	c.Items[0].Status, c.Items[0].Done, c.Items[0].Actions = "张伟 已认领 22:41", true, nil
	up.Card, up.Key, up.Ref.Purpose = &c, "cardupd:x", bot.PurposeCardUpdate
	if _, err := r.a.SendReceipt(context.Background(), &up); err != nil {
		t.Fatal(err)
	}
	for _, u := range o.Card.Recipients {
		if cards := r.srv.Cards(u); len(cards) != 1 || cards[0].Data["status"] != "张伟 已认领 22:41" || cards[0].Data["done"] != "true" || cards[0].Data["actions"] != "[]" {
			t.Errorf("after the claim %s sees %+v", u, cards)
		}
	}
	card, _ := r.srv.CardByTrack(o.Card.Track)
	if len(card.Bodies) != 2 {
		t.Fatalf("card bodies: %d", len(card.Bodies))
	}
	pretty := func(raw json.RawMessage) []byte {
		var v any
		_ = json.Unmarshal(raw, &v)
		return golden.JSON(v)
	}
	golden.File(t, "testdata/cards/page_create.golden", pretty(card.Bodies[0]))
	golden.File(t, "testdata/cards/page_claimed_update.golden", pretty(card.Bodies[1]))
	if cnt.calls[pathCardCreate] != 1 || cnt.calls[pathCardUpdate] != 1 || cnt.calls[pathToken] != 1 {
		t.Errorf("calls counted: %v; want one create, one update, one token", cnt.calls)
	}
	if len(r.srv.DMs("staff-wang")) != 0 {
		t.Error("a card was also sent as a message")
	}
}

// A template DingTalk does not know: the card goes as one batch message
// to all recipients, and the receipt says it fell back (the admin is told).
func TestRefusedCardTemplateFallsBackToOneBatchMessage(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true, cfg: func(c *Config) { c.CardTemplateID = "no-such.schema" }})
	r.srv.Templates("jingmin-ticket.schema")
	o := pageCard()
	id, err := r.a.SendReceipt(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if reason, ok := bot.IsFellBack(id); !ok || !strings.Contains(reason, dingtalktest.CodeTemplate) {
		t.Errorf("receipt %q, want a fall-back naming the refusal", id)
	}
	for _, u := range o.Card.Recipients {
		if dms := r.srv.DMs(u); len(dms) != 1 || dms[0].Kind != "markdown" || !strings.Contains(dms[0].Text, "紧急工单 #3") {
			t.Errorf("%s got %+v", u, dms)
		}
	}
	if n := len(r.srv.Calls(PathBatchSendForTest)); n != 1 {
		t.Errorf("batch sends: %d, want one for all three", n)
	}
}

// PathBatchSendForTest names the batch API for the tests' call counts.
const PathBatchSendForTest = pathBatchSend

// Over the month's quota DingTalk answers errcode 90020: the call is
// asked again later, and the budget hears the quota is spent.
func TestQuotaErrorIsRetriedLaterAndReported(t *testing.T) {
	cnt := &counter{calls: map[string]int{}}
	r := newRig(t, rigOpt{noRun: true, cfg: func(c *Config) { c.CardTemplateID = "jingmin-ticket.schema" }, opts: []Option{WithCounter(cnt)}})
	r.srv.Quota(0)
	_, err := r.a.SendReceipt(context.Background(), pageCard())
	if d, later := bot.RetryDelay(err); !later || d <= 0 || !strings.Contains(err.Error(), "90020") {
		t.Fatalf("send over quota: %v; want retry later naming 90020", err)
	}
	if !cnt.exhausted {
		t.Error("the budget was not told the quota is spent")
	}
}

// A press arrives on the card topic: published as a card press of the
// presser (de-duplicated on the frame id like every callback); a value
// that is not one of the hub's buttons, or a frame that is not JSON, is
// dropped with an ack.
func TestCardPressIsPublishedOnceAndForeignValuesDropped(t *testing.T) {
	r := newRig(t, rigOpt{})
	frame := r.srv.Press("jm-t7-page-card-dingtalk-1", "staff-zhao", bot.CardAction{Verb: bot.VerbClaim}.Value(7))
	if ack := r.srv.WaitAck(t, frame); ack.Code != 200 {
		t.Fatalf("ack %+v", ack)
	}
	e := r.event()
	if e.Kind != bot.KindCardPress || e.Press == nil || e.Press.TicketID != 7 || e.Press.Verb != bot.VerbClaim ||
		e.Press.Track != "jm-t7-page-card-dingtalk-1" || e.Sender.ID != "staff-zhao" || e.Chat.Type != bot.Direct || e.Chat.ID != "staff-zhao" {
		t.Errorf("press event %+v press %+v", e, e.Press)
	}
	again := r.srv.DeliverData(dingtalktest.TopicCardCallback, `{"outTrackId":"x","userId":"staff-zhao","content":"{\"cardPrivateData\":{\"params\":{\"value\":\"rm -rf\"}}}"}`)
	if ack := r.srv.WaitAck(t, again); ack.Code != 200 {
		t.Fatalf("ack of a foreign value %+v", ack)
	}
	bad := r.srv.DeliverData(dingtalktest.TopicCardCallback, `not json`)
	if ack := r.srv.WaitAck(t, bad); ack.Code != 200 {
		t.Fatalf("ack of a broken frame %+v", ack)
	}
	if subs := r.srv.OpenRequests(); len(subs) == 0 || !hasSubscription(subs[0], "CALLBACK", dingtalktest.TopicCardCallback) {
		t.Errorf("connection did not subscribe to card callbacks: %+v", subs)
	}
	r.noEvent(0)
}

// Calls says what Send costs: for each kind of message, the calls counted
// while sending it (the token fetched beforehand) equal Calls.
func TestCallsMatchWhatIsCounted(t *testing.T) {
	cnt := &counter{calls: map[string]int{}}
	r := newRig(t, rigOpt{noRun: true, cfg: func(c *Config) { c.CardTemplateID = "jingmin-ticket.schema" }, opts: []Option{WithCounter(cnt)}})
	ctx := context.Background()
	if _, err := r.a.tokens.Token(ctx); err != nil {
		t.Fatal(err)
	}
	card := pageCard()
	update := pageCard()
	c := *update.Card
	c.Update = true
	update.Card = &c
	plain := pageCard()
	pc := *plain.Card
	pc.Plain, pc.Track = true, "jm-plain"
	plain.Card = &pc
	plainUpdate := pageCard()
	pu := pc
	pu.Update = true
	plainUpdate.Card = &pu
	dm := &bot.Outbound{Key: "d", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatMarkdown, Title: "t", Text: "x"}
	group := &bot.Outbound{Key: "g", Platform: bot.DingTalk, Chat: &bot.ChatRef{Platform: bot.DingTalk, ID: "cid==", Type: bot.Group}, Format: bot.FormatText, Text: "x"}
	for _, o := range []*bot.Outbound{card, update, plain, plainUpdate, dm, group} {
		before := total(cnt.calls)
		if _, err := r.a.SendReceipt(ctx, o); err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		if got := total(cnt.calls) - before; got != Calls(o) {
			t.Errorf("%s (card %+v): %d calls counted, Calls says %d", o.Key, o.Card != nil, got, Calls(o))
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// An escalation digest is one card listing its tickets, each with its own
// buttons (the template loops over items); one ticket closed shows its
// status, the other keeps its buttons.
func TestDigestCardParams(t *testing.T) {
	o := pageCard()
	first := o.Card.Items[0]
	first.Actions = []bot.CardAction{{Label: "认领", Verb: bot.VerbClaim}, {Label: "办结", Verb: bot.VerbClose}}
	second := first
	second.TicketID, second.Number = 8, 4
	second.Lines = []bot.Line{{Label: "问题", Value: "楼上装修太吵"}, {Label: "群", Value: "阳光花园邻里群"}}
	second.Status, second.Done, second.Actions = "赵刚 已办结 10:25", true, nil
	c := &bot.Card{Track: "jm-escd-9", Recipients: []string{"staff-zhao"}, Title: "2 个工单超时未答复", Items: []bot.CardItem{first, second}, Update: true}
	golden.File(t, "testdata/cards/digest_update.golden", golden.JSON(updateCardBody(c)))
}
