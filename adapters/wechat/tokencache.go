package wechat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/cache"
)

// RedisCache is the SDK's cache.Cache over go-redis v9, so that every adapter
// process shares one access token per app (WeCom invalidates the previous
// token when another process fetches a new one too eagerly). The SDK ships a
// Redis cache only for go-redis v8.
type RedisCache struct {
	rdb    *redis.Client
	prefix string
}

var (
	_ cache.Cache        = (*RedisCache)(nil)
	_ cache.ContextCache = (*RedisCache)(nil)
)

// NewRedisCache keeps values under prefix+"cache:"+key.
func NewRedisCache(rdb *redis.Client, prefix string) *RedisCache {
	return &RedisCache{rdb: rdb, prefix: prefix + "cache:"}
}

// The SDK's interface has no context; these bound each call so a stalled
// Redis cannot hang a send forever.
const cacheTimeout = 3 * time.Second

func (c *RedisCache) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cacheTimeout)
}

// Get returns the value or nil (never a typed nil or ""), as the SDK expects.
func (c *RedisCache) Get(key string) any {
	ctx, cancel := c.bounded()
	defer cancel()
	return c.GetContext(ctx, key)
}

func (c *RedisCache) GetContext(ctx context.Context, key string) any {
	v, err := c.rdb.Get(ctx, c.prefix+key).Result()
	if err != nil { // redis.Nil or an outage: the SDK then fetches a token
		return nil
	}
	return v
}

func (c *RedisCache) Set(key string, val any, timeout time.Duration) error {
	ctx, cancel := c.bounded()
	defer cancel()
	return c.SetContext(ctx, key, val, timeout)
}

func (c *RedisCache) SetContext(ctx context.Context, key string, val any, timeout time.Duration) error {
	if timeout <= 0 {
		// Already expired, as the SDK's memory cache treats it (the SDK
		// computes expires_in-1500s, which a short-lived token makes
		// negative): keep nothing rather than fail the caller.
		return c.DeleteContext(ctx, key)
	}
	if err := c.rdb.Set(ctx, c.prefix+key, val, timeout).Err(); err != nil {
		return fmt.Errorf("cache %s in redis: %w", key, err)
	}
	return nil
}

func (c *RedisCache) IsExist(key string) bool {
	ctx, cancel := c.bounded()
	defer cancel()
	return c.IsExistContext(ctx, key)
}

func (c *RedisCache) IsExistContext(ctx context.Context, key string) bool {
	n, err := c.rdb.Exists(ctx, c.prefix+key).Result()
	return err == nil && n > 0
}

func (c *RedisCache) Delete(key string) error {
	ctx, cancel := c.bounded()
	defer cancel()
	return c.DeleteContext(ctx, key)
}

func (c *RedisCache) DeleteContext(ctx context.Context, key string) error {
	if err := c.rdb.Del(ctx, c.prefix+key).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("delete %s from redis: %w", key, err)
	}
	return nil
}
