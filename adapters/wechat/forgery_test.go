package wechat

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/bot"
)

// TestVerificationSignatureCannotCarryAMessage: the Official Account's URL
// verification (GET) is signed over token, timestamp and nonce only; once
// it is answered, a POST under the same signature (a message of the
// forger's own) is a replay.
func TestVerificationSignatureCannotCarryAMessage(t *testing.T) {
	f := newFixture(t)
	cb := wecomtest.SignOA(oaToken, nil, f.clock.Now(), wecomtest.Nonce())
	cb.Query.Set("echostr", "oa-echo")
	if code, body := f.do(http.MethodGet, cb.Path(PathOA), nil); code != http.StatusOK || body != "oa-echo" {
		t.Fatalf("verification: HTTP %d %q", code, body)
	}
	forged := wecomtest.OAText("gh_station", "oAnyone", 6001, "我是民警，请转账到安全账户", f.clock.Now())
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), forged); code != http.StatusConflict {
		t.Errorf("message under the verification's signature: HTTP %d, want 409", code)
	}
	// The same holds for a repeat of the verification itself.
	if code, _ := f.do(http.MethodGet, cb.Path(PathOA), nil); code != http.StatusConflict {
		t.Errorf("verification repeated: HTTP %d, want 409", code)
	}
	if n := len(f.events()); n != 0 {
		t.Errorf("published %d events", n)
	}
}

// TestFailedRequestKeepsItsNonce: a request the hub could not take leaves
// its nonce to the platform's retry of that very request, never to another
// message.
func TestFailedRequestKeepsItsNonce(t *testing.T) {
	f := newFixture(t)
	f.a.pub = &failOnce{Publisher: f.bus}
	nonce := wecomtest.Nonce()
	cb := wecomtest.SignOA(oaToken, wecomtest.OAText("gh_station", "oRes1", 6002, "求助", f.clock.Now()), f.clock.Now(), nonce)
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), cb.Body); code != http.StatusServiceUnavailable {
		t.Fatalf("publish failure: HTTP %d, want 503", code)
	}
	forged := wecomtest.OAText("gh_station", "oAnyone", 6003, "冒充的消息", f.clock.Now())
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), forged); code != http.StatusConflict {
		t.Errorf("another message under the failed request's nonce: HTTP %d, want 409", code)
	}
	if code, body := f.do(http.MethodPost, cb.Path(PathOA), cb.Body); code != http.StatusOK {
		t.Errorf("the platform's retry: HTTP %d %s", code, body)
	}
	evs := f.events()
	if len(evs) != 1 || evs[0].Text != "求助" {
		t.Errorf("published %+v, want the retried message only", evs)
	}
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), cb.Body); code != http.StatusConflict {
		t.Errorf("the request again after it was taken: HTTP %d, want 409", code)
	}
}

