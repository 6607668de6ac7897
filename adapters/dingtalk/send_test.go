package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
)

// asked delivers a resident's question and returns its event, whose reply
// handle carries the stand-in's session webhook.
func (r *rig) asked(m dingtalktest.Msg) *bot.Event {
	r.t.Helper()
	r.srv.WaitAck(r.t, r.srv.Deliver(m))
	return r.event()
}

func reply(e *bot.Event, key, text string, at ...string) *bot.Outbound {
	chat := e.Chat
	return &bot.Outbound{Key: key, Platform: bot.DingTalk, Chat: &chat, Format: bot.FormatText, Text: text, AtUsers: at, ReplyHandle: e.ReplyHandle}
}

// isPermanentForHub is what the hub's runner checks: bot.Permanent
// somewhere in the chain (its type is unexported, hence the name test).
func isPermanentForHub(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if fmt.Sprintf("%T", e) == "bot.permanentError" {
			return true
		}
	}
	return false
}

func TestGroupReplyGoesThroughTheSessionWebhookAndAtsTheResident(t *testing.T) {
	r := newRig(t, rigOpt{})
	e := r.asked(groupMsg("cidHexie==", "楼道灯坏了"))
	if err := r.a.Send(context.Background(), reply(e, "k1", "收到，已登记为工单 #1。", e.Sender.ID)); err != nil {
		t.Fatal(err)
	}
	got := r.srv.Group("cidHexie==")
	if len(got) != 1 || got[0].Via != "webhook" {
		t.Fatalf("group sees %+v, want one webhook reply", got)
	}
	if len(got[0].AtDingtalkIDs) != 1 || got[0].AtDingtalkIDs[0] != e.Sender.ID || got[0].Text != "收到，已登记为工单 #1。" {
		t.Errorf("reply = %+v, want the resident @-ed and the text", got[0])
	}
	// A member of the organisation is @-ed by staff id.
	staff := groupMsg("cidHexie==", "还有一件事")
	staff.SenderStaffID, staff.SenderID = "staff-neighbour", ""
	e2 := r.asked(staff)
	if err := r.a.Send(context.Background(), reply(e2, "k2", "好的", "staff-neighbour")); err != nil {
		t.Fatal(err)
	}
	if m := r.srv.Group("cidHexie==")[1]; len(m.AtUserIDs) != 1 || m.AtUserIDs[0] != "staff-neighbour" || !strings.HasPrefix(m.Text, "@staff-neighbour ") {
		t.Errorf("staff @ = %+v", m)
	}
	if n := len(r.srv.Calls(dingtalktest.PathGroupSend)); n != 0 {
		t.Errorf("%d OpenAPI group sends while the webhook was valid", n)
	}
}

func TestExpiredOrRefusedWebhookFallsBackToTheOpenAPI(t *testing.T) {
	r := newRig(t, rigOpt{})
	expired := groupMsg("cidHexie==", "电动车被偷了")
	expired.WebhookExpired = true
	e := r.asked(expired)
	if err := r.a.Send(context.Background(), reply(e, "k1", "答复一", e.Sender.ID)); err != nil {
		t.Fatal(err)
	}
	got := r.srv.Group("cidHexie==")
	if len(got) != 1 || got[0].Via != "openapi" || got[0].Text != "@刘阿姨 答复一" {
		t.Fatalf("group sees %+v, want the OpenAPI fallback naming the resident", got)
	}
	if n := len(r.srv.Calls(dingtalktest.PathWebhook)); n != 0 {
		t.Errorf("an expired webhook was tried %d times", n)
	}

	// Valid by its expiry time, but DingTalk refuses it (errcode, HTTP 200).
	e2 := r.asked(groupMsg("cidHexie==", "第二个问题"))
	r.srv.ExpireSessions()
	if err := r.a.Send(context.Background(), reply(e2, "k2", "答复二", e2.Sender.ID)); err != nil {
		t.Fatal(err)
	}
	got = r.srv.Group("cidHexie==")
	if len(got) != 2 || got[1].Via != "openapi" || !strings.Contains(got[1].Text, "答复二") {
		t.Fatalf("group sees %+v, want the refused webhook's reply through the OpenAPI", got)
	}
	if !strings.Contains(r.logs.String(), "session webhook refused") {
		t.Error("the refused webhook was not logged")
	}
	r.cleanLogs("session=", "答复")
}

