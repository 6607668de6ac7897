package dingtalk

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// TestNormaliseGolden: each testdata/*.json robot callback (the frame's data
// as DingTalk sends it) becomes the event (or the error) in the matching
// .golden file; the reply handle is shown decoded beside the event.
func TestNormaliseGolden(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	golden.Run(t, "testdata/*.json", func(t *testing.T, raw []byte) []byte {
		var d chatbot.BotCallbackDataModel
		if err := json.Unmarshal(raw, &d); err != nil {
			return []byte("error: decode: " + err.Error() + "\n")
		}
		e, err := Normalise(&d, now)
		if err != nil {
			return golden.Error(err)
		}
		out := struct {
			Event  *bot.Event   `json:"event"`
			Handle *replyHandle `json:"reply_handle_decoded,omitempty"`
		}{Event: e}
		if e.ReplyHandle != "" {
			h, err := decodeHandle(e.ReplyHandle)
			if err != nil {
				t.Fatalf("handle made by Normalise does not decode: %v", err)
			}
			out.Handle = &h
		}
		return golden.JSON(out)
	})
}

func TestNormaliseCutsOversizedTextAndNeverPanics(t *testing.T) {
	d := &chatbot.BotCallbackDataModel{MsgId: "m", ConversationId: "c", ConversationType: "2", SenderId: "s", Msgtype: "text"}
	d.Text.Content = " " + strings.Repeat("焦", 6000) + "\xff"
	e, err := Normalise(d, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(e.Text)); n != bot.MaxTextRunes || !strings.HasSuffix(e.Text, "（已截断）") {
		t.Errorf("text has %d runes, want %d ending in the cut mark", n, bot.MaxTextRunes)
	}
	for _, d := range []*chatbot.BotCallbackDataModel{nil, {}, {MsgId: "x"}, {MsgId: "x", ConversationType: "1"}, {MsgId: "x", ConversationType: "2", AtUsers: []chatbot.BotCallbackDataAtUserModel{{}}}} {
		if _, err := Normalise(d, time.Now()); err == nil {
			t.Errorf("Normalise(%+v) accepted an unusable message", d)
		}
	}
}

func TestReplyHandleRejectsWhatItDidNotMake(t *testing.T) {
	good := replyHandle{Webhook: "https://oapi.dingtalk.com/robot/sendBySession?session=x", Expires: 1, User: "u", Nick: "n"}
	h, err := decodeHandle(good.encode())
	if err != nil || h != good {
		t.Fatalf("round trip: %+v, %v", h, err)
	}
	for _, bad := range []string{"", "wecom:abc", "dt1:!!!", "dt1:" + "e30", replyHandle{Webhook: "file:///etc/passwd"}.encode()} {
		if _, err := decodeHandle(bad); err == nil {
			t.Errorf("decodeHandle(%q) accepted it", bad)
		}
	}
	now := time.Now()
	if (replyHandle{Webhook: "https://x", Expires: now.Add(5 * time.Second).UnixMilli()}).usable(now) {
		t.Error("a webhook about to expire counts as usable")
	}
	if !(replyHandle{Webhook: "https://x", Expires: now.Add(time.Hour).UnixMilli()}).usable(now) {
		t.Error("a live webhook counts as unusable")
	}
}

func TestConfigValidateNamesFieldAndProblem(t *testing.T) {
	ok := Config{AppKey: "k", AppSecret: "s"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if d := ok.withDefaults(); d.RobotCode != "k" || d.OpenAPIHost != DefaultOpenAPIHost || d.StreamHost != DefaultOpenAPIHost || d.QPS != DefaultQPS {
		t.Errorf("defaults: %+v", d)
	}
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"dingtalk.app_key: empty", "dingtalk.app_secret: empty: set " + EnvAppSecret}},
		{Config{AppKey: "k", AppSecret: "s", OpenAPIHost: "ftp://x"}, []string{"dingtalk.openapi_host", "http:// or https://"}},
		{Config{AppKey: "k", AppSecret: "s", StreamHost: "https://"}, []string{"dingtalk.stream_host", "no host"}},
		{Config{AppKey: "k", AppSecret: "s", OpenAPIHost: "https://x/?a=b"}, []string{"dingtalk.openapi_host", "no query"}},
		{Config{AppKey: "k", AppSecret: "s", QPS: -1}, []string{"dingtalk.qps: -1"}},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("Validate(%+v) = nil", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%+v) = %q, want it to mention %q", tc.cfg, err, w)
			}
		}
	}
	c := Config{AppKey: "k"}
	c.ApplyEnv(func(k string) (string, bool) {
		if k == EnvAppSecret {
			return " from-env ", true
		}
		return "", false
	})
	if c.AppSecret != "from-env" {
		t.Errorf("ApplyEnv: secret %q", c.AppSecret)
	}
}
