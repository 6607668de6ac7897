package main

// End-to-end scenarios of officers' tap-to-act cards and the platform API
// budget, through the real SDKs and the stand-in platforms: what officers
// see on their phones is what the stand-ins record.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

const dtTemplate = "jingmin-ticket.schema"

// withDingTalkCards gives the DingTalk app a card template the stand-in
// knows, and the station a day duty officer, so an emergency in the day
// pages three: the group's officer, the duty officer and the leader.
func withDingTalkCards(cfg *configs.Config, d *dingtalk.Config) {
	d.CardTemplateID = dtTemplate
	cfg.DingTalk = d
	cfg.Roster.Shifts = append(cfg.Roster.Shifts, configs.Shift{Officer: "zhang", Days: []string{"workdays"}, Start: "08:30", End: "17:30", Kind: "day"})
}

// dtAction is one button of a DingTalk card item, as the template shows it.
type dtAction struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

type dtItem struct {
	Ticket  string     `json:"ticket"`
	Number  string     `json:"number"`
	Status  string     `json:"status"`
	Done    bool       `json:"done"`
	Actions []dtAction `json:"actions"`
}

func dtItems(t *testing.T, c dingtalktest.Card) []dtItem {
	t.Helper()
	var items []dtItem
	if err := json.Unmarshal([]byte(c.Data["items"]), &items); err != nil {
		t.Fatalf("card %s items: %v", c.Track, err)
	}
	return items
}

// button is the value of the button labelled label on item i of card c.
func button(t *testing.T, c dingtalktest.Card, i int, label string) string {
	t.Helper()
	for _, a := range dtItems(t, c)[i].Actions {
		if a.Label == label {
			return a.Value
		}
	}
	t.Fatalf("card %s item %d has no button %s: %s", c.Track, i, label, c.Data["items"])
	return ""
}

// An emergency in the day pages three officers with one card; one of them
// presses 认领, and every recipient's card shows who took it and when, its
// buttons gone: one update for all three.
func TestDingTalkEmergencyCardClaimedByOneShowsEveryone(t *testing.T) {
	h := startDingTalkHubWith(t, at("2026-11-23 10:00"), withDingTalkCards)
	h.dt.Templates(dtTemplate)
	h.resident(askMsg("楼道着火了，好多烟"))
	cards := h.dt.WaitCards(t, staff("wang"), 1)
	page := cards[0]
	if got := strings.Join(page.Recipients, ","); got != "staff-wang,staff-zhang,staff-zhao" {
		t.Fatalf("page card went to %s, want the officer, the duty officer and the leader", got)
	}
	if page.Data["title"] != "紧急工单 #1" || !strings.Contains(page.Data["markdown"], "楼道着火了") {
		t.Errorf("page card shows %q: %q", page.Data["title"], page.Data["markdown"])
	}
	h.Clock.Set(at("2026-11-23 10:01"))
	h.dt.WaitAck(t, h.dt.Press(page.Track, staff("zhao"), button(t, page, 0, "认领")))
	got := h.dt.WaitCard(t, page.Track, "the page card to show the claim", func(c dingtalktest.Card) bool { return c.Updates > 0 })
	if got.Data["status"] != "赵刚 已认领 10:01" || got.Data["done"] != "true" || got.Data["actions"] != "[]" || got.Updates != 1 {
		t.Errorf("after zhao's claim the card shows status %q done %s actions %s after %d updates", got.Data["status"], got.Data["done"], got.Data["actions"], got.Updates)
	}
	for _, who := range []string{"wang", "zhang", "zhao"} {
		if cs := h.dt.Cards(staff(who)); len(cs) != 1 || cs[0].Data["status"] != "赵刚 已认领 10:01" {
			t.Errorf("%s sees %+v", who, cs)
		}
		if dms := h.dms(who); len(dms) != 0 {
			t.Errorf("%s also got messages %+v; the card says it all", who, dms)
		}
	}
	if n := len(h.dt.Calls(dingtalktest.PathCardUpdate)); n != 1 {
		t.Errorf("card updates: %d, want one for all three", n)
	}
	// Someone outside the station (an id the hub does not know) presses the
	// card: told politely, nothing changes.
	h.dt.WaitAck(t, h.dt.Press(page.Track, "staff-stranger", button(t, page, 0, "认领")))
	if dm := last(t, "stranger's answer", h.dms("stranger")); !strings.Contains(dm.Text, "没有登记为民警") {
		t.Errorf("stranger told %q", dm.Text)
	}
	if c, _ := h.dt.CardByTrack(page.Track); c.Updates != 1 {
		t.Errorf("a stranger's press changed the card: %d updates", c.Updates)
	}
}

