// Package dingtalktest is a stand-in DingTalk on 127.0.0.1 for tests and
// benchmarks: the stream gateway (connections/open, then a WebSocket that
// sends CALLBACK and SYSTEM frames the way DingTalk does, reads the acks and
// redelivers what was not acked), the OpenAPI endpoints the adapter calls
// (access token, groupMessages/send, oToMessages/batchSend) and session
// webhooks. It records what residents would see in each group and what each
// officer would see in their direct chat with the robot, and it can be told
// to misbehave: throttle, flow-control, refuse tokens, expire webhooks, hold
// webhook replies, drop the connection, ask the client to reconnect.
package dingtalktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"
)

// Topics and paths, as DingTalk names them.
const (
	TopicBotMessage = "/v1.0/im/bot/messages/get"
	PathOpen        = "/v1.0/gateway/connections/open"
	PathToken       = "/v1.0/oauth2/accessToken"
	PathGroupSend   = "/v1.0/robot/groupMessages/send"
	PathBatchSend   = "/v1.0/robot/oToMessages/batchSend"
	PathWebhook     = "/robot/sendBySession"
	pathGateway     = "/connect"

	// CodeQPSLimit is the code DingTalk answers (HTTP 403) when an app
	// calls one API too often.
	CodeQPSLimit = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
	// ErrCodeSessionExpired is what this stand-in's session webhooks answer,
	// with HTTP 200, once the session has expired.
	ErrCodeSessionExpired = 300001
)

// Options configure a Server; zero values take the defaults.
type Options struct {
	AppKey      string // default "dingtestappkey"
	AppSecret   string // default "test-app-secret"
	RobotCode   string // default AppKey
	RobotUserID string // the robot's chatbotUserId; default "$:LWCP_v1:$robot"
	// TokenTTL is the life of an access token (expireIn). Default 2 h.
	TokenTTL time.Duration
	// PingEvery is how often the gateway sends a SYSTEM ping on a live
	// connection, as DingTalk does to keep it alive. Default 200 ms; < 0: never.
	PingEvery time.Duration
	// RedeliverAfter is how long after a failed ack (code not 200) the frame
	// is sent again. Default 300 ms.
	RedeliverAfter time.Duration
	// AckTimeout is how long the gateway waits for any ack before sending a
	// frame again (DingTalk: 16-60 s). Default 20 s.
	AckTimeout time.Duration
	// WebhookTTL is the life of the session webhooks in delivered messages.
	// Default 90 min.
	WebhookTTL time.Duration
	// OnAck, when set, is called for every ack of a CALLBACK frame (benchmarks).
	OnAck func(Ack)
}

// Message is one message the robot posted, as the recipient sees it.
type Message struct {
	Via           string   // "webhook" or "openapi"
	Kind          string   // "text" or "markdown"
	Title         string   // markdown only
	Text          string   // content / markdown text
	AtUserIDs     []string // webhook @s by staff id
	AtDingtalkIDs []string // webhook @s by DingTalk id
	At            time.Time
}

// Ack is the client's answer to one CALLBACK frame.
type Ack struct {
	FrameID string
	Code    int
	Message string
	Data    string
	Attempt int       // 1 for the first delivery of the frame
	SentAt  time.Time // when this attempt was written
	At      time.Time
}

// Msg describes a robot callback to deliver; Deliver fills what is left empty.
type Msg struct {
	MsgID          string // default: a fresh id
	ConversationID string // group: required; direct: default "cid-dm-" + sender
	Group          bool
	Title          string // the group's title
	SenderStaffID  string // empty for residents outside the organisation
	SenderID       string // DingTalk id; default derived from the staff id or random
	SenderNick     string
	// Text is text.content as DingTalk sends it: the robot's own @ removed
	// (DingTalk leaves the leading space), other @s written as "@nick".
	Text    string
	AtBot   bool                                 // the robot was @-ed
	AtUsers []chatbot.BotCallbackDataAtUserModel // everyone else @-ed
	MsgType string                               // default "text"
	Content any                                  // content of non-text messages
	// WebhookExpired makes the session webhook already expired.
	WebhookExpired bool
}

