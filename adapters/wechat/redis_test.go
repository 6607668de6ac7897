package wechat

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
)

func TestRedisNoncesAreSharedAndExpire(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx := context.Background()
	a, b := redisNonces{rdb, prefix}, redisNonces{rdb, prefix} // two processes
	if ok, err := a.Use(ctx, "robot:1:n1", "req-1", time.Second); !ok || err != nil {
		t.Fatalf("first use = %v, %v", ok, err)
	}
	if ok, err := b.Use(ctx, "robot:1:n1", "req-2", time.Second); ok || err != nil {
		t.Errorf("the other process accepted the same nonce for another request: %v, %v", ok, err)
	}
	if ok, err := b.Use(ctx, "robot:1:n1", "req-1", time.Second); !ok || err != nil {
		t.Errorf("the platform's retry of the same request was refused: %v, %v", ok, err)
	}
	if err := a.Spend(ctx, "robot:1:n1", "req-1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Use(ctx, "robot:1:n1", "req-1", time.Second); ok || err != nil {
		t.Errorf("a spent nonce was taken again: %v, %v", ok, err)
	}
	if ok, _ := a.Use(ctx, "robot:1:n2", "req-3", 200*time.Millisecond); !ok {
		t.Fatal("a fresh nonce refused")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _ := b.Use(ctx, "robot:1:n2", "req-4", 200*time.Millisecond)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired nonce stays refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisCacheIsTheSDKCache(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
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
	rdb, prefix := bustest.Redis(t)
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
