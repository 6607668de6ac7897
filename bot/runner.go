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

// ParkFunc receives a message that failed MaxAttempts times or permanently, so
// it can be stored for an admin to see; after it returns the message is acked
// and stops blocking its topic.
type ParkFunc func(ctx context.Context, topic string, m Message, cause error) error

// Runner consumes one topic for one consumer group with Workers concurrent
// subscriptions, the loop between a Subscriber and the code that processes.
type Runner struct {
	Subscriber  Subscriber
	Topic       string
	Group       string
	Workers     int
	Process     func(ctx context.Context, m Message) error
	MaxAttempts int           // default 8 (about half a minute of retrying)
	Timeout     time.Duration // per message, default 30s
	Park        ParkFunc
	Log         *slog.Logger
}

// Run blocks until ctx ends. A message being processed when ctx ends is
// finished (processing runs on a context detached from ctx, bounded by
// Timeout), so shutdown never leaves a half-done handler.
func (r *Runner) Run(ctx context.Context) error {
	workers := max(r.Workers, 1)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		ch, err := r.Subscriber.Subscribe(ctx, r.Topic, r.Group)
		if err != nil {
			return fmt.Errorf("subscribe %s/%s: %w", r.Topic, r.Group, err)
		}
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
		return d.Ack(settle)
	}
	var perm permanentError
	// A busy event is being handled by another consumer (or was, by one that
	// died holding it): wait for that, however long, rather than park it.
	busy := errors.Is(err, ErrBusy)
	if errors.As(err, &perm) || (!busy && d.Attempt >= maxAttempts) {
		if r.Park != nil {
			if perr := r.Park(settle, r.Topic, d.Message, err); perr != nil {
				// Nowhere to keep it either (the store is down): keep it on
				// the bus and try again later.
				log.Error("parking failed message", "topic", r.Topic, "message", d.ID, "err", perr)
				return r.retryLater(ctx, d, settle, maxBackoff)
			}
		}
		log.Error("message parked", "topic", r.Topic, "message", d.ID, "attempts", d.Attempt, "err", err)
		return d.Ack(settle)
	}
	// Back off before handing the message back, exponentially, so a failing
	// dependency (a database restarting) is not hammered and has time to
	// come back before the message is given up on.
	wait := min(200*time.Millisecond<<min(d.Attempt-1, 10), maxBackoff)
	if busy {
		wait = 500 * time.Millisecond
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
