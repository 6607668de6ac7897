package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Messages that are not a question for a station get a polite answer or
// none, and file no ticket.
func TestGroupMessagesThatFileNoTicket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event func(r *rig) *bot.Event
		msgs  []msg
	}{
		{
			name:  "unregistered group",
			event: func(r *rig) *bot.Event { return r.ask("weizhi", "res-1", "刘阿姨", "有人在小区里发传单") },
			msgs: []msg{{bot.PurposeReply, "group weizhi", []string{"本群尚未登记", "110"}},
				{bot.PurposeNotice, "dm zhao", []string{"未登记的群", "weizhi", "jingmin sync"}}},
		},
		{
			name: "chatter not addressed to the bot",
			event: func(r *rig) *bot.Event {
				e := r.ask("hexie", "res-1", "刘阿姨", "今天天气真好")
				e.AddressedToBot, e.Mentions = false, nil
				return e
			},
		},
		{
			name: "@ an officer of another station",
			event: func(r *rig) *bot.Event {
				e := r.ask("hexie", "res-1", "刘阿姨", "孙警官你好")
				e.AddressedToBot, e.Mentions = false, []bot.Mention{{UserID: "sun"}}
				return e
			},
		},
		{
			name: "a picture",
			event: func(r *rig) *bot.Event {
				e := r.ask("hexie", "res-1", "刘阿姨", "")
				e.Kind = bot.KindUnsupported
				return e
			},
			msgs: []msg{{bot.PurposeReply, "group hexie @res-1", []string{"只能识别文字"}}},
		},
		{
			name:  "only an @ and no words",
			event: func(r *rig) *bot.Event { return r.ask("hexie", "res-1", "刘阿姨", "  ") },
			msgs:  []msg{{bot.PurposeReply, "group hexie @res-1", []string{"请@我并用文字描述您的问题"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "2026-11-23 10:00")
			r.handle(tc.event(r))
			r.expect("message", tc.msgs...)
			r.noTicket("taiping", 1)
		})
	}
}

// An unregistered group is kept for an admin to register.
func TestUnregisteredGroupIsRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	e := r.ask("weizhi", "res-1", "刘阿姨", "有人在小区里发传单")
	e.Chat.Name = "未知小区群"
	r.handle(e)
	chats, err := r.st.UnknownChats(r.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(chats) != 1 || chats[0].ChatID != "weizhi" || chats[0].Name != "未知小区群" || chats[0].Platform != string(bot.Playground) {
		t.Errorf("unknown chats = %+v, want playground weizhi 未知小区群", chats)
	}
}

// A resident writing to the bot one-to-one gets a ticket of the
// consultation station, acknowledged and answered in that chat (nobody to
// @ there).
func TestDirectConsultation(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	r.handle(r.dm("res-9", "请问办理居住证需要什么材料"))
	r.check(r.ticket("taiping", 1), ticketWant{status: store.StatusOpen, assignee: "wang", escalate: "2026-11-23 10:15", flags: "-"})
	r.expect("consultation",
		msg{bot.PurposeAck, "chat res-9", []string{"工单 #1", "王建国警官"}},
		msg{bot.PurposeAssign, "dm wang", []string{"新工单 #1", "私信咨询（playground）", "请问办理居住证需要什么材料"}},
	)
	r.setClock("2026-11-23 10:05")
	r.handle(r.dm("wang", "#1 带身份证和租房合同"))
	r.check(r.ticket("taiping", 1), ticketWant{status: store.StatusAnswered, answered: "wang", escalate: "-"})
	r.expect("answer",
		msg{bot.PurposeAnswer, "chat res-9", []string{"带身份证和租房合同", "王建国警官"}},
		msg{bot.PurposeReply, "chat wang", []string{"已在“私信咨询（playground）”答复工单 #1"}},
	)
}
