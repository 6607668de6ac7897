package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// moment is one thing that happens to a ticket: the timers run at a clock
// time (from empty), or someone writes to the bot; want is every message
// that must be written then, and nothing else.
type moment struct {
	at   string
	from string
	text string
	want []msg
}

func tickAt(at string, want ...msg) moment { return moment{at: at, want: want} }

// Unanswered tickets move up the chain (their officer → the duty officer on
// duty now → the station leader, then everyone again every SLA period), each
// step once; answered and closed tickets stay put; tickets the duty account
// filed at night go to the morning's officer with a digest.
func TestEscalationAndDigests(t *testing.T) {
	t.Parallel()
	toLeader := msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复", "和谐小区业主群", "刘阿姨", "门口有人发小广告", "已等待：15分钟"}}
	tests := []struct {
		name    string
		asked   string // 和谐小区业主群 unless chat is set
		chat    string
		text    string
		moments []moment
		ticket  ticketWant
	}{
		{
			name: "unanswered after the SLA: the leader", asked: "2026-11-23 10:00",
			moments: []moment{tickAt("2026-11-23 10:14"), tickAt("2026-11-23 10:15", toLeader)},
			ticket:  ticketWant{status: store.StatusOpen, assignee: "zhao", escalate: "2026-11-23 10:30", level: 1},
		},
		{
			name: "a step fires once", asked: "2026-11-23 10:00",
			moments: []moment{tickAt("2026-11-23 10:15", toLeader), tickAt("2026-11-23 10:15"), tickAt("2026-11-23 10:20")},
			ticket:  ticketWant{status: store.StatusOpen, assignee: "zhao", escalate: "2026-11-23 10:30", level: 1},
		},
		{
			name: "past the end of the chain everyone is reminded every SLA period", asked: "2026-11-23 10:00",
			moments: []moment{
				tickAt("2026-11-23 10:15", toLeader),
				tickAt("2026-11-23 10:30",
					msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复", "已等待：30分钟"}},
					msg{bot.PurposeEscalation, "dm wang", []string{"工单 #1 超时未答复", "已等待：30分钟"}}),
				tickAt("2026-11-23 10:44"),
			},
			ticket: ticketWant{status: store.StatusOpen, assignee: "zhao", escalate: "2026-11-23 10:45", level: 2},
		},
		{
			name: "after the day shift the duty officer on duty is next", asked: "2026-11-23 17:20",
			moments: []moment{tickAt("2026-11-23 17:35", msg{bot.PurposeEscalation, "dm zhang", []string{"工单 #1 超时未答复"}})},
			ticket:  ticketWant{status: store.StatusOpen, assignee: "zhang", escalate: "2026-11-23 17:50", level: 1},
		},
		{
			name: "the duty officer's ticket goes to the leader", asked: "2026-11-23 19:00",
			moments: []moment{tickAt("2026-11-23 19:15", toLeader)},
			ticket:  ticketWant{status: store.StatusOpen, assignee: "zhao", level: 1},
		},
		{
			name: "an emergency at night does not wait for the morning", asked: "2026-11-23 23:00", text: "楼道有焦味",
			moments: []moment{tickAt("2026-11-23 23:15", msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复", "楼道有焦味"}})},
			ticket:  ticketWant{status: store.StatusOpen, assignee: "zhao", escalate: "2026-11-23 23:30", level: 1},
		},
		{
			name: "an answered ticket does not escalate", asked: "2026-11-23 10:00",
			moments: []moment{
				{at: "2026-11-23 10:05", from: "wang", text: "#1 马上到", want: []msg{
					{bot.PurposeAnswer, "group hexie @res-1", []string{"马上到"}},
					{bot.PurposeReply, "chat wang", []string{"答复工单 #1"}},
				}},
				tickAt("2026-11-23 10:15"), tickAt("2026-11-23 12:00"),
			},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "wang", escalate: "-", level: 0},
		},
		{
			name: "a closed ticket does not escalate", asked: "2026-11-23 10:00",
			moments: []moment{
				{at: "2026-11-23 10:05", from: "wang", text: "#1 办结", want: []msg{{bot.PurposeReply, "chat wang", []string{"已办结"}}}},
				tickAt("2026-11-23 10:15"),
			},
			ticket: ticketWant{status: store.StatusClosed, escalate: "-", level: 0},
		},
		{
			name: "a claim restarts the clock", asked: "2026-11-23 10:00",
			moments: []moment{
				{at: "2026-11-23 10:10", from: "wang", text: "#1 认领", want: []msg{{bot.PurposeReply, "chat wang", []string{"已认领工单 #1"}}}},
				tickAt("2026-11-23 10:15"), tickAt("2026-11-23 10:24"),
				tickAt("2026-11-23 10:25", msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复", "已等待：25分钟"}}),
			},
			ticket: ticketWant{status: store.StatusClaimed, assignee: "zhao", escalate: "2026-11-23 10:40", level: 1},
		},
		{
			name: "filed at night: the group's officer gets it in the morning's digest", asked: "2026-11-23 23:00", text: "小区门口的路灯坏了",
			moments: []moment{
				tickAt("2026-11-24 08:29"),
				tickAt("2026-11-24 08:30", msg{bot.PurposeDigest, "dm wang", []string{"您有 1 个待处理工单", "#1 和谐小区业主群：小区门口的路灯坏了"}}),
				tickAt("2026-11-24 08:30"),
				tickAt("2026-11-24 08:45", msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复", "小区门口的路灯坏了"}}),
			},
			ticket: ticketWant{status: store.StatusOpen, assignee: "zhao", escalate: "2026-11-24 09:00", level: 1},
		},
		{
			name: "filed at night in a group without an officer: the station's officer on duty", asked: "2026-11-27 23:00", chat: "xincun-elders", text: "小区门口的路灯坏了",
			moments: []moment{
				tickAt("2026-11-28 09:00", msg{bot.PurposeDigest, "dm chen", []string{"您有 1 个待处理工单", "#1 新村老年群：小区门口的路灯坏了"}}),
			},
			ticket: ticketWant{status: store.StatusOpen, assignee: "chen", escalate: "2026-11-28 09:15", level: 0},
		},
		{
			name: "answered at night before the morning: no digest", asked: "2026-11-23 23:00", text: "小区门口的路灯坏了",
			moments: []moment{
				{at: "2026-11-23 23:30", from: "taiping-duty", text: "#1 已通知物业维修", want: []msg{
					{bot.PurposeAnswer, "group hexie @res-1", []string{"已通知物业维修", "值班民警"}},
					{bot.PurposeReply, "chat taiping-duty", []string{"答复工单 #1"}},
				}},
				tickAt("2026-11-24 08:30"), tickAt("2026-11-24 09:00"),
			},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "taiping-duty", escalate: "-", level: 0, answered: "taiping-duty"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chat, text := tc.chat, tc.text
			if chat == "" {
				chat = "hexie"
			}
			if text == "" {
				text = "门口有人发小广告"
			}
			r := newRig(t, tc.asked)
			r.handle(r.ask(chat, "res-1", "刘阿姨", text))
			r.written()
			for _, m := range tc.moments {
				r.setClock(m.at)
				if m.from == "" {
					r.tick()
					r.expect("timers at "+m.at, m.want...)
					continue
				}
				r.handle(r.dm(m.from, m.text))
				r.expect(m.from+" "+m.text, m.want...)
			}
			r.check(r.ticket("taiping", 1), tc.ticket)
		})
	}
}
