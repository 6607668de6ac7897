package wecomarchive

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// ToolbarConfig is the chat-toolbar page (聊天工具栏) officers open inside a
// customer group: it lists the group's open tickets with the prepared
// texts and sends one with a tap (JS-SDK sendChatMessage). WeCom signs the
// officer in (OAuth code → userid) and the page proves itself to the
// JS-SDK with the corp's and the app's jsapi tickets.
type ToolbarConfig struct {
	// Listen is where the page is served ("" : off).
	Listen string `yaml:"listen"`
	// URL is the page's public address, as configured in WeCom's chat
	// toolbar and linked from officers' direct messages.
	URL string `yaml:"url"`
	// AgentID is the self-built app the page belongs to (its trusted
	// domain serves the page); SecretEnv holds that app's secret.
	AgentID   string `yaml:"agent_id"`
	SecretEnv string `yaml:"secret_env"`
	// APIBase is WeCom's API host (tests: the stand-in).
	APIBase string `yaml:"api_base"`
	// JSSDK is the JS-SDK script the page loads.
	JSSDK string `yaml:"jssdk"`
	// OAuthBase is where an officer without a session is sent to sign in.
	OAuthBase string `yaml:"oauth_base"`
}

// Defaults of the toolbar page.
const (
	PathToolbar      = "/wecom/toolbar"
	DefaultJSSDK     = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
	DefaultOAuthBase = "https://open.weixin.qq.com"
	DefaultAPIBase   = "https://qyapi.weixin.qq.com"
	EnvToolbarSecret = "JINGMIN_WECHAT_APP_SECRET"
	sessionCookie    = "jm_toolbar"
	sessionTTL       = 8 * time.Hour
)

//go:embed static/toolbar.html
var static embed.FS

var toolbarPage = template.Must(template.ParseFS(static, "static/toolbar.html"))

// Toolbar serves the page and its two calls: the JS-SDK signatures and
// the open tickets of the group the page is open in.
type Toolbar struct {
	cfg    ToolbarConfig
	corpID string
	secret string
	st     *store.Store
	log    *slog.Logger
	api    *wecomAPI
	now    func() time.Time
	key    []byte // signs sessions; new each start, so a restart signs officers in again

	mu      sync.Mutex
	dir     *store.Directory
	dirTime time.Time
}

// NewToolbar builds the page's handler.
func NewToolbar(cfg ToolbarConfig, corpID, appSecret string, st *store.Store, log *slog.Logger) *Toolbar {
	if cfg.APIBase == "" {
		cfg.APIBase = DefaultAPIBase
	}
	if cfg.JSSDK == "" {
		cfg.JSSDK = DefaultJSSDK
	}
	if cfg.OAuthBase == "" {
		cfg.OAuthBase = DefaultOAuthBase
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Toolbar{cfg: cfg, corpID: corpID, secret: appSecret, st: st, log: log, key: key, now: time.Now,
		api: newWeComAPI(cfg.APIBase, corpID, appSecret)}
}

// Handler routes the page.
func (tb *Toolbar) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathToolbar, tb.page)
	mux.HandleFunc("GET "+PathToolbar+"/api/config", tb.jsConfig)
	mux.HandleFunc("GET "+PathToolbar+"/api/tickets", tb.tickets)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// page signs the officer in (the OAuth code WeCom appends) and serves the
// page; without a session or a code it sends them to WeCom's sign-in.
func (tb *Toolbar) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	user := tb.session(r)
	if code := r.URL.Query().Get("code"); user == "" && code != "" {
		uid, err := tb.userOf(r.Context(), code)
		if err != nil {
			tb.log.Warn("toolbar sign-in failed", "err", err)
			http.Error(w, "登录失败，请在企业微信中重新打开本页。", http.StatusUnauthorized)
			return
		}
		user = uid
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tb.sign(uid, tb.now().Add(sessionTTL)), Path: PathToolbar,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	}
	if user == "" {
		back := tb.cfg.URL
		if back == "" {
			back = "http://" + r.Host + PathToolbar
		}
		q := url.Values{"appid": {tb.corpID}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"snsapi_base"},
			"state": {"toolbar"}, "agentid": {tb.cfg.AgentID}}
		http.Redirect(w, r, tb.cfg.OAuthBase+"/connect/oauth2/authorize?"+q.Encode()+"#wechat_redirect", http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := toolbarPage.Execute(w, map[string]string{"JSSDK": tb.cfg.JSSDK, "API": PathToolbar + "/api"}); err != nil {
		tb.log.Warn("toolbar page", "err", err)
	}
}

