package commands_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// One resident asking faster than the limit gets no new tickets: the extra
// message is kept on their latest ticket and they are asked to wait.
// Emergencies and other residents are never held back, and a question the
// platform delivers again is not a second question.
func TestResidentAskingTooFastIsThrottled(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00", func(o *commands.Options) { o.QuestionsPerMinute = 2 })
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "门口有人发小广告"))
	r.setClock("2026-11-23 10:00")
	second := r.ask("hexie", "res-1", "刘阿姨", "楼下车位被占了")
	r.handle(second)
	r.written()

	again := *second // the platform delivers the second question again
	r.handle(&again)
	r.expect("the second question delivered again")
	r.noTicket("taiping", 3)

	r.handle(r.ask("hexie", "res-1", "刘阿姨", "补充一下，是一辆白色轿车"))
	r.expect("third question within the minute",
		msg{bot.PurposeReply, "group hexie @res-1", []string{"您提问太频繁了", "工单 #2"}})
	r.noTicket("taiping", 3)
	if tl, err := r.st.Timeline(r.ctx(), r.ticket("taiping", 2).ID); err != nil || tl[len(tl)-1].Kind != store.TLFollowUp || tl[len(tl)-1].Detail != "补充一下，是一辆白色轿车" {
		t.Errorf("ticket #2 timeline = %+v, %v; want the throttled message kept as a follow-up", tl, err)
	}

	r.handle(r.ask("hexie", "res-1", "刘阿姨", "楼道有焦味"))
	r.expect("an emergency is never throttled",
		msg{bot.PurposeAck, "group hexie @res-1", []string{"立即拨打110", "工单 #3"}},
		msg{bot.PurposePage, "dm wang", []string{"紧急工单 #3"}},
		msg{bot.PurposePage, "dm zhao", []string{"紧急工单 #3"}})

	r.handle(r.ask("hexie", "res-2", "张先生", "门口有人发小广告"))
	r.expect("another resident",
		msg{bot.PurposeAck, "group hexie @res-2", []string{"工单 #4"}},
		msg{bot.PurposeAssign, "dm wang", []string{"新工单 #4"}})

	r.setClock("2026-11-23 10:01")
	r.handle(r.ask("hexie", "res-1", "刘阿姨", "请问派出所几点下班"))
	r.expect("a minute later",
		msg{bot.PurposeAck, "group hexie @res-1", []string{"工单 #5"}},
		msg{bot.PurposeAssign, "dm wang", []string{"新工单 #5"}})
}
