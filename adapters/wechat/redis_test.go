package wechat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
)

// redisForTest connects to the Redis the tests use (JINGMIN_TEST_REDIS_ADDR,
// default 127.0.0.1:6379) and returns a key prefix of its own; without a
// Redis the test skips loudly, or fails when JINGMIN_REQUIRE_SERVICES=1.
func redisForTest(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("JINGMIN_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		msg := "!!! Redis not available at " + addr + ": " + err.Error() + " — set JINGMIN_REQUIRE_SERVICES=1 to make this a failure"
		if os.Getenv("JINGMIN_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "jmtest:wechat:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

func TestRedisNoncesAreSharedAndExpire(t *testing.T) {
	rdb, prefix := redisForTest(t)
	ctx := context.Background()
	a, b := redisNonces{rdb, prefix}, redisNonces{rdb, prefix} // two processes
	if ok, err := a.Use(ctx, "robot:1:n1", time.Second); !ok || err != nil {
		t.Fatalf("first use = %v, %v", ok, err)
	}
	if ok, err := b.Use(ctx, "robot:1:n1", time.Second); ok || err != nil {
		t.Errorf("the other process accepted the same nonce: %v, %v", ok, err)
	}
	if err := a.Forget(ctx, "robot:1:n1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Use(ctx, "robot:1:n1", 200*time.Millisecond); !ok {
		t.Error("a forgotten nonce stays refused")
	}
	time.Sleep(300 * time.Millisecond)
	if ok, _ := a.Use(ctx, "robot:1:n1", time.Second); !ok {
		t.Error("an expired nonce stays refused")
	}
}

func TestRedisCacheIsTheSDKCache(t *testing.T) {
	rdb, prefix := redisForTest(t)
	c := NewRedisCache(rdb, prefix)
	if v := c.Get("missing"); v != nil {
		t.Errorf("Get(missing) = %#v, want untyped nil (the SDK tests v != nil)", v)
	}
	if err := c.Set("tok", "abc", time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("tok").(string); !ok || v != "abc" || !c.IsExist("tok") {
		t.Errorf("Get(tok) = %#v", c.Get("tok"))
	}
	if err := c.Delete("tok"); err != nil || c.IsExist("tok") {
		t.Errorf("Delete: %v, exists %v", err, c.IsExist("tok"))
	}
	if err := c.Set("short", "x", -time.Second); err != nil || c.Get("short") != nil {
		t.Errorf("an already expired value: %v, kept %#v", err, c.Get("short"))
	}
}

// TestAdaptersShareTokensAndNoncesThroughRedis: two adapter processes fetch
// one access token between them and refuse each other's replays.
func TestAdaptersShareTokensAndNoncesThroughRedis(t *testing.T) {
	rdb, prefix := redisForTest(t)
	f := newFixture(t)
	process := func() *httptest.Server {
		cfg := Config{Listen: "127.0.0.1:0", CorpID: testCorp, APIBase: f.api.URL, OAAPIBase: f.api.URL,
			App: AppConfig{AgentID: testAgent}, RedisPrefix: prefix}
		a, err := New(cfg, f.bus, bot.NewMemoryDeduper(), nil, WithRedis(rdb), WithClock(f.clock.Now),
			WithEnv(func(k string) (string, bool) { v, ok := f.env[k]; return v, ok }))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.WeChat, ToUser: "wang.jg", Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	p1, p2 := process(), process()
	if n := f.api.Calls("/cgi-bin/gettoken"); n != 1 {
		t.Errorf("two processes fetched the token %d times, want 1 (shared in redis)", n)
	}
	cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", wecomtest.RobotText("m-redis", "group", hexie, "u1", "@太平警务 你好", ""), f.clock.Now(), wecomtest.Nonce())
	post := func(srv *httptest.Server) int {
		resp, err := http.Post(srv.URL+cb.Path(PathRobot), "application/json", bytes.NewReader(cb.Body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(p1); code != http.StatusOK {
		t.Fatalf("first process: HTTP %d", code)
	}
	if code := post(p2); code != http.StatusConflict {
		t.Errorf("the same request at the other process: HTTP %d, want 409 (replay)", code)
	}
}
