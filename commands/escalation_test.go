package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// A storm of breaches reaches the leader as one notice at once and one
// digest when the window closes, listing each ticket with the count; the
// digest is written once however often the timers run.
func TestEscalationStormIsGatheredIntoOneDigestPerWindow(t *testing.T) {
	r := newRig(t, when("2026-11-23 10:00"), nil)
	const n = 12
	for i := 0; i < n; i++ {
		r.clock.Set(when("2026-11-23 10:00").Add(time.Duration(i) * 10 * time.Second))
		r.group("hexie", fmt.Sprintf("res-%d", i), fmt.Sprintf("@社区警务助手 第%d件事：楼下车位被占", i+1))
	}
	r.sent()
	var leader []bot.Outbound
	for _, at := range []string{"10:15", "10:16", "10:17", "10:19"} {
		r.clock.Set(when("2026-11-23 " + at))
		r.tick()
		leader = append(leader, to(r.sent(), "zhao")...)
	}
	if len(leader) != 1 || !strings.Contains(leader[0].Text, "工单 #1 超时") {
		t.Fatalf("before the window closed 赵刚 got %d messages, want the first breach alone:\n%s", len(leader), texts(leader))
	}
	if !strings.Contains(leader[0].Text, "原负责：王建国") || !strings.Contains(leader[0].Text, "升级链：王建国 → 赵刚") {
		t.Errorf("the first notice does not say who had it and the chain:\n%s", leader[0].Text)
	}
	r.clock.Set(when("2026-11-23 10:20"))
	r.tick()
	digest := to(r.sent(), "zhao")
	if len(digest) != 1 {
		t.Fatalf("when the window closed 赵刚 got %d messages, want one digest:\n%s", len(digest), texts(digest))
	}
	text := digest[0].Text
	if !strings.Contains(text, fmt.Sprintf("%d 个工单超时未答复", n-1)) {
		t.Errorf("the digest does not give the count %d:\n%s", n-1, text)
	}
	for i := 2; i <= n; i++ {
		if !strings.Contains(text, fmt.Sprintf("- #%d 和谐小区业主群：已等待", i)) {
			t.Errorf("the digest lacks ticket #%d with its group and waiting time:\n%s", i, text)
		}
	}
	if strings.Contains(text, "- #1 ") || !strings.Contains(text, "原由王建国负责") {
		t.Errorf("the digest lists the ticket sent at once, or not who had each:\n%s", text)
	}
	for _, at := range []string{"10:20", "10:21", "10:24"} {
		r.clock.Set(when("2026-11-23 " + at))
		r.tick()
		if again := to(r.sent(), "zhao"); len(again) != 0 {
			t.Errorf("at %s 赵刚 got more:\n%s", at, texts(again))
		}
	}
	// The next window starts afresh: its first breach goes at once.
	for i := 1; i <= n; i++ {
		r.direct("wang", fmt.Sprintf("#%d 已协调物业处理", i))
	}
	r.clock.Set(when("2026-11-23 10:31"))
	r.group("hexie", "res-late", "@社区警务助手 又一件事")
	r.sent()
	r.clock.Set(when("2026-11-23 10:46"))
	r.tick()
	if late := to(r.sent(), "zhao"); len(late) != 1 || !strings.Contains(late[0].Text, fmt.Sprintf("工单 #%d 超时", n+1)) {
		t.Errorf("a breach in a new window was not sent at once:\n%s", texts(late))
	}
}

// The chain `roster who` shows is the one the timer follows: nobody twice,
// and the first step is who really gets the ticket.
func TestEscalationChainShownIsFollowed(t *testing.T) {
	for _, tc := range []struct {
		name, at, chain string
	}{
		{"weekday: the group's officer, then the leader", "2026-11-23 10:00", "王建国 → 赵刚"},
		{"evening: the duty officer, then the leader", "2026-11-23 18:00", "张伟 → 赵刚"},
		{"night: the duty account, then the leader", "2026-11-23 23:00", "太平警务值班号 → 赵刚"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, when(tc.at), nil)
			who, err := r.h.Who("taiping", "hexie", when(tc.at))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(who, "升级链："+tc.chain+"\n") && !strings.HasSuffix(who, "升级链："+tc.chain) {
				t.Fatalf("roster who at %s:\n%s\nwant 升级链：%s", tc.at, who, tc.chain)
			}
			r.group("hexie", "res-1", "@社区警务助手 小区门禁坏了，紧急")
			r.sent()
			steps := strings.Split(tc.chain, " → ")
			tk, _ := r.st.TicketByNumber(r.ctx, 1, 1)
			if name := officerName(r.h.dir.Load().officers[*tk.AssigneeID]); name != steps[0] {
				t.Fatalf("the ticket went to %s, the chain starts with %s", name, steps[0])
			}
			r.clock.Set(tk.EscalateAt.Add(time.Second))
			r.tick()
			tk, _ = r.st.TicketByNumber(r.ctx, 1, 1)
			if name := officerName(r.h.dir.Load().officers[*tk.AssigneeID]); name != steps[1] {
				t.Errorf("the first escalation went to %s, the chain says %s", name, steps[1])
			}
		})
	}
}