// Server is the stand-in. All methods are safe for concurrent use.
type Server struct {
	URL  string
	opts Options
	http *httptest.Server
	up   websocket.Upgrader

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced on every change
	closed   bool
	seq      int
	tickets  map[string]bool
	conns    []*wsConn
	opened   int
	maxLive  int
	frames   map[string]*frameRec
	queue    []string // frame ids waiting for a connection
	acks     map[string][]Ack
	sessions map[string]*session
	groups   map[string][]Message
	dms      map[string][]Message
	faults   map[string][]fault
	flow     map[string]int
	invalid  map[string]bool
	tokens   map[string]time.Time
	tokenN   int
	calls    map[string][]time.Time
	hold     chan struct{}
	held     int // webhook replies waiting on hold
	failOpen int
	openReqs []OpenRequest
	pongs    int
	loopDone chan struct{}
	stopLoop chan struct{}
	connsWG  sync.WaitGroup
	cardSt   cardState
}

// OpenRequest is what a client sent to connections/open.
type OpenRequest struct {
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret"`
	UserAgent     string `json:"ua"`
	Subscriptions []struct {
		Type  string `json:"type"`
		Topic string `json:"topic"`
	} `json:"subscriptions"`
}

type frameRec struct {
	seq     int
	id      string
	raw     []byte
	kind    string // CALLBACK or SYSTEM
	acked   bool
	attempt int
	sentAt  time.Time
	conn    *wsConn
	retryAt time.Time // after a failed ack
}

type session struct {
	conversation string
	group        bool
	staff        string // direct chats: the user
	expires      time.Time
	expired      bool
}

type fault struct {
	status int
	code   string
}

type wsConn struct {
	id   string
	ws   *websocket.Conn
	wmu  sync.Mutex
	dead bool
}

// NewServer starts a stand-in on 127.0.0.1; t's cleanup stops it.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.AppKey == "" {
		opts.AppKey = "dingtestappkey"
	}
	if opts.AppSecret == "" {
		opts.AppSecret = "test-app-secret"
	}
	if opts.RobotCode == "" {
		opts.RobotCode = opts.AppKey
	}
	if opts.RobotUserID == "" {
		opts.RobotUserID = "$:LWCP_v1:$robot"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 2 * time.Hour
	}
	if opts.PingEvery == 0 {
		opts.PingEvery = 200 * time.Millisecond
	}
	if opts.RedeliverAfter == 0 {
		opts.RedeliverAfter = 300 * time.Millisecond
	}
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 20 * time.Second
	}
	if opts.WebhookTTL == 0 {
		opts.WebhookTTL = 90 * time.Minute
	}
	s := &Server{
		opts: opts, wake: make(chan struct{}), tickets: map[string]bool{}, frames: map[string]*frameRec{},
		acks: map[string][]Ack{}, sessions: map[string]*session{}, groups: map[string][]Message{}, dms: map[string][]Message{},
		faults: map[string][]fault{}, flow: map[string]int{}, invalid: map[string]bool{}, tokens: map[string]time.Time{},
		calls: map[string][]time.Time{}, loopDone: make(chan struct{}), stopLoop: make(chan struct{}),
		up: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathOpen, s.open)
	mux.HandleFunc("GET "+pathGateway, s.gateway)
	mux.HandleFunc("POST "+PathToken, s.token)
	mux.HandleFunc("POST "+PathGroupSend, s.groupSend)
	mux.HandleFunc("POST "+PathBatchSend, s.batchSend)
	mux.HandleFunc("POST "+PathWebhook, s.webhook)
	s.cardRoutes(mux)
	s.http = httptest.NewServer(mux)
	s.URL = s.http.URL
	go s.loop()
	t.Cleanup(s.Close)
	return s
}

