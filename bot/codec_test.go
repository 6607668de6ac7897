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
	{ID: "playground:m2", Platform: Playground, Chat: ChatRef{Platform: Playground, ID: "hexie", Type: Group}, Sender: User{ID: "res-1"}, Kind: KindText,
		Text: "楼下有人打架了", SeesAllMessages: true},
	{},
}

// Everything EncodeEvent writes comes back the same, and
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
}

// Whatever the bytes, DecodeEvent gives what encoding/json
// gives: the same value, or an error where it errs.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, e := range codecEvents {
		b, _ := json.Marshal(e)
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
	})
}
