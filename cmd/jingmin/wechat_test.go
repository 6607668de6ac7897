package main

// End-to-end scenarios on WeChat: the whole hub (SQLite, bus, rules) with the
// WeChat adapter, the real SDK, and a stand-in WeCom on 127.0.0.1. Each test
// posts what WeCom would post to the adapter's callback URLs and asserts what
// residents and officers would see, as recorded by the stand-in. The SDK keeps
// its HTTP settings in package globals: these tests must not run in parallel.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
)

const (
	wxGroup     = "wrkSFfCgAAxingfu"
	wxGroupName = "幸福里业主群"
	wxRobotName = "太平警务值班号"
	wxCorp      = "wwtaiping"
	wxAgent     = "1000002"
	wxHookKey   = "hook-xingfu-5be1d2"
	wxRobotTok  = "robot-token"
	wxAppTok    = "app-token"
	wxOATok     = "oa-token"
	// WeCom's sample EncodingAESKey serves for both encrypted channels.
	wxAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
)

// wxHub is a running hub with the WeChat adapter and its stand-in platform.
type wxHub struct {
	*testHub
	api   *wecomtest.Server
	wx    *wechat.Adapter
	base  string         // the adapter's callback server
	clock *bottest.Clock // the adapter's clock (replay window, response_url expiry)
}

// startWeChatHub runs the example config plus one WeChat group (officer
// wang) and WeCom accounts for the station's staff.
func startWeChatHub(t *testing.T, start time.Time, tune ...func(*configs.Config, *wechat.Config)) *wxHub {
	t.Helper()
	api := wecomtest.NewServer()
	t.Cleanup(api.Close)
	api.AddWebhook(wxHookKey, "xingfu")
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Groups = append(cfg.Groups, configs.Group{Platform: "wechat", ChatID: wxGroup, Name: wxGroupName, Station: "taiping", Officer: "wang"})
	userIDs := map[string]string{"wang": "wang.jg", "li": "li.m", "zhang": "zhang.w", "zhao": "zhao.g", "taiping-duty": "taiping.duty", "chen": "chen.x"}
	for i, o := range cfg.Officers {
		if cfg.Officers[i].Identities == nil {
			cfg.Officers[i].Identities = map[string]string{}
		}
		cfg.Officers[i].Identities["wechat"] = userIDs[o.Code]
	}
	wcfg := wechat.Config{
		Listen: "127.0.0.1:0", CorpID: wxCorp, APIBase: api.URL, OAAPIBase: api.URL,
		Robot: wechat.RobotConfig{Names: []string{wxRobotName}}, App: wechat.AppConfig{AgentID: wxAgent},
		OfficialAccount: wechat.OfficialAccountConfig{AppID: "wxoa"}, WebhookPerMinute: 600,
	}
	env := map[string]string{
		wechat.EnvRobotToken: wxRobotTok, wechat.EnvRobotAESKey: wxAESKey,
		wechat.EnvAppSecret: api.CorpSecret, wechat.EnvAppToken: wxAppTok, wechat.EnvAppAESKey: wxAESKey,
		wechat.EnvOASecret: api.OASecret, wechat.EnvOAToken: wxOATok,
		wechat.EnvWebhookKeys: wxGroup + "=" + wxHookKey,
	}
	for _, f := range tune {
		f(cfg, &wcfg)
	}
	clock := bottest.NewClock(start)
	var wx *wechat.Adapter
	h := startHub(t, cfg, start, func(o *hubOptions) {
		o.adapters = map[bot.Platform]newAdapter{bot.WeChat: func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			a, err := wechat.New(wcfg, pub, dedup, log, wechat.WithClock(clock.Now), wechat.WithBackoff(5*time.Millisecond),
				wechat.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
			wx = a
			return a, err
		}}
	})
	deadline := time.Now().Add(5 * time.Second)
	for wx.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if wx.Addr() == nil {
		t.Fatal("the WeChat adapter did not start serving its callback URLs")
	}
	return &wxHub{testHub: h, api: api, wx: wx, base: "http://" + wx.Addr().String(), clock: clock}
}