// AppKey, AppSecret, RobotCode and RobotUserID are the stand-in app's.
func (s *Server) AppKey() string      { return s.opts.AppKey }
func (s *Server) AppSecret() string   { return s.opts.AppSecret }
func (s *Server) RobotCode() string   { return s.opts.RobotCode }
func (s *Server) RobotUserID() string { return s.opts.RobotUserID }

// Close stops the stand-in: connections drop, held webhooks are released.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	close(s.stopLoop)
	<-s.loopDone
	for _, c := range conns {
		_ = c.ws.Close()
	}
	s.http.Close()
	s.connsWG.Wait()
}

func (s *Server) changed() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return prefix + strconv.Itoa(s.seq)
}

// ---- stream gateway ----

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	var req OpenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter", "body is not JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openReqs = append(s.openReqs, req)
	s.calls[PathOpen] = append(s.calls[PathOpen], time.Now())
	if s.failOpen > 0 {
		s.failOpen--
		writeErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "gateway busy")
		return
	}
	if req.ClientID != s.opts.AppKey || req.ClientSecret != s.opts.AppSecret {
		writeErr(w, http.StatusUnauthorized, "InvalidAuthentication", "clientId or clientSecret is wrong")
		return
	}
	ticket := s.nextID("ticket-")
	s.tickets[ticket] = true
	writeJSON(w, map[string]string{"endpoint": "ws" + strings.TrimPrefix(s.URL, "http") + pathGateway, "ticket": ticket})
}

func (s *Server) gateway(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusUnauthorized, "InvalidTicket", "ticket unknown or used")
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	c := &wsConn{id: s.nextID("conn-"), ws: ws}
	s.conns = append(s.conns, c)
	s.opened++
	s.maxLive = max(s.maxLive, len(s.conns))
	queued := s.queue
	s.queue = nil
	s.connsWG.Add(1)
	s.changed()
	s.mu.Unlock()
	for _, id := range queued {
		s.sendFrame(id, c)
	}
	go s.read(c)
}

// read takes the client's acks until the connection ends, then queues what
// it sent there and nobody acked for the next connection.
func (s *Server) read(c *wsConn) {
	defer s.connsWG.Done()
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			break
		}
		var resp struct {
			Code    int               `json:"code"`
			Headers map[string]string `json:"headers"`
			Message string            `json:"message"`
			Data    string            `json:"data"`
		}
		if json.Unmarshal(raw, &resp) != nil {
			continue
		}
		s.ack(resp.Headers["messageId"], resp.Code, resp.Message, resp.Data)
	}
	_ = c.ws.Close()
	s.mu.Lock()
	c.dead = true
	s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
	for id, f := range s.frames {
		switch {
		case f.conn != c:
		case f.kind == "SYSTEM":
			delete(s.frames, id)
		case !f.acked:
			f.conn = nil
			s.queue = append(s.queue, f.id)
		}
	}
	slices.SortFunc(s.queue, func(a, b string) int { return s.frames[a].seq - s.frames[b].seq })
	s.changed()
	s.mu.Unlock()
}

func (s *Server) ack(id string, code int, msg, data string) {
	s.mu.Lock()
	f, ok := s.frames[id]
	if !ok {
		s.mu.Unlock()
		return
	}
	if f.kind == "SYSTEM" {
		s.pongs++
		delete(s.frames, id)
		s.changed()
		s.mu.Unlock()
		return
	}
	a := Ack{FrameID: id, Code: code, Message: msg, Data: data, Attempt: f.attempt, SentAt: f.sentAt, At: time.Now()}
	s.acks[id] = append(s.acks[id], a)
	// 200 is done; 404 (no handler for the topic) would not change on a
	// resend either; anything else is sent again, as DingTalk does.
	if code == http.StatusOK || code == http.StatusNotFound {
		f.acked = true
		delete(s.frames, id)
	} else {
		f.retryAt = time.Now().Add(s.opts.RedeliverAfter)
	}
	s.changed()
	onAck := s.opts.OnAck
	s.mu.Unlock()
	if onAck != nil {
		onAck(a)
	}
}

