package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// markdownSyntax finds what a markdown renderer would take for syntax: a
// heading, list item, block quote or rule at the start of a line, and
// emphasis, code, links, images, strikethrough and HTML tags anywhere.
var markdownSyntax = regexp.MustCompile("(?m)^\\s*(#{1,6}\\s|[-*+]\\s|\\d+[.)]\\s|>|(-{3,}|\\*{3,}|_{3,}|={3,})\\s*$)|\\*\\*|__|`|~~|!?\\[[^\\]\\n]*\\]\\(|</?[A-Za-z]")

// What a resident, an officer and an admin are sent through a day's work:
// every plain-text message is free of markdown syntax, which the platforms
// would show as written; the officer's 待办 list and the admin's 状态 B1
// report are markdown like the digests and reports they repeat.
func TestPlainTextMessagesCarryNoMarkdown(t *testing.T) {
	h := startHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), fastBroadcasts)
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 电动车停在楼道里充电怎么办")
	h.settle()
	todo := h.dmAndSettle("wang", "待办")
	mustContain(t, "待办", todo, "#1", "电动车停在楼道里充电")
	h.dmAndSettle("wang", "#1 认领")
	h.dmAndSettle("wang", "#1 请不要在楼道里充电")
	h.dmAndSettle("wang", "#99 你好")
	h.dmAndSettle("wang", "帮助")
	h.dmAndSettle("zhao", "广播 本所 近期有冒充客服的诈骗电话")
	h.dmAndSettle("zhao", "确认 B1")
	waitFor(t, "the delivery report", func() bool { return strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "送达报告\n") })
	h.settle()
	report := h.dmAndSettle("zhao", "状态 B1")
	mustContain(t, "状态 B1", report, "已送达 4/4")
	h.dmAndSettle("wang", "#1 办结")

	ctx := context.Background()
	formats := map[string]string{}
	n := 0
	for _, chat := range []struct{ typ, id string }{{"group", "hexie"}, {"direct", "wang"}, {"direct", "zhao"}} {
		rows, err := h.store.SentToChat(ctx, string(bot.Playground), chat.typ, chat.id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rows {
			n++
			formats[m.Text] = m.Format
			if m.Format == string(bot.FormatText) {
				if s := markdownSyntax.FindString(m.Text); s != "" {
					t.Errorf("plain-text %s message to %s %s holds markdown syntax %q:\n%s", m.Purpose, chat.typ, chat.id, strings.TrimSpace(s), m.Text)
				}
			} else if m.Format != string(bot.FormatMarkdown) {
				t.Errorf("message in format %q:\n%s", m.Format, m.Text)
			}
		}
	}
	if n < 12 {
		t.Errorf("%d messages sent, want the dozen the day's work causes", n)
	}
	for what, text := range map[string]string{"待办": todo, "状态 B1": report} {
		if f := formats[text]; f != string(bot.FormatMarkdown) {
			t.Errorf("the %s reply is sent as %q, want markdown:\n%s", what, f, text)
		}
	}
	if st, _ := h.store.TicketByID(ctx, 1); st == nil || st.Status != store.StatusClosed {
		t.Errorf("ticket #1 was not closed along the way: %+v", st)
	}
}
