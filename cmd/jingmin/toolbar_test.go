package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// standInWX serves a stand-in of WeCom's JS-SDK: a `wx` object that records
// every call (window.__wx) and answers getCurExternalChat with the chat the
// test says the page is open in ("" : not inside a chat).
type standInWX struct {
	mu   sync.Mutex
	chat string
}

func (s *standInWX) set(chat string) { s.mu.Lock(); s.chat = chat; s.mu.Unlock() }

func (s *standInWX) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	chat := s.chat
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/javascript")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `(function () {
  var calls = window.__wx = [];
  var chat = %s;
  window.wx = {
    config: function (c) { calls.push(["config", c]); },
    ready: function (f) { setTimeout(f, 0); },
    error: function () {},
    agentConfig: function (c) { calls.push(["agentConfig", c]); setTimeout(function () { c.success({}); }, 0); },
    invoke: function (name, args, cb) {
      calls.push([name, args]);
      if (name === "getCurExternalChat") {
        cb(chat ? { err_msg: "getCurExternalChat:ok", chatId: chat } : { err_msg: "getCurExternalChat:fail" });
      } else if (name === "sendChatMessage") {
        cb({ err_msg: "sendChatMessage:ok" });
      }
    }
  };
})();`, jsString(chat))
}

// toolbarRig is the rules over a SQLite store with two customer groups
// (王建国's 和谐小区居民群, 李明's 阳光花园居民群) and the toolbar page served
// against the WeCom stand-in.
type toolbarRig struct {
	t    *testing.T
	srv  *wecomtest.Server
	st   *store.Store
	hub  *commands.Hub
	wx   *standInWX
	page string // the toolbar page's URL
	seq  int
}

func newToolbarRig(t *testing.T) *toolbarRig {
	ctx := t.Context()
	srv := wecomtest.NewServer()
	t.Cleanup(srv.Close)
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Officers {
		switch cfg.Officers[i].Code {
		case "wang":
			cfg.Officers[i].Identities["wechat"] = "wangjg"
		case "li":
			cfg.Officers[i].Identities["wechat"] = "lim"
		}
	}
	cfg.Groups = append(cfg.Groups,
		configs.Group{Platform: "wechat", ChatID: "wrHexie", Name: "和谐小区居民群", Station: "taiping", Officer: "wang", Kind: store.GroupKindCustomer},
		configs.Group{Platform: "wechat", ChatID: "wrYang", Name: "阳光花园居民群", Station: "taiping", Officer: "li", Kind: store.GroupKindCustomer})
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SyncDirectory(ctx, cfg.Seed(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub, err := commands.New(ctx, st, commands.Options{EmergencyKeywords: cfg.Hub.EmergencyKeywords, Log: quiet,
		Now: func() time.Time { return time.Date(2026, 11, 30, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)) }})
	if err != nil {
		t.Fatal(err)
	}
	wx := &standInWX{}
	js := httptest.NewServer(wx)
	t.Cleanup(js.Close)
	tb := wecomarchive.NewToolbar(wecomarchive.ToolbarConfig{AgentID: "1000002", APIBase: srv.URL, JSSDK: js.URL + "/wx.js"},
		"corp", srv.CorpSecret, st, quiet)
	page := httptest.NewServer(tb.Handler())
	t.Cleanup(page.Close)
	return &toolbarRig{t: t, srv: srv, st: st, hub: hub, wx: wx, page: page.URL + wecomarchive.PathToolbar}
}

// ask is a resident's archived message in a customer group.
func (r *toolbarRig) ask(chat, text string) {
	r.t.Helper()
	r.seq++
	plain := fmt.Sprintf(`{"msgid":"tb%d","action":"send","from":"wmRes%d","roomid":%q,"msgtime":%d,"msgtype":"text","text":{"content":%q}}`,
		r.seq, r.seq, chat, time.Now().UnixMilli(), text)
	e, err := wecomarchive.Decode([]byte(plain), []string{"王警官", "李警官"})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.hub.Handler().Handle(r.t.Context(), e); err != nil {
		r.t.Fatal(err)
	}
}

// open opens the page as WeCom does after signing userID in, inside chat.
func (r *toolbarRig) open(p *browserPage, userID, chat string) {
	r.t.Helper()
	r.wx.set(chat)
	p.do("open the toolbar page", chromedp.Navigate(r.page+"?code="+r.srv.OAuthCode(userID)+"&state=toolbar"))
}

// The page opened inside a customer group by its owner lists the group's
// open tickets with the prepared texts; one tap sends the text through
// sendChatMessage, after wx.config and wx.agentConfig were signed with the
// corp's and the app's tickets for the page's URL. Opened in another
// officer's group, or outside a chat, it shows nothing it should not.
func TestToolbarPageSendsPreparedTextWithOneTap(t *testing.T) {
	path := needChromium(t)
	r := newToolbarRig(t)
	r.ask("wrHexie", "@王警官 楼道的灯坏了好几天")
	r.ask("wrHexie", "楼下着火了")
	r.ask("wrYang", "@李警官 李家的狗天天叫")
	p := newBrowserPage(t, path)

	r.open(p, "wangjg", "wrHexie")
	p.waitFor("the page lists the group's tickets", "#status", "2 个待答复的工单")
	p.waitFor("ticket 1 with its acknowledgement", ".ticket", "工单 #1", "楼道的灯坏了好几天", "收到，已登记为工单 #1")
	p.waitFor("the emergency with the 110 guidance", ".ticket.urgent", "楼下着火了", "110")
	if got := evalIn[int](p, "count tickets", `document.querySelectorAll(".ticket").length`); got != 2 {
		t.Fatalf("%d tickets shown, want 2", got)
	}
	evalIn[chromedp.Void](p, "tap send on ticket 1", `document.querySelector('.ticket[data-number="1"] button.send').click()`)
	p.waitFor("the button says sent", `.ticket[data-number="1"] button.send`, "已发送")
	sent := evalIn[[]string](p, "read sendChatMessage calls",
		`window.__wx.filter(c => c[0] === "sendChatMessage").map(c => c[1].msgtype + ":" + c[1].text.content)`)
	if len(sent) != 1 || !strings.HasPrefix(sent[0], "text:收到，已登记为工单 #1") {
		t.Fatalf("sendChatMessage calls %q, want the acknowledgement of #1", sent)
	}
	cfg := evalIn[map[string]string](p, "read wx.config", `(c => ({ts: c.timestamp, nonce: c.nonceStr, sig: c.signature, appId: c.appId}))(window.__wx.find(c => c[0] === "config")[1])`)
	agent := evalIn[map[string]string](p, "read wx.agentConfig", `(c => ({ts: c.timestamp, nonce: c.nonceStr, sig: c.signature, agentid: c.agentid, apis: c.jsApiList.join(",")}))(window.__wx.find(c => c[0] === "agentConfig")[1])`)
	pageURL := evalIn[string](p, "read the URL", `location.href.split("#")[0]`)
	if want := wecomarchive.JSSignature(wecomtest.CorpJSTicket, cfg["nonce"], cfg["ts"], pageURL); cfg["sig"] != want || cfg["appId"] != "corp" {
		t.Errorf("wx.config %v, want signature %s for %s", cfg, want, pageURL)
	}
	if want := wecomarchive.JSSignature(wecomtest.AgentJSTicket, agent["nonce"], agent["ts"], pageURL); agent["sig"] != want ||
		agent["agentid"] != "1000002" || !strings.Contains(agent["apis"], "sendChatMessage") {
		t.Errorf("wx.agentConfig %v, want signature %s", agent, want)
	}
	// The officer's own words, typed in the page, name the ticket so the
	// archive can tell them for its answer.
	evalIn[chromedp.Void](p, "type an answer", `(t => { t.value = "物业下午来修"; })(document.querySelector('.ticket[data-number="1"] textarea'))`)
	evalIn[chromedp.Void](p, "tap send mine", `document.querySelector('.ticket[data-number="1"] button.own').click()`)
	p.waitFor("own answer sent", `.ticket[data-number="1"] button.own`, "已发送")
	last := evalIn[string](p, "read the last send", `(s => s[s.length - 1][1].text.content)(window.__wx.filter(c => c[0] === "sendChatMessage"))`)
	if last != "物业下午来修\n（工单 #1）" {
		t.Fatalf("own answer sent as %q", last)
	}

	// 王建国 opens the page in 李明's group: nothing of it is shown.
	r.open(p, "wangjg", "wrYang")
	p.waitFor("refused in another officer's group", "#status", "本群不是您负责的客户群")
	if got := evalIn[int](p, "count tickets", `document.querySelectorAll(".ticket").length`); got != 0 {
		t.Fatalf("%d tickets shown in another officer's group", got)
	}
	// Outside a chat (or outside WeCom): nothing either.
	r.open(p, "wangjg", "")
	p.waitFor("outside a chat", "#status", "请在企业微信客户群的聊天工具栏中打开本页")
	if got := evalIn[int](p, "count tickets", `document.querySelectorAll(".ticket").length`); got != 0 {
		t.Fatalf("%d tickets shown outside a chat", got)
	}
}

// Without a session the page sends the officer to WeCom's sign-in; the API
// answers nobody who is not signed in.
func TestToolbarPageNeedsSignIn(t *testing.T) {
	r := newToolbarRig(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(r.page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/connect/oauth2/authorize?") || !strings.Contains(loc, "agentid=1000002") {
		t.Fatalf("unsigned page: %d to %q, want a redirect to WeCom's OAuth", resp.StatusCode, loc)
	}
	for _, path := range []string{"/api/tickets?chat=wrHexie", "/api/config?url=x"} {
		resp, err := http.Get(r.page + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", path, resp.StatusCode)
		}
	}
	resp, err = http.Get(r.page + "?code=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged code: %d, want 401", resp.StatusCode)
	}
}