// sendFrame writes frame id on c (or the newest live connection), or queues
// it for the next connection.
func (s *Server) sendFrame(id string, c *wsConn) {
	s.mu.Lock()
	f, ok := s.frames[id]
	if !ok || f.acked {
		s.mu.Unlock()
		return
	}
	if c == nil || c.dead {
		if len(s.conns) == 0 {
			s.queue = append(s.queue, id)
			s.mu.Unlock()
			return
		}
		c = s.conns[len(s.conns)-1]
	}
	f.attempt++
	f.conn, f.sentAt, f.retryAt = c, time.Now(), time.Time{}
	raw := f.raw
	s.mu.Unlock()
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := c.ws.WriteMessage(websocket.TextMessage, raw)
	c.wmu.Unlock()
	if err != nil {
		_ = c.ws.Close() // read() queues the frame again
	}
}

// loop sends pings and redelivers frames whose ack failed or never came.
func (s *Server) loop() {
	defer close(s.loopDone)
	tick := 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-s.stopLoop:
			return
		case <-t.C:
		}
		now := time.Now()
		var resend []string
		s.mu.Lock()
		for id, f := range s.frames {
			if f.acked || f.conn == nil || f.kind != "CALLBACK" {
				continue
			}
			if (!f.retryAt.IsZero() && now.After(f.retryAt)) || now.Sub(f.sentAt) > s.opts.AckTimeout {
				resend = append(resend, id)
			}
		}
		ping := s.opts.PingEvery > 0 && now.Sub(lastPing) >= s.opts.PingEvery && len(s.conns) > 0
		slices.SortFunc(resend, func(a, b string) int { return s.frames[a].seq - s.frames[b].seq })
		s.mu.Unlock()
		for _, id := range resend {
			s.sendFrame(id, nil)
		}
		if ping {
			lastPing = now
			s.System("ping", `{"opaque":"`+strconv.FormatInt(now.UnixNano(), 36)+`"}`)
		}
	}
}

// frameJSON is a frame exactly as DingTalk writes it: every header a string,
// data a JSON document inside a string.
func frameJSON(typ, topic, id, connID, appKey, data string) []byte {
	b, _ := json.Marshal(map[string]any{
		"specVersion": "1.0",
		"type":        typ,
		"headers": map[string]string{
			"appId":        appKey,
			"connectionId": connID,
			"contentType":  "application/json",
			"messageId":    id,
			"time":         strconv.FormatInt(time.Now().UnixMilli(), 10),
			"topic":        topic,
		},
		"data": data,
	})
	return b
}

// System sends a SYSTEM frame (ping, disconnect, KEEPALIVE) on the newest
// connection, if there is one.
func (s *Server) System(topic, data string) {
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return
	}
	c := s.conns[len(s.conns)-1]
	id := s.nextID("sys-")
	s.frames[id] = &frameRec{seq: s.seq, id: id, kind: "SYSTEM", raw: frameJSON("SYSTEM", topic, id, c.id, s.opts.AppKey, data)}
	s.mu.Unlock()
	s.sendFrame(id, c)
}

// Disconnect asks the client to reconnect, as DingTalk does before it
// moves a connection: a SYSTEM "disconnect" frame.
func (s *Server) Disconnect() { s.System("disconnect", `{"reason":"server is restarting"}`) }

// Drop cuts the newest connection without a word, as a network failure does.
func (s *Server) Drop() {
	s.mu.Lock()
	var c *wsConn
	if len(s.conns) > 0 {
		c = s.conns[len(s.conns)-1]
	}
	s.mu.Unlock()
	if c != nil {
		_ = c.ws.UnderlyingConn().Close()
	}
}

