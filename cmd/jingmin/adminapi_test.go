package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

func TestAdminAPIBroadcastsWithTheRulesOfTheChat(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00"), fastBroadcasts)
	const token = "a-long-enough-admin-token"
	srv := httptest.NewServer(adminAPI{h: h.hub, token: token}.handler())
	defer srv.Close()
	call := func(method, path, tok, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
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
	if code, _ := call("POST", "/api/admin/broadcasts/"+draft["id"].(string)+"/cancel", token, `{"by":"zhao"}`); code != http.StatusOK {
		t.Errorf("cancel the draft: HTTP %d", code)
	}
	if code, _ := call("POST", "/api/admin/broadcasts", token, `{"scope":"everywhere","text":"x"}`); code != http.StatusBadRequest {
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
