package redisbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/bot"
)

// Deduper is bot.Deduper shared by every process through Redis keys with a
// TTL: "busy" while a handler holds the key, "done" once it finished.
type Deduper struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ bot.Deduper = (*Deduper)(nil)

// NewDeduper keeps its keys under prefix.
func NewDeduper(rdb redis.UniversalClient, prefix string) *Deduper {
	return &Deduper{rdb: rdb, prefix: prefix + "dedup:"}
}

const (
	busy = "busy"
	done = "done"
)

// Claim takes key for hold unless it is done or held.
func (d *Deduper) Claim(ctx context.Context, key string, hold time.Duration) (bot.Claim, error) {
	ok, err := d.rdb.SetNX(ctx, d.prefix+key, busy, hold).Result()
	if err != nil {
		return 0, fmt.Errorf("dedup claim: %w", err)
	}
	if ok {
		return bot.ClaimNew, nil
	}
	v, err := d.rdb.Get(ctx, d.prefix+key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return bot.ClaimBusy, nil // expired in between: try again shortly
	case err != nil:
		return 0, fmt.Errorf("dedup claim: %w", err)
	case v == done:
		return bot.ClaimDone, nil
	}
	return bot.ClaimBusy, nil
}

// Done marks key processed for keep.
func (d *Deduper) Done(ctx context.Context, key string, keep time.Duration) error {
	if err := d.rdb.Set(ctx, d.prefix+key, done, keep).Err(); err != nil {
		return fmt.Errorf("dedup done: %w", err)
	}
	return nil
}

// releaseScript deletes the key only while it is still "busy", so a late
// Release cannot erase another process's "done".
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release gives key back after a failure, so a redelivery can process it.
func (d *Deduper) Release(ctx context.Context, key string) error {
	if err := releaseScript.Run(ctx, d.rdb, []string{d.prefix + key}, busy).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("dedup release: %w", err)
	}
	return nil
}