func TestOfficerDirectMessageIsAMarkdownCard(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true})
	card := "### 新工单 #1\n- 群：和谐小区业主群\n- 居民：刘阿姨\n- 问题：楼道灯坏了\n\n回复“#1 内容”即在群里答复并@居民"
	o := &bot.Outbound{Key: "t1:dm", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatMarkdown, Title: "新工单 #1", Text: card}
	if err := r.a.Send(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	dms := r.srv.DMs("staff-wang")
	if len(dms) != 1 || dms[0].Kind != "markdown" || dms[0].Title != "新工单 #1" || dms[0].Text != card {
		t.Fatalf("officer sees %+v", dms)
	}
	// A direct reply whose webhook is gone reaches the officer by staff id.
	o2 := &bot.Outbound{Key: "r:1", Platform: bot.DingTalk, Chat: &bot.ChatRef{Platform: bot.DingTalk, ID: "staff-wang", Type: bot.Direct}, Format: bot.FormatText, Text: "已认领",
		ReplyHandle: replyHandle{Webhook: r.srv.URL + dingtalktest.PathWebhook + "?session=gone", Expires: time.Now().Add(-time.Hour).UnixMilli()}.encode()}
	if err := r.a.Send(context.Background(), o2); err != nil {
		t.Fatal(err)
	}
	if dms := r.srv.DMs("staff-wang"); len(dms) != 2 || dms[1].Text != "已认领" || dms[1].Kind != "text" {
		t.Errorf("officer sees %+v", dms)
	}
}

func TestAccessTokenIsCachedRefreshedBeforeExpiryAndOnceOnRefusal(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true, srvOpts: dingtalktest.Options{TokenTTL: 2 * time.Second}})
	dm := func(i int) error {
		return r.a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatText, Text: "消息"})
	}
	for i := range 3 {
		if err := dm(i); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.srv.TokensIssued(); n != 1 {
		t.Errorf("3 sends fetched %d tokens, want 1", n)
	}
	time.Sleep(1600 * time.Millisecond) // within the last quarter of the 2 s token's life
	if err := dm(3); err != nil {
		t.Fatal(err)
	}
	if n := r.srv.TokensIssued(); n != 2 {
		t.Errorf("a token about to expire was used: %d tokens issued, want 2", n)
	}
	r.srv.RevokeTokens()
	if err := dm(4); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n := r.srv.TokensIssued(); n != 3 {
		t.Errorf("refused token: %d tokens issued, want 3 (one refresh)", n)
	}
	if n := len(r.srv.DMs("staff-wang")); n != 5 {
		t.Errorf("officer got %d messages, want 5", n)
	}
	// Refused even with a fresh token: the app lacks permission, no retry helps.
	r.srv.Fail(dingtalktest.PathBatchSend, 2, http.StatusUnauthorized, "InvalidAuthentication")
	if err := dm(5); !isPermanentForHub(err) {
		t.Errorf("refused twice: err = %v, want permanent", err)
	}
}

func TestThrottledCallsBackOffAndAreDelivered(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true})
	r.srv.Throttle(dingtalktest.PathBatchSend, 2)
	o := &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatText, Text: "新工单"}
	if err := r.a.Send(context.Background(), o); err != nil {
		t.Fatalf("throttled twice: %v", err)
	}
	if n := len(r.srv.Calls(dingtalktest.PathBatchSend)); n != 3 {
		t.Errorf("%d calls, want 3 (two throttled, one delivered)", n)
	}
	r.srv.Fail(dingtalktest.PathGroupSend, 1, http.StatusForbidden, "90018")
	g := &bot.Outbound{Key: "g", Platform: bot.DingTalk, Chat: &bot.ChatRef{Platform: bot.DingTalk, ID: "cidHexie==", Type: bot.Group}, Format: bot.FormatText, Text: "提醒"}
	if err := r.a.Send(context.Background(), g); err != nil {
		t.Fatalf("90018 once: %v", err)
	}
	if len(r.srv.DMs("staff-wang")) != 1 || len(r.srv.Group("cidHexie==")) != 1 {
		t.Error("throttled messages were not delivered")
	}
	// Throttled for longer than one Send tries: a plain error, the hub retries.
	r.srv.Throttle(dingtalktest.PathBatchSend, 10)
	err := r.a.Send(context.Background(), o)
	if err == nil || isPermanentForHub(err) {
		t.Errorf("long throttle: err = %v, want a retryable error", err)
	}
	if !strings.Contains(r.logs.String(), "dingtalk throttled the app") {
		t.Error("throttling not logged")
	}
}

