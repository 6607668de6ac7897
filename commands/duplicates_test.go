package commands_test

import (
	"sync"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// A platform message handled twice (redelivered after a crash, or by two
// workers) writes one ticket and one set of messages, and changes nothing
// the second time: the database's unique keys decide, not memory.
func TestSameMessageHandledTwice(t *testing.T) {
	t.Parallel()
	asked := func(r *rig) {
		r.handle(r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告"))
		r.written()
		r.setClock("2026-11-23 10:05")
	}
	tests := []struct {
		name   string
		at     string
		before func(r *rig)
		event  func(r *rig) *bot.Event
		msgs   []msg
		ticket ticketWant
	}{
		{
			name:  "question",
			at:    "2026-11-23 10:00",
			event: func(r *rig) *bot.Event { return r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告") },
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1"}},
				{bot.PurposeAssign, "dm wang", []string{"新工单 #1"}},
			},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang"},
		},
		{
			name:  "emergency",
			at:    "2026-11-23 10:00",
			event: func(r *rig) *bot.Event { return r.ask("hexie", "res-1", "刘阿姨", "楼道有焦味") },
			msgs: []msg{
				{bot.PurposeAck, "group hexie @res-1", []string{"110"}},
				{bot.PurposePage, "dm wang", []string{"紧急工单 #1"}},
				{bot.PurposePage, "dm zhao", []string{"紧急工单 #1"}},
			},
			ticket: ticketWant{status: store.StatusOpen, flags: "emergency"},
		},
		{
			name:   "FAQ answered at night",
			at:     "2026-11-23 23:00",
			event:  func(r *rig) *bot.Event { return r.ask("hexie", "res-1", "刘阿姨", "身份证丢了怎么补办") },
			msgs:   []msg{{bot.PurposeAck, "group hexie @res-1", []string{"自动答复·工单 #1", "补换身份证"}}},
			ticket: ticketWant{status: store.StatusAnswered, flags: "after_hours,auto"},
		},
		{
			name:  "answer",
			at:    "2026-11-23 10:00",
			event: func(r *rig) *bot.Event { asked(r); return r.dm("wang", "#1 马上到") },
			msgs: []msg{
				{bot.PurposeAnswer, "group hexie @res-1", []string{"马上到"}},
				{bot.PurposeReply, "chat wang", []string{"答复工单 #1"}},
			},
			ticket: ticketWant{status: store.StatusAnswered, answered: "wang", responded: "2026-11-23 10:05"},
		},
		{
			name:  "hand over",
			at:    "2026-11-23 10:00",
			event: func(r *rig) *bot.Event { asked(r); return r.dm("wang", "#1 转 李警官") },
			msgs: []msg{
				{bot.PurposeReply, "chat wang", []string{"已转交李明"}},
				{bot.PurposeAssign, "dm li", []string{"由王建国转交给您"}},
			},
			ticket: ticketWant{status: store.StatusOpen, assignee: "li", escalate: "2026-11-23 10:20"},
		},
		{
			name:   "refused command",
			at:     "2026-11-23 10:00",
			event:  func(r *rig) *bot.Event { asked(r); return r.dm("sun", "#1 我来处理") },
			msgs:   []msg{{bot.PurposeReply, "chat sun", []string{"不属于您所在的派出所"}}},
			ticket: ticketWant{status: store.StatusOpen, assignee: "wang"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.at)
			e := tc.event(r)
			r.handle(e)
			r.expect("first delivery", tc.msgs...)
			before, err := r.st.Timeline(r.ctx(), r.ticket("taiping", 1).ID)
			if err != nil {
				t.Fatal(err)
			}
			again := *e
			r.handle(&again)
			r.expect("second delivery")
			r.noTicket("taiping", 2)
			r.check(r.ticket("taiping", 1), tc.ticket)
			after, err := r.st.Timeline(r.ctx(), r.ticket("taiping", 1).ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("the second delivery added %d timeline lines", len(after)-len(before))
			}
		})
	}
}

// A message in an unregistered group handled twice is one message there:
// one reply, counted once for the admins.
func TestUnregisteredGroupMessageHandledTwice(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	e := r.ask("weizhi", "res-1", "刘阿姨", "有人在小区里发传单")
	r.handle(e)
	again := *e
	r.handle(&again)
	r.handle(r.ask("weizhi", "res-2", "张先生", "小区门口有人吵架"))
	r.expect("three deliveries of two messages",
		msg{bot.PurposeReply, "group weizhi", []string{"本群尚未登记"}},
		msg{bot.PurposeNotice, "dm zhao", []string{"未登记的群"}},
		msg{bot.PurposeReply, "group weizhi", []string{"本群尚未登记"}},
	)
	chats, err := r.st.UnknownChats(r.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(chats) != 1 || chats[0].Messages != 2 {
		t.Errorf("unknown chats = %+v, want weizhi with 2 messages", chats)
	}
}

// Two workers over one database handle the same question at once: one
// ticket, one set of messages.
func TestSameQuestionOnTwoWorkersAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	other := r.secondHub()
	e := r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告")
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, h := range []bot.Handler{r.h, other.Handler()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := *e
			errs[i] = h.Handle(r.ctx(), &ev)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	r.noTicket("taiping", 2)
	r.expect("two workers",
		msg{bot.PurposeAck, "group hexie @res-1", []string{"工单 #1"}},
		msg{bot.PurposeAssign, "dm wang", []string{"新工单 #1"}},
	)
}

// Two workers run the timers at the same moment: the escalation step fires
// once.
func TestEscalationOnTwoWorkersAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	other := r.secondHub()
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告"))
	r.written()
	r.setClock("2026-11-23 10:15")
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, h := range []*commands.Hub{r.hub, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Tick(r.ctx())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	r.expect("two timer runs", msg{bot.PurposeEscalation, "dm zhao", []string{"工单 #1 超时未答复"}})
	r.check(r.ticket("taiping", 1), ticketWant{assignee: "zhao", level: 1, escalate: "2026-11-23 10:30"})
}
