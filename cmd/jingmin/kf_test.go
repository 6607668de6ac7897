package main

// WeChat customer service (微信客服) end to end: residents write to the
// station's customer-service account through their group's link; the hub
// pulls their messages (kf/sync_msg from the cursor in the database), files
// one-to-one tickets that know the group, and answers through kf/send_msg
// within WeChat's window (48 hours after the resident's last message, five
// messages at most). The stand-in WeCom enforces the same window.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// The world's customer groups (客户群): residents on personal WeChat, each
// owned by its officer's WeCom account.
const (
	wxKF      = "wkTaipingKF"
	custA     = "wrOgQhDgAAheping"
	custAName = "和平苑业主群"
	custB     = "wrOgQhDgAAchunhui"
	custBName = "春晖里业主群"
	custC     = "wrOgQhDgAAdonghu"
	custCName = "东湖新村业主群"
)

// kfWorld is the stand-in WeCom and the config a customer-service hub runs
// on; it outlives a hub, so a test can restart the hub against it.
type kfWorld struct {
	api   *wecomtest.Server
	cfg   func() *configs.Config
	wcfg  wechat.Config
	env   map[string]string
	clock *bottest.Clock
	db    string
}

func newKFWorld(t *testing.T, start time.Time) *kfWorld {
	t.Helper()
	api := wecomtest.NewServer()
	t.Cleanup(api.Close)
	clock := bottest.NewClock(start)
	api.SetClock(clock.Now)
	w := &kfWorld{api: api, clock: clock, db: filepath.Join(t.TempDir(), "hub.db")}
	w.wcfg = wechat.Config{
		Listen: "127.0.0.1:0", CorpID: wxCorp, APIBase: api.URL, OAAPIBase: api.URL,
		App: wechat.AppConfig{AgentID: wxAgent}, KF: wechat.KFConfig{OpenKFID: wxKF}, WebhookPerMinute: 600,
		MassSendPoll: 20 * time.Millisecond,
	}
	w.env = map[string]string{wechat.EnvAppSecret: api.CorpSecret, wechat.EnvAppToken: wxAppTok, wechat.EnvAppAESKey: wxAESKey,
		wechat.EnvWebhookKeys: wxGroup + "=" + wxHookKey}
	api.AddWebhook(wxHookKey, "xingfu")
	w.cfg = func() *configs.Config {
		cfg, err := configs.Load("")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Groups = append(cfg.Groups,
			configs.Group{Platform: "wechat", ChatID: wxGroup, Name: wxGroupName, Station: "taiping", Officer: "wang"},
			configs.Group{Platform: "wechat", ChatID: custA, Name: custAName, Station: "taiping", Officer: "wang", Kind: store.GroupKindCustomer},
			configs.Group{Platform: "wechat", ChatID: custB, Name: custBName, Station: "taiping", Officer: "wang", Kind: store.GroupKindCustomer},
			configs.Group{Platform: "wechat", ChatID: custC, Name: custCName, Station: "taiping", Officer: "li", Kind: store.GroupKindCustomer})
		userIDs := map[string]string{"wang": "wang.jg", "li": "li.m", "zhang": "zhang.w", "zhao": "zhao.g", "taiping-duty": "taiping.duty", "chen": "chen.x"}
		for i, o := range cfg.Officers {
			if cfg.Officers[i].Identities == nil {
				cfg.Officers[i].Identities = map[string]string{}
			}
			cfg.Officers[i].Identities["wechat"] = userIDs[o.Code]
		}
		wcfg := w.wcfg
		cfg.WeChat = &wcfg
		return cfg
	}
	return w
}

func (w *kfWorld) lookup(k string) (string, bool) { v, ok := w.env[k]; return v, ok }

