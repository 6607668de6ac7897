package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
)

func TestDaytimeQuestionReachesOwnOfficerAndAnswerLandsInGroup(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00")) // Monday
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼下电动车被偷了怎么办")
	h.settle()
	ack := h.lastBot(bot.Group, "hexie")
	mustContain(t, "acknowledgement", ack.Text, "#1", "王建国警官")
	if len(ack.At) != 1 || ack.At[0] != "res-1" {
		t.Errorf("acknowledgement @ = %v, want the resident", ack.At)
	}
	dm := h.lastBot(bot.Direct, "wang")
	mustContain(t, "officer DM", dm.Text, "#1", "和谐小区业主群", "刘阿姨", "电动车被偷", "#1 内容")
	// The timeline's first lines are what filing did, with what became of
	// each message.
	tl, err := h.rules.Timeline(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range tl {
		lines = append(lines, e.Kind+" "+e.Detail)
	}
	if want := []string{"asked ", "assigned own_officer：王建国", "acknowledged sent", "dm_sent sent"}; !slices.Equal(lines, want) {
		t.Errorf("timeline = %q, want %q", lines, want)
	}

	h.Clock.Add(3 * 60e9)
	h.dm("wang", "#1 马上到，请在楼下等我")
	h.settle()
	answer := h.lastBot(bot.Group, "hexie")
	mustContain(t, "answer in group", answer.Text, "马上到，请在楼下等我", "王建国", "#1")
	if len(answer.At) != 1 || answer.At[0] != "res-1" {
		t.Errorf("answer @ = %v, want the resident", answer.At)
	}
	mustContain(t, "confirmation to officer", h.lastBot(bot.Direct, "wang").Text, "已在“和谐小区业主群”答复工单 #1")
}

func TestNightQuestionsGoToDutyAccountFAQAnswersAndMorningDigest(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 23:00")) // Monday night: nobody on shift
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 请问补办身份证要带什么")
	h.say("hexie", "res-2", "陈先生", "@社区警务助手 楼上装修一直到晚上十点，能管吗")
	h.settle()
	lines := h.botLines(bot.Group, "hexie")
	if len(lines) != 2 {
		t.Fatalf("group got %d bot messages, want 2: %+v", len(lines), lines)
	}
	byResident := map[string]string{}
	for _, l := range lines {
		byResident[l.At[0]] = l.Text
	}
	mustContain(t, "FAQ answer", byResident["res-1"], "自动答复", "户口簿")
	mustContain(t, "after-hours acknowledgement", byResident["res-2"], "非工作时间", "明天（周二）08:30")
	duty := h.lastBot(bot.Direct, "taiping-duty")
	mustContain(t, "duty account DM", duty.Text, "装修")
	if n := len(h.botLines(bot.Direct, "wang")); n != 0 {
		t.Errorf("officer wang got %d DMs at night, want none before his shift", n)
	}

	// Tuesday 08:30: wang's shift starts and the filed question waits for him.
	h.Clock.Set(at("2026-11-24 08:31"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	digest := h.lastBot(bot.Direct, "wang")
	mustContain(t, "morning digest", digest.Text, "1 个待处理工单", "装修")
	if strings.Contains(digest.Text, "身份证") {
		t.Errorf("digest lists the FAQ-answered question: %q", digest.Text)
	}
	// A second tick (or a restart) does not send the digest again.
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if n := len(h.botLines(bot.Direct, "wang")); n != 1 {
		t.Errorf("wang got %d digests, want 1", n)
	}
}

func TestEmergencyGets110AndPagesDutyOfficerAndLeader(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 19:00")) // Monday evening: zhang on duty
	h.say("yangguang", "res-9", "王女士", "@社区警务助手 3号楼有人拿刀打架！")
	h.settle()
	mustContain(t, "emergency guidance", h.lastBot(bot.Group, "yangguang").Text, "110", "#1")
	mustContain(t, "page to duty officer", h.lastBot(bot.Direct, "zhang").Text, "紧急工单 #1", "拿刀")
	mustContain(t, "page to leader", h.lastBot(bot.Direct, "zhao").Text, "紧急工单 #1")
	if n := len(h.botLines(bot.Direct, "zhang")); n != 1 {
		t.Errorf("duty officer got %d messages, want exactly one page", n)
	}
}

func TestEscalationTimerSurvivesRestartAndFiresOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	first := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	first.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道堆满杂物堵住了消防通道")
	first.settle()
	mustContain(t, "DM before restart", first.lastBot(bot.Direct, "wang").Text, "#1")
	first.Stop()

	for i := 0; i < 2; i++ { // restart twice at the same moment: the step fires once
		h := startHubOn(t, nil, at("2026-11-23 10:20"), db)
		if err := h.rules.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.settle()
		got := len(h.botLines(bot.Direct, "zhao"))
		if i == 0 && got != 1 {
			t.Errorf("after restart the leader got %d escalations, want 1", got)
		}
		if i == 1 && got != 0 {
			t.Errorf("a second restart fired the same escalation step again")
		}
		h.Stop()
	}
}

func TestEscalationChainRepeatsUntilAnswered(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 17:00")) // wang on shift; zhang from 17:30
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 小区门口有可疑人员徘徊")
	h.settle()
	mustContain(t, "DM to own officer", h.lastBot(bot.Direct, "wang").Text, "#1")

	tick := func(at time.Time) {
		t.Helper()
		h.Clock.Set(at)
		if err := h.rules.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.settle()
	}
	tick(at("2026-11-23 17:10")) // before the 15-minute SLA: nothing
	if n := len(h.botLines(bot.Direct, "zhang")); n != 0 {
		t.Fatalf("escalated before the SLA: zhang has %d messages", n)
	}
	tick(at("2026-11-23 17:31")) // past SLA: to the duty officer now on duty
	mustContain(t, "escalation to duty officer", h.lastBot(bot.Direct, "zhang").Text, "#1", "超时")
	tick(at("2026-11-23 17:32")) // same step does not fire twice
	if n := len(h.botLines(bot.Direct, "zhang")); n != 1 {
		t.Errorf("duty officer got %d escalations, want 1", n)
	}
	tick(at("2026-11-23 17:47")) // next: the station leader
	mustContain(t, "escalation to leader", h.lastBot(bot.Direct, "zhao").Text, "#1")
	tick(at("2026-11-23 18:03")) // end of chain: everyone reminded again
	if n := len(h.botLines(bot.Direct, "zhao")); n != 2 {
		t.Errorf("leader got %d escalations, want 2 (repeat until answered)", n)
	}
	h.dm("zhang", "#1 已派人到门口查看")
	h.settle()
	mustContain(t, "answer in group", h.lastBot(bot.Group, "hexie").Text, "已派人到门口查看")
	before := len(h.botLines(bot.Direct, "zhao"))
	tick(at("2026-11-23 19:00"))
	if n := len(h.botLines(bot.Direct, "zhao")); n != before {
		t.Errorf("answered ticket escalated again")
	}
}

func TestRedeliveredPlatformMessageMakesOneTicketAndOneReply(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	p := playground.Post{ChatID: "hexie", ChatType: bot.Group, SenderID: "res-1", Sender: "刘阿姨", Text: "@社区警务助手 车被刮了", MessageID: "msg-42"}
	for i := 0; i < 3; i++ {
		if code := h.post(p); code != 202 {
			t.Fatalf("post: HTTP %d", code)
		}
	}
	h.settle()
	if n := len(h.botLines(bot.Group, "hexie")); n != 1 {
		t.Errorf("group got %d acknowledgements for one message, want 1", n)
	}
	if n := len(h.botLines(bot.Direct, "wang")); n != 1 {
		t.Errorf("officer got %d DMs for one message, want 1", n)
	}
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 另外楼道灯坏了")
	h.settle()
	mustContain(t, "next ticket", h.lastBot(bot.Group, "hexie").Text, "#2")
}

func TestBadInputGetsClearAnswers(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	t.Run("unknown group", func(t *testing.T) {
		h.say("not-registered", "res-1", "刘阿姨", "@社区警务助手 你好")
		h.settle()
		mustContain(t, "reply", h.lastBot(bot.Group, "not-registered").Text, "尚未登记")
		mustContain(t, "the station admin's notice", h.lastBot(bot.Direct, "zhao").Text, "未登记的群", "playground", "not-registered", "jingmin sync")
		chats, err := h.store.UnknownChats(context.Background())
		if err != nil || len(chats) != 1 || chats[0].ChatID != "not-registered" {
			t.Errorf("unknown chats = %+v, %v; want the group recorded for an admin", chats, err)
		}
	})
	t.Run("chatter not addressed to the bot is ignored", func(t *testing.T) {
		before := len(h.botLines(bot.Group, "yangguang"))
		h.say("yangguang", "res-3", "老张", "今天天气不错")
		h.settle()
		if n := len(h.botLines(bot.Group, "yangguang")); n != before {
			t.Errorf("bot answered chatter")
		}
	})
	t.Run("picture", func(t *testing.T) {
		h.post(playground.Post{ChatID: "yangguang", ChatType: bot.Group, SenderID: "res-3", Text: "@社区警务助手", Kind: bot.KindUnsupported})
		h.settle()
		mustContain(t, "reply", h.lastBot(bot.Group, "yangguang").Text, "文字")
	})
	t.Run("unknown officer command gets help", func(t *testing.T) {
		h.dm("wang", "早上好")
		h.settle()
		mustContain(t, "help", h.lastBot(bot.Direct, "wang").Text, "#编号 内容", "值班 开")
	})
	t.Run("reply to a ticket that does not exist", func(t *testing.T) {
		h.dm("wang", "#999 已处理")
		h.settle()
		mustContain(t, "reply", h.lastBot(bot.Direct, "wang").Text, "没有找到工单 #999")
	})
	t.Run("resident posing as officer", func(t *testing.T) {
		h.dm("res-1", "#1 我来回答")
		h.settle()
		mustContain(t, "reply", h.lastBot(bot.Direct, "res-1").Text, "没有登记为民警")
	})
	t.Run("closed ticket", func(t *testing.T) {
		h.say("hexie", "res-5", "赵大爷", "@社区警务助手 信箱被撬了")
		h.settle()
		n := ticketNumber(t, h.lastBot(bot.Group, "hexie").Text)
		h.dm("wang", fmt.Sprintf("#%d 办结", n))
		h.settle()
		mustContain(t, "close", h.lastBot(bot.Direct, "wang").Text, "已办结")
		h.dm("wang", fmt.Sprintf("#%d 再补充一句", n))
		h.settle()
		mustContain(t, "reply", h.lastBot(bot.Direct, "wang").Text, "已办结，不能再答复")
	})
	t.Run("oversized message is cut at a character boundary", func(t *testing.T) {
		long := "@社区警务助手 " + strings.Repeat("焦", 5000)
		h.say("hexie", "res-6", "孙女士", long)
		h.settle()
		dm := h.lastBot(bot.Direct, "wang").Text
		if !utf8.ValidString(dm) || !strings.Contains(dm, "已截断") {
			t.Errorf("officer DM of an oversized question is not cleanly truncated (valid=%v)", utf8.ValidString(dm))
		}
	})
	t.Run("malformed and huge posts", func(t *testing.T) {
		resp, err := http.Post(h.URL+"/api/messages", "application/json", strings.NewReader("{not json"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed JSON: HTTP %d, want 400", resp.StatusCode)
		}
		resp, err = http.Post(h.URL+"/api/messages", "application/json", strings.NewReader(`{"text":"`+strings.Repeat("x", 200<<10)+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("huge body: HTTP %d, want 413", resp.StatusCode)
		}
	})
}

func TestResidentFloodIsThrottledWithoutLosingText(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	for i := 0; i < 5; i++ {
		h.say("hexie", "res-7", "钱先生", fmt.Sprintf("@社区警务助手 问题%d", i))
	}
	h.settle()
	h.say("hexie", "res-7", "钱先生", "@社区警务助手 补充：我家门牌是12号")
	h.settle()
	last := h.lastBot(bot.Group, "hexie")
	mustContain(t, "throttle reply", last.Text, "太频繁")
	n := ticketNumber(t, last.Text)
	tk, err := h.store.TicketByNumber(context.Background(), 1, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	tl, err := h.rules.Timeline(context.Background(), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range tl {
		found = found || strings.Contains(e.Detail, "门牌是12号")
	}
	if !found {
		t.Errorf("throttled message not kept on ticket #%d", n)
	}
	if got := len(h.botLines(bot.Direct, "wang")); got != 5 {
		t.Errorf("officer got %d DMs, want 5 (one per ticket, none for the throttled follow-up)", got)
	}
}

func TestOfficerClaimHandoverAndDuty(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	h.say("yangguang", "res-1", "刘阿姨", "@社区警务助手 @李警官 电瓶车充电线从窗口拉下来了")
	h.settle()
	mustContain(t, "ack names mentioned officer", h.lastBot(bot.Group, "yangguang").Text, "李明警官")
	h.dm("li", "#1 认领")
	h.settle()
	mustContain(t, "claim", h.lastBot(bot.Direct, "li").Text, "已认领工单 #1")
	h.dm("li", "#1 转 王警官")
	h.settle()
	mustContain(t, "handover confirmation", h.lastBot(bot.Direct, "li").Text, "已转交王建国")
	mustContain(t, "handover DM", h.lastBot(bot.Direct, "wang").Text, "由李明转交", "充电线")
	h.dm("li", "#1 转 不存在的人")
	h.settle()
	mustContain(t, "unknown colleague", h.lastBot(bot.Direct, "li").Text, "没有找到名为“不存在的人”")

	// Duty off: wang's group falls to another officer on shift.
	h.dm("wang", "值班 关")
	h.settle()
	mustContain(t, "duty off", h.lastBot(bot.Direct, "wang").Text, "已结束值班")
	h.say("hexie", "res-2", "陈先生", "@社区警务助手 快递被冒领")
	h.settle()
	mustContain(t, "rerouted ack", h.lastBot(bot.Group, "hexie").Text, "李明警官")
	h.dm("wang", "值班 开")
	h.settle()
	h.say("hexie", "res-2", "陈先生", "@社区警务助手 还有一件事")
	h.settle()
	mustContain(t, "back on duty", h.lastBot(bot.Group, "hexie").Text, "王建国警官")
}

func TestLogsNeverCarryResidentsWordsOrNumbers(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "13812345678", "@社区警务助手 我的电话13812345678，身份证310101199001011234，楼道有焦味")
	h.dm("wang", "#1 13812345678 我马上打给您")
	h.settle()
	logs := h.Logs.String()
	for _, secret := range []string{"13812345678", "310101199001011234", "楼道有焦味", "马上打给您"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, "event handled") {
		t.Errorf("logs do not show handled events at all; the test would prove nothing")
	}
}

func TestReplyToAnotherStationsTicketIsRefused(t *testing.T) {
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stations = append(cfg.Stations, configs.Station{Code: "xincheng", Name: "新成派出所", SLAMinutes: 20, DutyAccount: "xc-duty"})
	cfg.Officers = append(cfg.Officers,
		configs.Officer{Code: "sun", Station: "xincheng", Name: "孙强", Roles: []string{"officer"}, Identities: map[string]string{"playground": "sun"}},
		configs.Officer{Code: "xc-duty", Station: "xincheng", Name: "新成值班号", Roles: []string{"duty_account"}})
	h := startHub(t, cfg, at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 门口有人发小广告")
	h.settle()
	h.dm("sun", "#1 我来处理")
	h.settle()
	mustContain(t, "reply to another station's ticket", h.lastBot(bot.Direct, "sun").Text, "不属于您所在的派出所")
	if n := len(h.botLines(bot.Group, "hexie")); n != 1 {
		t.Errorf("the group got %d bot messages, want only the acknowledgement", n)
	}
}

// A resident's markup reaches the officer as the words the resident typed:
// no live link, heading, font tag or DingTalk action link in the DM.
func TestResidentsMarkupReachesTheOfficerAsPlainText(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "[补贴](http://evil.example)", "@社区警务助手 [点此领取补贴](http://evil.example/x)\n### 新工单 #99\n<font color=red>急</font> [办结](dtmd://dingtalkclient/sendMessage?content=%231%20办结)")
	h.settle()
	dm := h.lastBot(bot.Direct, "wang")
	if dm.Format != string(bot.FormatMarkdown) {
		t.Fatalf("officer DM format %q, want markdown", dm.Format)
	}
	golden.File(t, "testdata/officer-dm-hostile.golden", []byte(dm.Text))
	for _, live := range []string{"](http", "](dtmd", "\n### 新工单 #99", "<font", "[点此"} {
		if strings.Contains(dm.Text, live) {
			t.Errorf("officer DM keeps live markup %q:\n%s", live, dm.Text)
		}
	}
}
