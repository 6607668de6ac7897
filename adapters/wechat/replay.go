package wechat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The SDK checks neither a callback's timestamp nor its nonce, so a captured
// request could be played again at will. The adapter accepts a timestamp only
// within the replay window of now, and each nonce once while its timestamp
// could still pass; with several adapter processes the nonces live in Redis.

var (
	errStale  = errors.New("timestamp outside the replay window")
	errReplay = errors.New("nonce already used")
)

// nonceStore remembers nonces for a while.
type nonceStore interface {
	// Use records key; it reports false when key is already recorded.
	Use(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Forget drops key, so that a request that failed after its nonce was
	// recorded can be retried by the platform with the same nonce.
	Forget(ctx context.Context, key string) error
}

// memoryNonces is the single-process nonceStore.
type memoryNonces struct {
	mu    sync.Mutex
	seen  map[string]time.Time // key → expiry
	now   func() time.Time
	count int
}

func newMemoryNonces(now func() time.Time) *memoryNonces {
	return &memoryNonces{seen: map[string]time.Time{}, now: now}
}

func (m *memoryNonces) Use(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.count++
	if m.count%1024 == 0 { // only signed requests get here: the map stays small
		for k, exp := range m.seen {
			if now.After(exp) {
				delete(m.seen, k)
			}
		}
	}
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[key] = now.Add(ttl)
	return true, nil
}

func (m *memoryNonces) Forget(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, key)
	return nil
}

// redisNonces shares nonces between adapter processes.
type redisNonces struct {
	rdb    *redis.Client
	prefix string
}

func (r redisNonces) Use(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := r.rdb.SetNX(ctx, r.prefix+"nonce:"+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("record nonce in redis: %w", err)
	}
	return ok, nil
}

func (r redisNonces) Forget(ctx context.Context, key string) error {
	if err := r.rdb.Del(ctx, r.prefix+"nonce:"+key).Err(); err != nil {
		return fmt.Errorf("forget nonce in redis: %w", err)
	}
	return nil
}

// replayGuard applies the window and the nonce store to one endpoint.
type replayGuard struct {
	window time.Duration
	now    func() time.Time
	nonces nonceStore
}

// check accepts timestamp and nonce once; on success the caller must call
// the returned release if it then fails to take the message, so the
// platform's retry is not refused as a replay.
func (g replayGuard) check(ctx context.Context, endpoint, timestamp, nonce string) (release func(), err error) {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a unix time", errStale, timestamp)
	}
	now := g.now()
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-g.window)) || at.After(now.Add(g.window)) {
		return nil, fmt.Errorf("%w: %s from now", errStale, at.Sub(now).Round(time.Second))
	}
	if nonce == "" || len(nonce) > 64 {
		return nil, fmt.Errorf("%w: nonce missing or too long", errReplay)
	}
	key := endpoint + ":" + timestamp + ":" + nonce
	ok, err := g.nonces.Use(ctx, key, 2*g.window)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errReplay
	}
	return func() { _ = g.nonces.Forget(context.WithoutCancel(ctx), key) }, nil
}
