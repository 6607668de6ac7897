package main

// End-to-end scenarios on DingTalk: the whole hub (SQLite, bus, rules) with
// the DingTalk adapter, the real stream SDK, and a stand-in DingTalk on
// 127.0.0.1 (stream gateway, OpenAPI, session webhooks). Each test delivers
// what DingTalk would send over the stream and asserts what residents see in
// the group and officers see in their direct chat with the robot, as the
// stand-in records them.

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
)

const (
	dtGroup     = "cidHexieDing=="
	dtGroupName = "和谐小区钉钉群"
	dtResident  = "$:LWCP_v1:$liu"
)

// dtHub is a running hub with the DingTalk adapter and its stand-in platform.
type dtHub struct {
	*testHub
	dt *dingtalktest.Server
	ad *dingtalk.Adapter
}

// staff is each officer's DingTalk staff id.
func staff(code string) string { return "staff-" + code }

// startDingTalkHub runs the example config plus one DingTalk group (officer
// wang) and DingTalk accounts for the station's staff.
func startDingTalkHub(t *testing.T, start time.Time, opts ...dingtalk.Option) *dtHub {
	t.Helper()
	return startDingTalkHubWith(t, start, nil, opts...)
}

// startDingTalkHubWith is startDingTalkHub with tune changing the
// configuration (the hub's and the DingTalk app's) first.
func startDingTalkHubWith(t *testing.T, start time.Time, tune func(*configs.Config, *dingtalk.Config), opts ...dingtalk.Option) *dtHub {
	t.Helper()
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Groups = append(cfg.Groups, configs.Group{Platform: "dingtalk", ChatID: dtGroup, Name: dtGroupName, Station: "taiping", Officer: "wang"})
	for i, o := range cfg.Officers {
		if cfg.Officers[i].Identities == nil {
			cfg.Officers[i].Identities = map[string]string{}
		}
		cfg.Officers[i].Identities["dingtalk"] = staff(o.Code)
	}
	dcfg := dingtalk.Config{AppKey: srv.AppKey(), OpenAPIHost: srv.URL}
	dcfg.ApplyEnv(func(k string) (string, bool) {
		if k == dingtalk.EnvAppSecret {
			return srv.AppSecret(), true
		}
		return "", false
	})
	if tune != nil {
		tune(cfg, &dcfg)
	}
	var ad *dingtalk.Adapter
	h := startHub(t, cfg, start, func(o *hubOptions) {
		o.adapters = map[bot.Platform]newAdapter{bot.DingTalk: func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			a, err := dingtalk.New(dcfg, pub, dedup, log, append([]dingtalk.Option{dingtalk.WithBackoff(10 * time.Millisecond)}, opts...)...)
			ad = a
			return a, err
		}}
	})
	srv.WaitConnections(t, 1)
	return &dtHub{testHub: h, dt: srv, ad: ad}
}

// resident @s the robot in the DingTalk group; it returns once DingTalk has
// the ack, which is when the message is kept.
func (h *dtHub) resident(m dingtalktest.Msg) string {
	h.t.Helper()
	frame := h.dt.Deliver(m)
	h.dt.WaitAck(h.t, frame)
	return frame
}

func askMsg(text string) dingtalktest.Msg {
	return dingtalktest.Msg{ConversationID: dtGroup, Group: true, Title: dtGroupName, SenderID: dtResident, SenderNick: "刘阿姨", Text: " " + text, AtBot: true}
}

// officer writes to the robot from the phone, in the direct chat.
func (h *dtHub) officer(code, text string) {
	h.t.Helper()
	h.dt.WaitAck(h.t, h.dt.Deliver(dingtalktest.Msg{SenderStaffID: staff(code), SenderNick: code, Text: text}))
}

