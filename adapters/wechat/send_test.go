package wechat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jingminhub/jingmin/bot"
)

// isPermanent tells whether the hub's runner would park err at once. bot
// exports no predicate for it, so this looks for bot.Permanent's type.
func isPermanent(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if fmt.Sprintf("%T", e) == "bot.permanentError" {
			return true
		}
	}
	return false
}

func groupOut(key, text, handle string, at ...string) *bot.Outbound {
	return &bot.Outbound{Key: key, Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: hexie, Type: bot.Group},
		Format: bot.FormatText, Text: text, AtUsers: at, ReplyHandle: handle}
}

func TestGroupReplyUsesResponseURLOnceThenTheWebhook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	handle := encodeReplyHandle(f.api.ResponseURL(), f.clock.Now().Add(time.Hour))
	if err := f.a.Send(ctx, groupOut("t1:ack", "收到，已登记为工单 #1。", handle, "liu.ayi")); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Send(ctx, groupOut("t1:answer", "马上到\n——王建国警官（工单 #1）", handle, "liu.ayi")); err != nil {
		t.Fatal(err)
	}
	ru, hooks := f.api.SentOn("response_url"), f.api.SentOn("webhook")
	if len(ru) != 1 || ru[0].Text != "<@liu.ayi> 收到，已登记为工单 #1。" || ru[0].MsgType != "markdown" {
		t.Errorf("response_url got %+v, want the acknowledgement @-ing the resident", ru)
	}
	if len(hooks) != 1 || hooks[0].To != "hexie" || !strings.Contains(hooks[0].Text, "马上到") ||
		len(hooks[0].Mentions) != 1 || hooks[0].Mentions[0] != "liu.ayi" {
		t.Errorf("webhook got %+v, want the answer in hexie @-ing the resident", hooks)
	}
	if n := f.api.Calls("/cgi-bin/aibot/response"); n != 1 {
		t.Errorf("response_url called %d times; it is usable once", n)
	}
	mustNotContain(t, "logs", f.logs.String(), hexieKey, "马上到")
}

func TestExpiredOrRefusedResponseURLFallsBackToWebhook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	expired := encodeReplyHandle(f.api.ResponseURL(), f.clock.Now().Add(time.Hour))
	f.clock.Add(61 * time.Minute)
	if err := f.a.Send(ctx, groupOut("k1", "一小时后的答复", expired)); err != nil {
		t.Fatal(err)
	}
	if n := f.api.Calls("/cgi-bin/aibot/response"); n != 0 {
		t.Errorf("an expired response_url was tried %d times", n)
	}
	// A response_url WeCom no longer honours (used elsewhere): refused, then the webhook.
	used := encodeReplyHandle(f.api.URL+"/cgi-bin/aibot/response?response_code=never-issued", f.clock.Now().Add(time.Hour))
	if err := deliver(ctx, f.a, groupOut("k2", "被拒后的答复", used)); err != nil {
		t.Fatal(err)
	}
	hooks := f.api.SentOn("webhook")
	if len(hooks) != 2 || hooks[0].Text != "一小时后的答复" || hooks[1].Text != "被拒后的答复" {
		t.Errorf("webhook got %+v", hooks)
	}
}

// deliver sends o as the relay does: a message asked for again later is
// sent again after the wait it names.
func deliver(ctx context.Context, a *Adapter, o *bot.Outbound) error {
	for range 10 {
		err := a.Send(ctx, o)
		d, later := bot.RetryDelay(err)
		if !later {
			return err
		}
		time.Sleep(d)
	}
	return errors.New("still asked to wait after 10 tries")
}

func TestWebhookFrequencyLimitAsksForTheMessageAgainLater(t *testing.T) {
	f := newFixture(t, func(c *Config, _ map[string]string) { c.WebhookPerMinute = 600 })
	ctx := context.Background()
	f.api.Fail("webhook", codeFrequency)
	err := f.a.Send(ctx, groupOut("k1", "防诈骗提醒", ""))
	if d, later := bot.RetryDelay(err); !later || d <= 0 || isPermanent(err) {
		t.Fatalf("45009: err = %v, want to be asked again after a wait", err)
	}
	f.api.Fail("webhook", codeFrequency)
	if err := deliver(ctx, f.a, groupOut("k1", "防诈骗提醒", "")); err != nil {
		t.Fatalf("after the waits: %v", err)
	}
	if got := f.api.SentOn("webhook"); len(got) != 1 {
		t.Errorf("delivered %d times, want once", len(got))
	}
}

