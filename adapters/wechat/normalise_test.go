package wechat

import (
	"errors"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// goldenNow is the moment the golden events are normalised at.
var goldenNow = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// TestNormaliseGolden: each decrypted callback in testdata (robot *.json,
// app *.xml) becomes the event, "ignored", or the error in its .golden file.
func TestNormaliseGolden(t *testing.T) {
	decode := func(dec func(raw []byte) (*bot.Event, error)) func(t *testing.T, raw []byte) []byte {
		return func(t *testing.T, raw []byte) []byte {
			e, err := dec(raw)
			switch {
			case errors.Is(err, ErrIgnored):
				return []byte("ignored\n")
			case err != nil:
				return golden.Error(err)
			}
			return golden.JSON(e)
		}
	}
	golden.Run(t, "testdata/*.json", decode(func(raw []byte) (*bot.Event, error) {
		return DecodeRobot(raw, []string{"太平警务"}, goldenNow)
	}))
	golden.Run(t, "testdata/*.xml", decode(func(raw []byte) (*bot.Event, error) {
		return DecodeApp(raw, "1000002", goldenNow)
	}))
}

func TestNormaliseOA(t *testing.T) {
	e, err := NormaliseOA(OAMessage{OpenID: "oABC", MsgID: 42, MsgType: "text", Content: " 我的电动车被偷了 ", CreateTime: 1795394400}, goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "wechat:oa:42" || e.Chat.ID != "oa:oABC" || e.Chat.Type != bot.Direct || e.Sender.ID != "oa:oABC" || e.Text != "我的电动车被偷了" || !e.AddressedToBot {
		t.Errorf("event = %+v", e)
	}
	if _, err := NormaliseOA(OAMessage{OpenID: "oABC", MsgType: "event"}, goldenNow); !errors.Is(err, ErrIgnored) {
		t.Errorf("subscribe event: err = %v, want ErrIgnored", err)
	}
	if _, err := NormaliseOA(OAMessage{OpenID: "oABC", MsgType: "text"}, goldenNow); err == nil {
		t.Error("a message without MsgId was accepted")
	}
	e, _ = NormaliseOA(OAMessage{OpenID: "oABC", MsgID: 43, MsgType: "image"}, goldenNow)
	if e == nil || e.Kind != bot.KindUnsupported {
		t.Errorf("image = %+v, want unsupported", e)
	}
}

func TestReplyHandleRoundTrip(t *testing.T) {
	u := "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=a:b"
	exp := time.Unix(1795398000, 0)
	got, gotExp, ok := decodeReplyHandle(encodeReplyHandle(u, exp))
	if !ok || got != u || !gotExp.Equal(exp) {
		t.Errorf("round trip = %q %v %v", got, gotExp, ok)
	}
	for _, h := range []string{"", "ru:", "ru:x:http://a", "ru:123:", "session:abc"} {
		if _, _, ok := decodeReplyHandle(h); ok {
			t.Errorf("decodeReplyHandle(%q) ok", h)
		}
	}
}