func TestFailuresAreSortedIntoPermanentAndRetryable(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true})
	r.srv.InvalidStaff("staff-gone")
	ctx := context.Background()
	group := &bot.ChatRef{Platform: bot.DingTalk, ID: "cidHexie==", Type: bot.Group}
	tests := []struct {
		name      string
		setup     func()
		o         *bot.Outbound
		permanent bool
	}{
		{"unknown staff id", nil, &bot.Outbound{Key: "a", Platform: bot.DingTalk, ToUser: "staff-gone", Text: "x"}, true},
		{"another platform", nil, &bot.Outbound{Key: "b", Platform: bot.WeChat, ToUser: "u", Text: "x"}, true},
		{"no text", nil, &bot.Outbound{Key: "c", Platform: bot.DingTalk, ToUser: "u", Text: " "}, true},
		{"bad request", func() { r.srv.Fail(dingtalktest.PathGroupSend, 1, 400, "invalidParameter.openConversationId") }, &bot.Outbound{Key: "d", Platform: bot.DingTalk, Chat: group, Text: "x"}, true},
		{"server error", func() { r.srv.Fail(dingtalktest.PathGroupSend, 1, 502, "BadGateway") }, &bot.Outbound{Key: "e", Platform: bot.DingTalk, Chat: group, Text: "x"}, false},
		{"token endpoint down", func() {
			r.srv.RevokeTokens()
			r.srv.Fail(dingtalktest.PathToken, 1, 503, "ServiceUnavailable")
		}, &bot.Outbound{Key: "f", Platform: bot.DingTalk, Chat: group, Text: "x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			err := r.a.Send(ctx, tc.o)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := isPermanentForHub(err); got != tc.permanent {
				t.Errorf("permanent = %v, want %v (err %v)", got, tc.permanent, err)
			}
		})
	}
	// Wrong app secret: no retry fixes it.
	bad, err := New(Config{AppKey: r.srv.AppKey(), AppSecret: "wrong", OpenAPIHost: r.srv.URL}, r.bus, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Send(ctx, &bot.Outbound{Key: "g", Platform: bot.DingTalk, ToUser: "u", Text: "x"}); !isPermanentForHub(err) {
		t.Errorf("wrong secret: %v, want permanent", err)
	}
	// Nothing reachable at all: retryable.
	down, _ := New(Config{AppKey: "k", AppSecret: "s", OpenAPIHost: "http://127.0.0.1:1"}, r.bus, nil, nil)
	if err := down.Send(ctx, &bot.Outbound{Key: "h", Platform: bot.DingTalk, ToUser: "u", Text: "x"}); err == nil || isPermanentForHub(err) {
		t.Errorf("unreachable: %v, want retryable", err)
	}
}

// A flow-controlled officer's DM is not lost and not hammered: Send asks
// for it again after the configured wait, which the relay keeps as a
// scheduled row, and the next try delivers.
func TestFlowControlledDirectMessageIsAskedForAgainLater(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true, opts: []Option{WithFlowControlRetry(45 * time.Second)}})
	ctx := context.Background()
	r.srv.FlowControl("staff-wang", 1)
	o := &bot.Outbound{Key: "page:staff-wang", Platform: bot.DingTalk, ToUser: "staff-wang", Format: bot.FormatMarkdown, Title: "紧急工单 #7", Text: "### 紧急工单 #7\n- 内容：有人打架"}
	err := r.a.Send(ctx, o)
	if d, ok := bot.RetryDelay(err); !ok || d != 45*time.Second || isPermanentForHub(err) {
		t.Fatalf("flow-controlled send: %v, want retry after 45s", err)
	}
	if n := len(r.srv.DMs("staff-wang")); n != 0 {
		t.Fatalf("wang got %d while flow-controlled", n)
	}
	if err := r.a.Send(ctx, o); err != nil {
		t.Fatalf("second try: %v", err)
	}
	if dms := r.srv.WaitDMs(t, "staff-wang", 1); dms[0].Title != "紧急工单 #7" {
		t.Errorf("wang sees %+v", dms)
	}
}

func TestRateLimitSpacesCallsToOneAPI(t *testing.T) {
	r := newRig(t, rigOpt{noRun: true, cfg: func(c *Config) { c.QPS = 5 }})
	start := time.Now()
	for range 15 {
		if err := r.a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "staff-wang", Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// A bucket of 5 and 5 a second: the last 10 calls need at least 2 s.
	if took := time.Since(start); took < 1800*time.Millisecond {
		t.Errorf("15 calls at 5 QPS took %s", took)
	}
}

func TestProactiveGroupSendReportsDingTalksMessageKey(t *testing.T) {
	r := newRig(t, rigOpt{})
	chat := bot.ChatRef{Platform: bot.DingTalk, ID: "cidHexie==", Type: bot.Group}
	id, err := r.a.SendReceipt(context.Background(), &bot.Outbound{Key: "bc1:g1", Platform: bot.DingTalk, Chat: &chat, Format: bot.FormatText, Text: "【反诈预警】勿信冒充客服"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "pqk-") {
		t.Errorf("message id = %q, want DingTalk's processQueryKey", id)
	}
	if got := r.srv.Group("cidHexie=="); len(got) != 1 || got[0].Via == "webhook" {
		t.Errorf("group sees %+v, want one OpenAPI message", got)
	}
}