// One robot at its rate holds up its own group only: its next message is
// asked for again after the robot's interval, while another group's robot
// takes a message at once.
func TestWebhookRateHoldsUpOnlyItsOwnGroup(t *testing.T) {
	f := newFixture(t, func(c *Config, env map[string]string) {
		c.WebhookPerMinute = 300 // one per 200ms
		env[EnvWebhookKeys] = hexie + "=" + hexieKey + ",wrOther=other-key-1"
	})
	ctx := context.Background()
	f.api.AddWebhook("other-key-1", "other")
	if err := f.a.Send(ctx, groupOut("k1", "通知", "")); err != nil {
		t.Fatal(err)
	}
	d, later := bot.RetryDelay(f.a.Send(ctx, groupOut("k2", "通知", "")))
	if !later || d <= 0 || d > 200*time.Millisecond {
		t.Fatalf("second message to the same robot: retry after %v (%v), want within the robot's 200ms interval", d, later)
	}
	other := &bot.Outbound{Key: "k3", Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: "wrOther", Type: bot.Group}, Text: "通知"}
	if err := f.a.Send(ctx, other); err != nil {
		t.Fatalf("another group's robot: %v, want sent at once", err)
	}
	if got := f.api.SentOn("webhook"); len(got) != 2 {
		t.Errorf("webhook took %d messages, want the first and the other group's", len(got))
	}
}

func TestWebhookFailuresThatNoRetryFixes(t *testing.T) {
	f := newFixture(t, func(c *Config, env map[string]string) {
		env[EnvWebhookKeys] = hexie + "=" + hexieKey + ",wrBroken=hook-revoked-7731"
	})
	ctx := context.Background()
	err := f.a.Send(ctx, &bot.Outbound{Key: "k", Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: "wrBroken", Type: bot.Group}, Text: "通知"})
	if err == nil || !isPermanent(err) || strings.Contains(err.Error(), "hook-revoked-7731") {
		t.Errorf("revoked webhook key: err = %v, want permanent, without the key", err)
	}
	err = f.a.Send(ctx, &bot.Outbound{Key: "k", Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: "wrNoKey", Type: bot.Group}, Text: "通知"})
	if err == nil || !isPermanent(err) || !strings.Contains(err.Error(), EnvWebhookKeys) {
		t.Errorf("group without a key: err = %v, want permanent naming %s", err, EnvWebhookKeys)
	}
	err = f.a.Send(ctx, &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "x", Text: "hi"})
	if err == nil || !isPermanent(err) {
		t.Errorf("a dingtalk message: err = %v, want permanent", err)
	}
	mustNotContain(t, "logs", f.logs.String(), "hook-revoked-7731", hexieKey)
}

func TestOfficerDirectMessagesGoThroughTheApp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	card := "### 新工单 #1\n- 群：和谐小区业主群\n- 问题：楼下电动车被偷了"
	if err := f.a.Send(ctx, &bot.Outbound{Key: "t1:dm", Platform: bot.WeChat, ToUser: "wang.jg", Format: bot.FormatMarkdown, Text: card}); err != nil {
		t.Fatal(err)
	}
	f.api.Fail("app", codeFrequency)
	if err := f.a.Send(ctx, &bot.Outbound{Key: "r:1", Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: "wang.jg", Type: bot.Direct}, Format: bot.FormatText, Text: "已在“和谐小区业主群”答复工单 #1。"}); err != nil {
		t.Fatalf("after one 45009: %v", err)
	}
	got := f.api.SentOn("app")
	if len(got) != 2 || got[0].To != "wang.jg" || got[0].MsgType != "markdown" || got[0].Text != card ||
		got[1].MsgType != "text" || !strings.Contains(got[1].Text, "答复工单 #1") {
		t.Errorf("app messages = %+v", got)
	}
	if n := f.api.Calls("/cgi-bin/gettoken"); n != 1 {
		t.Errorf("fetched the app token %d times, want once (cached)", n)
	}
	f.api.Fail("app", 81013)
	if err := f.a.Send(ctx, &bot.Outbound{Key: "k", Platform: bot.WeChat, ToUser: "left.the.station", Text: "hi"}); err == nil || !isPermanent(err) {
		t.Errorf("unknown user: err = %v, want permanent", err)
	}
	mustNotContain(t, "logs", f.logs.String(), "电动车", f.api.CorpSecret)
}

