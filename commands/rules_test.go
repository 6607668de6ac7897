package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// The demo roster (configs/example.yaml) in Asia/Shanghai: 王建国 (group
// officer of 和谐小区业主群 and 和谐小区商户群) and 李明 (阳光花园邻里群) work
// 08:30–17:30 on working days, 李明 is off on Friday 2026-11-27; auxiliary
// 陈晓 works 09:00–17:00 on rest days; duty officer 张伟 17:30–22:00 daily;
// leader 赵刚; after that the duty account 太平警务值班号. The SLA is 15
// minutes. 2026-11-23 is a Monday; 2026-10-01 (a Thursday) is a national
// holiday and Saturday 2026-10-10 a make-up working day.

// A resident's question goes to whoever the roster says, with an
// acknowledgement in the group naming them and the question in their DMs;
// after hours the duty account answers FAQs or files the question for the
// morning; emergencies get 110 guidance and page the duty officer and the
// leader.
func TestQuestionIsRoutedByRosterAndCalendar(t *testing.T) {
	t.Parallel()
	type question struct {
		chat     string
		text     string
		mentions []bot.Mention // instead of @-ing the bot
	}
	tests := []struct {
		name   string
		at     string
		q      question
		ticket ticketWant
		msgs   []msg
	}{
		{
			name: "group's own officer on shift", at: "2026-11-23 10:00",
			q:      question{chat: "hexie", text: "门口有人发小广告"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-23 10:15", answered: "-", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "王建国警官会尽快答复"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1", "和谐小区业主群", "刘阿姨", "门口有人发小广告"}},
			},
		},
		{
			name: "own officer off shift: station officer on duty", at: "2026-11-27 10:00",
			q:      question{chat: "yangguang", text: "门口有人发小广告"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-27 10:15", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group yangguang @res-1", []string{"工单 #1", "王建国警官"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1", "阳光花园邻里群"}},
			},
		},
		{
			name: "group without its own officer", at: "2026-11-23 10:00",
			q:      question{chat: "xincun-elders", text: "社区有没有防诈骗讲座"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-23 10:15", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group xincun-elders @res-1", []string{"工单 #1", "王建国警官"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1", "新村老年群"}},
			},
		},
		{
			name: "duty officer in the evening", at: "2026-11-23 19:00",
			q:      question{chat: "hexie", text: "楼下电动车一直在充电"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "zhang", escalate: "2026-11-23 19:15", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "值班民警张伟会尽快答复"}},
				{bot.PurposeAssign, "dm zhang", []string{"新工单 #1", "楼下电动车一直在充电"}},
			},
		},
		{
			name: "evening shift ends at 22:00", at: "2026-11-23 22:00",
			q:      question{chat: "hexie", text: "小区门口的路灯坏了"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "taiping-duty", escalate: "2026-11-24 08:45", answered: "-", flags: "after_hours"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"非工作时间", "工单 #1", "明天（周二）08:30", "110"}},
				{bot.PurposeAssign, "dm taiping-duty", []string{"新工单 #1", "小区门口的路灯坏了"}},
			},
		},
		{
			name: "after 22:00 an FAQ is answered at once", at: "2026-11-23 23:00",
			q:      question{chat: "hexie", text: "居住证怎么办理"},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "taiping-duty", escalate: "-", answered: "taiping-duty", flags: "after_hours,auto"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"自动答复·工单 #1", "办理居住证"}},
			},
		},
		{
			name: "after midnight the morning is today", at: "2026-11-24 01:00",
			q:      question{chat: "hexie", text: "小区门口的路灯坏了"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "taiping-duty", escalate: "2026-11-24 08:45", flags: "after_hours"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "今天08:30"}},
				{bot.PurposeAssign, "dm taiping-duty", []string{"新工单 #1"}},
			},
		},
		{
			name: "Friday night: the next shift is Saturday's rest-day shift", at: "2026-11-27 23:00",
			q:      question{chat: "hexie", text: "小区门口的路灯坏了"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "taiping-duty", escalate: "2026-11-28 09:15", flags: "after_hours"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "明天（周六）09:00"}},
				{bot.PurposeAssign, "dm taiping-duty", []string{"新工单 #1"}},
			},
		},
		{
			name: "night before the make-up working day", at: "2026-10-09 23:00",
			q:      question{chat: "hexie", text: "小区门口的路灯坏了"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "taiping-duty", escalate: "2026-10-10 08:45", flags: "after_hours"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "明天（周六）08:30"}},
				{bot.PurposeAssign, "dm taiping-duty", []string{"新工单 #1"}},
			},
		},
		{
			name: "emergency in the day pages the officer and the leader", at: "2026-11-23 10:00",
			q:      question{chat: "hexie", text: "楼道有焦味"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-23 10:15", flags: "emergency"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"立即拨打110", "工单 #1"}},
				{bot.PurposePage, "dm wang", []string{"紧急工单 #1", "楼道有焦味", "和谐小区业主群", "刘阿姨"}},
				{bot.PurposePage, "dm zhao", []string{"紧急工单 #1", "楼道有焦味"}},
			},
		},
		{
			name: "emergency in the evening pages the duty officer and the leader", at: "2026-11-23 19:00",
			q:      question{chat: "yangguang", text: "楼下有人打架"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "zhang", escalate: "2026-11-23 19:15", flags: "emergency"},
			msgs: []msg{
				{bot.PurposeAck, "group yangguang @res-1", []string{"立即拨打110", "工单 #1"}},
				{bot.PurposePage, "dm zhang", []string{"紧急工单 #1", "楼下有人打架", "阳光花园邻里群"}},
				{bot.PurposePage, "dm zhao", []string{"紧急工单 #1"}},
			},
		},
		{
			name: "emergency at night is never an FAQ nor left for the morning", at: "2026-11-23 23:00",
			q:      question{chat: "hexie", text: "身份证被抢了，对方持刀"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "taiping-duty", escalate: "2026-11-23 23:15", answered: "-", flags: "emergency,after_hours"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"立即拨打110", "工单 #1"}},
				{bot.PurposePage, "dm taiping-duty", []string{"紧急工单 #1"}},
				{bot.PurposePage, "dm zhao", []string{"紧急工单 #1"}},
			},
		},
		{
			name: "@-mentioned officer on shift", at: "2026-11-23 10:00",
			q:      question{chat: "hexie", text: "请问户口迁移要带什么", mentions: []bot.Mention{{Name: "李警官"}}},
			ticket: ticketWant{status: store.StatusOpen, assignee: "li", escalate: "2026-11-23 10:15", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "李明警官"}},
				{bot.PurposeAssign, "dm li", []string{"新工单 #1", "户口迁移"}},
			},
		},
		{
			name: "@-mentioned officer by platform id", at: "2026-11-23 10:00",
			q:      question{chat: "hexie", text: "请问户口迁移要带什么", mentions: []bot.Mention{{UserID: "li"}}},
			ticket: ticketWant{status: store.StatusOpen, assignee: "li", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "李明警官"}},
				{bot.PurposeAssign, "dm li", []string{"新工单 #1"}},
			},
		},
		{
			name: "@-mentioned officer off shift: the group's own officer", at: "2026-11-27 10:00",
			q:      question{chat: "hexie", text: "请问户口迁移要带什么", mentions: []bot.Mention{{Name: "李警官"}}},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "王建国警官"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1"}},
			},
		},
		{
			name: "@-ing the duty account is @-ing the bot", at: "2026-11-23 10:00",
			q:      question{chat: "hexie", text: "门口有人发小广告", mentions: []bot.Mention{{Name: "太平警务值班号"}}},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "王建国警官"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1"}},
			},
		},
		{
			name: "Sunday: the auxiliary on the rest-day shift", at: "2026-11-22 10:00",
			q:      question{chat: "hexie", text: "门口有人发小广告"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "chen", escalate: "2026-11-22 10:15", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "陈晓辅警"}},
				{bot.PurposeAssign, "dm chen", []string{"新工单 #1"}},
			},
		},
		{
			name: "national holiday on a Thursday is a rest day", at: "2026-10-01 10:00",
			q:      question{chat: "hexie", text: "门口有人发小广告"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "chen", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "陈晓辅警"}},
				{bot.PurposeAssign, "dm chen", []string{"新工单 #1"}},
			},
		},
		{
			name: "make-up Saturday is a working day", at: "2026-10-10 10:00",
			q:      question{chat: "hexie", text: "门口有人发小广告"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang", flags: "-"},
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1", "王建国警官"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.at)
			e := r.ask(tc.q.chat, "res-1", "刘阿姨", tc.q.text)
			if tc.q.mentions != nil {
				e.Mentions, e.AddressedToBot = tc.q.mentions, false
			}
			r.handle(e)
			r.check(r.ticket("taiping", 1), tc.ticket)
			r.expect("question", tc.msgs...)
		})
	}
}
