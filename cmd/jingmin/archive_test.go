package main

// A day in WeCom customer groups, end to end: the whole hub (SQLite, bus,
// rules, relays) with the WeChat adapter on the real SDK, the archive
// reader loading the C stand-in of the vendor library through purego, and
// the stand-in WeCom on 127.0.0.1 holding the archive. Residents' messages
// are archived, msgaudit_notify nudges the reader, officers' one-tap sends
// appear in the archive as their messages.

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/adapters/wecomarchive/financetest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

const (
	cgHexie = "wrCGhexie"
	cgYang  = "wrCGyang"
)

// archiveHub is a running hub reading two customer groups (王建国's
// 和谐小区居民群, 李明's 阳光花园居民群) through the archive.
type archiveHub struct {
	*wxHub
	msg int
}

func startArchiveHub(t *testing.T, start time.Time) *archiveHub {
	t.Helper()
	api := wecomtest.NewServer()
	t.Cleanup(api.Close)
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Groups = append(cfg.Groups,
		configs.Group{Platform: "wechat", ChatID: cgHexie, Name: "和谐小区居民群", Station: "taiping", Officer: "wang", Kind: store.GroupKindCustomer},
		configs.Group{Platform: "wechat", ChatID: cgYang, Name: "阳光花园居民群", Station: "taiping", Officer: "li", Kind: store.GroupKindCustomer})
	userIDs := map[string]string{"wang": "wang.jg", "li": "li.m", "zhang": "zhang.w", "zhao": "zhao.g", "taiping-duty": "taiping.duty", "chen": "chen.x"}
	for i, o := range cfg.Officers {
		cfg.Officers[i].Identities["wechat"] = userIDs[o.Code]
	}
	t.Setenv(wecomarchive.EnvSecret, wecomtest.ArchiveSecret)
	t.Setenv("JINGMIN_TEST_ARCHIVE_KEY_1", string(api.ArchiveKeyPEM(1)))
	t.Setenv("JINGMIN_TEST_CONTACTS_SECRET", api.CorpSecret)
	api.AddContact("wmRes001", "刘阿姨")
	api.AddContact("wmRes005", "李大爷")
	a := wecomarchive.Config{CorpID: wxCorp, Library: financetest.Build(t), Proxy: api.URL,
		Keys: []wecomarchive.KeyConfig{{Version: 1, Env: "JINGMIN_TEST_ARCHIVE_KEY_1"}},
		// Pulls come from msgaudit_notify (and the start): the test says when.
		Every: time.Hour, Toolbar: wecomarchive.ToolbarConfig{URL: "https://hub.example.cn/wecom/toolbar"},
		APIBase: api.URL, ContactsSecretEnv: "JINGMIN_TEST_CONTACTS_SECRET"}
	a = a.WithDefaults()
	cfg.WeComArchive = &a
	wcfg := wechat.Config{Listen: "127.0.0.1:0", CorpID: wxCorp, APIBase: api.URL, App: wechat.AppConfig{AgentID: wxAgent}}
	env := map[string]string{wechat.EnvAppSecret: api.CorpSecret, wechat.EnvAppToken: wxAppTok, wechat.EnvAppAESKey: wxAESKey}
	clock := bottest.NewClock(start)
	var wx *wechat.Adapter
	var running atomic.Pointer[hub]
	h := startHub(t, cfg, start, func(o *hubOptions) {
		o.adapters = map[bot.Platform]newAdapter{bot.WeChat: func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			a, err := wechat.New(wcfg, pub, dedup, log, wechat.WithClock(clock.Now), wechat.WithBackoff(5*time.Millisecond),
				wechat.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
				wechat.WithArchiveNotify(func(ctx context.Context) { running.Load().archiveNotify(ctx) }))
			wx = a
			return a, err
		}}
	})
	running.Store(h.hub)
	deadline := time.Now().Add(5 * time.Second)
	for wx.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if wx.Addr() == nil {
		t.Fatal("the WeChat adapter did not start serving its callback URLs")
	}
	return &archiveHub{wxHub: &wxHub{testHub: h, api: api, wx: wx, base: "http://" + wx.Addr().String(), clock: clock}}
}

// says archives a message in a customer group (a resident's, or an
// officer's one-tap send), as WeCom archives it.
func (h *archiveHub) says(chat, from, text string) uint64 {
	h.msg++
	return h.api.Archive(1, wecomtest.ArchivedText{MsgID: "cg-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+h.msg%26)) + strings.Repeat("x", h.msg),
		From: from, RoomID: chat, Text: text, At: h.Clock.Now()})
}

