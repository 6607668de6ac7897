package redisbus

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter is a rate limit shared by every process through Redis (GCRA, as
// redis_rate implements it): two processes sending a platform's broadcasts
// together stay within the platform's limit, not twice it.
type Limiter struct {
	rl    *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
}

// NewLimiter allows perSecond events a second (fractions too: 1/3 is 20 a
// minute) under key, across processes, one at a time.
func NewLimiter(rdb *redis.Client, key string, perSecond float64) *Limiter {
	perMinute := max(1, int(math.Round(perSecond*60)))
	return &Limiter{rl: redis_rate.NewLimiter(rdb), key: key, limit: redis_rate.Limit{Rate: perMinute, Period: time.Minute, Burst: 1}}
}

// Wait blocks until the shared limit lets one more event through.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		res, err := l.rl.Allow(ctx, l.key, l.limit)
		if err != nil {
			return fmt.Errorf("shared rate limit %s: %w", l.key, err)
		}
		if res.Allowed > 0 {
			return nil
		}
		select {
		case <-time.After(max(res.RetryAfter, time.Millisecond)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
