package bot

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var codecEvents = []Event{
	{ID: "playground:m1", Platform: Playground, MessageID: "m1", Chat: ChatRef{Platform: Playground, ID: "hexie", Type: Group, Name: "和谐小区"},
		Sender: User{ID: "res-1", Name: "刘阿姨"}, Kind: KindText, Text: "楼道里\n有\"焦味\" <script>&\t\\ \u2028 😀 \x01",
		Mentions: []Mention{{Name: "社区警务助手", IsBot: true}, {UserID: "u-wang", Name: "王建国"}}, AddressedToBot: true,
		Quote: &Quote{MessageID: "m0", SenderID: "res-2", Text: "上一条"}, Time: time.Date(2026, 11, 23, 9, 30, 15, 123456789, time.FixedZone("CST", 8*3600)),
		ReplyHandle: "https://oapi.dingtalk.com/robot/sendBySession?session=x&y=1"},
	{ID: "wechat:1", Platform: WeChat, MessageID: "1", Chat: ChatRef{Platform: WeChat, ID: "wr1", Type: Direct}, Sender: User{ID: "o1"}, Kind: KindUnsupported},
	{},
}

var codecOutbounds = []Outbound{
	{Key: "t1:ack", Platform: DingTalk, Chat: &ChatRef{Platform: DingTalk, ID: "cid", Type: Group}, Format: FormatText,
		Text: "已收到，工单 #1\n王警官会答复", AtUsers: []string{"res-1", "res-2"}, ReplyHandle: "h"},
	{Key: "t1:dm:3", Platform: WeChat, ToUser: "wang.jg", Format: FormatMarkdown, Title: "新工单 #1", Text: "### 新工单\n> 问：\"门口\"吵架"},
	{},
}

// Everything EncodeEvent and EncodeOutbound write comes back the same, and
// by the hand reader, not encoding/json.
func TestCodecRoundTripsWhatItWrites(t *testing.T) {
	for _, e := range codecEvents {
		b, err := EncodeEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if r := (jsonReader{b: b}); !r.event(&got) || !r.end() {
			t.Errorf("the hand reader gave %s up to encoding/json", b)
		}
		var want Event
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %s:\n got %#v\nwant %#v", b, got, want)
		}
	}
	for _, o := range codecOutbounds {
		b, err := EncodeOutbound(&o)
		if err != nil {
			t.Fatal(err)
		}
		var got Outbound
		if r := (jsonReader{b: b}); !r.outbound(&got) || !r.end() {
			t.Errorf("the hand reader gave %s up to encoding/json", b)
		}
		d, err := DecodeOutbound(b)
		if err != nil || !reflect.DeepEqual(*d, o) || !reflect.DeepEqual(got, o) {
			t.Errorf("outbound %s: got %#v, %#v (%v), want %#v", b, got, d, err, o)
		}
	}
}

// Whatever the bytes, DecodeEvent and DecodeOutbound give what encoding/json
// gives: the same value, or an error where it errs.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, e := range codecEvents {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	for _, o := range codecOutbounds {
		b, _ := json.Marshal(o)
		f.Add(b)
	}
	for _, s := range []string{`null`, `{}`, `{"id":"a","id":"b"}`, `{"ID":"x"}`, `{"mentions":[{"name":"a","is_bot":true}],"mentions":[{"name":"b"}]}`,
		`{"text":"\ud83d\ude00\ud800x\udc00"}`, `{"time":"2026-11-23T09:30:15Z"}`, `{"time":"bad"}`, `{"quote":null}`, `{"chat":{"id":"a"},"chat":{"type":"group"}}`,
		`{"text":"a"} x`, `{"is_bot":1}`, `{"at_users":["a",null]}`, `{"text":"\u00e9\/\b\f"}`, "{\"text\":\"\xff\"}", `[]`, `{"text":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeEvent(b)
		var want Event
		werr := json.Unmarshal(b, &want)
		if (err != nil) != (werr != nil) || (err == nil && !reflect.DeepEqual(*got, want)) {
			t.Fatalf("event %q: got %#v (%v), encoding/json %#v (%v)", b, got, err, want, werr)
		}
		gotO, err := DecodeOutbound(b)
		var wantO Outbound
		werr = json.Unmarshal(b, &wantO)
		if (err != nil) != (werr != nil) || (err == nil && !reflect.DeepEqual(*gotO, wantO)) {
			t.Fatalf("outbound %q: got %#v (%v), encoding/json %#v (%v)", b, gotO, err, wantO, werr)
		}
	})
}