// group and dms are what residents and an officer see, after the hub settled.
func (h *dtHub) group() []dingtalktest.Message { h.settle(); return h.dt.Group(dtGroup) }
func (h *dtHub) dms(code string) []dingtalktest.Message {
	h.settle()
	return h.dt.DMs(staff(code))
}

func last(t *testing.T, what string, ms []dingtalktest.Message) dingtalktest.Message {
	t.Helper()
	if len(ms) == 0 {
		t.Fatalf("%s: nothing posted", what)
	}
	return ms[len(ms)-1]
}

func TestDingTalkDaytimeQuestionReachesOwnOfficerAndAnswerLandsInGroup(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00")) // Monday
	h.resident(askMsg("楼下电动车被偷了怎么办"))
	ack := last(t, "group", h.group())
	mustContain(t, "acknowledgement", ack.Text, "#1", "王建国警官")
	if ack.Via != "webhook" || len(ack.AtDingtalkIDs) != 1 || ack.AtDingtalkIDs[0] != dtResident {
		t.Errorf("acknowledgement = %+v, want a session-webhook reply @-ing the resident", ack)
	}
	dm := last(t, "officer DM", h.dms("wang"))
	if dm.Kind != "markdown" || dm.Title != "新工单 #1" {
		t.Errorf("officer DM is %s titled %q, want a markdown card", dm.Kind, dm.Title)
	}
	mustContain(t, "officer DM", dm.Text, "#1", dtGroupName, "刘阿姨", "电动车被偷", "#1 内容")

	h.Clock.Add(3 * time.Minute)
	h.officer("wang", "#1 马上到，请在楼下等我")
	answer := last(t, "group", h.group())
	mustContain(t, "answer in group", answer.Text, "马上到，请在楼下等我", "王建国", "#1")
	if len(answer.AtDingtalkIDs) != 1 || answer.AtDingtalkIDs[0] != dtResident {
		t.Errorf("answer @ = %+v, want the resident", answer)
	}
	mustContain(t, "confirmation to officer", last(t, "officer", h.dms("wang")).Text, "已在“"+dtGroupName+"”答复工单 #1")
	if n := len(h.group()); n != 2 {
		t.Errorf("group has %d bot messages, want 2", n)
	}
}

func TestDingTalkNightQuestionsGoToTheDutyAccount(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 23:00")) // nobody on shift
	faq := askMsg("请问补办身份证要带什么")
	h.resident(faq)
	noise := askMsg("楼上装修一直到晚上十点，能管吗")
	noise.SenderID, noise.SenderNick = "$:LWCP_v1:$chen", "陈先生"
	h.resident(noise)
	lines := h.group()
	if len(lines) != 2 {
		t.Fatalf("group got %d messages, want 2: %+v", len(lines), lines)
	}
	by := map[string]string{}
	for _, l := range lines {
		by[l.AtDingtalkIDs[0]] = l.Text
	}
	mustContain(t, "FAQ answer", by[dtResident], "自动答复", "户口簿")
	mustContain(t, "after-hours acknowledgement", by["$:LWCP_v1:$chen"], "非工作时间", "明天（周二）08:30")
	mustContain(t, "duty account DM", last(t, "duty account", h.dms("taiping-duty")).Text, "装修")
	if n := len(h.dms("wang")); n != 0 {
		t.Errorf("wang got %d DMs at night, want none", n)
	}
}

func TestDingTalkSameFrameTwiceMakesOneTicketAndOneReply(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	m := askMsg("车被刮了")
	m.MsgID = "msg-dup-42"
	h.resident(m)
	h.resident(m) // DingTalk sends it again: its ack was late
	h.settle()
	h.resident(m) // and once more after the hub answered
	if n := len(h.group()); n != 1 {
		t.Errorf("group got %d acknowledgements for one message, want 1", n)
	}
	if n := len(h.dms("wang")); n != 1 {
		t.Errorf("officer got %d DMs for one message, want 1", n)
	}
	h.resident(askMsg("另外楼道灯坏了"))
	mustContain(t, "next ticket", last(t, "group", h.group()).Text, "#2")
}