// TestSafeModeAccountTakesOnlyEncryptedMessages: with an EncodingAESKey
// configured, a plaintext POST correctly signed over token, timestamp and
// nonce (what anyone who saw one request URL can produce again with a fresh
// nonce only if they hold the token, and what the SDK takes whenever the
// caller leaves out encrypt_type) is refused, as is a ciphertext whose
// msg_signature does not cover it.
func TestSafeModeAccountTakesOnlyEncryptedMessages(t *testing.T) {
	oaKey := strings.TrimRight(strings.Repeat("Q", 43), "=")
	f := newFixture(t, func(c *Config, env map[string]string) { env[EnvOAAESKey] = oaKey })
	plain := wecomtest.SignOA(oaToken, wecomtest.OAText("gh_station", "oAnyone", 7001, "冒充民警", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
	if code, body := f.do(http.MethodPost, plain.Path(PathOA), plain.Body); code != http.StatusUnauthorized {
		t.Errorf("plaintext message to a safe-mode account: HTTP %d %s, want 401", code, body)
	}
	plain = wecomtest.SignOA(oaToken, plain.Body, f.clock.Now(), wecomtest.Nonce())
	plain.Query.Set("encrypt_type", "raw")
	if code, _ := f.do(http.MethodPost, plain.Path(PathOA), plain.Body); code != http.StatusUnauthorized {
		t.Errorf("plaintext message with encrypt_type=raw: HTTP %d, want 401", code)
	}
	// A real ciphertext under a msg_signature computed for another one.
	msg := wecomtest.OAText("gh_station", "oRes2", 7002, "真的消息", f.clock.Now())
	sealed, err := wecomtest.SealXML(oaToken, oaKey, "wxoa", "", msg, f.clock.Now(), wecomtest.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	q := sealed.Query
	q.Set("signature", util.Signature(oaToken, q.Get("timestamp"), q.Get("nonce")))
	q.Set("encrypt_type", "aes")
	good := q.Get("msg_signature")
	q.Set("msg_signature", util.Signature(oaToken, q.Get("timestamp"), q.Get("nonce"), "other"))
	if code, _ := f.do(http.MethodPost, PathOA+"?"+q.Encode(), sealed.Body); code != http.StatusUnauthorized {
		t.Errorf("msg_signature not over the ciphertext: HTTP %d, want 401", code)
	}
	if n := len(f.events()); n != 0 {
		t.Fatalf("forged messages published %d events", n)
	}
	q.Set("msg_signature", good)
	if code, body := f.do(http.MethodPost, PathOA+"?"+q.Encode(), sealed.Body); code != http.StatusOK {
		t.Fatalf("the real encrypted message: HTTP %d %s", code, body)
	}
	if evs := f.events(); len(evs) != 1 || evs[0].Text != "真的消息" {
		t.Errorf("published %+v", evs)
	}
}

// TestLargeCallbackBodiesAreCapped: a body over MaxBody is answered 413;
// while every large-body slot is held by a client sending slowly, another
// large body is turned away at once (503, WeCom retries) and a callback of
// real size is still taken.
func TestLargeCallbackBodiesAreCapped(t *testing.T) {
	f := newFixture(t)
	f.a.largeBodies = make(chan struct{}, 1)
	cb, _ := wecomtest.SealJSON(robotToken, robotAESKey, "", wecomtest.RobotText("msg-big", "group", hexie, "res-1", "@太平警务 求助", ""), f.clock.Now(), wecomtest.Nonce())
	if code, _ := f.do(http.MethodPost, cb.Path(PathRobot), append(cb.Body, bytes.Repeat([]byte(" "), MaxBody)...)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over %d bytes: HTTP %d, want 413", MaxBody, code)
	}

	slow, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{\"encrypt\":\"", PathRobot)
	deadline := time.Now().Add(10 * time.Second)
	for len(f.a.largeBodies) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow client never took the slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	padded := append(append([]byte(nil), cb.Body...), bytes.Repeat([]byte(" "), 20<<10)...)
	if code, _ := f.do(http.MethodPost, cb.Path(PathRobot), padded); code != http.StatusServiceUnavailable {
		t.Errorf("large body with the slots taken: HTTP %d, want 503", code)
	}
	if code, body := f.robot(wecomtest.RobotText("msg-small", "group", hexie, "res-2", "@太平警务 楼道有焦味", "")); code != http.StatusOK {
		t.Errorf("callback of real size with the slots taken: HTTP %d %s", code, body)
	}
	slow.Close()
	for len(f.a.largeBodies) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slot was not given back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := f.do(http.MethodPost, cb.Path(PathRobot), padded); code != http.StatusOK {
		t.Errorf("large body once the slot is free: HTTP %d %s", code, body)
	}
	if evs := f.events(); len(evs) != 2 {
		t.Errorf("published %d events, want 2", len(evs))
	}
}

// TestRejectionsAreLoggedAtABoundedRate: a flood of forged callbacks
// writes a bounded number of lines, and the next line after the minute
// says how many were left out.
func TestRejectionsAreLoggedAtABoundedRate(t *testing.T) {
	f := newFixture(t)
	for range 100 {
		cb := wecomtest.SignOA("not-our-token", wecomtest.OAText("gh", "oX", 1, "hi", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
		f.do(http.MethodPost, cb.Path(PathOA), cb.Body)
	}
	if n := strings.Count(f.logs.String(), "wechat callback rejected"); n != rejectLines {
		t.Errorf("100 forged callbacks wrote %d lines, want %d", n, rejectLines)
	}
	f.clock.Add(time.Minute)
	cb := wecomtest.SignOA("not-our-token", nil, f.clock.Now(), wecomtest.Nonce())
	f.do(http.MethodPost, cb.Path(PathOA), nil)
	if !strings.Contains(f.logs.String(), `"suppressed":90`) {
		t.Errorf("no count of the lines left out: %s", f.logs.String())
	}
}

// TestOfficialAccountIDsAreHashedInLogs: the log line for a follower's
// message names the chat by a keyed hash, never the openid.
func TestOfficialAccountIDsAreHashedInLogs(t *testing.T) {
	f := newFixture(t)
	cb := wecomtest.SignOA(oaToken, wecomtest.OAText("gh_station", "oSecretOpenID1", 8001, "请问", f.clock.Now()), f.clock.Now(), wecomtest.Nonce())
	if code, _ := f.do(http.MethodPost, cb.Path(PathOA), cb.Body); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	logs := f.logs.String()
	mustNotContain(t, "logs", logs, "oSecretOpenID1")
	if !strings.Contains(logs, bot.LogID("oa:oSecretOpenID1")) {
		t.Errorf("the chat's log id is missing: %s", logs)
	}
}