// sign makes a session value: the userid, its expiry and their HMAC.
func (tb *Toolbar) sign(uid string, until time.Time) string {
	payload := uid + "|" + strconv.FormatInt(until.Unix(), 10)
	mac := hmac.New(sha256.New, tb.key)
	mac.Write([]byte(payload))
	return url.QueryEscape(payload) + "." + hex.EncodeToString(mac.Sum(nil))
}

// session is the signed-in userid, or "".
func (tb *Toolbar) session(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	enc, sum, ok := strings.Cut(c.Value, ".")
	if !ok {
		return ""
	}
	payload, err := url.QueryUnescape(enc)
	if err != nil {
		return ""
	}
	mac := hmac.New(sha256.New, tb.key)
	mac.Write([]byte(payload))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sum), []byte(want)) {
		return ""
	}
	uid, until, ok := strings.Cut(payload, "|")
	exp, err := strconv.ParseInt(until, 10, 64)
	if !ok || err != nil || tb.now().Unix() > exp {
		return ""
	}
	return uid
}

// jsConfig signs the page's URL for wx.config (the corp's jsapi ticket)
// and wx.agentConfig (the app's), which sendChatMessage needs.
func (tb *Toolbar) jsConfig(w http.ResponseWriter, r *http.Request) {
	if tb.session(r) == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "请在企业微信中打开本页"})
		return
	}
	pageURL := r.URL.Query().Get("url")
	if i := strings.IndexByte(pageURL, '#'); i >= 0 {
		pageURL = pageURL[:i]
	}
	if pageURL == "" || len(pageURL) > 2048 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "url is required"})
		return
	}
	corp, err := tb.ticket(r.Context(), "jsapi")
	if err != nil {
		tb.fail(w, err)
		return
	}
	agent, err := tb.ticket(r.Context(), "agent_config")
	if err != nil {
		tb.fail(w, err)
		return
	}
	ts := strconv.FormatInt(tb.now().Unix(), 10)
	nonce := hex.EncodeToString(randomBytes(8))
	writeJSON(w, http.StatusOK, map[string]any{
		"corpid": tb.corpID, "agentid": tb.cfg.AgentID,
		"config": map[string]string{"timestamp": ts, "nonceStr": nonce, "signature": JSSignature(corp, nonce, ts, pageURL)},
		"agent":  map[string]string{"timestamp": ts, "nonceStr": nonce, "signature": JSSignature(agent, nonce, ts, pageURL)},
	})
}

// JSSignature is the JS-SDK's signature of a page URL.
func JSSignature(ticket, nonce, timestamp, pageURL string) string {
	sum := sha1.Sum([]byte("jsapi_ticket=" + ticket + "&noncestr=" + nonce + "&timestamp=" + timestamp + "&url=" + pageURL))
	return hex.EncodeToString(sum[:])
}

// ticketView is one open ticket as the page shows it.
type ticketView struct {
	Number   int64      `json:"number"`
	Question string     `json:"question"`
	Resident string     `json:"resident"`
	Urgent   bool       `json:"urgent"`
	Prepared []prepared `json:"prepared"`
}

type prepared struct {
	Label string `json:"label"`
	Text  string `json:"text"`
}

