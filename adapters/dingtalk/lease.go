package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DingTalk gives an app one stream connection; several adapter processes of
// the same app (for availability) must take turns. The lease is a Redis key
// set with NX and a TTL: whoever sets it holds the stream and renews the key
// well within the TTL; the others poll and take it once it lapses, so a dead
// holder is replaced within TTL + poll interval (+ the connect itself): with
// the defaults, 10 s + 2 s + about 1 s, inside DingTalk's 15 s budget.
//
// Each acquisition also takes a fencing token, a counter that only grows. A
// holder that cannot renew (Redis unreachable, a long pause) stops using the
// stream before its TTL runs out, and stops taking frames as soon as its
// lease is no longer known to be valid, so two processes never both act on
// DingTalk's frames under the same lease. The token, shown in Health and in
// the log, tells operators which acquisition is live.

// Lease timing defaults (see WithLeaseTTL).
const (
	DefaultLeaseTTL = 10 * time.Second
)

type lease struct {
	rdb    redis.UniversalClient
	key    string
	value  string // holder id + "/" + fencing token
	token  int64
	ttl    time.Duration
	mu     sync.Mutex
	expiry time.Time // local view: last successful set or renew + ttl
}

var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. '/' .. t, 'PX', ARGV[2])
  return t
end
return 0`)

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// tryAcquire takes the lease if nobody holds it; ok is false when someone does.
func tryAcquire(ctx context.Context, rdb redis.UniversalClient, key, holder string, ttl time.Duration) (*lease, bool, error) {
	start := time.Now()
	token, err := acquireScript.Run(ctx, rdb, []string{key, key + ":fence"}, holder, ttl.Milliseconds()).Int64()
	if err != nil {
		return nil, false, fmt.Errorf("acquire stream lease: %w", err)
	}
	if token == 0 {
		return nil, false, nil
	}
	return &lease{rdb: rdb, key: key, value: holder + "/" + strconv.FormatInt(token, 10), token: token, ttl: ttl, expiry: start.Add(ttl)}, true, nil
}

// holder reads who holds the lease now, for the stand-by log line.
func leaseHolder(ctx context.Context, rdb redis.UniversalClient, key string) string {
	v, err := rdb.Get(ctx, key).Result()
	if err != nil {
		return ""
	}
	if i := strings.LastIndex(v, "/"); i > 0 {
		return v[:i]
	}
	return v
}

var errLeaseLost = errors.New("stream lease taken over by another process")

// renew extends the lease; errLeaseLost means another process holds it now.
func (l *lease) renew(ctx context.Context) error {
	start := time.Now()
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.value, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("renew stream lease: %w", err)
	}
	if n == 0 {
		return errLeaseLost
	}
	l.mu.Lock()
	l.expiry = start.Add(l.ttl)
	l.mu.Unlock()
	return nil
}

// valid says whether the lease is certainly still held, with a margin for
// clock drift between this process and Redis.
func (l *lease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Add(l.ttl / 10).Before(l.expiry)
}

// release gives the lease up at once, so a stand-by need not wait for the TTL.
func (l *lease) release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err(); err != nil {
		return fmt.Errorf("release stream lease: %w", err)
	}
	return nil
}

// keep renews the lease every ttl/3 until ctx ends. When the lease is lost,
// or cannot be renewed before the local view of it runs out, it calls lost,
// which ends the stream.
func (l *lease) keep(ctx context.Context, lost func(error)) {
	every := l.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := l.renew(rctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, errLeaseLost):
			lost(err)
			return
		case !l.validFor(every):
			lost(fmt.Errorf("cannot renew the stream lease before it runs out: %w", err))
			return
		}
	}
}

// validFor says whether the lease will still be valid d from now.
func (l *lease) validFor(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Add(d).Before(l.expiry)
}
