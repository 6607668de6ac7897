package wechat

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
)

func TestRunServesUntilContextEnds(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.a.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f.a.Addr() == nil {
		t.Fatal("Run did not listen")
	}
	base := "http://" + f.a.Addr().String()
	resp, err := http.Get(base + PathReady)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: HTTP %d", resp.StatusCode)
	}
	cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", wecomtest.RobotText("run-1", "group", hexie, "u1", "@太平警务 你好", ""), f.clock.Now(), wecomtest.Nonce())
	resp, err = http.Post(base+cb.Path(PathRobot), "application/json", strings.NewReader(string(cb.Body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(f.events()) != 1 {
		t.Errorf("callback through Run: HTTP %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after its context ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestRunReportsABusyAddress(t *testing.T) {
	f := newFixture(t)
	taken := f.srv.Listener.Addr().String()
	a, err := New(Config{Listen: taken}, f.bus, f.dedup, nil, WithEnv(func(k string) (string, bool) { v, ok := f.env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), taken) {
		t.Errorf("Run on a busy address = %v", err)
	}
}

// TestSDKLoggingIsSilenced: the SDK's root package sets logrus to Debug on
// import, and its Official Account server logs raw messages through it.
func TestSDKLoggingIsSilenced(t *testing.T) {
	newFixture(t)
	if logrus.IsLevelEnabled(logrus.ErrorLevel) || logrus.StandardLogger().Out != io.Discard {
		t.Errorf("logrus still logs: level %s", logrus.GetLevel())
	}
}

func TestNewConfiguresTheSDKForTheConfiguredHosts(t *testing.T) {
	f := newFixture(t)
	t.Cleanup(func() { // leave the globals as the next test's New expects
		util.DefaultHTTPClient = http.DefaultClient
		util.SetURIModifier(nil)
	})
	client := &http.Client{Timeout: time.Second}
	_, err := New(Config{APIBase: "https://wecom.example.internal", OAAPIBase: "https://mp.example.internal"}, f.bus, f.dedup, nil,
		WithHTTPClient(client), WithEnv(func(k string) (string, bool) { v, ok := f.env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	if util.DefaultHTTPClient != client {
		t.Error("WithHTTPClient did not reach the SDK")
	}
	// The SDK's hosts are rewritten; anything else (a response_url) is not.
	probe := httptestProbe(t)
	for in, want := range map[string]string{
		DefaultAPIBase + "/cgi-bin/gettoken?x=1": "https://wecom.example.internal/cgi-bin/gettoken?x=1",
		DefaultOAAPIBase + "/cgi-bin/token":      "https://mp.example.internal/cgi-bin/token",
		"https://other.example/cb":               "https://other.example/cb",
	} {
		if got := probe(in); got != want {
			t.Errorf("SDK request to %s went to %s, want %s", in, got, want)
		}
	}
}

// httptestProbe returns where the SDK would send a request for uri, by
// letting its HTTP layer call a transport that records the URL.
func httptestProbe(t *testing.T) func(string) string {
	t.Helper()
	rec := &recordingTransport{}
	util.DefaultHTTPClient = &http.Client{Transport: rec}
	return func(uri string) string {
		_, _ = util.HTTPGetContext(context.Background(), uri)
		return rec.last
	}
}

type recordingTransport struct{ last string }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.last = req.URL.String()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := Config{Listen: "nope", APIBase: "ftp://x", App: AppConfig{AgentID: "abc"}, WebhookPerMinute: -1,
		ReplayWindow: time.Second, Robot: RobotConfig{Names: []string{"有 空格"}}}.WithDefaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a bad config validated")
	}
	for _, field := range []string{"wechat.listen", "wechat.api_base", "wechat.corp_id", "wechat.app.agent_id", "wechat.webhook_per_minute", "wechat.replay_window", "wechat.robot.names[0]"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigFromYAMLAndSecretsFromEnvironment(t *testing.T) {
	var cfg Config
	doc := `
listen: 0.0.0.0:8090
corp_id: wwcorp
robot: {names: [太平警务]}
app: {agent_id: "1000002"}
official_account: {app_id: wxoa}
replay_window: 2m
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.ReplayWindow != 2*time.Minute || cfg.WebhookPerMinute != 20 || cfg.APIBase != DefaultAPIBase {
		t.Errorf("config = %+v", cfg)
	}
	file := filepath.Join(t.TempDir(), "hooks")
	if err := os.WriteFile(file, []byte("# station groups\nwrA = keyA\nwrB=keyB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvAppSecret: "s", EnvAppToken: "t", EnvAppAESKey: appAESKey, EnvOASecret: "s", EnvOAToken: "t",
		EnvWebhookKeys: "wrC=keyC;wrD=keyD", EnvWebhookKeysFile: file,
	}
	sec, err := cfg.LoadSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.WebhookKeys) != 4 || sec.WebhookKeys["wrB"] != "keyB" || sec.WebhookKeys["wrD"] != "keyD" {
		t.Errorf("webhook keys = %v", sec.WebhookKeys)
	}
	delete(env, EnvAppAESKey)
	env[EnvWebhookKeys] = "wrC=keyC,broken-entry"
	_, err = cfg.LoadSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), EnvAppAESKey) || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("missing secret and bad entry: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "keyC") {
		t.Errorf("error quotes a webhook key: %v", err)
	}
}

func TestNewRefusesAnAdapterWithNothingToDo(t *testing.T) {
	_, err := New(Config{}, bot.NewMemoryBus(0), bot.NewMemoryDeduper(), nil, WithEnv(func(string) (string, bool) { return "", false }))
	if err == nil || !strings.Contains(err.Error(), EnvRobotToken) {
		t.Errorf("New with no secrets = %v", err)
	}
	_, err = New(Config{}, bot.NewMemoryBus(0), bot.NewMemoryDeduper(), nil, WithEnv(func(k string) (string, bool) {
		return map[string]string{EnvRobotToken: "t", EnvRobotAESKey: strings.Repeat("!", 43)}[k], true
	}))
	if err == nil || !strings.Contains(err.Error(), EnvRobotAESKey) {
		t.Errorf("New with a bad AES key = %v", err)
	}
}
