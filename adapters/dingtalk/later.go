package dingtalk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/bot"
)

// DingTalk reports some recipients of a direct message as flow-controlled
// (flowControlledStaffIdList): it did not deliver to them now, and will if
// asked again later. Retrying within the hub's quick retries (a few seconds)
// would only be refused again, so such messages wait here and are tried on a
// slower schedule. With Redis the queue is a sorted set any adapter process
// of the app works off, so it survives a restart; without Redis it lives as
// long as the process, like the in-memory bus. A message that runs out of
// tries, or is still waiting when a process without Redis stops, is logged
// and handed to the WithUndeliverable hook, for the hub to park it beside
// failed sends where admins look, so it is never dropped silently.

// DefaultRetrySchedule is how long a flow-controlled direct message waits
// before each retry.
var DefaultRetrySchedule = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// laterItem is one direct message waiting for a retry.
type laterItem struct {
	ID    string       `json:"id"` // unique per queued copy
	User  string       `json:"user"`
	Out   bot.Outbound `json:"out"`
	Tries int          `json:"tries"` // retries already made
	Due   int64        `json:"due"`   // unix ms
}

type laterQueue struct {
	schedule []time.Duration
	rdb      redis.UniversalClient // nil: in memory
	key      string
	now      func() time.Time

	mu        sync.Mutex
	accepting bool // this process's retry loop runs (matters in memory only)
	items     []laterItem
}

// errNoRetryLoop: nothing would ever retry the message, so the caller must
// fail the send and let the hub's own retry (and parking) handle it.
var errNoRetryLoop = errors.New("no retry loop runs in this process")

// add queues o for user, to be tried after the delay for its tries so far.
func (q *laterQueue) add(ctx context.Context, o *bot.Outbound, user string, tries int) error {
	if tries >= len(q.schedule) {
		return fmt.Errorf("still flow-controlled after %d retries", tries)
	}
	it := laterItem{ID: newID(), User: user, Out: *o, Tries: tries, Due: q.now().Add(q.schedule[tries]).UnixMilli()}
	if q.rdb == nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		if !q.accepting {
			return errNoRetryLoop
		}
		q.items = append(q.items, it)
		return nil
	}
	b, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("queue for retry: %w", err)
	}
	if err := q.rdb.ZAdd(ctx, q.key, redis.Z{Score: float64(it.Due), Member: string(b)}).Err(); err != nil {
		return fmt.Errorf("queue for retry: %w", err)
	}
	return nil
}

// due takes the items whose time has come out of the queue; with Redis, the
// process whose ZREM removes an item owns it.
func (q *laterQueue) due(ctx context.Context) ([]laterItem, error) {
	now := q.now().UnixMilli()
	if q.rdb == nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		var out, keep []laterItem
		for _, it := range q.items {
			if it.Due <= now {
				out = append(out, it)
			} else {
				keep = append(keep, it)
			}
		}
		q.items = keep
		return out, nil
	}
	members, err := q.rdb.ZRangeByScore(ctx, q.key, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now, 10), Count: 200}).Result()
	if err != nil {
		return nil, fmt.Errorf("read retry queue: %w", err)
	}
	var out []laterItem
	for _, m := range members {
		n, err := q.rdb.ZRem(ctx, q.key, m).Result()
		if err != nil {
			return out, fmt.Errorf("take from retry queue: %w", err)
		}
		if n == 0 {
			continue // another process took it
		}
		var it laterItem
		if err := json.Unmarshal([]byte(m), &it); err != nil {
			continue // not ours to understand; removing it keeps the queue moving
		}
		out = append(out, it)
	}
	return out, nil
}

// open starts taking messages into an in-memory queue (Run's retry loop
// is about to work it off).
func (q *laterQueue) open() {
	q.mu.Lock()
	q.accepting = true
	q.mu.Unlock()
}

// drain stops taking messages and empties an in-memory queue (at shutdown);
// a Redis queue stays for the next process.
func (q *laterQueue) drain() []laterItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.accepting = false
	out := q.items
	q.items = nil
	return out
}

// retryLater works off the queue until ctx ends, then hands what an
// in-memory queue still holds to the Undeliverable hook.
func (a *Adapter) retryLater(ctx context.Context) {
	tick := min(max(a.later.schedule[0]/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop := context.WithoutCancel(ctx)
			for _, it := range a.later.drain() {
				a.undeliverable(stop, &it.Out, errors.New("the process stopped before DingTalk lifted flow control for the recipient"))
			}
			return
		case <-t.C:
		}
		items, err := a.later.due(ctx)
		if err != nil {
			a.log.Warn("dingtalk retry queue unreadable", "err", err)
		}
		a.retryBatches(ctx, items)
	}
}

// retryBatches resends due messages, one batchSend for up to 20 recipients
// of the same message.
func (a *Adapter) retryBatches(ctx context.Context, items []laterItem) {
	type group struct {
		m     message
		items []laterItem
	}
	var groups []*group
	byMsg := map[message]*group{}
	for _, it := range items {
		m := renderMessage(&it.Out)
		g := byMsg[m]
		if g == nil || len(g.items) == maxBatchUsers {
			g = &group{m: m}
			byMsg[m] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, it)
	}
	for _, g := range groups {
		users := make([]string, len(g.items))
		for i, it := range g.items {
			users[i] = it.User
		}
		res, err := a.batchSend(ctx, users, g.m)
		for _, it := range g.items {
			var cause error
			switch {
			case err != nil:
				cause = err
			case slices.Contains(res.Invalid, it.User):
				a.undeliverable(ctx, &it.Out, fmt.Errorf("staff id %s is unknown to DingTalk for this robot: check the officer's dingtalk identity", it.User))
				continue
			case slices.Contains(res.FlowControlled, it.User):
				cause = errors.New("recipient flow-controlled by DingTalk")
			default:
				a.log.Info("dingtalk direct message delivered after flow control", "key", it.Out.Key, "retries", it.Tries+1)
				continue
			}
			if isPermanent(cause) {
				a.undeliverable(ctx, &it.Out, cause)
				continue
			}
			// Re-queue even while shutting down: a Redis queue keeps it for
			// the next process, an in-memory one hands it to Undeliverable.
			if qerr := a.later.add(context.WithoutCancel(ctx), &it.Out, it.User, it.Tries+1); qerr != nil {
				a.undeliverable(ctx, &it.Out, fmt.Errorf("%w; %w", cause, qerr))
			}
		}
	}
}

// permanentErr marks a failure no retry fixes. Send hands such errors to the
// hub as bot.Permanent; inside the package the mark must stay testable,
// which bot's own type is not.
type permanentErr struct{ error }

func (p permanentErr) Unwrap() error { return p.error }

func permanent(err error) error { return permanentErr{err} }

func isPermanent(err error) bool {
	var p permanentErr
	return errors.As(err, &p)
}

// undeliverable reports a message that will not be delivered.
func (a *Adapter) undeliverable(ctx context.Context, o *bot.Outbound, cause error) {
	a.log.Error("dingtalk message undeliverable", "key", o.Key, "err", cause)
	if a.opts.undeliverable != nil {
		a.opts.undeliverable(ctx, o, cause)
	}
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
