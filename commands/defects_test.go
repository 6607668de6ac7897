package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// A weekday morning: 王建国 and 李明 are on shift, the hexie group is 王建国's.
var weekdayMorning = when("2026-11-23 10:00")

func TestClaimOnAnsweredTicketSaysItIsAnswered(t *testing.T) {
	r := newRig(t, weekdayMorning, nil)
	r.group("hexie", "res-1", "@社区警务助手 小区门口的路灯坏了找谁")
	r.direct("wang", "#1 已联系物业，今天修好")
	r.sent()
	r.direct("wang", "#1 认领")
	got := to(r.sent(), "wang")
	if len(got) != 1 || !strings.Contains(got[0].Text, "已经答复") || strings.Contains(got[0].Text, "分钟内答复") {
		t.Fatalf("claiming an answered ticket answered:\n%s\nwant it to say the ticket is answered already", texts(got))
	}
	tk, err := r.st.TicketByNumber(r.ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != "answered" || tk.EscalateAt != nil {
		t.Errorf("claim changed an answered ticket: status %s, timer %v", tk.Status, tk.EscalateAt)
	}
}

func TestRepeatedHandoverIsRefusedPolitely(t *testing.T) {
	r := newRig(t, weekdayMorning, nil)
	r.group("hexie", "res-1", "@社区警务助手 楼上装修太吵")
	r.sent()
	r.direct("wang", "#1 转 李警官")
	first := r.sent()
	if n := len(to(first, "li")); n != 1 {
		t.Fatalf("李明 got %d messages from the handover, want 1:\n%s", n, texts(first))
	}
	r.direct("wang", "#1 转 李警官")
	again := r.sent()
	if n := len(to(again, "li")); n != 0 {
		t.Errorf("the repeated handover DMed 李明 again:\n%s", texts(again))
	}
	reply := to(again, "wang")
	if len(reply) != 1 || !strings.Contains(reply[0].Text, "已由李明负责") {
		t.Errorf("repeated handover answered:\n%s\nwant: already 李明's", texts(reply))
	}
	tk, _ := r.st.TicketByNumber(r.ctx, 1, 1)
	if tk.AssigneeID == nil || r.h.dir.Load().officers[*tk.AssigneeID].Name != "李明" {
		t.Errorf("after the repeated handover the ticket is with %v, want 李明", tk.AssigneeID)
	}
}

// An alert forwarded from a ticket opens with its own label: groups get it
// once, and asking to resend when nothing failed says so.
func TestForwardedAlertHasOneLabelAndNothingToResend(t *testing.T) {
	r := newRig(t, weekdayMorning, nil)
	r.group("hexie", "res-1", "@社区警务助手 收到短信说我医保卡异常，点链接 http://x.cn 处理")
	r.direct("wang", "#1 预警")
	r.sent()
	r.direct("zhao", "确认 B1")
	r.sent()
	q := r.h.Deliveries()
	got, err := q.Claim(r.ctx, bot.Playground, time.Now(), time.Minute, 100)
	if err != nil || len(got) == 0 {
		t.Fatalf("no deliveries to claim: %v", err)
	}
	res := make([]bot.Result, len(got))
	for i, c := range got {
		if !strings.HasPrefix(c.Msg.Text, "【反诈预警】") || strings.Count(c.Msg.Text, "预警】") != 1 {
			t.Errorf("group %s gets %q, want one label, 【反诈预警】", c.Msg.Chat.ID, c.Msg.Text)
		}
		res[i] = bot.Result{Claimed: c, Outcome: bot.Sent, At: time.Now()}
	}
	if err := q.Settle(r.ctx, res); err != nil {
		t.Fatal(err)
	}
	if err := r.h.reportBroadcasts(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.sent()
	r.direct("zhao", "重发 B1")
	reply := to(r.sent(), "zhao")
	if len(reply) != 1 || !strings.Contains(reply[0].Text, "没有发送失败的群") || strings.Contains(reply[0].Text, "0 个") {
		t.Errorf("重发 with nothing failed answered:\n%s", texts(reply))
	}
	if got := r.h.alertText(r.h.dir.Load(), "今晚有冒充公检法的电话"); got != "【警方预警】今晚有冒充公检法的电话" {
		t.Errorf("an alert without a label of its own reads %q", got)
	}
}

func TestTodoIsPagedWithCountAndHowToSeeMore(t *testing.T) {
	r := newRig(t, weekdayMorning, nil)
	const n = 45
	long := strings.Repeat("楼道里堆满了杂物，消防通道被堵，", 8)
	for i := 0; i < n; i++ {
		r.group("hexie", fmt.Sprintf("res-%d", i), fmt.Sprintf("@社区警务助手 第%d个问题：%s", i+1, long))
	}
	r.sent()
	for _, tc := range []struct {
		cmd        string
		first, end int
		more       string
	}{
		{"待办", 1, 20, "待办 2"},
		{"待办 2", 21, 40, "待办 3"},
		{"待办 3", 41, 45, ""},
	} {
		r.direct("wang", tc.cmd)
		got := to(r.sent(), "wang")
		if len(got) != 1 {
			t.Fatalf("%s: %d replies", tc.cmd, len(got))
		}
		text := got[0].Text
		lines := strings.Count(text, "\n- #")
		if strings.HasPrefix(text, "- #") {
			lines++
		}
		if want := tc.end - tc.first + 1; lines != want || !strings.Contains(text, fmt.Sprintf("- #%d ", tc.first)) || !strings.Contains(text, fmt.Sprintf("- #%d ", tc.end)) {
			t.Errorf("%s lists %d tickets, want #%d–#%d:\n%s", tc.cmd, lines, tc.first, tc.end, text)
		}
		if !strings.Contains(text, fmt.Sprintf("共 %d 个", n)) {
			t.Errorf("%s does not give the count %d:\n%s", tc.cmd, n, text)
		}
		if tc.more != "" && !strings.Contains(text, "“"+tc.more+"”") {
			t.Errorf("%s does not say how to see more (%s):\n%s", tc.cmd, tc.more, text)
		}
		if len([]rune(text)) >= bot.MaxTextRunes {
			t.Errorf("%s is %d characters: cut at the limit", tc.cmd, len([]rune(text)))
		}
	}
}