// notify posts msgaudit_notify to the app callback and waits until the
// reader has taken the archive up to seq and the hub has handled it all.
func (h *archiveHub) notify(seq uint64) {
	h.t.Helper()
	body := []byte(`<xml><ToUserName><![CDATA[` + wxCorp + `]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>` +
		time.Now().Format("20060102") + `</CreateTime><MsgType><![CDATA[event]]></MsgType><AgentID>2000004</AgentID><Event><![CDATA[msgaudit_notify]]></Event></xml>`)
	cb, err := wecomtest.SealXML(wxAppTok, wxAESKey, wxCorp, wxAgent, body, h.clock.Now(), wecomtest.Nonce())
	if err != nil {
		h.t.Fatal(err)
	}
	if code := h.post(wechat.PathApp, cb); code != http.StatusOK {
		h.t.Fatalf("msgaudit_notify: HTTP %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := h.store.ArchiveSeq(context.Background(), wxCorp)
		if err != nil {
			h.t.Fatal(err)
		}
		if got >= seq {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the reader took the archive to %d, want %d", got, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.settle()
}

// waiting is what waits for a tap in a group.
func (h *archiveHub) waiting(chat string) []store.OutboundMessage {
	h.t.Helper()
	msgs, _, err := h.store.AwaitingHuman(context.Background(), "wechat", chat)
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

// tap is the owner sending a prepared message with one tap: it appears in
// the group, so in the archive, as theirs.
func (h *archiveHub) tap(chat, officer, purpose string, ticket int) uint64 {
	h.t.Helper()
	for _, m := range h.waiting(chat) {
		tk, err := h.store.TicketByID(context.Background(), *m.TicketID)
		if err != nil {
			h.t.Fatal(err)
		}
		if m.Purpose == purpose && tk.Number == int64(ticket) {
			return h.says(chat, officer, m.Text)
		}
	}
	h.t.Fatalf("no %s of #%d waits for a tap in %s: %+v", purpose, ticket, chat, h.waiting(chat))
	return 0
}

func (h *archiveHub) ticket(n int64) *store.Ticket {
	h.t.Helper()
	for _, tk := range h.allTickets() {
		if tk.Number == n {
			return &tk
		}
	}
	h.t.Fatalf("no ticket #%d", n)
	return nil
}

func (h *archiveHub) allTickets() []store.Ticket {
	h.t.Helper()
	var out []store.Ticket
	for _, chat := range []string{cgHexie, cgYang} {
		got, err := h.store.TicketsFromChat(context.Background(), "wechat", "group", chat, 100)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// A scripted Monday in two customer groups: questions that @ the officer
// and the duty account, an emergency without any @, chatter; officers
// answer with one tap and in their own words, the archive shows it and the
// answers are recorded; the question nobody answers escalates on the
// answer clock until its answer is seen in the group.
func TestCustomerGroupDay(t *testing.T) {
	h := startArchiveHub(t, at("2026-11-30 09:00"))
	// Each question is read before the next is written, so the tickets
	// are numbered in the order asked (questions read in one pull are
	// handled side by side, in no set order).
	h.notify(h.says(cgHexie, "wmRes001", "@王警官 楼道的灯坏了好几天，找谁修？"))
	h.Clock.Add(time.Minute)
	h.notify(h.says(cgYang, "wmRes002", "@太平警务值班号 电动车被偷了怎么报案"))
	h.says(cgHexie, "wmRes003", "今天小区门口有人发传单")
	h.says(cgHexie, "wmRes004", "好的谢谢")
	h.Clock.Add(time.Minute)
	seq := h.says(cgHexie, "wmRes005", "3号楼着火了，好大的烟")
	h.notify(seq)

	if got := len(h.allTickets()); got != 3 {
		t.Fatalf("%d tickets, want 3 (two @-questions and the emergency; chatter none)", got)
	}
	// Each owner is told at once, on the WeCom app; the emergency pages
	// the owner and the station leader (no duty officer on shift at 09:02).
	if got := len(h.on("app", "wang.jg")); got != 2 {
		t.Errorf("王建国 got %d app messages, want 2 (ticket #1, the page for #3): %+v", got, h.on("app", "wang.jg"))
	}
	if got := len(h.on("app", "li.m")); got != 1 {
		t.Errorf("李明 got %d app messages, want 1 (ticket #2)", got)
	}
	if got := h.on("app", "zhao.g"); len(got) != 1 || !strings.Contains(got[0].Text, "110 提示已备好") {
		t.Errorf("the leader's pages: %+v, want the emergency with the 110 guidance ready", got)
	}
	found := false
	for _, m := range h.on("app", "wang.jg") {
		if strings.Contains(m.Text, "新工单 #1") {
			found = true
			mustContain(t, "王建国's message of #1", m.Text, "和谐小区居民群", "刘阿姨", "楼道的灯坏了", "收到，已登记为工单 #1", "聊天工具栏", "https://hub.example.cn/wecom/toolbar")
		}
	}
	if !found {
		t.Errorf("王建国 was not told of #1: %+v", h.on("app", "wang.jg"))
	}
	// Nothing was posted into the customer groups by the hub itself.
	if got := len(h.on("webhook", "")) + len(h.on("response_url", "")); got != 0 {
		t.Fatalf("the hub posted %d messages into groups it cannot post in", got)
	}
	if got := len(h.waiting(cgHexie)); got != 2 {
		t.Fatalf("%d messages wait for a tap in 和谐小区居民群, want 2 (acknowledgement, 110 guidance)", got)
	}

	// 09:04 王建国 taps the 110 guidance, then tells 李大爷 he is on his
	// way, @-ing him: #3 answered.
	h.Clock.Add(2 * time.Minute)
	h.tap(cgHexie, "wang.jg", "ack", 3)
	seq = h.says(cgHexie, "wang.jg", "@李大爷\u2005我马上到3号楼，大家先撤到楼下")
	h.notify(seq)
	if tk := h.ticket(3); tk.Status != store.StatusAnswered {
		t.Fatalf("#3 after 王建国's message: %s, want answered", tk.Status)
	}
	// 09:06 he taps the acknowledgement of #1: not an answer, the clock runs.
	h.Clock.Add(2 * time.Minute)
	h.notify(h.tap(cgHexie, "wang.jg", "ack", 1))
	if tk := h.ticket(1); tk.Status == store.StatusAnswered {
		t.Fatal("#1 counted answered by its acknowledgement")
	}
	// 09:08 he answers #1 from the phone; the answer waits for his tap.
	h.Clock.Add(2 * time.Minute)
	h.clock.Add(8 * time.Minute)
	h.officer("9101", "wang.jg", "#1 已报物业，今天下午来修")
	h.settle()
	if tk := h.ticket(1); tk.Status == store.StatusAnswered {
		t.Fatal("#1 counted answered before its answer was seen in the group")
	}
	h.notify(h.tap(cgHexie, "wang.jg", "answer", 1))
	if tk := h.ticket(1); tk.Status != store.StatusAnswered || tk.FirstResponseAt == nil {
		t.Fatalf("#1 after the tap: %s", tk.Status)
	}

	// Nobody answers #2 in 阳光花园居民群: past the station's 15 minutes it
	// escalates, and again, until 李明's answer is seen there.
	h.Clock.Set(at("2026-11-30 09:17"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if tk := h.ticket(2); tk.Level != 1 || tk.Status == store.StatusAnswered {
		t.Fatalf("#2 at 09:17: level %d %s, want escalated once", tk.Level, tk.Status)
	}
	h.Clock.Set(at("2026-11-30 09:40"))
	h.clock.Set(at("2026-11-30 09:40"))
	seq = h.says(cgYang, "li.m", "请带身份证到派出所报案，我们调监控（工单 #2）")
	h.notify(seq)
	h.Clock.Set(at("2026-11-30 10:30"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	tk := h.ticket(2)
	if tk.Status != store.StatusAnswered || tk.FirstResponseAt == nil || !tk.FirstResponseAt.Equal(at("2026-11-30 09:40")) || tk.Level != 1 {
		t.Fatalf("#2: %s level %d first response %v, want answered at 09:40 after one escalation", tk.Status, tk.Level, tk.FirstResponseAt)
	}

	// The day's counts.
	answered := 0
	for _, tk := range h.allTickets() {
		if tk.Status == store.StatusAnswered {
			answered++
		}
	}
	if answered != 3 {
		t.Errorf("%d of 3 tickets answered", answered)
	}
	if got := h.waiting(cgHexie); len(got) != 0 {
		t.Errorf("still waiting for a tap in 和谐小区居民群: %+v", got)
	}
	if got := h.waiting(cgYang); len(got) != 0 {
		t.Errorf("still waiting for a tap in 阳光花园居民群 after #2 was answered: %+v", got)
	}
	if got := len(h.on("webhook", "")) + len(h.on("response_url", "")); got != 0 {
		t.Errorf("the hub posted %d messages into customer groups", got)
	}
}
