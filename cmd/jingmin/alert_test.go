package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
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
	// The delivery report reaches the author on its own time; wait for it
	// so the next answer is not mistaken for it.
	waitFor(t, "the delivery report to the admin", func() bool {
		return strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "B2 送达报告")
	})
	mustContain(t, "a confirmed alert cannot be edited", h.dmAndSettle("zhao", "修改 B2 再改"), "不是草稿")
	tl, err := h.rules.Timeline(t.Context(), 1)
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

// TestResidentIsAnsweredWhileABigBroadcastRuns: the alert to hundreds of
// groups goes out at the platform's rate, and a resident's question asked
// meanwhile is acknowledged before the broadcast is done, not after it.
func TestResidentIsAnsweredWhileABigBroadcastRuns(t *testing.T) {
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		cfg.Groups = append(cfg.Groups, configs.Group{Platform: "playground", ChatID: fmt.Sprintf("g%03d", i), Name: fmt.Sprintf("第%d小区群", i), Station: "taiping"})
	}
	cfg.Broadcast.Rates["playground"] = 100 // about three seconds for the whole station
	h := startHub(t, cfg, at("2026-11-23 10:00"), fastBroadcasts)
	h.dmAndSettle("zhao", "广播 本所 【反诈预警】近期有冒充快递员理赔的诈骗电话")
	h.dm("zhao", "确认 B1")
	waitFor(t, "the broadcast under way", func() bool { return countIn(h, "g000", "冒充快递员")+countIn(h, "g150", "冒充快递员") > 0 })
	h.say("hexie", "res-9", "孙先生", "@社区警务助手 楼下停车位被占了")
	waitFor(t, "the acknowledgement", func() bool {
		for _, l := range h.botLines(bot.Group, "hexie") {
			if strings.Contains(l.Text, "已登记为工单") {
				return true
			}
		}
		return false
	})
	b, counts, err := h.rules.BroadcastProgress(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status == "done" || counts["sent"] >= b.Total {
		t.Errorf("the resident was answered only after the broadcast finished (%v)", counts)
	}
	// The rest goes out at the platform's rate, as fast as a loaded
	// machine lets it: the broadcast must finish, and must not stall (no
	// delivery for 20 s) on its way.
	var last, stalled = -1, time.Now()
	for {
		b, counts, err := h.rules.BroadcastProgress(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status == "done" {
			break
		}
		if n := counts["sent"] + counts["failed"]; n != last {
			last, stalled = n, time.Now()
		} else if time.Since(stalled) > 20*time.Second {
			t.Fatalf("the broadcast stalled at %v of %d (status %s)", counts, b.Total, b.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