func TestDingTalkAcksBeforeSlowDownstreamWorkFinishes(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	release := h.dt.HoldWebhooks() // DingTalk's reply endpoint is slow today
	frame := h.dt.Deliver(askMsg("小区门口有可疑人员"))
	ack := h.dt.WaitAck(t, frame)
	if n := len(h.dt.Group(dtGroup)); n != 0 {
		t.Fatalf("the group already has %d replies: the ack waited for downstream work", n)
	}
	h.dt.WaitDMs(t, staff("wang"), 1) // the officer's DM does not wait for the webhook
	release()
	reply := h.dt.WaitGroup(t, dtGroup, 1)[0]
	mustContain(t, "acknowledgement", reply.Text, "#1")
	if !ack.At.Before(reply.At) {
		t.Errorf("ack at %s, reply at %s", ack.At, reply.At)
	}
	if acks := h.dt.Acks(frame); len(acks) != 1 || acks[0].Code != 200 {
		t.Errorf("acks = %+v, want one success", acks)
	}
}

func TestDingTalkDisconnectFrameReconnectsAndLosesNothing(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	h.resident(askMsg("第一个问题：信箱被撬了"))
	h.dt.Disconnect()
	h.dt.Wait(t, 5*time.Second, "the old connection to close", func() bool { return h.dt.Live() == 0 })
	second := askMsg("第二个问题：楼道堆满杂物")
	second.SenderID, second.SenderNick = "$:LWCP_v1:$zhao", "赵大爷"
	frame := h.dt.Deliver(second) // sent while the robot is reconnecting
	h.dt.WaitConnections(t, 2)
	h.dt.WaitAck(t, frame)
	lines := h.group()
	if len(lines) != 2 {
		t.Fatalf("group got %d replies, want 2: %+v", len(lines), lines)
	}
	mustContain(t, "second ticket", lines[1].Text, "#2")
	if n := len(h.dms("wang")); n != 2 {
		t.Errorf("officer got %d DMs, want 2", n)
	}
	h.dt.Wait(t, 5*time.Second, "health to show the reconnect", func() bool {
		hl := h.ad.Health()
		return hl.Connected && hl.Reconnects >= 1
	})
}

func TestDingTalkThrottledDMIsRetriedAndDelivered(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	h.dt.Throttle(dingtalktest.PathBatchSend, 2) // 403 QpsLimit twice
	h.resident(askMsg("电梯里有人吸烟"))
	mustContain(t, "officer DM", last(t, "officer DM", h.dms("wang")).Text, "#1", "吸烟")
	if n := len(h.dt.Calls(dingtalktest.PathBatchSend)); n != 3 {
		t.Errorf("%d batchSend calls, want 3 (two throttled)", n)
	}
	failed, err := h.store.FailedOutbound(context.Background(), string(bot.DingTalk), 10)
	if err != nil || len(failed) != 0 {
		t.Errorf("failed = %+v, %v; want nothing", failed, err)
	}
}

func TestDingTalkFlowControlledDMArrivesLater(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"), dingtalk.WithFlowControlRetry(100*time.Millisecond))
	h.dt.FlowControl(staff("wang"), 1)
	h.resident(askMsg("家门口的快递被拿走了"))
	h.settle()
	mustContain(t, "officer DM after flow control", h.dt.WaitDMs(t, staff("wang"), 1)[0].Text, "#1", "快递")
}