// Deliver sends a robot callback for m and returns the frame id. Without a
// live connection the frame waits for the next one.
func (s *Server) Deliver(m Msg) string {
	data, _ := json.Marshal(s.callback(m))
	return s.DeliverData(TopicBotMessage, string(data))
}

// DeliverData sends a CALLBACK frame on topic with data as it is (bad-input
// tests send data that is not JSON, or unknown topics).
func (s *Server) DeliverData(topic, data string) string {
	s.mu.Lock()
	id := s.nextID("frame-")
	connID := ""
	if len(s.conns) > 0 {
		connID = s.conns[len(s.conns)-1].id
	}
	s.frames[id] = &frameRec{seq: s.seq, id: id, kind: "CALLBACK", raw: frameJSON("CALLBACK", topic, id, connID, s.opts.AppKey, data)}
	s.mu.Unlock()
	s.sendFrame(id, nil)
	return id
}

// SendRaw writes raw bytes as one text frame on the newest connection,
// untracked: for frames so broken the client cannot ack them.
func (s *Server) SendRaw(raw []byte) {
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return
	}
	c := s.conns[len(s.conns)-1]
	s.mu.Unlock()
	c.wmu.Lock()
	_ = c.ws.WriteMessage(websocket.TextMessage, raw)
	c.wmu.Unlock()
}

func (s *Server) callback(m Msg) chatbot.BotCallbackDataModel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.MsgID == "" {
		m.MsgID = fmt.Sprintf("msg%x%s", time.Now().UnixNano(), s.nextID("-"))
	}
	if m.SenderID == "" {
		if m.SenderStaffID != "" {
			m.SenderID = "$:LWCP_v1:$" + m.SenderStaffID
		} else {
			m.SenderID = "$:LWCP_v1:$" + s.nextID("u")
		}
	}
	user := m.SenderStaffID
	if user == "" {
		user = m.SenderID
	}
	typ := "2"
	if !m.Group {
		typ = "1"
		if m.ConversationID == "" {
			m.ConversationID = "cid-dm-" + user
		}
	}
	if m.MsgType == "" {
		m.MsgType = "text"
	}
	now := time.Now()
	sid := s.nextID("session-")
	sess := &session{conversation: m.ConversationID, group: m.Group, staff: user, expires: now.Add(s.opts.WebhookTTL)}
	if m.WebhookExpired {
		sess.expires = now.Add(-time.Minute)
	}
	s.sessions[sid] = sess
	at := slices.Clone(m.AtUsers)
	if m.AtBot {
		at = append([]chatbot.BotCallbackDataAtUserModel{{DingtalkId: s.opts.RobotUserID}}, at...)
	}
	d := chatbot.BotCallbackDataModel{
		ConversationId: m.ConversationID, AtUsers: at, ChatbotCorpId: "dingcorp", ChatbotUserId: s.opts.RobotUserID,
		MsgId: m.MsgID, SenderNick: m.SenderNick, SenderStaffId: m.SenderStaffID, SenderCorpId: "dingcorp",
		SessionWebhookExpiredTime: sess.expires.UnixMilli(), CreateAt: now.UnixMilli(), ConversationType: typ,
		SenderId: m.SenderID, ConversationTitle: m.Title, IsInAtList: m.AtBot || !m.Group,
		SessionWebhook: s.URL + PathWebhook + "?session=" + sid, RobotCode: s.opts.RobotCode, Msgtype: m.MsgType,
	}
	if m.MsgType == "text" {
		d.Text.Content = m.Text
	} else {
		d.Content = m.Content
	}
	return d
}

