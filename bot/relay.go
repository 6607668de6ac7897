package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Claimed is one outbound message a relay holds: the message, the row it
// came from and the fence its result must be recorded under. A relay that
// lost its lease (it hung past it and another took the row over) records
// nothing: its successor's result stands.
type Claimed struct {
	Msg Outbound
	// Row identifies the record in its queue; Fence changes with every claim.
	Row   uint
	Fence int64
	// Attempts counts the failed sends before this one.
	Attempts int
}

// Outcome is what became of one claimed message.
type Outcome int

const (
	// Sent: the platform took it (MessageID names it where it says).
	Sent Outcome = iota
	// Retry: try again at RetryAt; Counted says whether the failure counts
	// toward the relay's MaxAttempts (a rate limit does not).
	Retry
	// Failed: the platform refused it for good, or it ran out of attempts.
	Failed
	// Released: never sent (shutdown came first); due again at once.
	Released
)

// Result is the outcome of one claimed message, recorded by its queue.
type Result struct {
	Claimed
	Outcome   Outcome
	MessageID string
	Reason    string
	At        time.Time
	RetryAt   time.Time
	Counted   bool
}

// Queue is a durable list of outbound messages: the database's outbound rows,
// or a broadcast's deliveries. Claim leases due messages (pending ones whose
// time has come, and held ones whose lease lapsed); Settle records results.
// Both run their own short transactions: nothing is sent inside one.
type Queue interface {
	Claim(ctx context.Context, p Platform, now time.Time, lease time.Duration, limit int) ([]Claimed, error)
	Settle(ctx context.Context, results []Result) error
}

// Limiter paces sends (golang.org/x/time/rate's Limiter in one process, a
// Redis limiter shared by several).
type Limiter interface {
	Wait(ctx context.Context) error
}

