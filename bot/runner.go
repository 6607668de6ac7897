package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// permanentError marks a failure that retrying cannot fix (a payload that does
// not decode): the runner parks the message at once.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so the runner parks the message instead of retrying.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err (or one it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// unavailableError marks a failure of something the processing depends on,
// not of the message: see Unavailable.
type unavailableError struct{ err error }

func (u unavailableError) Error() string { return u.err.Error() }
func (u unavailableError) Unwrap() error { return u.err }

// Unavailable wraps err, a failure to reach something the processing
// depends on (the database or Redis down or restarting), which says nothing
// about the message itself. The runner retries such a message with backoff
// for as long as the outage lasts, and such failures do not count toward
// MaxAttempts: an outage never parks good messages as poison.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

// IsUnavailable reports whether err (or one it wraps or joins) was marked
// Unavailable.
func IsUnavailable(err error) bool {
	var u unavailableError
	return errors.As(err, &u)
}

// ParkFunc receives a message that failed MaxAttempts times or permanently, so
// it can be stored for an admin to see; after it returns the message is acked
// and stops blocking its topic.
type ParkFunc func(ctx context.Context, topic string, m Message, cause error) error

// Runner consumes one topic for one consumer group with Workers concurrent
// subscriptions, the loop between a Subscriber and the code that processes.
type Runner struct {
	Subscriber Subscriber
	Topic      string
	Group      string
	Workers    int
	Process    func(ctx context.Context, m Message) error
	// MaxAttempts is how many failures a message gets before it is parked
	// (default 8, about half a minute of retrying). Failures that say
	// nothing about the message do not count: ErrBusy (another consumer
	// has it) and Unavailable ones (a dependency is down).
	MaxAttempts int
	// Backoff is the wait before a failed message is tried again; it
	// doubles with every attempt, up to 15 s. Default 200ms.
	Backoff time.Duration
	Timeout time.Duration // per message, default 30s
	Park    ParkFunc
	Log     *slog.Logger
	// OnReady, when set, is called once every subscription is in place:
	// only then does the runner consume its topic (readiness).
	OnReady func()

	excusedMu sync.Mutex
	// excused counts, per message id, the failures of a message that do
	// not count toward MaxAttempts. A message nacked here comes back here
	// (the Redis bus retries it in the same subscription), so the count is
	// exact unless this process stops meanwhile; then its successor
	// counts afresh from the bus's attempt number, erring towards parking
	// sooner, as before.
	excused map[string]int
}

// maxExcused bounds the excused map: past it, it starts again empty.
const maxExcused = 100_000

// excuse records a failure of message id that does not count (when it
// does not, a no-op) and returns how many of its failures do not count.
func (r *Runner) excuse(id string, failed bool) int {
	r.excusedMu.Lock()
	defer r.excusedMu.Unlock()
	if failed {
		if r.excused == nil || len(r.excused) >= maxExcused {
			r.excused = map[string]int{}
		}
		r.excused[id]++
	}
	return r.excused[id]
}

// forget drops what excuse recorded of a settled message.
func (r *Runner) forget(id string) {
	r.excusedMu.Lock()
	delete(r.excused, id)
	r.excusedMu.Unlock()
}

// Run blocks until ctx ends. A message being processed when ctx ends is
// finished (processing runs on a context detached from ctx, bounded by
// Timeout), so shutdown never leaves a half-done handler. Subscribing is
// part of starting: if any subscription fails, Run stops the ones it made
// and returns the error, never consuming a topic half-heartedly.
func (r *Runner) Run(ctx context.Context) error {
	workers := max(r.Workers, 1)
	subs, cancel := context.WithCancel(ctx)
	defer cancel()
	chans := make([]<-chan *Delivery, 0, workers)
	for i := 0; i < workers; i++ {
		ch, err := r.Subscriber.Subscribe(subs, r.Topic, r.Group)
		if err != nil {
			cancel()
			for _, c := range chans {
				for d := range c { // hand back what was already delivered
					_ = d.Nack(context.WithoutCancel(ctx))
				}
			}
			return fmt.Errorf("subscribe %s/%s: %w", r.Topic, r.Group, err)
		}
		chans = append(chans, ch)
	}
	if r.OnReady != nil {
		r.OnReady()
	}
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range ch {
				if err := r.one(ctx, d); err != nil {
					// The bus will redeliver what was not settled; the
					// worker goes on with the next message.
					r.logger().Warn("settling message", "topic", r.Topic, "message", d.ID, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

func (r *Runner) logger() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Runner) one(ctx context.Context, d *Delivery) error {
	log := r.logger()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	maxAttempts := r.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 8
	}
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	err := r.Process(work, d.Message)
	cancel()
	settle := context.WithoutCancel(ctx)
	if err == nil {
		r.forget(d.ID)
		return d.Ack(settle)
	}
	var perm permanentError
	permanent := errors.As(err, &perm)
	// A busy event is being handled by another consumer (or was, by one that
	// died holding it): wait for that, however long, rather than park it.
	busy := errors.Is(err, ErrBusy)
	// An unavailable dependency (the database or Redis down) is waited
	// for, however long, too: the message is not at fault.
	unavailable := !permanent && !busy && IsUnavailable(err)
	excused := r.excuse(d.ID, busy || unavailable)
	if permanent || (!busy && !unavailable && d.Attempt-excused >= maxAttempts) {
		if r.Park != nil {
			if perr := r.Park(settle, r.Topic, d.Message, err); perr != nil {
				// Nowhere to keep it either (the store is down): keep it on
				// the bus and try again later.
				log.Error("parking failed message", "topic", r.Topic, "message", d.ID, "err", perr)
				return r.retryLater(ctx, d, settle, maxBackoff)
			}
		}
		log.Error("message parked", "topic", r.Topic, "message", d.ID, "attempts", d.Attempt, "err", err)
		r.forget(d.ID)
		return d.Ack(settle)
	}
	// Back off before handing the message back, exponentially, so a failing
	// dependency (a database restarting) is not hammered and has time to
	// come back before the message is given up on.
	base := r.Backoff
	if base <= 0 {
		base = 200 * time.Millisecond
	}
	wait := min(base<<min(d.Attempt-1, 10), maxBackoff)
	if busy {
		wait = min(500*time.Millisecond, wait*4) // half a second with the default Backoff
	}
	return r.retryLater(ctx, d, settle, wait)
}

// maxBackoff caps the wait between two attempts at one message.
const maxBackoff = 15 * time.Second

func (r *Runner) retryLater(ctx context.Context, d *Delivery, settle context.Context, wait time.Duration) error {
	_ = Sleep(ctx, wait) // cut short at shutdown: the message goes back either way
	return d.Nack(settle)
}

// EventProcessor decodes bus messages into events for a Handler. A payload
// that does not decode is permanent: no retry can fix it.
func EventProcessor(h Handler) func(ctx context.Context, m Message) error {
	return func(ctx context.Context, m Message) error {
		e, err := DecodeEvent(m.Payload)
		if err != nil {
			return Permanent(err)
		}
		return h.Handle(ctx, e)
	}
}

// PublishEvent validates, encodes and publishes an event; adapters call it and
// acknowledge to their platform only when it returns nil.
func PublishEvent(ctx context.Context, p Publisher, e *Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	b, err := EncodeEvent(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	if err := p.Publish(ctx, TopicEvents, Message{ID: e.ID, Payload: b}); err != nil {
		return fmt.Errorf("publish event %s: %w", e.ID, err)
	}
	return nil
}

// Sleep waits d, or less if ctx ends first (then it returns ctx's error):
// the pause every backoff and poll loop needs without outliving its owner.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