// ---- OpenAPI ----

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[PathToken] = append(s.calls[PathToken], time.Now())
	if f, ok := s.takeFault(PathToken); ok {
		writeErr(w, f.status, f.code, "injected fault")
		return
	}
	if req.AppKey != s.opts.AppKey || req.AppSecret != s.opts.AppSecret {
		writeErr(w, http.StatusBadRequest, "invalidClientIdOrSecret", "appKey or appSecret is wrong")
		return
	}
	s.tokenN++
	tok := fmt.Sprintf("token-%d-%d", s.tokenN, time.Now().UnixNano())
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	writeJSON(w, map[string]any{"accessToken": tok, "expireIn": int64(s.opts.TokenTTL / time.Second)})
}

// authorise checks the access token and injected faults; it writes the
// error and returns false when the call must fail. s.mu is held.
func (s *Server) authorise(w http.ResponseWriter, r *http.Request, path string) bool {
	s.calls[path] = append(s.calls[path], time.Now())
	if f, ok := s.takeFault(path); ok {
		writeErr(w, f.status, f.code, "injected fault")
		return false
	}
	exp, ok := s.tokens[r.Header.Get("x-acs-dingtalk-access-token")]
	if !ok || time.Now().After(exp) {
		writeErr(w, http.StatusUnauthorized, "InvalidAuthentication", "不合法的access_token")
		return false
	}
	return !s.overQuota(w)
}

func (s *Server) takeFault(path string) (fault, bool) {
	fs := s.faults[path]
	if len(fs) == 0 {
		return fault{}, false
	}
	s.faults[path] = fs[1:]
	return fs[0], true
}

type sendBody struct {
	RobotCode          string   `json:"robotCode"`
	OpenConversationID string   `json:"openConversationId"`
	UserIDs            []string `json:"userIds"`
	MsgKey             string   `json:"msgKey"`
	MsgParam           string   `json:"msgParam"`
}

// parse reads a send body into the message it would show; it writes the
// error and returns false when DingTalk would refuse the body.
func (s *Server) parse(w http.ResponseWriter, r *http.Request) (sendBody, Message, bool) {
	var b sendBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter", "body is not JSON")
		return b, Message{}, false
	}
	if b.RobotCode != s.opts.RobotCode {
		writeErr(w, http.StatusBadRequest, "resource.not.found", "robot does not exist")
		return b, Message{}, false
	}
	var p struct {
		Content string `json:"content"`
		Title   string `json:"title"`
		Text    string `json:"text"`
	}
	if err := json.Unmarshal([]byte(b.MsgParam), &p); err != nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter.msgParam", "msgParam is not a JSON string")
		return b, Message{}, false
	}
	m := Message{Via: "openapi", At: time.Now()}
	switch b.MsgKey {
	case "sampleText":
		m.Kind, m.Text = "text", p.Content
	case "sampleMarkdown":
		m.Kind, m.Title, m.Text = "markdown", p.Title, p.Text
		if p.Title == "" {
			writeErr(w, http.StatusBadRequest, "invalidParameter.msgParam", "markdown needs a title")
			return b, Message{}, false
		}
	default:
		writeErr(w, http.StatusBadRequest, "invalidParameter.msgKey", "unknown msgKey")
		return b, Message{}, false
	}
	if m.Text == "" {
		writeErr(w, http.StatusBadRequest, "invalidParameter.msgParam", "empty message")
		return b, Message{}, false
	}
	return b, m, true
}

func (s *Server) groupSend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorise(w, r, PathGroupSend) {
		return
	}
	b, m, ok := s.parse(w, r)
	if !ok {
		return
	}
	if b.OpenConversationID == "" {
		writeErr(w, http.StatusBadRequest, "invalidParameter.openConversationId", "openConversationId is required")
		return
	}
	s.groups[b.OpenConversationID] = append(s.groups[b.OpenConversationID], m)
	s.changed()
	writeJSON(w, map[string]string{"processQueryKey": s.nextID("pqk-")})
}

