package commands_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

// An app's budget: the admins hear once at 80% and once past 100%, however
// many processes count and flush; the notice says what was held back.
func TestBudgetTellsAdminsOnceAt80AndAt100(t *testing.T) {
	r := newRig(t, "2026-11-23 10:00")
	ctx := context.Background()
	newBudget := func() *bot.Budget {
		return &bot.Budget{Limits: map[bot.Platform]int64{bot.DingTalk: 10}, Book: r.hub.BudgetBook(), Location: shanghai, Now: r.clock.Now}
	}
	a, b := newBudget(), newBudget() // two processes of one deployment
	call := func(bu *bot.Budget, n int) {
		for range n {
			bu.CountCall(ctx, bot.DingTalk, "dingapp", "/v1.0/robot/oToMessages/batchSend")
		}
	}
	call(a, 5)
	a.FlushNow(ctx)
	r.expect("at 50%")
	call(b, 3)
	b.FlushNow(ctx)
	r.expect("at 80%", msg{bot.PurposeNotice, "dm zhao", []string{"钉钉应用 dingapp 本月接口调用已用 8/10（80%）"}})
	call(a, 1)
	a.FlushNow(ctx)
	r.expect("at 90%: told already")
	if a.Spent(bot.DingTalk) {
		t.Fatal("budget spent at 9 of 10")
	}
	call(a, 1)
	if !a.Spent(bot.DingTalk) {
		t.Fatal("budget not spent at 10 of 10")
	}
	a.Held(bot.DingTalk)
	a.FlushNow(ctx)
	rows := r.written()
	if len(rows) != 1 || !strings.Contains(rows[0].Text, "已超出预算（10/10）") || !strings.Contains(rows[0].Text, "本月已降级 1 条") {
		t.Fatalf("past 100%%: %s", describe(rows))
	}
	// The other process learns the month's count from the database and
	// does not tell again.
	call(b, 1)
	b.FlushNow(ctx)
	r.expect("the other process past 100%")
	if !b.Spent(bot.DingTalk) {
		t.Error("the other process does not know the budget is spent")
	}
	// A platform that says its quota is used up spends the budget whatever
	// the count (errcode 90020); an app without a limit is only counted.
	c := newBudget()
	c.Exhausted(bot.WeChat, "ww/1000002")
	if !c.Spent(bot.WeChat) {
		t.Error("a quota error did not spend the budget")
	}
}
