package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// tokenSource hands out the app's OpenAPI access token. It caches the token
// in memory and, when Redis is configured, shares it between processes so
// that N adapter processes do not each fetch one (DingTalk rate-limits the
// token endpoint like any other). A token is refreshed a margin before it
// expires, on demand, so Send works whether or not Run is running.
type tokenSource struct {
	fetch func(ctx context.Context) (token string, ttl time.Duration, err error)
	rdb   redis.UniversalClient // nil: memory only
	key   string                // Redis key of the shared token
	now   func() time.Time

	mu      sync.Mutex // held while fetching: one fetch at a time per process
	token   string
	expires time.Time
}

// refreshMargin is how long before expiry a token stops being handed out:
// five minutes for DingTalk's two-hour tokens, a quarter of shorter ones.
func refreshMargin(ttl time.Duration) time.Duration { return min(5*time.Minute, ttl/4) }

func (t *tokenSource) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.token != "" && now.Before(t.expires) {
		return t.token, nil
	}
	if t.rdb != nil {
		if tok, ttl, ok := t.shared(ctx); ok {
			t.token, t.expires = tok, now.Add(ttl-refreshMargin(ttl))
			return tok, nil
		}
	}
	tok, ttl, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.expires = tok, now.Add(ttl-refreshMargin(ttl))
	if t.rdb != nil {
		// Sharing is an optimisation: a process that cannot store the token
		// still has it.
		_ = t.rdb.Set(ctx, t.key, tok, ttl).Err()
	}
	return tok, nil
}

// shared reads the token another process stored, if it has long enough left.
func (t *tokenSource) shared(ctx context.Context) (string, time.Duration, bool) {
	pipe := t.rdb.Pipeline()
	get := pipe.Get(ctx, t.key)
	pttl := pipe.PTTL(ctx, t.key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, false
	}
	tok, err := get.Result()
	if err != nil || tok == "" {
		return "", 0, false
	}
	ttl := pttl.Val()
	// A shared token has only its remaining life; treat that as its ttl, so
	// it is dropped a margin before it runs out, like a fresh one.
	if ttl <= time.Second {
		return "", 0, false
	}
	return tok, ttl, true
}

// Invalidate drops bad (a token DingTalk refused) so the next Token fetches a
// new one; a token another process already replaced is left alone.
func (t *tokenSource) Invalidate(ctx context.Context, bad string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == bad {
		t.token, t.expires = "", time.Time{}
	}
	if t.rdb != nil {
		_ = invalidateScript.Run(ctx, t.rdb, []string{t.key}, bad).Err()
	}
}

var invalidateScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// fetchToken calls /v1.0/oauth2/accessToken. Refused credentials are
// permanent: no retry fixes a wrong key or secret.
func (a *Adapter) fetchToken(ctx context.Context) (string, time.Duration, error) {
	var out struct {
		AccessToken string `json:"accessToken"`
		ExpireIn    int64  `json:"expireIn"`
	}
	body := map[string]string{"appKey": a.cfg.AppKey, "appSecret": a.cfg.AppSecret}
	status, apiErr, err := a.post(ctx, a.cfg.OpenAPIHost+pathToken, "", body, &out)
	if err != nil {
		return "", 0, fmt.Errorf("fetch access token: %w", err)
	}
	if status != http.StatusOK {
		err := fmt.Errorf("fetch access token: HTTP %d %s", status, apiErr)
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && !apiErr.throttled(status) {
			return "", 0, permanent(err)
		}
		return "", 0, err
	}
	if out.AccessToken == "" {
		return "", 0, errors.New("fetch access token: response has no accessToken")
	}
	ttl := time.Duration(out.ExpireIn) * time.Second
	if ttl <= 0 {
		ttl = 2 * time.Hour
	}
	return out.AccessToken, ttl, nil
}
