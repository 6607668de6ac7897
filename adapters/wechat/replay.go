package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The SDK checks neither a callback's timestamp nor its nonce, so a captured
// request could be played again at will. The adapter accepts a timestamp only
// within the replay window of now, and each nonce for one request only while
// its timestamp could still pass; with several adapter processes the nonces
// live in Redis.
//
// A nonce is never freed, whatever becomes of its request: a freed nonce let
// the signature of a URL verification (GET) be used again for a forged
// message (POST). A nonce is bound to a digest of its request (method and
// signed content): anything else under that nonce is a replay. Once the
// request has been answered with success the nonce is spent, and even the
// very same request is a replay; until then (the hub answered 503, the
// ciphertext did not open) only the platform's retry of the very same
// request may use it again.

var (
	errStale  = errors.New("timestamp outside the replay window")
	errReplay = errors.New("nonce already used")
)

// nonceStore remembers nonces for a while, each bound to one request.
type nonceStore interface {
	// Use records key for the request digest; it reports false when key is
	// already recorded for another request, or spent.
	Use(ctx context.Context, key, digest string, ttl time.Duration) (bool, error)
	// Spend marks key used up by its request for as long as it is kept.
	Spend(ctx context.Context, key, digest string) error
}

// spentMark ends a spent nonce's digest, so no request's digest matches it.
const spentMark = "!"

// memoryNonces is the single-process nonceStore.
type memoryNonces struct {
	mu    sync.Mutex
	seen  map[string]nonceUse
	now   func() time.Time
	count int
}

type nonceUse struct {
	digest string
	expiry time.Time
}

func newMemoryNonces(now func() time.Time) *memoryNonces {
	return &memoryNonces{seen: map[string]nonceUse{}, now: now}
}

func (m *memoryNonces) Use(_ context.Context, key, digest string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.count++
	if m.count%1024 == 0 { // only signed requests get here: the map stays small
		for k, u := range m.seen {
			if now.After(u.expiry) {
				delete(m.seen, k)
			}
		}
	}
	if u, ok := m.seen[key]; ok && now.Before(u.expiry) {
		return u.digest == digest, nil
	}
	m.seen[key] = nonceUse{digest: digest, expiry: now.Add(ttl)}
	return true, nil
}

func (m *memoryNonces) Spend(_ context.Context, key, digest string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.seen[key]; ok && u.digest == digest {
		u.digest += spentMark
		m.seen[key] = u
	}
	return nil
}

// redisNonces shares nonces between adapter processes.
type redisNonces struct {
	rdb    *redis.Client
	prefix string
}

func (r redisNonces) Use(ctx context.Context, key, digest string, ttl time.Duration) (bool, error) {
	// SET NX GET: records the digest unless the key is there, and returns
	// what was there in the same step.
	prev, err := r.rdb.SetArgs(ctx, r.prefix+"nonce:"+key, digest, redis.SetArgs{Mode: "NX", Get: true, TTL: ttl}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("record nonce in redis: %w", err)
	}
	return prev == digest, nil
}

func (r redisNonces) Spend(ctx context.Context, key, digest string) error {
	if err := r.rdb.SetArgs(ctx, r.prefix+"nonce:"+key, digest+spentMark, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("spend nonce in redis: %w", err)
	}
	return nil
}

// replayGuard applies the window and the nonce store to one endpoint.
type replayGuard struct {
	window time.Duration
	now    func() time.Time
	nonces nonceStore
}

// requestDigest identifies a request by its method and the parts its
// signature covers (and, for the Official Account's plain mode, which signs
// no content, its body).
func requestDigest(method string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(method))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// check accepts timestamp and nonce for one request (digest); the nonce
// stays taken by that request until the window has passed. The caller
// calls spend once it has answered the request with success.
func (g replayGuard) check(ctx context.Context, endpoint, timestamp, nonce, digest string) (spend func(), err error) {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a unix time", errStale, clip(timestamp, 20))
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
	ok, err := g.nonces.Use(ctx, key, digest, 2*g.window)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errReplay
	}
	return func() { _ = g.nonces.Spend(context.WithoutCancel(ctx), key, digest) }, nil
}
