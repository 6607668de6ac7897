package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// APICounter hears every call an adapter makes to a platform's API, where
// the call is made: the one place every send, update, retry and token fetch
// passes through, whichever rule caused it.
type APICounter interface {
	// CountCall records one call to api by app; ctx says for which
	// purpose (WithPurpose), where a send caused it.
	CountCall(ctx context.Context, p Platform, app, api string)
	// Exhausted records that the platform refused a call for the app's
	// quota (DingTalk's errcode 90020): the month's budget is spent,
	// whatever the count says.
	Exhausted(p Platform, app string)
}

// BudgetBook keeps the months' counts where every process sees them (the
// database) and tells the admins when an app passes 80% and 100% of its
// budget, each once a month.
type BudgetBook interface {
	// Add adds calls and held-back sends to the app's month and returns the
	// month's totals.
	Add(ctx context.Context, p Platform, app, month string, calls, held int64) (usedCalls, usedHeld int64, err error)
	// Tell tells the admins, once per app, month and level (over: 100%).
	Tell(ctx context.Context, p Platform, app, month string, used, limit, held int64, over bool) error
}

// Budget counts platform API calls against each app's monthly budget and
// says when a platform's budget is spent, so the relay degrades non-urgent
// sends (cards go as plain messages, card updates are held back) while
// residents' answers and emergencies keep going. Counts are kept in memory
// and added to the Book every Flush; a process that dies loses at most
// that interval's count.
type Budget struct {
	// Limits are the monthly calls each app of a platform may make (0 or
	// missing: no limit, counted only).
	Limits map[Platform]int64
	Book   BudgetBook
	// Observe hears every call (the metrics' counter); nil: nobody.
	Observe func(p Platform, app, api string, purpose Purpose)
	// Location decides when a month begins (Asia/Shanghai).
	Location *time.Location
	Now      func() time.Time
	Flush    time.Duration
	Log      *slog.Logger

	mu      sync.Mutex
	month   string
	pending map[budgetKey]*budgetCount
	used    map[budgetKey]int64
	spent   map[budgetKey]bool
	told    map[budgetKey]int // 1: 80% told, 2: 100% told (this process)
}

type budgetKey struct {
	p   Platform
	app string
}

type budgetCount struct{ calls, held int64 }

var _ APICounter = (*Budget)(nil)

func (b *Budget) init() {
	if b.pending == nil {
		b.pending, b.used, b.spent, b.told = map[budgetKey]*budgetCount{}, map[budgetKey]int64{}, map[budgetKey]bool{}, map[budgetKey]int{}
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.Location == nil {
		b.Location = time.Local
	}
	if b.Log == nil {
		b.Log = slog.Default()
	}
	m := b.Now().In(b.Location).Format("2006-01")
	if m != b.month {
		// A new month: every budget is whole again.
		b.month = m
		clear(b.used)
		clear(b.spent)
		clear(b.told)
	}
}

// CountCall counts one call.
func (b *Budget) CountCall(ctx context.Context, p Platform, app, api string) {
	if b == nil {
		return
	}
	if b.Observe != nil {
		b.Observe(p, app, api, PurposeOf(ctx))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	k := budgetKey{p, app}
	c := b.pending[k]
	if c == nil {
		c = &budgetCount{}
		b.pending[k] = c
	}
	c.calls++
	b.used[k]++
	if limit := b.Limits[p]; limit > 0 && b.used[k] >= limit {
		b.spent[k] = true
	}
}

// Exhausted marks the app's budget spent for the month.
func (b *Budget) Exhausted(p Platform, app string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	b.spent[budgetKey{p, app}] = true
}

// Spent reports whether any app of platform p has spent its month's budget.
func (b *Budget) Spent(p Platform) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	for k, s := range b.spent {
		if s && k.p == p {
			return true
		}
	}
	return false
}

// Held counts a send of platform p held back or degraded to save calls, for
// the admins' report.
func (b *Budget) Held(p Platform) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	for k := range b.spent {
		if k.p == p {
			c := b.pending[k]
			if c == nil {
				c = &budgetCount{}
				b.pending[k] = c
			}
			c.held++
			return
		}
	}
}

// Run adds the counts to the Book every Flush until ctx ends, and once
// more then; it tells the admins as apps pass 80% and 100%.
func (b *Budget) Run(ctx context.Context) error {
	every := b.Flush
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.FlushNow(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			b.FlushNow(ctx)
		}
	}
}

// FlushNow adds what was counted since the last flush to the Book.
func (b *Budget) FlushNow(ctx context.Context) {
	b.mu.Lock()
	b.init()
	month := b.month
	pending := b.pending
	b.pending = map[budgetKey]*budgetCount{}
	// Apps marked spent (90020) with nothing counted still need telling.
	for k, s := range b.spent {
		if _, ok := pending[k]; s && !ok {
			pending[k] = &budgetCount{}
		}
	}
	b.mu.Unlock()
	if b.Book == nil {
		return
	}
	for k, c := range pending {
		used, held, err := b.Book.Add(ctx, k.p, k.app, month, c.calls, c.held)
		if err != nil {
			b.Log.Warn("api calls not recorded; counted again at the next flush", "platform", k.p, "app", k.app, "err", err)
			b.mu.Lock()
			if cur := b.pending[k]; cur != nil {
				cur.calls += c.calls
				cur.held += c.held
			} else {
				b.pending[k] = c
			}
			b.mu.Unlock()
			continue
		}
		limit := b.Limits[k.p]
		b.mu.Lock()
		if b.month == month && used > b.used[k] {
			b.used[k] = used // other processes' calls count too
		}
		if limit > 0 && used >= limit {
			b.spent[k] = true
		}
		spent, told := b.spent[k], b.told[k]
		b.mu.Unlock()
		level := 0
		switch {
		case spent:
			level = 2
		case limit > 0 && used*5 >= limit*4:
			level = 1
		}
		if level <= told {
			continue
		}
		if err := b.Book.Tell(ctx, k.p, k.app, month, used, limit, held, level == 2); err != nil {
			b.Log.Warn("admins not told of the api budget; told at the next flush", "platform", k.p, "app", k.app, "err", err)
			continue
		}
		b.mu.Lock()
		if b.month == month {
			b.told[k] = level
		}
		b.mu.Unlock()
	}
}
