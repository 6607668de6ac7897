package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// BudgetBook keeps the platforms' API call counts in the database, where
// every process adds to the same month, and tells the admins at 80% and
// 100% of an app's budget, each once a month (the database decides who
// tells, so processes never tell twice).
func (h *Hub) BudgetBook() bot.BudgetBook { return budgetBook{h} }

type budgetBook struct{ h *Hub }

func (b budgetBook) Add(ctx context.Context, p bot.Platform, app, month string, calls, held int64) (int64, int64, error) {
	u, err := b.h.store.AddAPIUsage(ctx, string(p), app, month, calls, held)
	return u.Calls, u.Held, err
}

func (b budgetBook) Tell(ctx context.Context, p bot.Platform, app, month string, used, limit, held int64, over bool) error {
	h := b.h
	d := h.dir.Load()
	tmpl, level := "budget_warn_admin", "80"
	if over {
		tmpl, level = "budget_over_admin", "100"
	}
	// The admins hear it on another platform where they can: the spent
	// one may refuse the message.
	other := string(bot.WeChat)
	if p == bot.WeChat {
		other = string(bot.DingTalk)
	}
	limitText := "（未设预算，平台拒绝）"
	if limit > 0 {
		limitText = fmt.Sprint(limit)
	}
	var msgs []bot.Outbound
	for _, a := range d.adminsFor(nil) {
		text := func(esc func(string) string) string {
			return render(d.template(tmpl), "platform", platformName(p), "app", esc(app), "used", fmt.Sprint(used),
				"budget", limitText, "held", fmt.Sprint(held))
		}
		m, ok := d.dm(a, other, fmt.Sprintf("budget:%s:%s:%s:%s:%d", p, app, month, level, a.ID), "接口预算", text, bot.Ref{Purpose: bot.PurposeNotice})
		if ok {
			m.Format = bot.FormatText
			msgs = append(msgs, m)
		}
	}
	fresh, err := h.store.MarkAPIUsage(ctx, string(p), app, month, over, rows(msgs)...)
	if err != nil {
		return err
	}
	if fresh {
		h.wake(ctx, msgs)
	}
	return nil
}

// batchHarder is how much longer escalation notices are gathered while a
// platform's budget is spent: fewer, larger digests.
const batchHarder = 3

// escalationWindowFor is the window escalation notices to a person on
// platform p are gathered in.
func (h *Hub) escalationWindowFor(p bot.Platform) (window time.Duration) {
	window = h.escalationWindow()
	if h.opts.Budget != nil && h.opts.Budget.Spent(p) {
		window *= batchHarder
	}
	return window
}