// tickets lists the open tickets of the group the page is open in, when
// the signed-in officer may send there: the group's owner, or the duty
// account of its station. Anyone else sees nothing.
func (tb *Toolbar) tickets(w http.ResponseWriter, r *http.Request) {
	uid := tb.session(r)
	if uid == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "请在企业微信中打开本页"})
		return
	}
	chat := r.URL.Query().Get("chat")
	d, err := tb.directory(r.Context())
	if err != nil {
		tb.fail(w, err)
		return
	}
	g, ok := mayServe(d, uid, chat)
	if !ok {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "本群不是您负责的客户群"})
		return
	}
	msgs, tickets, err := tb.st.AwaitingHuman(r.Context(), g.Platform, g.ChatID)
	if err != nil {
		tb.fail(w, err)
		return
	}
	out := []ticketView{}
	for _, t := range tickets {
		v := ticketView{Number: t.Number, Question: t.Question, Resident: t.ResidentName, Urgent: t.Emergency, Prepared: []prepared{}}
		if v.Resident == "" {
			v.Resident = "居民"
		}
		for _, m := range msgs {
			if m.TicketID != nil && *m.TicketID == t.ID {
				v.Prepared = append(v.Prepared, prepared{Label: labels[m.Purpose], Text: m.Text})
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g.Name, "tickets": out})
}

var labels = map[string]string{"ack": "回执", "answer": "答复", "reply": "回复"}

// mayServe finds the customer group chat and whether userid may send in it.
func mayServe(d *store.Directory, userID, chat string) (*store.Group, bool) {
	if chat == "" {
		return nil, false
	}
	var officer *store.Officer
	for _, id := range d.Identities {
		if id.Platform == "wechat" && id.UserID == userID {
			for i := range d.Officers {
				if d.Officers[i].ID == id.OfficerID {
					officer = &d.Officers[i]
				}
			}
		}
	}
	if officer == nil {
		return nil, false
	}
	for i := range d.Groups {
		g := &d.Groups[i]
		if g.Platform != "wechat" || g.ChatID != chat || g.Kind != store.GroupKindCustomer {
			continue
		}
		if g.OfficerID != nil && *g.OfficerID == officer.ID {
			return g, true
		}
		for _, s := range d.Stations {
			if s.ID == g.StationID && s.DutyAccountID != nil && *s.DutyAccountID == officer.ID {
				return g, true
			}
		}
	}
	return nil, false
}

// directory is the store's directory, read at most every 15 seconds.
func (tb *Toolbar) directory(ctx context.Context) (*store.Directory, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.dir != nil && tb.now().Sub(tb.dirTime) < 15*time.Second {
		return tb.dir, nil
	}
	d, err := tb.st.LoadDirectory(ctx)
	if err != nil {
		return nil, err
	}
	tb.dir, tb.dirTime = d, tb.now()
	return d, nil
}

func (tb *Toolbar) fail(w http.ResponseWriter, err error) {
	tb.log.Error("toolbar", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "暂时无法读取，请稍后再试"})
}

// userOf asks WeCom whose OAuth code this is.
func (tb *Toolbar) userOf(ctx context.Context, code string) (string, error) {
	var got struct {
		ErrCode int64  `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		UserID  string `json:"userid"`
	}
	if err := tb.api.call(ctx, "/cgi-bin/auth/getuserinfo", url.Values{"code": {code}}, &got); err != nil {
		return "", err
	}
	if got.UserID == "" {
		return "", errors.New("the code is not a member's (external or expired)")
	}
	return got.UserID, nil
}

// ticket is the corp's jsapi ticket ("jsapi") or the app's ("agent_config"), cached.
func (tb *Toolbar) ticket(ctx context.Context, kind string) (string, error) {
	if v, ok := tb.api.cachedValue(kind); ok {
		return v, nil
	}
	var got struct {
		ErrCode   int64  `json:"errcode"`
		ErrMsg    string `json:"errmsg"`
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	path, q := "/cgi-bin/get_jsapi_ticket", url.Values{}
	if kind == "agent_config" {
		path, q = "/cgi-bin/ticket/get", url.Values{"type": {"agent_config"}}
	}
	if err := tb.api.call(ctx, path, q, &got); err != nil {
		return "", err
	}
	tb.api.remember(kind, got.Ticket, got.ExpiresIn)
	return got.Ticket, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
