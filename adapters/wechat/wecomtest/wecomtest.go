// Package wecomtest plays the WeChat platforms for tests, as net/http/httptest
// plays a client or server: Server is a stand-in WeCom and Official Account
// API on 127.0.0.1 (tokens, app messages, group webhook robots, customer-
// service messages, the intelligent robot's response_url), and the Seal
// functions encrypt and sign callbacks exactly as WeCom does, with the SDK's
// own crypto, so tests can post them to the adapter's callback URLs.
package wecomtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// Message is one message the stand-in accepted for delivery, as a resident or
// officer would see it.
type Message struct {
	// Channel is how it came: "response_url", "webhook", "app" or "oa".
	Channel string
	// To is the group's webhook key name, the app's touser, the openid, or
	// the response_url's code.
	To       string
	MsgType  string
	Text     string
	Mentions []string
}

// Server is a stand-in WeCom + Official Account API.
type Server struct {
	*httptest.Server

	CorpSecret string // the app secret gettoken accepts
	OASecret   string // the Official Account secret token accepts

	mu          sync.Mutex
	sent        []Message
	calls       map[string]int      // path → count
	failures    map[string][]int64  // channel → errcodes to answer next, in order
	closed      map[string]bool     // openids outside the 48-hour window
	codes       map[string]bool     // response_url codes issued and not yet used
	webhookKeys map[string]string   // key → name
	tokens      map[string]struct{} // access tokens issued
	seq         int
	cards       map[string]*Card // task_id → card
	arch        *archive         // the conversation archive (archive.go)
}

