package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

// "值班 开" puts an officer on duty outside the roster (for at most twelve
// hours) and "值班 关" takes them off until their next shift: the next
// question goes accordingly.
func TestDutySwitchDecidesWhoGetsTheNextQuestion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		switchAt  string
		officer   string
		command   string
		reply     string
		askAt     string
		chat      string
		assignee  string
		ack, dmTo string
	}{
		{
			name: "on duty at night: their own group's question", switchAt: "2026-11-23 23:00", officer: "li", command: "值班 开", reply: "已开始值班",
			askAt: "2026-11-23 23:05", chat: "yangguang", assignee: "li", ack: "李明警官", dmTo: "dm li",
		},
		{
			name: "on duty at night: another officer's group", switchAt: "2026-11-23 23:00", officer: "li", command: "值班开", reply: "已开始值班",
			askAt: "2026-11-23 23:05", chat: "hexie", assignee: "li", ack: "李明警官", dmTo: "dm li",
		},
		{
			name: "on duty lapses after twelve hours", switchAt: "2026-11-23 20:00", officer: "li", command: "duty on", reply: "已开始值班",
			askAt: "2026-11-24 08:01", chat: "yangguang", assignee: "taiping-duty", ack: "今天08:30", dmTo: "dm taiping-duty",
		},
		{
			name: "off duty in the day: a colleague takes the group", switchAt: "2026-11-23 10:00", officer: "wang", command: "值班 关", reply: "已结束值班",
			askAt: "2026-11-23 10:05", chat: "hexie", assignee: "li", ack: "李明警官", dmTo: "dm li",
		},
		{
			name: "off duty until the next shift", switchAt: "2026-11-23 10:00", officer: "wang", command: "下班", reply: "已结束值班",
			askAt: "2026-11-24 09:00", chat: "hexie", assignee: "wang", ack: "王建国警官", dmTo: "dm wang",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.switchAt)
			r.handle(r.dm(tc.officer, tc.command))
			r.expect(tc.command, msg{bot.PurposeReply, "chat " + tc.officer, []string{tc.reply}})
			r.setClock(tc.askAt)
			r.handle(r.ask(tc.chat, "res-1", "刘阿姨", "门口有人发小广告"))
			r.check(r.ticket("taiping", 1), ticketWant{assignee: tc.assignee})
			r.expect("question",
				msg{bot.PurposeAck, "group " + tc.chat + " @res-1", []string{"工单 #1", tc.ack}},
				msg{bot.PurposeAssign, tc.dmTo, []string{"新工单 #1"}})
		})
	}
}

// "待办" lists the officer's tickets still waiting for an answer.
func TestTodoListsOpenTickets(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告"))
	r.handle(r.ask("hexie-shops", "res-2", "张老板", "店门口的共享单车太多了"))
	r.handle(r.ask("yangguang", "res-3", "王阿姨", "楼下有人乱停车"))
	r.handle(r.dm("wang", "#1 马上到"))
	r.written()
	r.handle(r.dm("wang", "待办"))
	r.expect("todo", msg{bot.PurposeReply, "chat wang", []string{"您有 1 个待处理工单", "#2 和谐小区商户群：店门口的共享单车太多了"}})
}
