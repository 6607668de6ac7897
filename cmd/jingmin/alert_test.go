package main

import (
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

// TestOfficerForwardsAScamAsAlertAdminEditsAndConfirms plays the story of
// the alert: a resident posts a scam text, the officer forwards it from the
// ticket, the station admin edits the draft and confirms it, and every group
// of the station gets the edited alert once (and never the first draft).
func TestOfficerForwardsAScamAsAlertAdminEditsAndConfirms(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"), fastBroadcasts)
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 收到短信：您的法人信息即将到期，请点击链接更新，这是真的吗")
	h.settle()

	got := h.dmAndSettle("wang", "#1 预警")
	mustContain(t, "officer's confirmation", got, "转给赵刚审核为预警广播 B1")
	draft := h.lastBot(bot.Direct, "zhao").Text
	mustContain(t, "admin's draft", draft, "王建国从工单 #1 转来", "法人信息即将到期", "B1")

	edited := h.dmAndSettle("zhao", "修改 B1 【反诈预警】冒充工商部门称“法人信息到期”要求点链接的短信都是诈骗，请勿点击！")
	mustContain(t, "edited draft", edited, "原草稿 B1 作废", "B2", "冒充工商部门")
	mustContain(t, "an officer cannot edit", h.dmAndSettle("wang", "修改 B2 随便改改"), "B2")
	h.dmAndSettle("zhao", "确认 B2")
	groups := []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"}
	waitFor(t, "the alert in every group", func() bool {
		for _, g := range groups {
			if countIn(h, g, "冒充工商部门") != 1 {
				return false
			}
		}
		return true
	})
	for _, g := range groups {
		if n := countIn(h, g, "请点击链接更新"); n != 0 {
			t.Errorf("group %s got the first draft %d times", g, n)
		}
	}
	mustContain(t, "a confirmed alert cannot be edited", h.dmAndSettle("zhao", "修改 B2 再改"), "不是草稿")
	tl, err := h.store.Timeline(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tl[len(tl)-1].Kind, "alert") {
		t.Errorf("ticket timeline does not record the forwarded alert: %+v", tl[len(tl)-1])
	}
}

func countIn(h *testHub, group, text string) int {
	n := 0
	for _, l := range h.botLines(bot.Group, group) {
		if strings.Contains(l.Text, text) {
			n++
		}
	}
	return n
}
