package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Limiter paces one platform's broadcast sends: golang.org/x/time/rate's
// Limiter within a process, a Redis limiter when several processes send
// for the same platform.
type Limiter interface {
	Wait(ctx context.Context) error
}

// BroadcastLane is one platform's share of the sending engine: the sender
// that delivers to the platform, the limiter broadcast sends take from
// (nil: unlimited), and a way to see interactive traffic waiting.
type BroadcastLane struct {
	Platform bot.Platform
	Sender   bot.Sender
	// Limiter paces the lane's sends (nil: no limit); Rate is its rate in
	// messages a second, which sizes the batches a worker claims.
	Limiter Limiter
	Rate    float64
	// Workers send at once on this platform (a platform call takes a round
	// trip; one worker alone could not use a 20/s budget). Default 4.
	Workers int
	// Busy reports interactive messages (acknowledgements, answers, DMs)
	// waiting to be sent on this platform; broadcast sends yield to them,
	// so a resident's question is answered at once during a long broadcast.
	Busy func(ctx context.Context) bool
}

// EngineOptions tune the sending engine; zero values take the defaults.
type EngineOptions struct {
	// Lease is how long a claimed delivery stays with its sender. It must
	// outlast a batch's wait for tokens plus one send (see batchSize).
	// Default 60s.
	Lease time.Duration
	// Poll is how often an idle lane looks for due deliveries. Default 500ms.
	Poll time.Duration
	// SendTimeout bounds one platform call. Default 20s.
	SendTimeout time.Duration
	// MaxAttempts is how many claims a delivery gets before a transient
	// failure counts as final. Default 6.
	MaxAttempts int
	// Dedup remembers sent deliveries by key. With the Redis deduper it
	// narrows the duplicate window to the moment between the platform's
	// answer and the Done below. Nil: rows only.
	Dedup bot.Deduper
	Log   *slog.Logger
}

func (o *EngineOptions) defaults(log *slog.Logger) {
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 20 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.Log == nil {
		o.Log = log
	}
}

// RunBroadcasts sends confirmed broadcasts' deliveries on every lane until
// ctx ends. The delivery rows are the truth: a process that starts picks up
// whatever is due, including deliveries a dead process held once their
// lease lapses.
//
// Duplicate window: a group can get an alert twice only if a sender died (or
// hung past its lease) after the platform took the message and before the
// row was marked sent: a few milliseconds per delivery in flight. Neither
// DingTalk's groupMessages/send nor WeCom's webhook takes an idempotency key,
// so the platforms allow no smaller window; the deduper (Redis when
// distributed) narrows it further to the gap between send and Done.
func (h *Hub) RunBroadcasts(ctx context.Context, lanes []BroadcastLane, opts EngineOptions) error {
	opts.defaults(h.opts.Log)
	var wg sync.WaitGroup
	for _, l := range lanes {
		for range max(l.Workers, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.runLane(ctx, l, opts)
			}()
		}
	}
	wg.Wait()
	return nil
}

// batchSize is how many deliveries one claim takes: enough to keep the
// claim queries few, few enough that the lane's tokens for the whole batch
// come well within the lease.
func batchSize(l BroadcastLane, lease time.Duration) int {
	n := 16
	if l.Limiter != nil && l.Rate > 0 {
		workers := max(l.Workers, 1)
		fit := int(l.Rate * lease.Seconds() / 4 / float64(workers))
		n = min(n, max(fit, 1))
	}
	return n
}

func (h *Hub) runLane(ctx context.Context, l BroadcastLane, o EngineOptions) {
	size := batchSize(l, o.Lease)
	for ctx.Err() == nil {
		batch, err := h.store.ClaimDeliveries(ctx, string(l.Platform), time.Now(), o.Lease, size)
		if err != nil && ctx.Err() == nil {
			o.Log.Warn("claiming broadcast deliveries", "platform", l.Platform, "err", err)
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(o.Poll):
			}
			continue
		}
		for i, d := range batch {
			if !h.sendDelivery(ctx, l, o, d) {
				// Shutting down: hand back what this lane holds, so the
				// next process need not wait for the leases to lapse.
				h.release(o, batch[i:])
				break
			}
		}
	}
}

// release hands unsent deliveries back to the queue, due now.
func (h *Hub) release(o EngineOptions, ds []store.Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, d := range ds {
		if _, err := h.store.RetryDeliveryAt(ctx, d.ID, d.Attempts, d.Reason, time.Now()); err != nil {
			o.Log.Warn("handing back a broadcast delivery", "delivery", d.ID, "err", err)
			return
		}
	}
}