// start runs a hub on the world's database with its WeChat adapter as
// `jingmin serve` wires it (the store as the adapter's customer-service
// state).
func (w *kfWorld) start(t *testing.T) *wxHub {
	t.Helper()
	h := startHubOn(t, w.cfg(), w.clock.Now(), w.db, func(o *hubOptions) {
		o.wechat = []wechat.Option{wechat.WithClock(w.clock.Now), wechat.WithBackoff(5 * time.Millisecond), wechat.WithEnv(w.lookup)}
	})
	wx, ok := h.senders[bot.WeChat].(*wechat.Adapter)
	if !ok {
		t.Fatalf("the WeChat sender is %T, not the adapter", h.senders[bot.WeChat])
	}
	waitFor(t, "the WeChat adapter serving its callback URLs", func() bool { return wx.Addr() != nil })
	return &wxHub{testHub: h, api: w.api, wx: wx, base: "http://" + wx.Addr().String(), clock: w.clock}
}

// advance moves every clock: the rules', the adapter's and the platform's.
func (h *wxHub) advance(d time.Duration) {
	h.Clock.Add(d)
	h.clock.Add(d)
}

// kfNews posts the kf_msg_or_event callback WeCom sends when residents
// wrote, and returns the HTTP status.
func (h *wxHub) kfNews() int {
	h.t.Helper()
	cb, err := wecomtest.SealXML(wxAppTok, wxAESKey, wxCorp, wxAgent, wecomtest.KFCallback(wxCorp, h.api.KFToken(), wxKF, h.clock.Now()), h.clock.Now(), wecomtest.Nonce())
	if err != nil {
		h.t.Fatal(err)
	}
	return h.post(wechat.PathApp, cb)
}

// waitTickets waits until n tickets are filed, then until the hub settles.
func (h *wxHub) waitTickets(n int64) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d tickets", n), func() bool { return h.tickets() >= n })
	h.settle()
	if got := h.tickets(); got != n {
		h.t.Fatalf("%d tickets, want %d", got, n)
	}
}

