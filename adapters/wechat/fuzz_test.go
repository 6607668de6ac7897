package wechat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/silenceper/wechat/v2/util"

	"github.com/jingminhub/jingmin/bot"
)

// FuzzCallbackDecoder feeds arbitrary bytes to every stage a callback body
// goes through: the ciphertext decryption, the robot JSON and app XML
// decoders with their normalisers, and a seal/open round trip through the
// SDK's encryption and ours. Nothing may panic, and every event that comes
// out must be one the hub can take. The seed corpus is testdata/fuzz plus the
// golden inputs.
//
//	go test -run XXX -fuzz FuzzCallbackDecoder -fuzztime 5m ./adapters/wechat/
func FuzzCallbackDecoder(f *testing.F) {
	for _, s := range []string{
		`{"msgid":"m","chattype":"group","chatid":"c","from":{"userid":"u"},"msgtype":"text","text":{"content":"@太平警务\u2005@王警官 你好"}}`,
		`{"msgid":"m","chattype":"single","from":{"userid":"u"},"msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"text","text":{"content":"＠a＠b"}}]},"response_url":"http://x"}`,
		`<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>#1 好</Content><MsgId>1</MsgId><AgentID>1000002</AgentID></xml>`,
		sampleEncrypt, sampleEchoStr,
	} {
		f.Add([]byte(s))
	}
	key, err := aesKey(sampleAESKey)
	if err != nil {
		f.Fatal(err)
	}
	names := []string{"太平警务"}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = decrypt(key, string(data))

		e, err := DecodeRobot(data, names, goldenNow)
		checkEvent(t, "robot", e, err)
		e, err = DecodeApp(data, "1000002", goldenNow)
		checkEvent(t, "app", e, err)

		ct, err := util.EncryptMsg(bytes.Repeat([]byte{1}, 16), data, "", sampleAESKey)
		if err != nil {
			t.Fatalf("SDK encryption failed: %v", err)
		}
		got, rid, err := decrypt(key, string(ct))
		if err != nil || rid != "" || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %q, %q, %v", got, rid, err)
		}
	})
}

func checkEvent(t *testing.T, what string, e *bot.Event, err error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrIgnored):
		return
	case err != nil:
		return // refused with a reason: the handler answers 400
	case e == nil:
		t.Fatalf("%s: no event and no error", what)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("%s: event does not validate: %v", what, err)
	}
	if !strings.HasPrefix(e.ID, "wechat:") || e.Platform != bot.WeChat || !e.AddressedToBot {
		t.Fatalf("%s: event %+v", what, e)
	}
	if !utf8.ValidString(e.Text) || utf8.RuneCountInString(e.Text) > bot.MaxTextRunes {
		t.Fatalf("%s: text invalid or %d runes long", what, utf8.RuneCountInString(e.Text))
	}
	if e.Text != strings.TrimSpace(e.Text) {
		t.Fatalf("%s: text %q has surrounding space", what, e.Text)
	}
	for _, m := range e.Mentions {
		if m.Name == "" || strings.ContainsAny(m.Name, " \u2005") {
			t.Fatalf("%s: mention %q", what, m.Name)
		}
	}
	if e.ReplyHandle != "" {
		if _, _, ok := decodeReplyHandle(e.ReplyHandle); !ok {
			t.Fatalf("%s: reply handle %q does not decode", what, e.ReplyHandle)
		}
	}
	if len(e.MessageID) > maxIDLen+40 || len(e.Sender.ID) > maxIDLen+len(OAPrefix) || len(e.Chat.ID) > maxIDLen+len(OAPrefix) {
		t.Fatalf("%s: oversized ids", what)
	}
}