// sendDelivery sends one delivery and records the outcome; false means ctx
// ended before it was sent (nothing was sent, the delivery is still held).
func (h *Hub) sendDelivery(ctx context.Context, l BroadcastLane, o EngineOptions, d store.Delivery) bool {
	if l.Busy != nil {
		// Interactive traffic first, but only for so long: a broadcast
		// still makes progress under steady load.
		for wait := 0; wait < 50 && l.Busy(ctx); wait++ {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if l.Limiter != nil {
		if err := l.Limiter.Wait(ctx); err != nil {
			return false
		}
	}
	if ctx.Err() != nil {
		return false
	}
	b, err := h.broadcastCached(ctx, d.BroadcastID)
	if err != nil {
		o.Log.Warn("loading a broadcast to send", "broadcast", d.BroadcastID, "err", err)
		return false
	}
	if b.Status == store.BroadcastCancelled {
		if _, err := h.store.MarkDeliveryCancelled(ctx, d.ID, d.Attempts, time.Now()); err != nil {
			o.Log.Warn("recording a cancelled broadcast delivery", "delivery", d.ID, "err", err)
		}
		return true
	}
	dir := h.dir.Load()
	msg := &bot.Outbound{
		Key: fmt.Sprintf("bc%d:g%d", d.BroadcastID, d.GroupID), Platform: bot.Platform(d.Platform),
		Chat:   &bot.ChatRef{Platform: bot.Platform(d.Platform), ID: d.ChatID, Type: bot.Group},
		Format: bot.FormatText, Title: "警方预警", Text: h.alertText(dir, b.Text),
	}
	// The platform call runs to its end even when shutdown begins: a send
	// cut off midway leaves nobody knowing whether the group got it.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.SendTimeout)
	defer cancel()
	var messageID string
	send := func() error {
		var err error
		messageID, err = bot.SendReceipt(work, l.Sender, msg)
		return err
	}
	if o.Dedup != nil {
		err = bot.Once(work, o.Dedup, "broadcast:"+msg.Key, o.Lease, bot.DefaultKeep, send)
	} else {
		err = send()
	}
	now := time.Now()
	var ok bool
	switch {
	case err == nil:
		ok, err = h.store.MarkDeliverySent(work, d.ID, d.Attempts, messageID, now)
	case bot.IsPermanent(err):
		ok, err = h.store.MarkDeliveryFailed(work, d.ID, d.Attempts, bot.Truncate(bot.Mask(err.Error()), 500), now)
	case d.Attempts >= o.MaxAttempts && !errors.Is(err, bot.ErrBusy):
		ok, err = h.store.MarkDeliveryFailed(work, d.ID, d.Attempts, bot.Truncate("多次重试仍失败："+bot.Mask(err.Error()), 500), now)
	default:
		// Throttled or unreachable: back off, doubling per attempt.
		wait := min(2*time.Second<<min(d.Attempts-1, 8), 5*time.Minute)
		ok, err = h.store.RetryDeliveryAt(work, d.ID, d.Attempts, bot.Truncate(bot.Mask(err.Error()), 500), now.Add(wait))
	}
	if err != nil {
		o.Log.Warn("recording a broadcast delivery", "delivery", d.ID, "err", err)
	} else if !ok {
		o.Log.Warn("broadcast delivery was taken over before its result was recorded", "delivery", d.ID)
	}
	return true
}

// cachedBroadcast is a broadcast as read at a time.
type cachedBroadcast struct {
	b  *store.Broadcast
	at time.Time
}

// broadcastFresh is how stale a cached broadcast may be: a cancel stops
// the sends already claimed within this long.
const broadcastFresh = time.Second

// broadcastCached loads a broadcast at most once a second per process
// rather than once per group.
func (h *Hub) broadcastCached(ctx context.Context, id uint) (*store.Broadcast, error) {
	if v, ok := h.broadcasts.Load(id); ok && time.Since(v.(cachedBroadcast).at) < broadcastFresh {
		return v.(cachedBroadcast).b, nil
	}
	b, err := h.store.BroadcastByID(ctx, id)
	if err != nil {
		return nil, err
	}
	h.broadcasts.Store(id, cachedBroadcast{b: b, at: time.Now()})
	return b, nil
}

// RunBroadcastReports finishes broadcasts with nothing left to send and
// sends each finished round's report to its author, until ctx ends. Several
// processes may run it: finishing is conditional, and a report's key is
// the same in all of them, so the outbound dedup sends it once.
func (h *Hub) RunBroadcastReports(ctx context.Context, every time.Duration) error {
	for {
		if err := h.reportBroadcasts(ctx); err != nil && ctx.Err() == nil {
			h.opts.Log.Warn("reporting broadcasts", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func (h *Hub) reportBroadcasts(ctx context.Context) error {
	if _, err := h.store.FinishBroadcasts(ctx, h.now()); err != nil {
		return err
	}
	list, err := h.store.Unreported(ctx)
	if err != nil {
		return err
	}
	for _, b := range list {
		text, err := h.BroadcastReport(ctx, b.ID)
		if err != nil {
			return err
		}
		h.opts.Log.Info("broadcast finished", "broadcast", b.ID, "round", b.Round)
		m := bot.Outbound{Key: fmt.Sprintf("bc%d:report:%d", b.ID, b.Round), Platform: bot.Platform(b.ReportPlatform),
			ToUser: b.ReportUser, Format: bot.FormatMarkdown, Title: fmt.Sprintf("预警广播 B%d 送达报告", b.ID), Text: text}
		if err := h.outbox.Send(ctx, m); err != nil {
			return err
		}
		if err := h.store.MarkReported(ctx, b.ID, b.Round, h.now()); err != nil {
			return err
		}
	}
	return nil
}
