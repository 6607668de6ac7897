package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// testAdminToken is a token of the kind the README says to generate.
const testAdminToken = "q3Vt9mZr0bXkL2yH7sWcNfA4jPeD8uGi"

// Failed authentication is logged (address and path, never the token) and,
// after a few failures from one address, refused with 429 whatever the
// token, while other addresses go on; the lockout ends after a while.
func TestAdminAPILimitsAndLogsFailedAuthentication(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"), fastBroadcasts)
	clock := at("2026-11-23 10:00")
	handler := adminAPI{h: h.hub, token: testAdminToken, now: func() time.Time { return clock }}.handler()
	call := func(addr, token string) int {
		req := httptest.NewRequest("GET", "/api/admin/broadcasts/B1", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	const guess = "guessed-token-guessed-token-0001"
	for i := range authFailures {
		if code := call("192.0.2.10:40000", guess); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: HTTP %d, want 401", i+1, code)
		}
	}
	if code := call("192.0.2.10:40001", testAdminToken); code != http.StatusTooManyRequests {
		t.Errorf("the right token from a locked-out address: HTTP %d, want 429", code)
	}
	if code := call("192.0.2.11:40000", testAdminToken); code != http.StatusNotFound {
		t.Errorf("another address with the token: HTTP %d, want 404 (no broadcast B1)", code)
	}
	clock = clock.Add(authBlock)
	if code := call("192.0.2.10:40002", testAdminToken); code != http.StatusNotFound {
		t.Errorf("after the lockout: HTTP %d, want 404 (no broadcast B1)", code)
	}
	logs := h.Logs.String()
	if strings.Contains(logs, guess) || strings.Contains(logs, testAdminToken) {
		t.Error("a token reached the logs")
	}
	if n := strings.Count(logs, `"msg":"admin API: authentication failed"`); n != authFailures {
		t.Errorf("%d failures logged, want %d:\n%s", n, authFailures, logs)
	}
	mustContain(t, "failure log", logs, `"address":"192.0.2.10:40000"`, `"path":"/api/admin/broadcasts/B1"`, `"locked_out":true`)
}

func TestAdminAPIBroadcastsWithTheRulesOfTheChat(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"), fastBroadcasts)
	srv := httptest.NewServer(adminAPI{h: h.hub, token: testAdminToken}.handler())
	defer srv.Close()
	const token = testAdminToken
	call := func(method, path, tok, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("X-Forwarded-For", "10.8.0.7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	alert := `{"scope":"station:taiping","text":"【反诈预警】冒充客服要求转账的都是诈骗","by":"zhao","confirm":true}`
	if code, _ := call("POST", "/api/admin/broadcasts", "", alert); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", code)
	}
	if code, _ := call("POST", "/api/admin/broadcasts", "wrong-token-wrong-token", alert); code != http.StatusUnauthorized {
		t.Errorf("wrong token: HTTP %d, want 401", code)
	}
	// Every action names who acts.
	if code, out := call("POST", "/api/admin/broadcasts", token, `{"scope":"all","text":"反诈预警"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(out["error"].(string), "by 为必填项") {
		t.Errorf("create without by: HTTP %d %v, want 422 naming by", code, out)
	}
	if code, out := call("POST", "/api/admin/broadcasts", token, strings.Replace(alert, `"zhao"`, `"wang"`, 1)); code != http.StatusUnprocessableEntity ||
		!strings.Contains(out["error"].(string), "by 所指的人不是派出所管理员") {
		t.Errorf("an officer who is no admin: HTTP %d %v, want 422 with the refusal in the API's terms", code, out)
	}
	// The API names its fields and requests, never the chat's commands.
	if code, out := call("POST", "/api/admin/broadcasts", token, `{"scope":"all","text":"  ","by":"zhao"}`); code != http.StatusUnprocessableEntity ||
		out["error"] != "text 为空：预警内容不能为空。" {
		t.Errorf("empty text: HTTP %d %v", code, out)
	}
	code, draft := call("POST", "/api/admin/broadcasts", token, strings.Replace(alert, `"confirm":true`, `"confirm":false`, 1))
	if code != http.StatusCreated || draft["status"] != "draft" {
		t.Fatalf("draft: HTTP %d %v", code, draft)
	}
	preview := draft["preview"].(string)
	mustContain(t, "draft preview", preview, "POST /api/admin/broadcasts/"+draft["id"].(string)+"/confirm", "共 4 个群")
	if strings.Contains(preview, "回复") || strings.Contains(preview, "###") {
		t.Errorf("draft preview speaks chat: %q", preview)
	}
	if code, out := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/cancel", token, `{"by":"li"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(out["error"].(string), "不是 by 所指的人发起的") {
		t.Errorf("cancel by another: HTTP %d %v", code, out)
	}
	// Omitting by once confirmed anyone's draft as the operator; only the
	// author confirms, whoever calls.
	for _, body := range []string{``, `{}`, `{"by":""}`} {
		if code, out := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/confirm", token, body); code != http.StatusUnprocessableEntity ||
			!strings.Contains(fmt.Sprint(out["error"]), "by 为必填项") {
			t.Errorf("confirm with body %q: HTTP %d %v, want 422 naming by", body, code, out)
		}
	}
	if code, out := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/confirm", token, `{"by":"li"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(out["error"].(string), "不是 by 所指的人发起的") {
		t.Errorf("confirm by another: HTTP %d %v", code, out)
	}
	if code, out := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/confirm", token, `{"by":"nobody"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(out["error"].(string), "by") {
		t.Errorf("confirm by an unknown officer: HTTP %d %v", code, out)
	}
	if code, _ := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/cancel", token, `{"by":"zhao"}`); code != http.StatusOK {
		t.Errorf("cancel the draft: HTTP %d", code)
	}
	// The record says who did what, through the API, from where.
	ctx := context.Background()
	b, err := h.store.BroadcastByID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != store.BroadcastCancelled || b.CreatedVia != store.ViaAPI || !strings.HasPrefix(b.CreatedFrom, "127.0.0.1:") ||
		!strings.Contains(b.CreatedFrom, "X-Forwarded-For: 10.8.0.7") || b.ConfirmedAt != nil || b.ConfirmedVia != "" ||
		b.CancelledBy != "赵刚" || b.CancelledVia != store.ViaAPI || !strings.HasPrefix(b.CancelledFrom, "127.0.0.1:") {
		t.Errorf("record of the cancelled draft = %+v", b)
	}
	if code, _ := call("POST", "/api/admin/broadcasts", token, `{"scope":"everywhere","text":"x","by":"zhao"}`); code != http.StatusBadRequest {
		t.Errorf("unknown scope: HTTP %d, want 400", code)
	}
	code, out := call("POST", "/api/admin/broadcasts", token, alert)
	if code != http.StatusCreated || out["status"] != "sending" || out["total"] != 4.0 {
		t.Fatalf("create and confirm: HTTP %d %v", code, out)
	}
	id := out["id"].(string)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, out = call("GET", "/api/admin/broadcasts/"+id, token, "")
		if out["status"] == "done" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out["status"] != "done" || !strings.Contains(out["report"].(string), "4/4") {
		t.Errorf("finished broadcast = %v", out)
	}
	if b, err := h.store.BroadcastByID(ctx, 2); err != nil || b.ConfirmedBy != "赵刚" || b.ConfirmedVia != store.ViaAPI || !strings.HasPrefix(b.ConfirmedFrom, "127.0.0.1:") {
		t.Errorf("record of the confirmed broadcast = %+v, %v", b, err)
	}
	for _, g := range []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"} {
		n := 0
		for _, l := range h.botLines(bot.Group, g) {
			if strings.Contains(l.Text, "冒充客服") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("group %s got the alert %d times, want once", g, n)
		}
	}
	if code, _ := call("POST", "/api/admin/broadcasts/"+id+"/cancel", token, `{"by":"zhao"}`); code != http.StatusUnprocessableEntity {
		t.Errorf("cancel after completion: HTTP %d, want 422", code)
	}
	if code, _ := call("GET", "/api/admin/broadcasts/B9999", token, ""); code != http.StatusNotFound {
		t.Errorf("unknown broadcast: HTTP %d, want 404", code)
	}
}
