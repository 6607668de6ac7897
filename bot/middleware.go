package bot

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"syscall"
	"time"
)

// ErrBusy means another consumer is handling the same event right now; the
// router retries later instead of dropping it.
var ErrBusy = errors.New("event is being handled elsewhere")

// Recover turns a handler panic into an error, so one bad event is retried and
// eventually parked instead of taking the process down.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, e *Event) (err error) {
			defer func() {
				if p := recover(); p != nil {
					log.Error("handler panicked", "event", e.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					err = fmt.Errorf("handler panicked on %s: %v", e.ID, p)
				}
			}()
			return next.Handle(ctx, e)
		})
	}
}

// Observer receives the outcome and duration of every handled event (metrics).
type Observer func(e *Event, took time.Duration, err error)

// Log records one line per event: ids, platform, chat type, kind, duration,
// outcome. Never the text: residents write phone numbers and addresses.
func Log(log *slog.Logger, observe Observer) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, e *Event) error {
			start := time.Now()
			err := next.Handle(ctx, e)
			took := time.Since(start)
			if observe != nil {
				observe(e, took, err)
			}
			switch {
			case err == nil:
				log.Debug("event handled", "event", e.ID, "chat", LogChat(e.Chat), "kind", e.Kind, "took", took)
			case errors.Is(err, ErrBusy):
				log.Debug("event busy elsewhere", "event", e.ID)
			default:
				log.Warn("event failed", "event", e.ID, "chat", LogChat(e.Chat), "kind", e.Kind, "took", took, "err", err)
			}
			return err
		})
	}
}

// Dependencies marks as Unavailable a handler's failure that down says
// comes from a dependency being unreachable (the database or Redis down or
// restarting) rather than from the event, so the runner waits for the
// dependency instead of counting the failure against the event. Handlers
// talk to nothing but the store and the bus, so a network failure in one is
// theirs; adapters' platform calls are not judged here.
func Dependencies(down func(error) bool) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, e *Event) error {
			err := next.Handle(ctx, e)
			if err != nil && !IsUnavailable(err) && !IsPermanent(err) && !errors.Is(err, ErrBusy) && down(err) {
				return Unavailable(err)
			}
			return err
		})
	}
}

// Unreachable reports whether err says a server could not be reached, or
// the connection to it broke or timed out: a network error, a pooled
// database connection gone bad. It knows no driver's own errors; callers
// add those.
func Unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