func TestInvalidAccessTokenIsForgottenAndRefetched(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A token WeCom no longer honours sits in the cache under the SDK's key.
	key := "gowechat_work__access_token_" + testCorp + "_" + testAgent
	if err := f.a.tokens.Set(key, "revoked-token", time.Hour); err != nil {
		t.Fatal(err)
	}
	out := &bot.Outbound{Key: "k", Platform: bot.WeChat, ToUser: "wang.jg", Text: "hi"}
	err := f.a.Send(ctx, out)
	if err == nil || isPermanent(err) {
		t.Fatalf("revoked token: err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "revoked-token") {
		t.Errorf("error quotes the access token: %v", err)
	}
	if err := f.a.Send(ctx, out); err != nil {
		t.Fatalf("retry after the token was forgotten: %v", err)
	}
}

func TestOfficialAccountRepliesInsideAndOutsideThe48HourWindow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	chat := func(openID string) *bot.ChatRef {
		return &bot.ChatRef{Platform: bot.WeChat, ID: OAPrefix + openID, Type: bot.Direct}
	}
	if err := f.a.Send(ctx, &bot.Outbound{Key: "a1", Platform: bot.WeChat, Chat: chat("oInside"), Format: bot.FormatMarkdown, Text: "### 答复\n请携带身份证到派出所办理"}); err != nil {
		t.Fatal(err)
	}
	got := f.api.SentOn("oa")
	if len(got) != 1 || got[0].To != "oInside" || got[0].Text != "答复\n请携带身份证到派出所办理" {
		t.Errorf("customer-service messages = %+v", got)
	}
	f.api.CloseReplyWindow("oOutside")
	err := f.a.Send(ctx, &bot.Outbound{Key: "a2", Platform: bot.WeChat, Chat: chat("oOutside"), Text: "迟到的答复"})
	if !errors.Is(err, ErrReplyWindowClosed) || !isPermanent(err) {
		t.Errorf("outside the window: err = %v, want permanent ErrReplyWindowClosed", err)
	}
	if n := len(f.api.SentOn("oa")); n != 1 {
		t.Errorf("%d customer-service messages delivered; the late one must not count as sent", n)
	}
	// A resident's openid never reaches the app, even as ToUser.
	if err := f.a.Send(ctx, &bot.Outbound{Key: "a3", Platform: bot.WeChat, ToUser: OAPrefix + "oInside", Text: "补充"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.api.SentOn("app")); n != 0 {
		t.Errorf("an openid went to the WeCom app %d times", n)
	}
}

func TestRobotSingleChatAnswersInPlace(t *testing.T) {
	f := newFixture(t)
	handle := encodeReplyHandle(f.api.ResponseURL(), f.clock.Now().Add(time.Hour))
	out := &bot.Outbound{Key: "r:x", Platform: bot.WeChat, Chat: &bot.ChatRef{Platform: bot.WeChat, ID: "wang.jg", Type: bot.Direct}, Text: "已认领工单 #3", ReplyHandle: handle}
	if err := f.a.Send(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if len(f.api.SentOn("response_url")) != 1 || len(f.api.SentOn("app")) != 0 {
		t.Errorf("sent = %+v, want the answer in the robot chat", f.api.Sent())
	}
}

func TestRedact(t *testing.T) {
	err := errors.New("http post error : uri=https://x/cgi-bin/message/send?access_token=SECRET1&debug=1 , corpsecret=S2 key=K3 response_code=R4 errcode=45009")
	got := redact(err).Error()
	mustNotContain(t, "redacted", got, "SECRET1", "S2", "K3", "R4")
	if !strings.Contains(got, "errcode=45009") || !strings.Contains(got, "debug=1") {
		t.Errorf("redact removed too much: %s", got)
	}
}

func TestLongMessagesAreCutToWeComLimits(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("焦", 3000) // 9000 bytes
	if err := f.a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.WeChat, ToUser: "wang.jg", Format: bot.FormatMarkdown, Text: long}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Send(context.Background(), groupOut("g", long, "")); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.api.Sent() {
		if len(m.Text) > maxTextBytes || !utf8.ValidString(m.Text) || !strings.HasSuffix(m.Text, "（已截断）") {
			t.Errorf("%s message of %d bytes (valid %v), want at most %d, cut visibly", m.Channel, len(m.Text), utf8.ValidString(m.Text), maxTextBytes)
		}
	}
	if got := fit("短", 100); got != "短" {
		t.Errorf("fit cut a short text: %q", got)
	}
}
