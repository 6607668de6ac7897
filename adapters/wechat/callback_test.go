package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
)

func TestRobotGroupMessageIsPublishedOnceAcrossRetries(t *testing.T) {
	f := newFixture(t)
	ru := f.api.ResponseURL()
	msg := wecomtest.RobotText("msg-1", "group", hexie, "liu.ayi", "@太平警务 楼下电动车被偷了怎么办", ru)
	if code, body := f.robot(msg); code != http.StatusOK {
		t.Fatalf("callback: HTTP %d %s", code, body)
	}
	// WeCom retries after 5 s with a fresh nonce and timestamp.
	f.clock.Add(5 * time.Second)
	if code, _ := f.robot(msg); code != http.StatusOK {
		t.Fatalf("retry: HTTP %d, want 200 so WeCom stops retrying", code)
	}
	evs := f.events()
	if len(evs) != 1 {
		t.Fatalf("published %d events for one message, want 1", len(evs))
	}
	e := evs[0]
	if e.ID != bot.NewEventID(bot.WeChat, "msg-1") || e.Chat.ID != hexie || e.Chat.Type != bot.Group ||
		e.Sender.ID != "liu.ayi" || e.Text != "楼下电动车被偷了怎么办" || !e.AddressedToBot {
		t.Errorf("event = %+v", e)
	}
	if u, _, ok := decodeReplyHandle(e.ReplyHandle); !ok || u != ru {
		t.Errorf("reply handle %q does not carry the response_url", e.ReplyHandle)
	}
	mustNotContain(t, "logs", f.logs.String(), "电动车", ru)
}

func TestURLVerification(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path, token, key, rid string
	}{{PathRobot, robotToken, robotAESKey, ""}, {PathApp, appToken, appAESKey, testCorp}} {
		cb, err := wecomtest.SealJSON(tc.token, tc.key, tc.rid, []byte("echo-12345"), f.clock.Now(), wecomtest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ Encrypt string }
		_ = json.Unmarshal(cb.Body, &env)
		cb.Query.Set("echostr", env.Encrypt)
		if code, body := f.do(http.MethodGet, cb.Path(tc.path), nil); code != http.StatusOK || body != "echo-12345" {
			t.Errorf("%s verification: HTTP %d %q, want the decrypted echostr", tc.path, code, body)
		}
	}
	// Official Account: plain echo after the signature.
	cb := wecomtest.SignOA(oaToken, nil, f.clock.Now(), wecomtest.Nonce())
	cb.Query.Set("echostr", "oa-echo")
	if code, body := f.do(http.MethodGet, cb.Path(PathOA), nil); code != http.StatusOK || body != "oa-echo" {
		t.Errorf("official account verification: HTTP %d %q", code, body)
	}
}

// TestOfficialSampleThroughTheHandlers posts WeCom's published sample
// requests, byte for byte, to the callback URLs.
func TestOfficialSampleThroughTheHandlers(t *testing.T) {
	f := newFixture(t, func(c *Config, env map[string]string) {
		c.CorpID = sampleCorpID
		c.App.AgentID = "218"
		c.Robot.ReceiveID = sampleCorpID // the sample is a corp's, not an internal robot's
		env[EnvRobotToken], env[EnvRobotAESKey] = sampleToken, sampleAESKey
		env[EnvAppToken], env[EnvAppAESKey] = sampleToken, sampleAESKey
	})
	verify := url.Values{"msg_signature": {sampleVerifySig}, "timestamp": {sampleVerifyTS}, "nonce": {sampleVerifyNonce}, "echostr": {sampleEchoStr}}
	for _, path := range []string{PathApp, PathRobot} {
		f.clock.Set(time.Unix(1409659589, 0))
		if code, body := f.do(http.MethodGet, path+"?"+verify.Encode(), nil); code != http.StatusOK || body != sampleEchoPlain {
			t.Errorf("%s: sample verification = HTTP %d %q, want %q", path, code, body, sampleEchoPlain)
		}
	}
	f.clock.Set(time.Unix(1409659813, 0))
	q := url.Values{"msg_signature": {sampleMsgSig}, "timestamp": {sampleMsgTS}, "nonce": {sampleMsgNonce}}
	body := "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" + sampleEncrypt + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
	if code, resp := f.do(http.MethodPost, PathApp+"?"+q.Encode(), []byte(body)); code != http.StatusOK {
		t.Fatalf("sample message: HTTP %d %s", code, resp)
	}
	evs := f.events()
	if len(evs) != 1 || evs[0].ID != "wechat:app:218:4561255354251345929" || evs[0].Sender.ID != "mycreate" ||
		evs[0].Text != "hello" || evs[0].Chat.Type != bot.Direct || !evs[0].Time.Equal(time.Unix(1409659813, 0)) {
		t.Errorf("sample message became %+v", evs)
	}
	// The same request again is a replay.
	if code, _ := f.do(http.MethodPost, PathApp+"?"+q.Encode(), []byte(body)); code != http.StatusConflict {
		t.Errorf("replayed sample: HTTP %d, want 409", code)
	}
}

