package redisbus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/bot"
)

// Waker is bot.Waker across processes: a PUBLISH on a channel per platform
// after a commit, heard by the relays of the process that owns that
// platform's connection. A nudge is a hint: it carries no message, and a
// relay that misses one finds the rows on its next poll.
type Waker struct {
	rdb    *redis.Client
	prefix string
}

var _ bot.Waker = (*Waker)(nil)

// NewWaker returns a waker on rdb whose channels start with prefix.
func NewWaker(rdb *redis.Client, prefix string) *Waker { return &Waker{rdb: rdb, prefix: prefix} }

func (w *Waker) channel(p bot.Platform) string { return w.prefix + "outbound-wake:" + string(p) }

// Wake publishes a nudge; a failure only delays the message to the poll.
func (w *Waker) Wake(ctx context.Context, p bot.Platform) {
	_ = w.rdb.Publish(context.WithoutCancel(ctx), w.channel(p), "1").Err()
}

// Wakeups subscribes to p's nudges until ctx ends.
func (w *Waker) Wakeups(ctx context.Context, p bot.Platform) (<-chan struct{}, error) {
	sub := w.rdb.Subscribe(ctx, w.channel(p))
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return nil, fmt.Errorf("subscribe to %s nudges: %w", p, err)
	}
	out := make(chan struct{}, 1)
	msgs := sub.Channel()
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}