// Three questions nobody answers escalate to the leader: the first notice
// at once, the other two gathered into one digest card listing both, each
// with its own buttons; the leader closes both from the card.
func TestDingTalkEscalationDigestCardClosesTwoTickets(t *testing.T) {
	h := startDingTalkHubWith(t, at("2026-11-23 10:00"), func(cfg *configs.Config, d *dingtalk.Config) { d.CardTemplateID = dtTemplate; cfg.DingTalk = d })
	h.dt.Templates(dtTemplate)
	for _, q := range []string{"楼下电动车被偷了", "小区门口有人发传单", "楼上装修太吵"} {
		h.resident(askMsg(q))
	}
	h.dt.WaitCards(t, staff("wang"), 3)
	h.Clock.Set(at("2026-11-23 10:16"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if cs := h.dt.Cards(staff("zhao")); len(cs) != 1 || len(dtItems(t, cs[0])) != 1 {
		t.Fatalf("leader's cards after the breach: %+v; want the first escalation at once", cs)
	}
	h.Clock.Set(at("2026-11-23 10:21"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	cards := h.dt.WaitCards(t, staff("zhao"), 2)
	var digest dingtalktest.Card
	for _, c := range cards {
		if len(dtItems(t, c)) == 2 {
			digest = c
		}
	}
	if digest.Track == "" {
		t.Fatalf("no digest card of two tickets among %+v", cards)
	}
	if !strings.Contains(digest.Data["title"], "2 个工单超时未答复") {
		t.Errorf("digest titled %q", digest.Data["title"])
	}
	for i := range 2 {
		h.dt.WaitAck(t, h.dt.Press(digest.Track, staff("zhao"), button(t, digest, i, "办结")))
	}

	got := h.dt.WaitCard(t, digest.Track, "both tickets closed on the digest card", func(c dingtalktest.Card) bool {
		items := dtItems(t, c)
		return items[0].Done && items[1].Done
	})
	for _, it := range dtItems(t, got) {
		if !strings.Contains(it.Status, "赵刚 已办结") || len(it.Actions) != 0 {
			t.Errorf("digest item #%s: status %q, buttons %v", it.Number, it.Status, it.Actions)
		}
	}
	h.settle()
	closed := 0
	for n := int64(1); n <= 3; n++ {
		tk, err := h.store.TicketByNumber(context.Background(), 1, n)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status == "closed" {
			closed++
		}
	}
	if closed != 2 {
		t.Errorf("%d tickets closed, want the digest's two", closed)
	}
}

// withWeComCards turns the WeCom app's cards on.
func withWeComCards(cfg *configs.Config, w *wechat.Config) {
	w.App.Cards = true
	cfg.WeChat = w
}

// press posts a template_card_event for user pressing the button labelled
// label on card task.
func (h *wxHub) press(user, task, label string) {
	h.t.Helper()
	card, ok := h.api.CardByTask(task)
	if !ok || card.Key(label) == "" {
		h.t.Fatalf("card %s has no button %s: %+v", task, label, card.Buttons())
	}
	msg, _ := h.api.Press(wxCorp, wxAgent, user, task, card.Key(label), h.clock.Now())
	cb, err := wecomtest.SealXML(wxAppTok, wxAESKey, wxCorp, wxAgent, msg, h.clock.Now(), wecomtest.Nonce())
	if err != nil {
		h.t.Fatal(err)
	}
	if code := h.post(wechat.PathApp, cb); code != 200 {
		h.t.Fatalf("press %s on %s: HTTP %d", label, task, code)
	}
}

// waitCards waits until user has n template cards.
func (h *wxHub) waitCards(user string, n int) []wecomtest.Card {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cs := h.api.CardsOf(user); len(cs) >= n {
			return cs
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("%s has %d cards, want %d", user, len(h.api.CardsOf(user)), n)
	return nil
}

// A WeCom officer hands a ticket over by card: 转办 offers the colleagues
// on shift, choosing 李明 sends him the ticket's card, and the officer's
// own card says it was handed over.
func TestWeComHandoverByCardReachesColleague(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"), withWeComCards)
	if code := h.resident("m1", wxGroup, "liu.ayi", "@"+wxRobotName+" 小区门口有人发传单推销", ""); code != 200 {
		t.Fatalf("question: HTTP %d", code)
	}
	card := h.waitCards("wang.jg", 1)[0]
	if strings.Join(card.Buttons(), " ") != "认领 转办 办结" {
		t.Fatalf("wang's card buttons %v", card.Buttons())
	}
	h.press("wang.jg", card.TaskID, "转办")
	var pick wecomtest.Card
	for _, c := range h.waitCards("wang.jg", 2) {
		if c.TaskID != card.TaskID {
			pick = c
		}
	}
	if got := strings.Join(pick.Buttons(), " "); got != "李明" {
		t.Fatalf("colleagues offered: %q, want 李明 (the only one on shift)", got)
	}
	h.press("wang.jg", pick.TaskID, "李明")
	li := h.waitCards("li.m", 1)[0]
	if strings.Join(li.Buttons(), " ") != "认领 转办 办结" || !strings.Contains(string(li.Latest), "小区门口有人发传单推销") {
		t.Errorf("li's card: buttons %v, %s", li.Buttons(), li.Latest)
	}
	h.settle()
	mine, _ := h.api.CardByTask(card.TaskID)
	if mine.Replaced != "王建国 已转交李明 10:00" {
		t.Errorf("wang's card now says %q", mine.Replaced)
	}
	tk, err := h.store.TicketByNumber(context.Background(), 1, 1)
	if err != nil || tk.AssigneeID == nil {
		t.Fatalf("ticket #1 after the handover: %+v %v", tk, err)
	}
	dir, err := h.store.LoadDirectory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range dir.Officers {
		if o.ID == *tk.AssigneeID && o.Code != "li" {
			t.Errorf("ticket #1 is with %s, want li", o.Code)
		}
	}
}

// A budget set low: once it is spent, a new ticket's card goes to the
// officer as a plain message, an emergency still pages by card, and the
// admin is told what was held back.
func TestBudgetSpentDegradesCardsAndKeepsEmergencies(t *testing.T) {
	h := startDingTalkHubWith(t, at("2026-11-23 10:00"), func(cfg *configs.Config, d *dingtalk.Config) {
		withDingTalkCards(cfg, d)
		cfg.Budget.MonthlyCalls = map[string]int64{"dingtalk": 3}
	})
	h.dt.Templates(dtTemplate)
	h.resident(askMsg("楼下电动车被偷了")) // ack (webhook), token, card: 3 calls
	h.dt.WaitCards(t, staff("wang"), 1)
	h.settle()
	h.resident(askMsg("小区门口有人发传单"))
	dm := last(t, "wang's second ticket", h.dt.WaitDMs(t, staff("wang"), 1))
	if dm.Kind != "markdown" || !strings.Contains(dm.Text, "新工单 #2") {
		t.Errorf("second ticket reached wang as %+v, want its card's text as a message", dm)
	}
	if n := len(h.dt.Cards(staff("wang"))); n != 1 {
		t.Errorf("wang has %d cards, want only the first ticket's", n)
	}
	h.resident(askMsg("楼道着火了，好多烟"))
	var page dingtalktest.Card
	h.dt.Wait(t, 15*time.Second, "the emergency page card", func() bool {
		for _, c := range h.dt.Cards(staff("zhao")) {
			if c.Data["title"] == "紧急工单 #3" {
				page = c
				return true
			}
		}
		return false
	})
	if len(page.Recipients) != 3 {
		t.Errorf("page went to %v", page.Recipients)
	}
	// Who took the emergency still reaches every paged officer's card.
	h.dt.WaitAck(t, h.dt.Press(page.Track, staff("zhang"), button(t, page, 0, "认领")))
	h.dt.WaitCard(t, page.Track, "the emergency card to show the claim over budget", func(c dingtalktest.Card) bool {
		return strings.HasPrefix(c.Data["status"], "张伟 已认领")
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(h.Logs.String(), "\n") {
				if strings.Contains(l, "budget") || strings.Contains(l, "api") || strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
					t.Log(l)
				}
			}
		}
	})
	report := last(t, "the admin's budget notice", h.dt.WaitDMs(t, staff("zhao"), 1))
	mustContain(t, "budget notice", report.Text, "超出预算", "非紧急卡片改为普通消息")
	usage, err := h.store.APIUsageOf(context.Background(), "dingtalk")
	if err != nil || len(usage) != 1 || usage[0].OverAt == nil {
		t.Fatalf("usage %+v %v", usage, err)
	}
	h.settle()
	deadline := time.Now().Add(15 * time.Second)
	for {
		usage, _ = h.store.APIUsageOf(context.Background(), "dingtalk")
		if usage[0].Held >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if usage[0].Held < 1 {
		t.Errorf("held back: %d, want the degraded card counted", usage[0].Held)
	}
}

// A card template DingTalk does not have: officers get the card's text as
// a message, and the station's admin is told once, however many cards fell
// back.
func TestRefusedCardTemplateFallsBackAndTellsTheAdminOnce(t *testing.T) {
	h := startDingTalkHubWith(t, at("2026-11-23 10:00"), func(cfg *configs.Config, d *dingtalk.Config) { d.CardTemplateID = "deleted.schema"; cfg.DingTalk = d })
	h.dt.Templates(dtTemplate)
	h.resident(askMsg("楼下电动车被偷了"))
	h.resident(askMsg("小区门口有人发传单"))
	dms := h.dt.WaitDMs(t, staff("wang"), 2)
	var all []string
	for _, dm := range dms {
		all = append(all, dm.Text)
	}
	// The two are sent at once: in either order.
	mustContain(t, "fallback messages", strings.Join(all, "\n"), "新工单 #1", "新工单 #2")
	if n := len(h.dt.Cards(staff("wang"))); n != 0 {
		t.Errorf("wang has %d cards", n)
	}
	notices := h.dms("zhao")
	if len(notices) != 1 {
		t.Fatalf("admin told %d times: %+v", len(notices), notices)
	}
	mustContain(t, "admin notice", notices[0].Text, "钉钉拒绝了工单卡片", dingtalktest.CodeTemplate)
}

// DingTalk answers errcode 90020 (the month's quota used up) while no
// budget is set: the admins are told, a claim's card update waits instead
// of failing, and a new ticket's card goes as a plain message once the
// platform takes calls again.
func TestQuotaErrorSpendsTheBudgetAndDegradesCards(t *testing.T) {
	h := startDingTalkHubWith(t, at("2026-11-23 10:00"), withDingTalkCards, dingtalk.WithQuotaRetry(100*time.Millisecond))
	h.dt.Templates(dtTemplate)
	h.resident(askMsg("楼下电动车被偷了"))
	card := h.dt.WaitCards(t, staff("wang"), 1)[0]
	h.dt.Quota(0)
	h.officer("wang", "#1 认领")
	h.dt.Wait(t, 15*time.Second, "the budget to be marked spent", func() bool {
		u, err := h.store.APIUsageOf(context.Background(), "dingtalk")
		return err == nil && len(u) == 1 && u[0].OverAt != nil
	})
	if c, _ := h.dt.CardByTrack(card.Track); c.Updates != 0 {
		t.Errorf("the card was updated over quota")
	}
	h.dt.Quota(-1) // the quota is raised
	h.resident(askMsg("小区门口有人发传单"))
	h.dt.Wait(t, 15*time.Second, "ticket #2 as a message to wang", func() bool {
		for _, m := range h.dt.DMs(staff("wang")) {
			if strings.Contains(m.Text, "新工单 #2") && m.Kind == "markdown" {
				return true
			}
		}
		return false
	})
	if n := len(h.dt.Cards(staff("wang"))); n != 1 {
		t.Errorf("wang has %d cards, want only the first", n)
	}
	mustContain(t, "admin notice", last(t, "admin", h.dt.WaitDMs(t, staff("zhao"), 1)).Text, "超出预算")
	// The claim's card update was held back, not sent late: the card
	// went without, the ticket is claimed all the same.
	h.settle()
	if c, _ := h.dt.CardByTrack(card.Track); c.Updates != 0 {
		t.Errorf("the card was updated after all: %d", c.Updates)
	}
}

// `jingmin budget` reports each app's month: calls, budget, share, what
// was held back, and when the admins were told.
func TestBudgetCommandReportsUsageAndHeldBack(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	if out, err := runCLI(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "budget"); err != nil || !strings.Contains(out, "no platform API calls counted yet") {
		t.Fatalf("budget on an empty database: %q %v", out, err)
	}
	st, err := store.Open(context.Background(), store.Options{Driver: store.SQLite, DSN: db})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.AddAPIUsage(ctx, "dingtalk", "dingtestappkey", "2026-11", 1200, 37); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddAPIUsage(ctx, "wechat", "wwtaiping/1000002", "2026-11", 80, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkAPIUsage(ctx, "dingtalk", "dingtestappkey", "2026-11", true); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := filepath.Join(t.TempDir(), "budget.yaml")
	example, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(example, "\nbudget:\n  monthly_calls: {dingtalk: 1000}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "budget", "-config", cfg)
	if err != nil {
		t.Fatalf("budget: %v\n%s", err, out)
	}
	// The "over" time is the test's own: masked, same width.
	golden.File(t, "testdata/budget.golden", []byte(regexp.MustCompile(`\d\d-\d\d \d\d:\d\d`).ReplaceAllString(out, "MM-DD hh:mm")))
}
