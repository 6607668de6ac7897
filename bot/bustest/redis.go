package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisAddr is the Redis server tests use: JINGMIN_TEST_REDIS_ADDR, or the
// one on 127.0.0.1:6379 that .ci/run starts.
func RedisAddr() string {
	if addr := os.Getenv("JINGMIN_TEST_REDIS_ADDR"); addr != "" {
		return addr
	}
	return "127.0.0.1:6379"
}

// Redis connects to the tests' Redis and returns a key prefix of the test's
// own, whose keys are deleted when it ends, so packages testing in parallel
// never see each other's streams. Without a server the test skips with a
// loud message, or fails when JINGMIN_REQUIRE_SERVICES=1 (as in CI).
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr := RedisAddr()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		Unavailable(t, "Redis at "+addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "jmtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// Unavailable skips a test whose server is missing, loudly, or fails it
// when JINGMIN_REQUIRE_SERVICES=1 so CI always runs it for real.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := "!!! " + what + " not available: " + err.Error() + " — set JINGMIN_REQUIRE_SERVICES=1 to make this a failure"
	if os.Getenv("JINGMIN_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
