package wechat

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
)

// Tests here move the SDK's package globals (util.SetURIModifier,
// util.DefaultHTTPClient) through New: none of them may run in parallel.

// Test secrets. The robot uses WeCom's sample EncodingAESKey.
var (
	robotToken  = "robot-token"
	robotAESKey = sampleAESKey
	appToken    = "app-token"
	appAESKey   = strings.TrimRight(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), "=")
	oaToken     = "oa-token"
	hexieKey    = "hook-hexie-0f3a9c"
)

const (
	testCorp  = "wwcorp"
	testAgent = "1000002"
	hexie     = "wrkSFfCgAAhexie"
)

// fixture is an adapter wired to a real in-memory bus and deduper and a
// stand-in WeCom API.
type fixture struct {
	t     *testing.T
	a     *Adapter
	bus   *bot.MemoryBus
	dedup *bot.MemoryDeduper
	api   *wecomtest.Server
	clock *bottest.Clock
	logs  *bottest.LogBuffer
	srv   *httptest.Server
	env   map[string]string
}

func newFixture(t *testing.T, mutate ...func(*Config, map[string]string)) *fixture {
	t.Helper()
	api := wecomtest.NewServer()
	t.Cleanup(api.Close)
	api.AddWebhook(hexieKey, "hexie")
	cfg := Config{
		Listen: "127.0.0.1:0", CorpID: testCorp, APIBase: api.URL, OAAPIBase: api.URL,
		Robot:            RobotConfig{Names: []string{"太平警务"}},
		App:              AppConfig{AgentID: testAgent},
		OfficialAccount:  OfficialAccountConfig{AppID: "wxoa"},
		WebhookPerMinute: 600,
	}
	env := map[string]string{
		EnvRobotToken: robotToken, EnvRobotAESKey: robotAESKey,
		EnvAppSecret: api.CorpSecret, EnvAppToken: appToken, EnvAppAESKey: appAESKey,
		EnvOASecret: api.OASecret, EnvOAToken: oaToken,
		EnvWebhookKeys: hexie + "=" + hexieKey,
	}
	for _, m := range mutate {
		m(&cfg, env)
	}
	f := &fixture{t: t, bus: bot.NewMemoryBus(0), dedup: bot.NewMemoryDeduper(), api: api, logs: &bottest.LogBuffer{}, env: env,
		clock: bottest.NewClock(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))}
	t.Cleanup(func() { f.bus.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, f.bus, f.dedup, log, WithClock(f.clock.Now), WithBackoff(5*time.Millisecond),
		WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	f.srv = httptest.NewServer(a.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request to the adapter and returns the status and body.
func (f *fixture) do(method, path string, body []byte) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// robot posts a robot message, sealed and signed now.
func (f *fixture) robot(msg []byte) (int, string) {
	f.t.Helper()
	cb, err := wecomtest.SealJSON(robotToken, robotAESKey, "", msg, f.clock.Now(), wecomtest.Nonce())
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(http.MethodPost, cb.Path(PathRobot), cb.Body)
}

// app posts an app message, sealed and signed now.
func (f *fixture) app(msg []byte) (int, string) {
	f.t.Helper()
	cb, err := wecomtest.SealXML(appToken, appAESKey, testCorp, testAgent, msg, f.clock.Now(), wecomtest.Nonce())
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(http.MethodPost, cb.Path(PathApp), cb.Body)
}

// events returns the events published since the last call.
func (f *fixture) events() []*bot.Event {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.bus.Subscribe(ctx, bot.TopicEvents, "test-reader")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*bot.Event
	for {
		select {
		case d := <-ch:
			e, err := bot.DecodeEvent(d.Payload)
			if err != nil {
				f.t.Fatal(err)
			}
			_ = d.Ack(ctx)
			out = append(out, e)
		case <-time.After(50 * time.Millisecond):
			return out
		}
	}
}

func mustNotContain(t *testing.T, what, got string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(got, s) {
			t.Errorf("%s contains %q", what, s)
		}
	}
}
