package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// step is a direct message to the bot from a playground user.
type step struct{ from, text string }

// Officers answer and manage tickets from their direct chat with the bot:
// "#N 内容" answers in the group @-ing the resident, "#N 认领", "#N 转 姓名",
// "#N 办结"; whatever cannot be done is refused with a reason and changes
// nothing.
func TestOfficerCommands(t *testing.T) {
	t.Parallel()
	// Ticket #1: 刘阿姨 (res-1) asked in 和谐小区业主群 on Monday at 10:00;
	// 王建国 has it, due to escalate at 10:15. Steps in before run at
	// 10:02, the command at 10:05.
	untouched := ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-23 10:15", answered: "-", responded: "-"}
	tests := []struct {
		name   string
		before []step
		cmd    step
		ticket ticketWant
		msgs   []msg
	}{
		{
			name:   "answer goes to the group @-ing the resident",
			cmd:    step{"wang", "#1 马上到，请在楼下稍等"},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "wang", escalate: "-", answered: "wang", responded: "2026-11-23 10:05"},
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"马上到，请在楼下稍等", "王建国警官", "工单 #1"}},
				{bot.PurposeReply, "chat wang", []string{"已在“和谐小区业主群”答复工单 #1"}},
			},
		},
		{
			name:   "a colleague may answer",
			cmd:    step{"li", "#1 我来处理"},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "wang", escalate: "-", answered: "li", responded: "2026-11-23 10:05"},
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"我来处理", "李明警官", "工单 #1"}},
				{bot.PurposeReply, "chat li", []string{"答复工单 #1"}},
			},
		},
		{
			name:   "a later answer keeps the first response",
			before: []step{{"wang", "#1 马上到"}},
			cmd:    step{"li", "#1 补充：物业已经在处理了"},
			ticket: ticketWant{status: store.StatusAnswered, escalate: "-", answered: "wang", responded: "2026-11-23 10:02"},
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"补充：物业已经在处理了", "李明警官"}},
				{bot.PurposeReply, "chat li", []string{"答复工单 #1"}},
			},
		},
		{
			name:   "an answer that starts with 转 is not a handover",
			cmd:    step{"wang", "#1 转账前请先核实对方身份"},
			ticket: ticketWant{status: store.StatusAnswered, assignee: "wang", escalate: "-", answered: "wang"},
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"转账前请先核实对方身份"}},
				{bot.PurposeReply, "chat wang", []string{"答复工单 #1"}},
			},
		},
		{
			name:   "full-width ＃ answers too",
			cmd:    step{"wang", "＃1 好的"},
			ticket: ticketWant{status: store.StatusAnswered, answered: "wang"},
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"好的", "工单 #1"}},
				{bot.PurposeReply, "chat wang", []string{"答复工单 #1"}},
			},
		},
		{
			name:   "claim takes the ticket and restarts the clock",
			cmd:    step{"li", "#1 认领"},
			ticket: ticketWant{status: store.StatusClaimed, assignee: "li", escalate: "2026-11-23 10:20", answered: "-", responded: "-"},
			msgs:   []msg{{bot.PurposeReply, "chat li", []string{"已认领工单 #1", "15分钟"}}},
		},
		{
			name:   "hand over by alias sends the colleague the question",
			cmd:    step{"wang", "#1 转 李警官"},
			ticket: ticketWant{status: store.StatusOpen, assignee: "li", escalate: "2026-11-23 10:20", answered: "-"},
			msgs: []msg{
				{bot.PurposeReply, "chat wang", []string{"工单 #1 已转交李明"}},
				{bot.PurposeAssign, "dm li", []string{"工单 #1 由王建国转交给您", "和谐小区业主群", "刘阿姨", "门口有人发小广告"}},
			},
		},
		{
			name:   "hand over to nobody of that name",
			cmd:    step{"wang", "#1 转给 钱警官"},
			ticket: untouched,
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"没有找到名为“钱警官”的同事"}}},
		},
		{
			name:   "close",
			cmd:    step{"wang", "#1 办结"},
			ticket: ticketWant{status: store.StatusClosed, assignee: "wang", escalate: "-", answered: "-"},
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"工单 #1 已办结"}}},
		},
		{
			name:   "unknown ticket",
			cmd:    step{"wang", "#9 好的"},
			ticket: untouched,
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"没有找到工单 #9"}}},
		},
		{
			name:   "another station's ticket",
			cmd:    step{"sun", "#1 我来处理"},
			ticket: untouched,
			msgs:   []msg{{bot.PurposeReply, "chat sun", []string{"工单 #1 不属于您所在的派出所"}}},
		},
		{
			name:   "a closed ticket takes no answer",
			before: []step{{"wang", "#1 办结"}},
			cmd:    step{"wang", "#1 还有别的问题吗"},
			ticket: ticketWant{status: store.StatusClosed, escalate: "-", answered: "-", responded: "-"},
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"工单 #1 已办结，不能再答复或转交"}}},
		},
		{
			name:   "a closed ticket is not handed over",
			before: []step{{"wang", "#1 办结"}},
			cmd:    step{"wang", "#1 转 李警官"},
			ticket: ticketWant{status: store.StatusClosed, assignee: "wang", escalate: "-"},
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"工单 #1 已办结，不能再答复或转交"}}},
		},
		{
			name:   "empty answer",
			cmd:    step{"wang", "#1   "},
			ticket: untouched,
			msgs:   []msg{{bot.PurposeReply, "chat wang", []string{"答复内容不能为空", "#1 答复内容"}}},
		},
		{
			name:   "a resident cannot answer tickets",
			cmd:    step{"res-1", "#1 问题已经解决了"},
			ticket: untouched,
			msgs:   []msg{{bot.PurposeReply, "chat res-1", []string{"没有登记为民警"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "2026-11-23 10:00")
			r.handle(r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告"))
			r.written()
			r.setClock("2026-11-23 10:02")
			for _, s := range tc.before {
				r.handle(r.dm(s.from, s.text))
			}
			r.written()
			r.setClock("2026-11-23 10:05")
			r.handle(r.dm(tc.cmd.from, tc.cmd.text))
			r.check(r.ticket("taiping", 1), tc.ticket)
			r.expect(tc.cmd.text, tc.msgs...)
		})
	}
}
