package bot

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExtractMentions(t *testing.T) {
	tests := []struct {
		in, text string
		names    []string
	}{
		{"@社区警务助手\u2005楼道有焦味", "楼道有焦味", []string{"社区警务助手"}},
		{"@社区警务助手 @王警官\u2005电动车被偷了", "电动车被偷了", []string{"社区警务助手", "王警官"}},
		{"你好@李警官\u2005在吗", "你好 在吗", []string{"李警官"}},
		{"邮箱 a@b.com 收不到", "邮箱 a@b.com 收不到", nil},
		{"＠王警官 全角", "全角", []string{"王警官"}},
		{"@", "@", nil},
		{"  只有文字  ", "只有文字", nil},
		{"@社区警务助手 地址：幸福路1号\n问题：楼道  堆物\n", "地址：幸福路1号\n问题：楼道 堆物", []string{"社区警务助手"}},
		{"请@王警官\n看看", "请\n看看", []string{"王警官"}},
	}
	for _, tc := range tests {
		text, names := ExtractMentions(tc.in)
		if text != tc.text || !reflect.DeepEqual(names, tc.names) {
			t.Errorf("ExtractMentions(%q) = %q %q, want %q %q", tc.in, text, names, tc.text, tc.names)
		}
	}
}

func TestMaskHidesPhoneAndIDNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"电话13812345678", "电话138****5678"},
		{"身份证310101199001011234", "身份证310101********1234"},
		{"身份证31010119900101123X", "身份证310101********123X"},
		{"身份证31010119900101123x", "身份证310101********123X"},
		{"老身份证310101900101123", "老身份证310101******123"},
		{"工单 #123 座机 021-59991234", "工单 #123 座机 021-59991234"},
		{"13812345678,13987654321", "138****5678,139****4321"},
		{"打138-1234-5678找我", "打138****5678找我"},
		{"打138 1234 5678找我", "打138****5678找我"},
		{"+8613812345678", "138****5678"},
		{"+86 138 1234 5678", "138****5678"},
		{"+86-138-1234-5678", "138****5678"},
		{"8613812345678", "138****5678"},
		{"电话１３８１２３４５６７８", "电话138****5678"},
		{"＋８６ １３８１２３４５６７８", "138****5678"},
		{"身份证３１０１０１１９９００１０１１２３Ｘ", "身份证310101********123X"},
		{"310101 19900101 1234", "310101********1234"},
		{"13812345678 13987654321", "138****5678 139****4321"},
		{"工单 12 13812345678", "工单 12 138****5678"},
		{"2026-11-23 10:00 第3号", "2026-11-23 10:00 第3号"},
		{"#12 34号楼", "#12 34号楼"},
		{"12345", "12345"},
	} {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogIDIsKeyedAndStable(t *testing.T) {
	k1 := logKeyFrom(func(string) (string, bool) { return "deployment-key", true })
	k2 := logKeyFrom(func(string) (string, bool) { return "", false })
	k3 := logKeyFrom(func(string) (string, bool) { return "", false })
	a, b := logIDWith(k1, "oRes1"), logIDWith(k1, "oRes1")
	if a != b || !strings.HasPrefix(a, "id:") || len(a) != 15 || strings.Contains(a, "oRes1") {
		t.Errorf("LogID = %q then %q, want the same short hash", a, b)
	}
	if logIDWith(k1, "oRes2") == a {
		t.Error("two residents share a log id")
	}
	if logIDWith(k2, "oRes1") == a || logIDWith(k2, "oRes1") == logIDWith(k3, "oRes1") {
		t.Error("the log id does not depend on the key (random without JINGMIN_LOG_KEY)")
	}
	if LogID("") != "" || LogID("x") != LogID("x") {
		t.Error("LogID is not stable in one process")
	}
	if got := LogChat(ChatRef{Platform: WeChat, Type: Direct, ID: "oa:oRes1"}); strings.Contains(got, "oRes1") || !strings.HasPrefix(got, "wechat:direct:id:") {
		t.Errorf("direct chat in logs = %q", got)
	}
	if got := LogChat(ChatRef{Platform: WeChat, Type: Group, ID: "wrHexie"}); got != "wechat:group:wrHexie" {
		t.Errorf("group in logs = %q, want its key", got)
	}
}

func TestMaskingHandlerMasksAttributesAndErrors(t *testing.T) {
	var b strings.Builder
	log := slog.New(NewMaskingHandler(slog.NewTextHandler(&b, nil))).With("who", "13812345678")
	log.Info("call 13912345678", "err", errString("bad input 310101199001011234"), slog.Group("g", "phone", "13712345678"))
	out := b.String()
	for _, secret := range []string{"13812345678", "13912345678", "310101199001011234", "13712345678"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line contains %s: %s", secret, out)
		}
	}
	if !strings.Contains(out, "138****5678") {
		t.Errorf("masked value missing: %s", out)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestTruncateNeverSplitsACharacter(t *testing.T) {
	long := strings.Repeat("焦", 5000)
	got := Truncate(long, 4000)
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) != 4000 || !strings.HasSuffix(got, "（已截断）") {
		t.Errorf("Truncate: valid=%v runes=%d", utf8.ValidString(got), utf8.RuneCountInString(got))
	}
	if Truncate("短", 4000) != "短" {
		t.Error("short text changed")
	}
	if !utf8.ValidString(Truncate("ab\xffcd", 10)) {
		t.Error("invalid UTF-8 survived")
	}
}

func TestCleanTextDropsControlAndBidiCharacters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"楼道\x00有\x07焦味\x1b[31m", "楼道有焦味[31m"},
		{"第一行\r\n第二行\t缩进", "第一行\n第二行\t缩进"},
		{"删除\x7f键", "删除键"},
		{"#1 \u202e结办\u202c 请看", "#1 结办 请看"},
		{"\u2066隔离\u2069\u202a嵌入\u202b\u202d", "隔离嵌入"},
		{"普通文字 a@b.com", "普通文字 a@b.com"},
		{"零宽\u200b保留", "零宽\u200b保留"},
	} {
		if got := CleanText(tc.in); got != tc.want {
			t.Errorf("CleanText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLogMiddlewareHashesDirectChats: the line for a resident's direct chat
// names it by its log id, never the platform id.
func TestLogMiddlewareHashesDirectChats(t *testing.T) {
	var b strings.Builder
	h := Log(slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)(
		HandlerFunc(func(context.Context, *Event) error { return errString("store down") }))
	e := &Event{ID: "wechat:oa:1", Chat: ChatRef{Platform: WeChat, Type: Direct, ID: "oa:oSecretOpenID"}}
	_ = h.Handle(context.Background(), e)
	if out := b.String(); strings.Contains(out, "oSecretOpenID") || !strings.Contains(out, LogID("oa:oSecretOpenID")) {
		t.Errorf("log line = %s, want the chat's log id only", out)
	}
}
