package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// In a customer group the hub cannot post, so nothing that tells an
// officer how to answer one of its tickets (an escalation, the digest of
// escalations, a handover) says the answer goes into the group: each sends
// them to the chat-toolbar page where the prepared answer waits for a tap.
func TestCustomerGroupEscalationTextsGolden(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	var b strings.Builder
	var all []bot.Outbound
	dump := func(what string) {
		fmt.Fprintf(&b, "## %s %s\n", r.clock.Now().In(sh).Format("15:04"), what)
		for _, m := range r.sent(bot.WeChat) {
			all = append(all, m)
			fmt.Fprintf(&b, "%s → %s [%s] %s\n%s\n\n", m.Ref.Purpose, m.ToUser, m.Format, m.Title, m.Text)
		}
	}
	r.archived("wrHexie", "wmResident1", "@王警官 楼道的灯坏了好几天，找谁修？")
	r.clock.Add(time.Minute)
	r.archived("wrHexie", "wmResident2", "@王警官 小区门口的车乱停怎么办")
	dump("two questions @王警官 in the customer group 和谐小区居民群")
	r.clock.Add(16 * time.Minute)
	r.tick()
	dump("the SLA passes: escalations")
	r.clock.Add(10 * time.Minute)
	r.tick()
	dump("the escalation window closes: the digest")
	r.direct2("wangjg", "#1 转 李明")
	dump("王建国 hands #1 over to 李明")
	golden.File(t, "testdata/customer_escalation.golden", []byte(b.String()))

	var esc, digest, handover int
	for _, m := range all {
		if m.Ref.Purpose != bot.PurposeEscalation && m.Ref.Purpose != bot.PurposeAssign {
			continue
		}
		if strings.Contains(m.Text, "即在群里答复") {
			t.Errorf("%s to %s promises the hub answers in the customer group:\n%s", m.Ref.Purpose, m.ToUser, m.Text)
		}
		if !strings.Contains(m.Text, "聊天工具栏") {
			t.Errorf("%s to %s does not point to the chat toolbar:\n%s", m.Ref.Purpose, m.ToUser, m.Text)
		}
		switch {
		case m.Ref.Purpose == bot.PurposeAssign && strings.Contains(m.Title, "转交"):
			handover++
		case m.Ref.Purpose == bot.PurposeEscalation && m.Ref.TicketID == 0:
			digest++
		case m.Ref.Purpose == bot.PurposeEscalation:
			esc++
		}
	}
	if esc == 0 || digest == 0 || handover != 1 {
		t.Errorf("sent %d escalations, %d digests, %d handovers; want each", esc, digest, handover)
	}
}