func (s *Server) batchSend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorise(w, r, PathBatchSend) {
		return
	}
	b, m, ok := s.parse(w, r)
	if !ok {
		return
	}
	if len(b.UserIDs) == 0 || len(b.UserIDs) > 20 {
		writeErr(w, http.StatusBadRequest, "invalidParameter.userIds", "userIds takes 1 to 20 ids")
		return
	}
	invalid, flow := []string{}, []string{}
	for _, u := range b.UserIDs {
		switch {
		case s.invalid[u]:
			invalid = append(invalid, u)
		case s.flow[u] > 0:
			s.flow[u]--
			flow = append(flow, u)
		default:
			s.dms[u] = append(s.dms[u], m)
		}
	}
	s.changed()
	writeJSON(w, map[string]any{"processQueryKey": s.nextID("pqk-"), "invalidStaffIdList": invalid, "flowControlledStaffIdList": flow})
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	// The body is read first: only then does the server notice a client
	// that goes away (its process killed) while the reply is held, and
	// such a reply is not posted.
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	s.mu.Lock()
	hold := s.hold
	if hold != nil {
		s.held++
		s.changed()
	}
	s.mu.Unlock()
	if hold != nil {
		var gone bool
		select {
		case <-hold:
		case <-r.Context().Done():
			gone = true
		}
		s.mu.Lock()
		s.held--
		s.changed()
		s.mu.Unlock()
		if gone {
			return
		}
	}
	var b struct {
		MsgType  string                       `json:"msgtype"`
		Text     struct{ Content string }     `json:"text"`
		Markdown struct{ Title, Text string } `json:"markdown"`
		At       struct {
			AtUserIDs     []string `json:"atUserIds"`
			AtDingtalkIDs []string `json:"atDingtalkIds"`
		} `json:"at"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		writeJSON(w, map[string]any{"errcode": 400, "errmsg": "body is not JSON"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[PathWebhook] = append(s.calls[PathWebhook], time.Now())
	if f, ok := s.takeFault(PathWebhook); ok {
		writeErr(w, f.status, f.code, "injected fault")
		return
	}
	sess, ok := s.sessions[r.URL.Query().Get("session")]
	switch {
	case !ok:
		writeJSON(w, map[string]any{"errcode": 300005, "errmsg": "session does not exist"})
		return
	case sess.expired || time.Now().After(sess.expires):
		writeJSON(w, map[string]any{"errcode": ErrCodeSessionExpired, "errmsg": "session is expired"})
		return
	}
	m := Message{Via: "webhook", At: time.Now(), AtUserIDs: b.At.AtUserIDs, AtDingtalkIDs: b.At.AtDingtalkIDs}
	switch b.MsgType {
	case "text":
		m.Kind, m.Text = "text", b.Text.Content
	case "markdown":
		m.Kind, m.Title, m.Text = "markdown", b.Markdown.Title, b.Markdown.Text
	default:
		writeJSON(w, map[string]any{"errcode": 400, "errmsg": "unknown msgtype"})
		return
	}
	if sess.group {
		s.groups[sess.conversation] = append(s.groups[sess.conversation], m)
	} else {
		s.dms[sess.staff] = append(s.dms[sess.staff], m)
	}
	s.changed()
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg, "requestid": "req-standin"})
}

// ---- faults ----

// Fail makes the next n calls to path (an OpenAPI path, PathToken or
// PathWebhook) answer HTTP status with DingTalk error code.
func (s *Server) Fail(path string, n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[path] = append(s.faults[path], fault{status, code})
	}
}

// Throttle makes the next n calls to path answer 403 QpsLimit.
func (s *Server) Throttle(path string, n int) { s.Fail(path, n, http.StatusForbidden, CodeQPSLimit) }

// FlowControl makes the next n direct messages to staff come back in
// flowControlledStaffIdList, undelivered.
func (s *Server) FlowControl(staff string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flow[staff] += n
}

// InvalidStaff makes direct messages to these ids come back in
// invalidStaffIdList.
func (s *Server) InvalidStaff(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.invalid[id] = true
	}
}

// RevokeTokens makes every access token issued so far invalid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ExpireSessions makes every session webhook issued so far refuse.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.expired = true
	}
}

// FailOpen makes the next n connections/open calls answer 503.
func (s *Server) FailOpen(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOpen += n
}

// HoldWebhooks makes session webhooks wait before answering until release
// is called (or the stand-in closes).
func (s *Server) HoldWebhooks() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				close(ch)
				s.hold = nil
			}
			s.mu.Unlock()
		})
	}
}

// ---- what happened ----

// Held counts session-webhook replies waiting on HoldWebhooks now.
func (s *Server) Held() int { s.mu.Lock(); defer s.mu.Unlock(); return s.held }

// Group returns what was posted in a group conversation, in order.
func (s *Server) Group(conversation string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups[conversation])
}

// DMs returns the robot's direct messages to a user, in order.
func (s *Server) DMs(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dms[user])
}

// Acks returns the acks of a frame, one per delivery attempt answered.
func (s *Server) Acks(frameID string) []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks[frameID])
}

// Connections is how many stream connections were opened; MaxLive is the
// most that were open at once.
func (s *Server) Connections() int { s.mu.Lock(); defer s.mu.Unlock(); return s.opened }
func (s *Server) MaxLive() int     { s.mu.Lock(); defer s.mu.Unlock(); return s.maxLive }
func (s *Server) Live() int        { s.mu.Lock(); defer s.mu.Unlock(); return len(s.conns) }

// Calls returns when each call to path arrived.
func (s *Server) Calls(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls[path])
}

// TokensIssued counts access tokens handed out.
func (s *Server) TokensIssued() int { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenN }

// Pongs counts answered SYSTEM frames (pings, disconnects).
func (s *Server) Pongs() int { s.mu.Lock(); defer s.mu.Unlock(); return s.pongs }

// OpenRequests returns what clients sent to connections/open.
func (s *Server) OpenRequests() []OpenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.openReqs)
}

// Unacked lists CALLBACK frames not yet acked.
func (s *Server) Unacked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, f := range s.frames {
		if f.kind == "CALLBACK" && !f.acked {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return s.frames[a].seq - s.frames[b].seq })
	return out
}

// Wait blocks until cond holds (checked after every change and every 50
// ms), failing t after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stand-in DingTalk: timed out after %s waiting for %s", timeout, what)
		}
		s.mu.Lock()
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitAck waits for the first ack of a frame with code 200 and returns it.
func (s *Server) WaitAck(t testing.TB, frameID string) Ack {
	t.Helper()
	var got Ack
	s.Wait(t, 15*time.Second, "ack of "+frameID, func() bool {
		for _, a := range s.Acks(frameID) {
			if a.Code == http.StatusOK {
				got = a
				return true
			}
		}
		return false
	})
	return got
}

// WaitGroup waits until a group has at least n messages and returns them.
func (s *Server) WaitGroup(t testing.TB, conversation string, n int) []Message {
	t.Helper()
	s.Wait(t, 15*time.Second, fmt.Sprintf("%d messages in group %s", n, conversation), func() bool { return len(s.Group(conversation)) >= n })
	return s.Group(conversation)
}

// WaitDMs waits until a user has at least n direct messages and returns them.
func (s *Server) WaitDMs(t testing.TB, user string, n int) []Message {
	t.Helper()
	s.Wait(t, 15*time.Second, fmt.Sprintf("%d direct messages to %s", n, user), func() bool { return len(s.DMs(user)) >= n })
	return s.DMs(user)
}

// WaitConnections waits until n connections were opened and one is live.
func (s *Server) WaitConnections(t testing.TB, n int) {
	t.Helper()
	s.Wait(t, 15*time.Second, fmt.Sprintf("%d stream connections", n), func() bool { return s.Connections() >= n && s.Live() > 0 })
}