func TestBadCallbacksAreRefusedAndNothingIsStored(t *testing.T) {
	f := newFixture(t)
	msg := wecomtest.RobotText("msg-bad", "group", hexie, "res-1", "@太平警务 我的电话13812345678", "")
	sealed := func() wecomtest.Callback {
		cb, err := wecomtest.SealJSON(robotToken, robotAESKey, "", msg, f.clock.Now(), wecomtest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		return cb
	}
	resign := func(cb wecomtest.Callback, ct string) wecomtest.Callback {
		cb.Query.Set("msg_signature", util.Signature(robotToken, cb.Query.Get("timestamp"), cb.Query.Get("nonce"), ct))
		cb.Body = []byte(`{"encrypt":"` + ct + `"}`)
		return cb
	}
	replayed := sealed()
	if code, _ := f.do(http.MethodPost, replayed.Path(PathRobot), replayed.Body); code != http.StatusOK {
		t.Fatalf("first delivery: HTTP %d", code)
	}
	before := len(f.events())

	cases := []struct {
		name   string
		method string
		req    func() (string, []byte)
		status int
	}{
		{"forged signature", http.MethodPost, func() (string, []byte) {
			cb := sealed()
			cb.Query.Set("msg_signature", strings.Repeat("0", 40))
			return cb.Path(PathRobot), cb.Body
		}, http.StatusUnauthorized},
		{"signature with another token", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealJSON("not-our-token", robotAESKey, "", msg, f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusUnauthorized},
		{"missing signature", http.MethodPost, func() (string, []byte) {
			cb := sealed()
			cb.Query.Del("msg_signature")
			return cb.Path(PathRobot), cb.Body
		}, http.StatusUnauthorized},
		{"stale timestamp", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", msg, f.clock.Now().Add(-6*time.Minute), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusForbidden},
		{"future timestamp", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", msg, f.clock.Now().Add(6*time.Minute), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusForbidden},
		{"replayed nonce", http.MethodPost, func() (string, []byte) { return replayed.Path(PathRobot), replayed.Body }, http.StatusConflict},
		{"body over 1 MiB", http.MethodPost, func() (string, []byte) {
			cb := sealed()
			return cb.Path(PathRobot), append([]byte(`{"encrypt":"`), bytes.Repeat([]byte("A"), MaxBody)...)
		}, http.StatusRequestEntityTooLarge},
		{"malformed JSON", http.MethodPost, func() (string, []byte) { return sealed().Path(PathRobot), []byte(`{"encrypt":`) }, http.StatusBadRequest},
		{"no encrypt field", http.MethodPost, func() (string, []byte) { return sealed().Path(PathRobot), []byte(`{"msgid":"x"}`) }, http.StatusBadRequest},
		{"signed garbage ciphertext", http.MethodPost, func() (string, []byte) {
			cb := resign(sealed(), "bm90IGEgY2lwaGVydGV4dCBhdCBhbGwgYnV0IGJhc2U2NA==")
			return cb.Path(PathRobot), cb.Body
		}, http.StatusBadRequest},
		{"signed ciphertext for another receiver", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "wwother", msg, f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusBadRequest},
		{"decrypts to something that is not JSON", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", []byte("我的电话13812345678 <xml>"), f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusBadRequest},
		{"group message without chat id", http.MethodPost, func() (string, []byte) {
			m := wecomtest.RobotText("msg-x", "group", "", "res-1", "@太平警务 hi", "")
			cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", m, f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathRobot), cb.Body
		}, http.StatusBadRequest},
		{"wrong method", http.MethodPut, func() (string, []byte) { return sealed().Path(PathRobot), nil }, http.StatusMethodNotAllowed},
		{"app: forged signature", http.MethodPost, func() (string, []byte) {
			cb, _ := wecomtest.SealXML("not-our-token", appAESKey, testCorp, testAgent, wecomtest.AppText(testCorp, testAgent, "wang", "1", "#1 hi", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathApp), cb.Body
		}, http.StatusUnauthorized},
		{"app: malformed XML", http.MethodPost, func() (string, []byte) { return sealed().Path(PathApp), []byte("<xml><Encrypt>") }, http.StatusBadRequest},
		{"official account: forged signature", http.MethodPost, func() (string, []byte) {
			cb := wecomtest.SignOA("not-our-token", wecomtest.OAText("gh", "oRes", 1, "hi", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathOA), cb.Body
		}, http.StatusUnauthorized},
		{"official account: stale", http.MethodPost, func() (string, []byte) {
			cb := wecomtest.SignOA(oaToken, wecomtest.OAText("gh", "oRes", 1, "hi", f.clock.Now()), f.clock.Now().Add(-time.Hour), wecomtest.Nonce())
			return cb.Path(PathOA), cb.Body
		}, http.StatusForbidden},
		{"official account: malformed XML", http.MethodPost, func() (string, []byte) {
			cb := wecomtest.SignOA(oaToken, []byte("<xml><MsgType>"), f.clock.Now(), wecomtest.Nonce())
			return cb.Path(PathOA), cb.Body
		}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, body := tc.req()
			code, resp := f.do(tc.method, path, body)
			if code != tc.status {
				t.Errorf("HTTP %d %q, want %d", code, resp, tc.status)
			}
			if strings.TrimSpace(resp) == "" {
				t.Errorf("HTTP %d with no reason", code)
			}
		})
	}
	if n := len(f.events()); n != 0 {
		t.Errorf("bad callbacks published %d events (%d before)", n, before)
	}
	mustNotContain(t, "logs", f.logs.String(), "13812345678", "我的电话")
	if !strings.Contains(f.logs.String(), "wechat callback rejected") {
		t.Error("rejections are not logged at all")
	}
}

func TestRetryOfAFailedRequestIsTaken(t *testing.T) {
	f := newFixture(t)
	f.a.pub = &failOnce{Publisher: f.bus}
	cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", wecomtest.RobotText("msg-r", "group", hexie, "res-1", "@太平警务 求助", ""), f.clock.Now(), wecomtest.Nonce())
	if code, _ := f.do(http.MethodPost, cb.Path(PathRobot), cb.Body); code != http.StatusServiceUnavailable {
		t.Fatalf("publish failure: HTTP %d, want 503 so WeCom retries", code)
	}
	// WeCom retries the very same request: it must not be called a replay.
	if code, body := f.do(http.MethodPost, cb.Path(PathRobot), cb.Body); code != http.StatusOK {
		t.Fatalf("retry after failure: HTTP %d %s", code, body)
	}
	if n := len(f.events()); n != 1 {
		t.Errorf("published %d events, want 1", n)
	}
}

// TestStuckBusDoesNotHoldWeCom: WeCom gives a callback one second; a bus
// that does not answer gets the request refused (503, WeCom retries later)
// instead of holding it until WeCom gives up on the URL.
func TestStuckBusDoesNotHoldWeCom(t *testing.T) {
	f := newFixture(t)
	f.a.pub = stuck{}
	if code, _ := f.robot(wecomtest.RobotText("msg-s", "group", hexie, "res-1", "@太平警务 求助", "")); code != http.StatusServiceUnavailable {
		t.Errorf("stuck bus: HTTP %d, want 503", code)
	}
}

// stuck is a bus that never answers before its caller gives up.
type stuck struct{}

func (stuck) Publish(ctx context.Context, _ string, _ ...bot.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

// failOnce is the real bus, unavailable for its first publish.
type failOnce struct {
	bot.Publisher
	failed bool
}

func (p *failOnce) Publish(ctx context.Context, topic string, msgs ...bot.Message) error {
	if !p.failed {
		p.failed = true
		return errors.New("bus unavailable")
	}
	return p.Publisher.Publish(ctx, topic, msgs...)
}

func TestIgnoredCallbacksAreAnsweredAndNotPublished(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.robot([]byte(`{"msgid":"e1","aibotid":"a","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}}`)); code != http.StatusOK {
		t.Errorf("enter_chat event: HTTP %d", code)
	}
	if code, _ := f.app([]byte(`<xml><ToUserName>wwcorp</ToUserName><FromUserName>wang</FromUserName><MsgType>event</MsgType><Event>enter_agent</Event><AgentID>1000002</AgentID></xml>`)); code != http.StatusOK {
		t.Errorf("enter_agent event: HTTP %d", code)
	}
	if n := len(f.events()); n != 0 {
		t.Errorf("published %d events for platform events", n)
	}
}

func TestAppAndOfficialAccountMessagesBecomeDirectEvents(t *testing.T) {
	f := newFixture(t)
	if code, body := f.app(wecomtest.AppText(testCorp, testAgent, "wang.jg", "9001", "#1 马上到", f.clock.Now())); code != http.StatusOK {
		t.Fatalf("app: HTTP %d %s", code, body)
	}
	cb := wecomtest.SignOA(oaToken, wecomtest.OAText("gh_station", "oRes1", 5001, "请问居住证怎么办", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
	code, body := f.do(http.MethodPost, cb.Path(PathOA), cb.Body)
	if code != http.StatusOK || body != "success" {
		t.Fatalf("official account: HTTP %d %q, want 200 success", code, body)
	}
	evs := f.events()
	if len(evs) != 2 {
		t.Fatalf("published %d events, want 2", len(evs))
	}
	if e := evs[0]; e.Chat.ID != "wang.jg" || e.Chat.Type != bot.Direct || e.Text != "#1 马上到" {
		t.Errorf("app event = %+v", e)
	}
	if e := evs[1]; e.ID != "wechat:oa:5001" || e.Chat.ID != "oa:oRes1" || e.Sender.ID != "oa:oRes1" || e.Text != "请问居住证怎么办" {
		t.Errorf("official account event = %+v", e)
	}
	// The Official Account retries the same message too.
	cb = wecomtest.SignOA(oaToken, wecomtest.OAText("gh_station", "oRes1", 5001, "请问居住证怎么办", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), cb.Body); code != http.StatusOK {
		t.Errorf("official account retry: HTTP %d", code)
	}
	if n := len(f.events()); n != 0 {
		t.Errorf("retry published %d more events", n)
	}
	mustNotContain(t, "logs", f.logs.String(), "居住证", "马上到")
}

func TestOfficialAccountSafeMode(t *testing.T) {
	oaKey := strings.TrimRight(strings.Repeat("Q", 43), "=")
	f := newFixture(t, func(c *Config, env map[string]string) { env[EnvOAAESKey] = oaKey })
	msg := wecomtest.OAText("gh_station", "oRes2", 5002, "有人冒充民警打电话", f.clock.Now())
	sealed, err := wecomtest.SealXML(oaToken, oaKey, "wxoa", "", msg, f.clock.Now(), wecomtest.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	// Safe mode sends both signatures and encrypt_type=aes.
	q := sealed.Query
	q.Set("signature", util.Signature(oaToken, q.Get("timestamp"), q.Get("nonce")))
	q.Set("encrypt_type", "aes")
	q.Set("openid", "oRes2")
	if code, body := f.do(http.MethodPost, PathOA+"?"+q.Encode(), sealed.Body); code != http.StatusOK {
		t.Fatalf("safe mode: HTTP %d %s", code, body)
	}
	evs := f.events()
	if len(evs) != 1 || evs[0].Text != "有人冒充民警打电话" {
		t.Errorf("safe-mode events = %+v", evs)
	}
}