func undelivered(t *testing.T, h *wxHub) []store.OutboundMessage {
	t.Helper()
	failed, err := h.store.FailedOutbound(context.Background(), string(bot.WeChat), 50)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

func TestWeChatCustomerServiceConversationInsideAndOutsideTheWindow(t *testing.T) {
	w := newKFWorld(t, at("2026-11-23 10:00")) // Monday morning: wang on shift
	// The SDK's HTTP settings are package globals: the admin tool's are set
	// before the hub's adapter runs, as they would be in their own process.
	admin, err := wechat.NewAdmin(w.wcfg, w.lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := w.start(t)
	ctx := context.Background()

	// The station makes its groups' links and pins them.
	var links bytes.Buffer
	if err := kfLinks(ctx, h.store, h.rules, admin, &links); err != nil {
		t.Fatal(err)
	}
	golden.File(t, "testdata/wecom-kf-links.golden", links.Bytes())
	var again bytes.Buffer
	if err := kfLinks(ctx, h.store, h.rules, admin, &again); err != nil {
		t.Fatal(err)
	}
	if n := h.api.Calls("/cgi-bin/kf/add_contact_way"); n != 3 {
		t.Errorf("add_contact_way called %d times for three customer groups over two runs, want 3 (a link is kept)", n)
	}

	// A resident opens the group's link and asks.
	now := h.clock.Now()
	h.api.KFEnter(wxKF, "wmLiuAyi", wechat.KFScene(custA), now)
	h.api.KFWrite(wxKF, "wmLiuAyi", "kfm-1", "请问电动车上牌在哪里办理？", now)
	if code := h.kfNews(); code != http.StatusOK {
		t.Fatalf("kf callback: HTTP %d", code)
	}
	h.waitTickets(1)
	kf := h.on("kf", "wmLiuAyi")
	if len(kf) != 1 {
		t.Fatalf("resident got %d customer-service messages, want the acknowledgement: %+v", len(kf), h.api.Sent())
	}
	mustContain(t, "acknowledgement", kf[0].Text, "工单 #1", "王建国警官")
	// The ticket knows the group the resident came from: the group's own
	// officer has it, and reads the group's name.
	mustContain(t, "officer's card", lastText(t, h.on("app", "wang.jg")), "#1", custAName, "电动车上牌")

	// Inside the window: the answer and follow-ups go, up to WeChat's five.
	h.advance(10 * time.Minute)
	for i, text := range []string{"#1 带上身份证和购车发票到太平派出所办理", "#1 周六上午也可以办", "#1 记得带上车辆合格证", "#1 有问题随时留言"} {
		h.officer("kf-ans-"+string(rune('a'+i)), "wang.jg", text)
		h.settle()
	}
	kf = h.on("kf", "wmLiuAyi")
	if len(kf) != 5 {
		t.Fatalf("resident got %d messages, want the acknowledgement and 4 answers: %+v", len(kf), kf)
	}
	mustContain(t, "answer", kf[1].Text, "购车发票", "#1")
	if n := len(undelivered(t, h)); n != 0 {
		t.Fatalf("%d messages undelivered inside the window", n)
	}

	// A sixth message in the same window is past WeChat's five: recorded as
	// undeliverable, the officer told, nothing counted as sent.
	before := len(h.on("app", "wang.jg"))
	h.officer("kf-ans-6", "wang.jg", "#1 另外提醒：头盔也要戴好")
	h.settle()
	if n := len(h.on("kf", "wmLiuAyi")); n != 5 {
		t.Errorf("resident got %d messages, want still 5", n)
	}
	failed := undelivered(t, h)
	if len(failed) != 1 {
		t.Fatalf("%d undelivered messages, want the sixth", len(failed))
	}
	mustContain(t, "reason of the sixth", failed[0].Reason, "five answers")
	told := 0
	for _, m := range h.on("app", "wang.jg")[before:] {
		if strings.Contains(m.Text, "未能送达") && strings.Contains(m.Text, "#1") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("officer told %d times of the undelivered answer, want once", told)
	}

	// The resident writes again: a new window, a new question.
	h.advance(time.Hour)
	h.api.KFWrite(wxKF, "wmLiuAyi", "kfm-2", "上牌需要预约吗？", h.clock.Now())
	if code := h.kfNews(); code != http.StatusOK {
		t.Fatalf("kf callback: HTTP %d", code)
	}
	h.waitTickets(2)
	kf = h.on("kf", "wmLiuAyi")
	if len(kf) != 6 {
		t.Fatalf("resident got %d messages, want the new acknowledgement as the sixth: %+v", len(kf), kf)
	}
	mustContain(t, "second acknowledgement", kf[5].Text, "工单 #2")

	// Two days later the window is shut: the answer is undeliverable, the
	// officer told, and WeChat is not even asked.
	h.advance(49 * time.Hour)
	calls := h.api.Calls("/cgi-bin/kf/send_msg")
	before = len(h.on("app", "wang.jg"))
	h.officer("kf-ans-late", "wang.jg", "#2 不需要预约，直接去即可")
	h.settle()
	if n := len(h.on("kf", "wmLiuAyi")); n != 6 {
		t.Errorf("resident got %d messages after the window shut, want still 6", n)
	}
	if n := h.api.Calls("/cgi-bin/kf/send_msg"); n != calls {
		t.Errorf("kf/send_msg called %d times outside the window", n-calls)
	}
	failed = undelivered(t, h)
	if len(failed) != 2 {
		t.Fatalf("%d undelivered messages, want 2", len(failed))
	}
	var late string
	for _, f := range failed {
		if strings.Contains(f.Reason, "48 hours") {
			late = f.Reason
		}
	}
	if late == "" {
		t.Errorf("no undelivered answer gives the 48-hour window as its reason: %+v", failed)
	}
	told = 0
	for _, m := range h.on("app", "wang.jg")[before:] {
		if strings.Contains(m.Text, "未能送达") && strings.Contains(m.Text, "#2") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("officer told %d times of the late answer, want once", told)
	}

	// What the hub asked of WeCom, request by request.
	var reqs bytes.Buffer
	for _, p := range []string{"/cgi-bin/kf/add_contact_way", "/cgi-bin/kf/send_msg"} {
		for _, r := range h.api.Requests(p) {
			var v any
			_ = json.Unmarshal(r, &v)
			b, _ := json.Marshal(v)
			reqs.WriteString(p + " " + string(b) + "\n")
		}
	}
	golden.File(t, "testdata/wecom-kf-requests.golden", reqs.Bytes())
	mustNotContainLogs(t, h, "电动车上牌", "购车发票", "wmLiuAyi")
}

func TestWeChatCustomerServiceCursorSurvivesRestartAndBadInputIsRefused(t *testing.T) {
	w := newKFWorld(t, at("2026-11-23 10:00"))
	h := w.start(t)

	// A forged callback and a replayed one are refused before anything is
	// pulled on their word.
	forged, _ := wecomtest.SealXML("forged-token", wxAESKey, wxCorp, wxAgent, wecomtest.KFCallback(wxCorp, h.api.KFToken(), wxKF, h.clock.Now()), h.clock.Now(), wecomtest.Nonce())
	if code := h.post(wechat.PathApp, forged); code != http.StatusUnauthorized {
		t.Errorf("forged kf callback: HTTP %d, want 401", code)
	}
	cb, _ := wecomtest.SealXML(wxAppTok, wxAESKey, wxCorp, wxAgent, wecomtest.KFCallback(wxCorp, h.api.KFToken(), wxKF, h.clock.Now()), h.clock.Now(), wecomtest.Nonce())
	if code := h.post(wechat.PathApp, cb); code != http.StatusOK {
		t.Fatalf("kf callback: HTTP %d", code)
	}
	if code := h.post(wechat.PathApp, cb); code != http.StatusConflict && code != http.StatusOK {
		t.Errorf("replayed kf callback: HTTP %d, want 409 (or 200 for WeCom's own retry)", code)
	}

	// A page that is not JSON: the cursor stays, the pull is tried again,
	// and the message in it is taken once it reads.
	h.api.KFBreakNextPages(1)
	h.api.KFWrite(wxKF, "wmZhao", "kfm-z1", "小区门口的路灯坏了", h.clock.Now())
	// In the same page, a message without its resident is skipped; the one
	// after it is taken.
	h.api.KFRaw(map[string]any{"msgid": "kfm-broken", "open_kfid": wxKF, "send_time": h.clock.Now().Unix(), "origin": 3, "msgtype": "text", "text": map[string]any{"content": "没有发送人"}})
	h.api.KFWrite(wxKF, "wmQian", "kfm-q1", "楼下有人乱停车", h.clock.Now())
	if code := h.kfNews(); code != http.StatusOK {
		t.Fatalf("kf callback: HTTP %d", code)
	}
	h.waitTickets(2)
	if !strings.Contains(h.Logs.String(), "kf sync_msg failed") || !strings.Contains(h.Logs.String(), "kf message malformed") {
		t.Error("the refused page and the malformed message left no log line")
	}
	cursor, err := h.store.KFCursor(context.Background(), wxKF)
	if err != nil || cursor == "" {
		t.Fatalf("cursor = %q, %v; want it stored", cursor, err)
	}

	// A restart pulls from the stored cursor: nothing is filed twice, and
	// what came while the hub was down is taken.
	h.Stop()
	w.api.KFWrite(wxKF, "wmSun", "kfm-s1", "停电了什么时候来电", w.clock.Now())
	h = w.start(t)
	h.waitTickets(3)
	if n := len(h.on("kf", "wmZhao")); n != 1 {
		t.Errorf("resident wmZhao acknowledged %d times over a restart, want once", n)
	}
	mustContain(t, "acknowledgement after the restart", lastText(t, h.on("kf", "wmSun")), "工单 #3")
}