// post delivers a callback to the adapter and returns the HTTP status.
func (h *wxHub) post(path string, cb wecomtest.Callback) int {
	h.t.Helper()
	resp, err := http.Post(h.base+cb.Path(path), "application/octet-stream", bytes.NewReader(cb.Body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// resident @s the robot in a group, the way WeCom forwards it.
func (h *wxHub) resident(msgID, chatID, userID, text, responseURL string) int {
	h.t.Helper()
	cb, err := wecomtest.SealJSON(wxRobotTok, wxAESKey, "", wecomtest.RobotText(msgID, "group", chatID, userID, text, responseURL), h.clock.Now(), wecomtest.Nonce())
	if err != nil {
		h.t.Fatal(err)
	}
	return h.post(wechat.PathRobot, cb)
}

// officer writes to the WeCom app from the phone.
func (h *wxHub) officer(msgID, userID, text string) {
	h.t.Helper()
	cb, err := wecomtest.SealXML(wxAppTok, wxAESKey, wxCorp, wxAgent, wecomtest.AppText(wxCorp, wxAgent, userID, msgID, text, h.clock.Now()), h.clock.Now(), wecomtest.Nonce())
	if err != nil {
		h.t.Fatal(err)
	}
	if code := h.post(wechat.PathApp, cb); code != http.StatusOK {
		h.t.Fatalf("officer %s: HTTP %d", userID, code)
	}
}

// follower writes to the Official Account.
func (h *wxHub) follower(openID string, msgID int64, text string) {
	h.t.Helper()
	cb := wecomtest.SignOA(wxOATok, wecomtest.OAText("gh_taiping", openID, msgID, text, h.clock.Now()), h.clock.Now(), wecomtest.Nonce())
	if code := h.post(wechat.PathOA, cb); code != http.StatusOK {
		h.t.Fatalf("official account follower: HTTP %d", code)
	}
}

// on returns what the stand-in delivered on a channel to one recipient.
func (h *wxHub) on(channel, to string) []wecomtest.Message {
	var out []wecomtest.Message
	for _, m := range h.api.SentOn(channel) {
		if to == "" || m.To == to {
			out = append(out, m)
		}
	}
	return out
}

func (h *wxHub) tickets() int64 {
	h.t.Helper()
	n, err := h.store.CountTickets(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestWeChatResidentQuestionReachesOfficerAndAnswerLandsInGroup(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00")) // Monday morning: wang on shift
	if code := h.resident("wx-msg-1", wxGroup, "res.liu", "@"+wxRobotName+" 楼下电动车被偷了怎么办", h.api.ResponseURL()); code != http.StatusOK {
		t.Fatalf("resident's @: HTTP %d", code)
	}
	h.settle()

	acks := h.on("response_url", "")
	if len(acks) != 1 {
		t.Fatalf("group got %d replies through the response_url, want the acknowledgement: %+v", len(acks), h.api.Sent())
	}
	mustContain(t, "acknowledgement in the group", acks[0].Text, "<@res.liu>", "#1", "王建国警官")
	dms := h.on("app", "wang.jg")
	if len(dms) != 1 {
		t.Fatalf("officer got %d app messages, want 1", len(dms))
	}
	mustContain(t, "officer's app message", dms[0].Text, "#1", wxGroupName, "res.liu", "电动车被偷", "#1 内容")
	if dms[0].MsgType != "markdown" {
		t.Errorf("officer's card sent as %s, want markdown", dms[0].MsgType)
	}

	h.Clock.Add(3 * time.Minute)
	h.clock.Add(3 * time.Minute)
	h.officer("9001", "wang.jg", "#1 马上到，请在楼下等我")
	h.settle()

	// The response_url was spent on the acknowledgement: the answer comes
	// through the group's webhook robot, @-ing the resident.
	answers := h.on("webhook", "xingfu")
	if len(answers) != 1 {
		t.Fatalf("group got %d webhook messages, want the answer: %+v", len(answers), h.api.Sent())
	}
	mustContain(t, "answer in the group", answers[0].Text, "马上到，请在楼下等我", "王建国", "#1")
	if len(answers[0].Mentions) != 1 || answers[0].Mentions[0] != "res.liu" {
		t.Errorf("answer @ = %v, want the resident", answers[0].Mentions)
	}
	if n := h.api.Calls("/cgi-bin/aibot/response"); n != 1 {
		t.Errorf("response_url called %d times; WeCom honours it once", n)
	}
	confirm := h.on("app", "wang.jg")
	mustContain(t, "confirmation to the officer", confirm[len(confirm)-1].Text, "已在“"+wxGroupName+"”答复工单 #1")
	if n := len(h.playground.Lines(bot.Group, wxGroup)); n != 0 {
		t.Errorf("WeChat messages leaked into the playground: %d lines", n)
	}
	mustNotContainLogs(t, h, "电动车", "马上到", wxHookKey, h.api.CorpSecret)
}

func TestWeChatCallbackDeliveredTwiceMakesOneTicket(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"))
	ru := h.api.ResponseURL()
	if code := h.resident("wx-dup", wxGroup, "res.chen", "@"+wxRobotName+" 车被刮了", ru); code != http.StatusOK {
		t.Fatalf("first delivery: HTTP %d", code)
	}
	h.settle()
	// No answer within 5 s as far as WeCom knows: it posts the same message again.
	h.clock.Add(5 * time.Second)
	if code := h.resident("wx-dup", wxGroup, "res.chen", "@"+wxRobotName+" 车被刮了", ru); code != http.StatusOK {
		t.Fatalf("retry: HTTP %d, want 200 so WeCom stops", code)
	}
	h.settle()
	if n := h.tickets(); n != 1 {
		t.Errorf("%d tickets for one message, want 1", n)
	}
	if n := len(h.api.Sent()); n != 2 {
		t.Errorf("platform got %d messages, want 2 (one acknowledgement, one officer message): %+v", n, h.api.Sent())
	}
	if code := h.resident("wx-next", wxGroup, "res.chen", "@"+wxRobotName+" 另外楼道灯坏了", h.api.ResponseURL()); code != http.StatusOK {
		t.Fatal("next message refused")
	}
	h.settle()
	acks := h.on("response_url", "")
	mustContain(t, "next ticket", acks[len(acks)-1].Text, "#2")
}

func TestWeChatSpentOrExpiredResponseURLFallsBackToWebhook(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"))
	// Someone (another process, a passive reply) spent the response_url first.
	spent := h.api.ResponseURL()
	resp, err := http.Post(spent, "application/json", strings.NewReader(`{"msgtype":"markdown","markdown":{"content":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	before := len(h.api.Sent())
	if code := h.resident("wx-spent", wxGroup, "res.zhao", "@"+wxRobotName+" 小区门口有人发传单推销保健品", spent); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	h.settle()
	hooks := h.on("webhook", "xingfu")
	if len(hooks) != 1 || len(h.api.Sent()) != before+2 {
		t.Fatalf("sent = %+v, want the acknowledgement by webhook and the officer's message", h.api.Sent())
	}
	mustContain(t, "acknowledgement by webhook", hooks[0].Text, "#1")
	if len(hooks[0].Mentions) != 1 || hooks[0].Mentions[0] != "res.zhao" {
		t.Errorf("acknowledgement @ = %v", hooks[0].Mentions)
	}

	// A second question answered two hours later: its response_url has expired.
	if code := h.resident("wx-late", wxGroup, "res.qian", "@"+wxRobotName+" 电瓶车充电线从窗口拉下来了", h.api.ResponseURL()); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	h.settle()
	calls := h.api.Calls("/cgi-bin/aibot/response")
	h.Clock.Add(2 * time.Hour)
	h.clock.Add(2 * time.Hour)
	h.officer("9101", "wang.jg", "#2 已联系物业处理")
	h.settle()
	if n := h.api.Calls("/cgi-bin/aibot/response"); n != calls {
		t.Errorf("an expired response_url was tried (%d calls, was %d)", n, calls)
	}
	hooks = h.on("webhook", "xingfu")
	mustContain(t, "late answer by webhook", hooks[len(hooks)-1].Text, "已联系物业处理", "#2")
	if m := hooks[len(hooks)-1].Mentions; len(m) != 1 || m[0] != "res.qian" {
		t.Errorf("late answer @ = %v", m)
	}
}

func TestWeChatOfficialAccountRepliesInsideAndOutsideThe48HourWindow(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"))
	h.follower("oInside", 7001, "请问居住证怎么办理")
	h.settle()
	got := h.on("oa", "oInside")
	if len(got) != 1 {
		t.Fatalf("follower got %d customer-service messages, want 1: %+v", len(got), h.api.Sent())
	}
	mustContain(t, "acknowledgement to the follower", got[0].Text, "工单 #1")
	mustContain(t, "officer app message", lastText(t, h.on("app", "wang.jg")), "#1", "居住证")
	h.officer("9102", "wang.jg", "#1 带身份证到社区事务受理中心办理")
	h.settle()
	got = h.on("oa", "oInside")
	if len(got) != 2 {
		t.Fatalf("follower got %d customer-service messages, want the acknowledgement and the answer", len(got))
	}
	mustContain(t, "answer to the follower", got[1].Text, "社区事务受理中心", "#1")

	// Outside the 48 hours WeChat refuses the reply: it is recorded as
	// undeliverable with the reason, never counted as sent.
	h.api.CloseReplyWindow("oOutside")
	h.follower("oOutside", 7002, "上周问的事有结果了吗")
	h.settle()
	if n := len(h.on("oa", "oOutside")); n != 0 {
		t.Errorf("%d messages counted as delivered outside the window", n)
	}
	failed, err := h.store.FailedOutbound(context.Background(), string(bot.WeChat), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 {
		t.Fatalf("%d outbound messages failed, want the undeliverable acknowledgement", len(failed))
	}
	mustContain(t, "recorded reason", failed[0].Reason, "48 hours", "45015")

	// The officer's answer is refused too: the officer is told, not fooled.
	// The confirmation of the answer and the notice of its refusal are sent
	// side by side, so either may come last.
	before := len(h.on("app", "wang.jg"))
	h.officer("9103", "wang.jg", "#2 结果已经出来了，请来所里领取")
	h.settle()
	var told []string
	for _, m := range h.on("app", "wang.jg")[before:] {
		if strings.Contains(m.Text, "未能送达") {
			told = append(told, m.Text)
		}
	}
	if len(told) != 1 {
		t.Fatalf("officer told %d times of the undelivered answer, want once: %q", len(told), told)
	}
	mustContain(t, "officer told of the undelivered answer", told[0], "#2")
}

func TestWeChatEmergencyPagesDutyOfficerAndLeaderOnTheirPhones(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 19:00")) // Monday evening: zhang on duty
	if code := h.resident("wx-fire", wxGroup, "res.wang", "@"+wxRobotName+" 3号楼有人拿刀打架！", h.api.ResponseURL()); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	h.settle()
	acks := h.on("response_url", "")
	if len(acks) != 1 {
		t.Fatalf("group replies = %+v", h.api.Sent())
	}
	mustContain(t, "emergency guidance", acks[0].Text, "110", "#1")
	mustContain(t, "page to the duty officer", lastText(t, h.on("app", "zhang.w")), "紧急工单 #1", "拿刀")
	mustContain(t, "page to the leader", lastText(t, h.on("app", "zhao.g")), "紧急工单 #1")
}

func TestWeChatBadCallbacksStoreNothingAndUnknownGroupsAreRecorded(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"))
	cb, _ := wecomtest.SealJSON("forged-token", wxAESKey, "", wecomtest.RobotText("wx-forged", "group", wxGroup, "res.x", "@"+wxRobotName+" 假消息", ""), h.clock.Now(), wecomtest.Nonce())
	if code := h.post(wechat.PathRobot, cb); code != http.StatusUnauthorized {
		t.Errorf("forged signature: HTTP %d, want 401", code)
	}
	stale, _ := wecomtest.SealJSON(wxRobotTok, wxAESKey, "", wecomtest.RobotText("wx-stale", "group", wxGroup, "res.x", "@"+wxRobotName+" 旧消息", ""), h.clock.Now().Add(-time.Hour), wecomtest.Nonce())
	if code := h.post(wechat.PathRobot, stale); code != http.StatusForbidden {
		t.Errorf("stale timestamp: HTTP %d, want 403", code)
	}
	h.settle()
	if n := h.tickets(); n != 0 || len(h.api.Sent()) != 0 {
		t.Errorf("bad callbacks made %d tickets and %d messages", n, len(h.api.Sent()))
	}

	// A group nobody registered: the core's "not registered" answer, and a
	// record for an admin.
	if code := h.resident("wx-unknown", "wrUnregistered", "res.y", "@"+wxRobotName+" 你好", h.api.ResponseURL()); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	h.settle()
	mustContain(t, "reply in the unknown group", lastText(t, h.on("response_url", "")), "尚未登记")
	chats, err := h.store.UnknownChats(context.Background())
	if err != nil || len(chats) != 1 || chats[0].ChatID != "wrUnregistered" || chats[0].Platform != "wechat" {
		t.Errorf("unknown chats = %+v, %v", chats, err)
	}
}

func TestWeChatLogsNeverCarryResidentsWordsOrNumbers(t *testing.T) {
	h := startWeChatHub(t, at("2026-11-23 10:00"))
	h.resident("wx-pii", wxGroup, "res.sun", "@"+wxRobotName+" 我的电话13812345678，身份证310101199001011234，门锁被撬了", h.api.ResponseURL())
	h.settle()
	h.officer("9201", "wang.jg", "#1 13812345678 我马上打给您")
	h.follower("oPII", 7101, "我是13912345678，家里进贼了")
	h.settle()
	mustNotContainLogs(t, h, "13812345678", "310101199001011234", "门锁被撬", "马上打给您", "13912345678", "家里进贼")
	if !strings.Contains(h.Logs.String(), "wechat callback taken") {
		t.Error("the adapter logged nothing about its callbacks; the test would prove nothing")
	}
}

func lastText(t *testing.T, ms []wecomtest.Message) string {
	t.Helper()
	if len(ms) == 0 {
		t.Fatal("no message")
	}
	return ms[len(ms)-1].Text
}

func mustNotContainLogs(t *testing.T, h *wxHub, secrets ...string) {
	t.Helper()
	logs := h.Logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q", s)
		}
	}
}
