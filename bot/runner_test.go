package bot_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// refused is what a client gets from a database or Redis that is down.
func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connect: connection refused", Addr: "127.0.0.1:3306"}}
}

// runScript runs one message through a Runner whose processing fails as
// script says, call by call (nil when the script is over), and returns
// how many calls it took and, if the message was parked, why.
func runScript(t *testing.T, script []error) (calls int, parked error) {
	t.Helper()
	b := bot.NewMemoryBus(0)
	defer b.Close()
	var (
		mu       sync.Mutex
		finished = make(chan struct{})
		once     sync.Once
	)
	finish := func() { once.Do(func() { close(finished) }) }
	r := &bot.Runner{
		Subscriber: b, Topic: "events", Group: "handlers", MaxAttempts: 3, Backoff: time.Millisecond,
		Process: func(ctx context.Context, m bot.Message) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls <= len(script) && script[calls-1] != nil {
				return script[calls-1]
			}
			finish()
			return nil
		},
		Park: func(ctx context.Context, topic string, m bot.Message, cause error) error {
			mu.Lock()
			defer mu.Unlock()
			parked = cause
			finish()
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	if err := b.Publish(ctx, "events", bot.Message{ID: "e1", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatal("the message was neither handled nor parked within 20s")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return calls, parked
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// A dependency that is down longer than a message's attempts last parks
// nothing: those failures do not count, the message waits and is handled.
// Failures of the message itself still park it after MaxAttempts (3 here),
// however long it waited for a dependency or another consumer before.
func TestRunnerWaitsOutDependenciesAndParksOnlyWhatFails(t *testing.T) {
	down := bot.Unavailable(fmt.Errorf("file ticket for e1: %w", refused()))
	bad := errors.New("no such station")
	cases := []struct {
		name       string
		script     []error
		calls      int
		wantParked error
	}{
		{"dependency down for three times MaxAttempts", repeat(down, 9), 10, nil},
		{"failing message", repeat(bad, 3), 3, bad},
		{"dependency down, then a failing message", append(repeat(down, 5), repeat(bad, 3)...), 8, bad},
		{"handled elsewhere for a while, then failing", append(repeat(bot.ErrBusy, 4), repeat(bad, 3)...), 7, bad},
		{"dependency down, then flaky, then handled", append(repeat(down, 6), bad, bad), 9, nil},
		{"permanent", []error{bot.Permanent(bad)}, 1, bad},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls, parked := runScript(t, c.script)
			if calls != c.calls {
				t.Errorf("processed %d times, want %d", calls, c.calls)
			}
			switch {
			case c.wantParked == nil && parked != nil:
				t.Errorf("parked as poison (%v); want it handled", parked)
			case c.wantParked != nil && !errors.Is(parked, c.wantParked):
				t.Errorf("parked = %v, want parked for %v", parked, c.wantParked)
			}
		})
	}
}

// Dependencies marks what a handler could not do because the store or
// Redis did not answer, and nothing else.
func TestDependenciesMarksUnreachableFailures(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("file ticket: %w", refused()), true},
		{"bad pooled connection", fmt.Errorf("file ticket: %w", driver.ErrBadConn), true},
		{"connection reset", fmt.Errorf("file ticket: %w", syscall.ECONNRESET), true},
		{"timed out", fmt.Errorf("file ticket: %w", context.DeadlineExceeded), true},
		{"the event's own fault", errors.New("no such station"), false},
		{"permanent", bot.Permanent(fmt.Errorf("decode: %w", refused())), false},
		{"busy", bot.ErrBusy, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := bot.Chain(bot.HandlerFunc(func(context.Context, *bot.Event) error { return c.err }), bot.Dependencies(bot.Unreachable))
			err := h.Handle(context.Background(), &bot.Event{ID: "e1"})
			if got := bot.IsUnavailable(err); got != c.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", err, got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
}