// NewServer starts a stand-in on 127.0.0.1. Close it when done.
func NewServer() *Server {
	s := &Server{
		CorpSecret: "app-secret", OASecret: "oa-secret",
		calls: map[string]int{}, failures: map[string][]int64{}, closed: map[string]bool{},
		codes: map[string]bool{}, webhookKeys: map[string]string{}, tokens: map[string]struct{}{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", s.workToken)
	mux.HandleFunc("GET /cgi-bin/token", s.oaToken)
	mux.HandleFunc("POST /cgi-bin/message/send", s.appSend)
	mux.HandleFunc("POST /cgi-bin/webhook/send", s.webhookSend)
	mux.HandleFunc("POST /cgi-bin/message/custom/send", s.customSend)
	mux.HandleFunc("POST /cgi-bin/aibot/response", s.responseURL)
	mux.HandleFunc("POST /cgi-bin/message/update_template_card", s.updateTemplateCard)
	s.archiveRoutes(mux)
	s.Server = httptest.NewServer(mux)
	return s
}

// AddWebhook registers a group webhook robot key under a readable name.
func (s *Server) AddWebhook(key, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookKeys[key] = name
}

// ResponseURL issues a fresh response_url, usable once.
func (s *Server) ResponseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	code := fmt.Sprintf("rc%d", s.seq)
	s.codes[code] = true
	return s.URL + "/cgi-bin/aibot/response?response_code=" + code
}

// Fail makes the next calls on channel ("app", "webhook", "oa",
// "response_url") answer these errcodes, one per call.
func (s *Server) Fail(channel string, codes ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[channel] = append(s.failures[channel], codes...)
}

// CloseReplyWindow puts an openid outside the 48-hour customer-service
// window: replies to it get errcode 45015.
func (s *Server) CloseReplyWindow(openID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed[openID] = true
}

// Sent returns the messages accepted so far, in order.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// SentOn returns the messages accepted on one channel.
func (s *Server) SentOn(channel string) []Message {
	var out []Message
	for _, m := range s.Sent() {
		if m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// Calls counts requests to a path (accepted or not).
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

func (s *Server) count(r *http.Request) {
	s.mu.Lock()
	s.calls[r.URL.Path]++
	s.mu.Unlock()
}

// nextFailure pops the next scripted errcode for channel.
func (s *Server) nextFailure(channel string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[channel]
	if len(f) == 0 {
		return 0
	}
	s.failures[channel] = f[1:]
	return f[0]
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
}

func (s *Server) issueToken(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	t := prefix + strconv.Itoa(s.seq)
	s.tokens[t] = struct{}{}
	return t
}

func (s *Server) tokenOK(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[r.URL.Query().Get("access_token")]
	return ok
}

func answer(w http.ResponseWriter, code int64, msg string, extra map[string]any) {
	out := map[string]any{"errcode": code, "errmsg": msg}
	for k, v := range extra {
		out[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) workToken(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if r.URL.Query().Get("corpsecret") != s.CorpSecret {
		answer(w, 40001, "invalid credential", nil)
		return
	}
	answer(w, 0, "ok", map[string]any{"access_token": s.issueToken("work-"), "expires_in": 7200})
}

func (s *Server) oaToken(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if r.URL.Query().Get("secret") != s.OASecret {
		answer(w, 40001, "invalid credential", nil)
		return
	}
	answer(w, 0, "ok", map[string]any{"access_token": s.issueToken("oa-"), "expires_in": 7200})
}

// wireMessage covers the JSON bodies of every send API the stand-in serves.
type wireMessage struct {
	ToUser  string `json:"touser"`
	AgentID any    `json:"agentid"`
	MsgType string `json:"msgtype"`
	Text    *struct {
		Content       string   `json:"content"`
		MentionedList []string `json:"mentioned_list"`
	} `json:"text"`
	Markdown *struct {
		Content string `json:"content"`
	} `json:"markdown"`
	TemplateCard json.RawMessage `json:"template_card"`
}

func (m wireMessage) content() string {
	switch {
	case m.Text != nil:
		return m.Text.Content
	case m.Markdown != nil:
		return m.Markdown.Content
	}
	return ""
}

func decode(w http.ResponseWriter, r *http.Request) (wireMessage, bool) {
	var m wireMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&m); err != nil {
		answer(w, 40008, "invalid message: "+err.Error(), nil)
		return m, false
	}
	if strings.TrimSpace(m.content()) == "" && m.TemplateCard == nil {
		answer(w, 44004, "empty content", nil)
		return m, false
	}
	return m, true
}

func (s *Server) appSend(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40014, "invalid access_token", nil)
		return
	}
	m, ok := decode(w, r)
	if !ok {
		return
	}
	if code := s.nextFailure("app"); code != 0 {
		answer(w, code, "scripted failure", nil)
		return
	}
	if m.MsgType == "template_card" {
		s.templateCardSend(w, m)
		return
	}
	s.record(Message{Channel: "app", To: m.ToUser, MsgType: m.MsgType, Text: m.content()})
	answer(w, 0, "ok", map[string]any{"invaliduser": "", "msgid": "m" + strconv.Itoa(len(s.Sent()))})
}

func (s *Server) webhookSend(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	s.mu.Lock()
	name, ok := s.webhookKeys[r.URL.Query().Get("key")]
	s.mu.Unlock()
	if !ok {
		answer(w, 93000, "invalid webhook url", nil)
		return
	}
	m, ok := decode(w, r)
	if !ok {
		return
	}
	if code := s.nextFailure("webhook"); code != 0 {
		answer(w, code, "scripted failure", nil)
		return
	}
	msg := Message{Channel: "webhook", To: name, MsgType: m.MsgType, Text: m.content()}
	if m.Text != nil {
		msg.Mentions = m.Text.MentionedList
	}
	s.record(msg)
	answer(w, 0, "ok", nil)
}

func (s *Server) customSend(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40001, "invalid credential, access_token is invalid or not latest", nil)
		return
	}
	m, ok := decode(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	closed := s.closed[m.ToUser]
	s.mu.Unlock()
	if closed {
		answer(w, 45015, "response out of time limit or subscription is canceled", nil)
		return
	}
	if code := s.nextFailure("oa"); code != 0 {
		answer(w, code, "scripted failure", nil)
		return
	}
	s.record(Message{Channel: "oa", To: m.ToUser, MsgType: m.MsgType, Text: m.content()})
	answer(w, 0, "ok", nil)
}

func (s *Server) responseURL(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	code := r.URL.Query().Get("response_code")
	s.mu.Lock()
	usable := s.codes[code]
	delete(s.codes, code) // once, whatever happens next
	s.mu.Unlock()
	if !usable {
		answer(w, 40001, "response_code invalid, used or expired", nil)
		return
	}
	m, ok := decode(w, r)
	if !ok {
		return
	}
	if c := s.nextFailure("response_url"); c != 0 {
		answer(w, c, "scripted failure", nil)
		return
	}
	s.record(Message{Channel: "response_url", To: code, MsgType: m.MsgType, Text: m.content()})
	answer(w, 0, "ok", nil)
}

// Callback is an encrypted, signed callback ready to post.
type Callback struct {
	Query url.Values
	Body  []byte
}

// Path returns path with the callback's query.
func (c Callback) Path(path string) string { return path + "?" + c.Query.Encode() }

// Nonce returns a fresh random nonce.
func Nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// encrypt seals msg for receiveID and signs it; the SDK does the AES part.
func encrypt(token, encodingAESKey, receiveID string, msg []byte, at time.Time, nonce string) (string, url.Values, error) {
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	ct, err := util.EncryptMsg(random, msg, receiveID, encodingAESKey)
	if err != nil {
		return "", nil, fmt.Errorf("encrypt callback: %w", err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	q := url.Values{"msg_signature": {util.Signature(token, ts, nonce, string(ct))}, "timestamp": {ts}, "nonce": {nonce}}
	return string(ct), q, nil
}

// SealJSON makes an intelligent-robot callback: {"encrypt": ...}.
func SealJSON(token, encodingAESKey, receiveID string, msg []byte, at time.Time, nonce string) (Callback, error) {
	ct, q, err := encrypt(token, encodingAESKey, receiveID, msg, at, nonce)
	if err != nil {
		return Callback{}, err
	}
	body, _ := json.Marshal(map[string]string{"encrypt": ct})
	return Callback{Query: q, Body: body}, nil
}

// SealXML makes a WeCom app callback: <xml><ToUserName/><AgentID/><Encrypt/></xml>.
func SealXML(token, encodingAESKey, corpID, agentID string, msg []byte, at time.Time, nonce string) (Callback, error) {
	ct, q, err := encrypt(token, encodingAESKey, corpID, msg, at, nonce)
	if err != nil {
		return Callback{}, err
	}
	type cdata struct {
		Text string `xml:",cdata"`
	}
	body, err := xml.Marshal(struct {
		XMLName    xml.Name `xml:"xml"`
		ToUserName cdata    `xml:"ToUserName"`
		AgentID    cdata    `xml:"AgentID"`
		Encrypt    cdata    `xml:"Encrypt"`
	}{ToUserName: cdata{corpID}, AgentID: cdata{agentID}, Encrypt: cdata{ct}})
	if err != nil {
		return Callback{}, fmt.Errorf("marshal callback: %w", err)
	}
	return Callback{Query: q, Body: body}, nil
}

// SignOA makes a plain-mode Official Account callback carrying msg.
func SignOA(token string, msg []byte, at time.Time, nonce string) Callback {
	ts := strconv.FormatInt(at.Unix(), 10)
	q := url.Values{"signature": {util.Signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	return Callback{Query: q, Body: msg}
}

// RobotText is the JSON of a text message to the intelligent robot.
func RobotText(msgID, chatType, chatID, userID, content, responseURL string) []byte {
	m := map[string]any{
		"msgid": msgID, "aibotid": "aibot-test", "chattype": chatType,
		"from": map[string]string{"userid": userID}, "msgtype": "text",
		"text": map[string]string{"content": content},
	}
	if chatID != "" {
		m["chatid"] = chatID
	}
	if responseURL != "" {
		m["response_url"] = responseURL
	}
	b, _ := json.Marshal(m)
	return b
}

// AppText is the XML of a text message to the WeCom app.
func AppText(corpID, agentID, userID, msgID, content string, at time.Time) []byte {
	return []byte(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%s</MsgId><AgentID>%s</AgentID></xml>",
		corpID, userID, at.Unix(), content, msgID, agentID))
}

// OAText is the XML of a text message to the Official Account.
func OAText(appUser, openID string, msgID int64, content string, at time.Time) []byte {
	return []byte(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>",
		appUser, openID, at.Unix(), content, msgID))
}