// retryAfter is a send that the platform asked to repeat later (a rate
// limit of one target, a flow-controlled user).
type retryAfter struct {
	after time.Duration
	err   error
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// RetryAfter tells the relay to send again after d: the message waits as a
// scheduled row, holding up no worker and no other target, and the wait does
// not count as a failed attempt.
func RetryAfter(d time.Duration, err error) error { return retryAfter{after: d, err: err} }

// RetryDelay reports the wait RetryAfter asked for.
func RetryDelay(err error) (time.Duration, bool) {
	var r retryAfter
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// Lane is one queue a relay drains, with the workers that send from it.
type Lane struct {
	Name  string
	Queue Queue
	// Workers send at once (a platform call is a round trip). Default 8.
	Workers int
	// Limiter paces this lane's sends (nil: no limit beyond the adapter's).
	Limiter Limiter
	// Yield makes this lane wait (a second at most per message) while the
	// relay's earlier lanes have messages in hand: bulk broadcast sends
	// give way to residents' acknowledgements and officers' DMs.
	Yield bool
	// PollOnly: the lane finds its work by polling alone, and the relay's
	// nudges (which say interactive rows were written) do not wake it.
	PollOnly bool
}

// Relay delivers one platform's outbound messages from durable queues
// through that platform's Sender, in the process that owns the platform's
// connection. It wakes on Wake (a nudge after a commit) and polls besides,
// so a lost nudge delays a message and never loses it. Each message is
// leased while it is sent and settled afterwards; a relay that dies leaves
// its leased messages to the next claim after Lease.
//
// Duplicate window: a message is sent twice only if a relay dies (or hangs
// past Lease) after the platform took it and before its result was
// recorded; no platform here takes an idempotency key.
type Relay struct {
	Platform Platform
	Sender   Sender
	Lanes    []Lane
	// Wake nudges the relay when messages were committed (nil: polling only).
	Wake <-chan struct{}
	// Poll is how often an idle lane looks for due messages. Default 500ms.
	Poll time.Duration
	// Lease is how long a claimed message stays with this relay. Default 60s.
	Lease time.Duration
	// SendTimeout bounds one platform call. Default 20s.
	SendTimeout time.Duration
	// MaxAttempts is how many counted failures a message gets before it is
	// failed with the last reason. Default 6.
	MaxAttempts int
	// Backoff is the first wait after a counted failure; it doubles per
	// attempt up to MaxBackoff. Defaults 2s and 5min.
	Backoff, MaxBackoff time.Duration
	// Budget, when set, is the platform's API budget: once spent, cards go
	// as plain messages and card updates are held back, while everything
	// else (residents' answers, emergency pages) goes as before.
	Budget *Budget
	// Observe hears every send's outcome (metrics); nil: nobody.
	Observe func(p Platform, lane string, o Outcome, took time.Duration)
	Now     func() time.Time
	Log     *slog.Logger

	// inflight counts messages held per lane, for Yield; stalled is set
	// while a lane's results cannot be recorded (the database is down).
	inflight []atomic.Int64
	stalled  []atomic.Bool
}

func (r *Relay) defaults() {
	if r.Poll <= 0 {
		r.Poll = 500 * time.Millisecond
	}
	if r.Lease <= 0 {
		r.Lease = time.Minute
	}
	if r.SendTimeout <= 0 {
		r.SendTimeout = 20 * time.Second
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 6
	}
	if r.Backoff <= 0 {
		r.Backoff = 2 * time.Second
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 5 * time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
}

// Run delivers until ctx ends. Messages in hand when ctx ends are sent to
// the end (a send cut off midway leaves nobody knowing whether it went);
// claimed messages not yet started are handed back.
func (r *Relay) Run(ctx context.Context) error {
	r.defaults()
	r.inflight = make([]atomic.Int64, len(r.Lanes))
	r.stalled = make([]atomic.Bool, len(r.Lanes))
	// One wake signal fans out to every lane.
	wakes := make([]chan struct{}, len(r.Lanes))
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	if r.Wake != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-r.Wake:
					for i, w := range wakes {
						if r.Lanes[i].PollOnly {
							continue
						}
						select {
						case w <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	for i := range r.Lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runLane(ctx, i, wakes[i])
		}()
	}
	wg.Wait()
	return nil
}

// runLane claims due messages of one lane as workers come free and hands
// them to the workers.
func (r *Relay) runLane(ctx context.Context, i int, wake <-chan struct{}) {
	l := r.Lanes[i]
	workers := l.Workers
	if workers <= 0 {
		workers = 8
	}
	work := make(chan Claimed)
	// Results are recorded by one settler, as many at a time as have come
	// in: under load one transaction records a batch, not one a message.
	results := make(chan Result, workers)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		r.settleLoop(context.WithoutCancel(ctx), i, results)
	}()
	var wg sync.WaitGroup
	free := make(chan struct{}, workers)
	for range workers {
		free <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				results <- r.deliver(ctx, i, c)
				r.inflight[i].Add(-1)
				free <- struct{}{}
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
		close(results)
		<-settled
	}()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		// While results cannot be recorded, claim nothing: a lease that
		// lapses meanwhile would otherwise be claimed (and its message sent
		// again) before the result that says it went is in.
		for r.stalled[i].Load() {
			if Sleep(ctx, r.Poll) != nil {
				return
			}
		}
		// Wait for at least one free worker, then take as many as are free.
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		n := 1
	more:
		for n < workers {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		batch, err := l.Queue.Claim(ctx, r.Platform, r.Now(), r.Lease, n)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("claiming outbound messages", "platform", r.Platform, "lane", l.Name, "err", err)
		}
		for _, c := range batch {
			r.inflight[i].Add(1)
			select {
			case work <- c:
				n--
			case <-ctx.Done():
				results <- Result{Claimed: c, Outcome: Released, At: r.Now()}
				r.inflight[i].Add(-1)
			}
		}
		for range n {
			free <- struct{}{}
		}
		if len(batch) > 0 && ctx.Err() == nil {
			continue // more may be due: claim again at once
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(r.Poll)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

// deliver sends one message and says what became of it.
func (r *Relay) deliver(ctx context.Context, lane int, c Claimed) Result {
	l := r.Lanes[lane]
	if l.Yield {
		for wait := 0; wait < 50 && r.busyBefore(lane); wait++ {
			if Sleep(ctx, 20*time.Millisecond) != nil {
				break
			}
		}
	}
	if l.Limiter != nil {
		if err := l.Limiter.Wait(ctx); err != nil {
			return Result{Claimed: c, Outcome: Released, At: r.Now()}
		}
	}
	if ctx.Err() != nil {
		return Result{Claimed: c, Outcome: Released, At: r.Now()}
	}
	msg := c.Msg
	if r.Budget.Spent(r.Platform) && msg.Card != nil && !urgent(&msg) {
		r.Budget.Held(r.Platform)
		if msg.Card.Update {
			// The ticket's state is in the database; redrawing cards is
			// what a spent budget goes without.
			return Result{Claimed: c, Outcome: Failed, At: r.Now(), Reason: "本月平台接口预算已用完，卡片更新未发送（工单状态不受影响）"}
		}
		card := *msg.Card
		card.Plain = true
		msg.Card = &card
	}
	// The platform call runs to its end even when shutdown begins.
	work, cancel := context.WithTimeout(WithPurpose(context.WithoutCancel(ctx), msg.Ref.Purpose), r.SendTimeout)
	start := time.Now()
	id, err := SendReceipt(work, r.Sender, &msg)
	cancel()
	took := time.Since(start)
	now := r.Now()
	res := Result{Claimed: c, At: now}
	switch d, later := RetryDelay(err); {
	case err == nil:
		res.Outcome, res.MessageID = Sent, id
	case later:
		res.Outcome, res.RetryAt, res.Reason = Retry, now.Add(d), reason(err)
	case IsPermanent(err):
		res.Outcome, res.Reason = Failed, reason(err)
	case c.Attempts+1 >= r.MaxAttempts:
		res.Outcome, res.Reason = Failed, "多次重试仍失败："+reason(err)
	default:
		wait := min(r.Backoff<<min(c.Attempts, 16), r.MaxBackoff)
		res.Outcome, res.RetryAt, res.Reason, res.Counted = Retry, now.Add(wait), reason(err), true
	}
	if r.Observe != nil {
		r.Observe(r.Platform, l.Name, res.Outcome, took)
	}
	if res.Outcome != Sent {
		r.Log.Warn("outbound message not sent", "platform", r.Platform, "lane", l.Name, "row", c.Row,
			"purpose", c.Msg.Ref.Purpose, "outcome", res.Outcome.String(), "err", Mask(err.Error()))
	}
	return res
}

// urgent messages go whatever the budget: emergency pages, and the updates
// of their cards.
func urgent(m *Outbound) bool {
	return m.Ref.Purpose == PurposePage || (m.Card != nil && m.Card.Urgent)
}

// maxSettle bounds how many results one transaction records.
const maxSettle = 64

// settleLoop records results until results is closed: each batch in one
// call, retried through a short outage of the database (the messages went,
// or did not, and saying so matters). What follows from a failure is the
// queue's to record with it.
func (r *Relay) settleLoop(ctx context.Context, lane int, results <-chan Result) {
	for res := range results {
		batch := []Result{res}
	more:
		for len(batch) < maxSettle {
			select {
			case res, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, res)
			default:
				break more
			}
		}
		r.settle(ctx, lane, batch)
	}
}

// settleFor bounds how long a batch's results are retried through an
// outage before they are given up (the messages are then sent again once
// their leases lapse).
const settleFor = 10 * time.Minute

func (r *Relay) settle(ctx context.Context, lane int, batch []Result) bool {
	ctx, cancel := context.WithTimeout(ctx, settleFor)
	defer cancel()
	defer r.stalled[lane].Store(false)
	q := r.Lanes[lane].Queue
	wait := 50 * time.Millisecond
	for {
		err := q.Settle(ctx, batch)
		if err == nil {
			return true
		}
		r.stalled[lane].Store(true)
		if ctx.Err() != nil {
			r.Log.Error("recording outbound messages' results", "platform", r.Platform, "messages", len(batch), "err", err)
			return false
		}
		_ = Sleep(ctx, wait)
		wait = min(wait*2, time.Second)
	}
}

// busyBefore reports whether a lane before lane has messages in hand.
func (r *Relay) busyBefore(lane int) bool {
	for i := range lane {
		if r.inflight[i].Load() > 0 {
			return true
		}
	}
	return false
}

// reason is an error as a row keeps it: masked and bounded.
func reason(err error) string { return Truncate(Mask(err.Error()), 500) }

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Retry:
		return "retry"
	case Failed:
		return "failed"
	case Released:
		return "released"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}