func TestDingTalkExpiredSessionWebhookFallsBackToOpenAPI(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	m := askMsg("楼道灯坏了一个星期")
	m.WebhookExpired = true
	h.resident(m)
	ack := last(t, "group", h.group())
	if ack.Via != "openapi" {
		t.Errorf("acknowledgement went by %s, want the OpenAPI", ack.Via)
	}
	mustContain(t, "acknowledgement", ack.Text, "@刘阿姨", "#1")

	// The officer answers after the resident's session ended: the answer
	// still lands in the right group, naming the resident.
	h.dt.ExpireSessions()
	h.officer("wang", "#1 已联系物业今天修好")
	answer := last(t, "group", h.group())
	if answer.Via != "openapi" {
		t.Errorf("answer went by %s, want the OpenAPI", answer.Via)
	}
	mustContain(t, "answer", answer.Text, "@刘阿姨", "已联系物业今天修好", "#1")
	mustContain(t, "confirmation", last(t, "officer", h.dms("wang")).Text, "答复工单 #1")
}

func TestDingTalkBadInputGetsSensibleOutcomes(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	t.Run("unregistered group", func(t *testing.T) {
		m := askMsg("你好")
		m.ConversationID = "cidNotRegistered=="
		h.resident(m)
		h.settle()
		mustContain(t, "reply", last(t, "unregistered group", h.dt.Group("cidNotRegistered==")).Text, "尚未登记")
		mustContain(t, "the station admin's notice", last(t, "admin", h.dms("zhao")).Text, "未登记的群", "dingtalk", "cidNotRegistered==")
		chats, err := h.store.UnknownChats(context.Background())
		if err != nil || len(chats) != 1 || chats[0].ChatID != "cidNotRegistered==" {
			t.Errorf("unknown chats = %+v, %v", chats, err)
		}
	})
	t.Run("@ of a staff id that is no officer", func(t *testing.T) {
		m := askMsg("@物业小张 楼上漏水")
		m.AtUsers = []chatbot.BotCallbackDataAtUserModel{{DingtalkId: "$:LWCP_v1:$zhangwy", StaffId: "staff-property"}}
		h.resident(m)
		mustContain(t, "routed to the group's officer", last(t, "group", h.group()).Text, "王建国警官")
	})
	t.Run("picture", func(t *testing.T) {
		h.resident(dingtalktest.Msg{ConversationID: dtGroup, Group: true, SenderID: dtResident, AtBot: true, MsgType: "picture", Content: map[string]string{"downloadCode": "x"}})
		mustContain(t, "reply", last(t, "group", h.group()).Text, "文字")
	})
	t.Run("malformed frames", func(t *testing.T) {
		before := len(h.group())
		for _, data := range []string{`{not json 13812345678`, `{"msgId":"m-x","conversationType":"2"}`, ``} {
			frame := h.dt.DeliverData(dingtalktest.TopicBotMessage, data)
			if a := h.dt.WaitAck(t, frame); a.Code != 200 {
				t.Errorf("malformed frame answered %d", a.Code)
			}
		}
		if n := len(h.group()); n != before {
			t.Errorf("malformed frames produced %d replies", n-before)
		}
	})
	t.Run("resident posing as officer", func(t *testing.T) {
		h.dt.WaitAck(t, h.dt.Deliver(dingtalktest.Msg{SenderID: dtResident, SenderNick: "刘阿姨", Text: "#1 我来回答"}))
		h.settle()
		mustContain(t, "reply", last(t, "resident DM", h.dt.DMs(dtResident)).Text, "没有登记为民警")
	})
}

func TestDingTalkLogsNeverCarryResidentsWordsOrNumbers(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	m := askMsg("我的电话13812345678，身份证310101199001011234，楼道有焦味")
	m.SenderNick = "13912345678"
	h.resident(m)
	h.settle()
	h.officer("wang", "#1 13812345678 我马上打给您")
	h.settle()
	h.dt.DeliverData(dingtalktest.TopicBotMessage, `电话13712345678`)
	logs := h.Logs.String()
	for _, secret := range []string{"13812345678", "13912345678", "13712345678", "310101199001011234", "楼道有焦味", "马上打给您", "session="} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, "dingtalk stream connected") {
		t.Errorf("logs do not show the stream at all; the test would prove nothing")
	}
}
