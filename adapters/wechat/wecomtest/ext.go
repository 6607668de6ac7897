package wecomtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// ext is the stand-in's customer-contact side: WeChat customer service
// (微信客服), archive consent, and customer-group mass sends. It keeps its own
// lock so the rest of the stand-in is untouched by it.
type ext struct {
	mu sync.Mutex
	// Now is the platform's clock for the 48-hour window; tests move it
	// with the hub's.
	now func() time.Time

	kfLog      []map[string]any // every message and event sync_msg serves, in order
	kfPage     int              // messages per sync_msg page
	kfBad      int              // sync_msg calls still to answer with a malformed page
	kfLastIn   map[string]time.Time
	kfAnswers  map[string]int
	kfTokens   map[string]bool
	kfTokenSeq int
	links      map[string]string // scene → url

	agree map[string][]Consent // roomid → consent per member

	requests map[string][]json.RawMessage // path → bodies, in order

	mass massState
}

// Consent is one member's archive consent in a customer group.
type Consent struct {
	ExternalUserID string
	Agree          bool
	At             time.Time
}

func newExt() *ext {
	return &ext{
		now: time.Now, kfPage: 1000, kfLastIn: map[string]time.Time{}, kfAnswers: map[string]int{},
		kfTokens: map[string]bool{}, links: map[string]string{}, agree: map[string][]Consent{},
		requests: map[string][]json.RawMessage{}, mass: massState{lastDay: map[string]string{}},
	}
}

func (s *Server) routeExt(mux *http.ServeMux) {
	mux.HandleFunc("POST /cgi-bin/kf/sync_msg", s.kfSync)
	mux.HandleFunc("POST /cgi-bin/kf/send_msg", s.kfSend)
	mux.HandleFunc("POST /cgi-bin/kf/add_contact_way", s.kfAddContactWay)
	mux.HandleFunc("POST /cgi-bin/msgaudit/check_room_agree", s.checkRoomAgree)
	s.routeMassSend(mux)
}

// SetClock sets the platform's clock (the customer-service window).
func (s *Server) SetClock(now func() time.Time) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.now = now
}

// KFToken issues the token a kf_msg_or_event callback carries.
func (s *Server) KFToken() string {
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	x.kfTokenSeq++
	t := fmt.Sprintf("kftoken%d", x.kfTokenSeq)
	x.kfTokens[t] = true
	return t
}

// KFEnter queues the event of a resident opening a customer-service link
// made for scene.
func (s *Server) KFEnter(openKFID, user, scene string, at time.Time) {
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	x.kfLog = append(x.kfLog, map[string]any{
		"msgid": fmt.Sprintf("ev%d", len(x.kfLog)+1), "send_time": at.Unix(), "origin": 4, "msgtype": "event",
		"event": map[string]any{"event_type": "enter_session", "open_kfid": openKFID, "external_userid": user, "scene": scene},
	})
}

// KFWrite queues a resident's text message to the customer-service account.
func (s *Server) KFWrite(openKFID, user, msgID, text string, at time.Time) {
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	x.kfLog = append(x.kfLog, map[string]any{
		"msgid": msgID, "open_kfid": openKFID, "external_userid": user, "send_time": at.Unix(), "origin": 3,
		"msgtype": "text", "text": map[string]any{"content": text},
	})
	if at.After(x.kfLastIn[user]) {
		x.kfLastIn[user] = at
		x.kfAnswers[user] = 0
	}
}

// KFRaw queues a message exactly as given (a malformed one, say).
func (s *Server) KFRaw(m map[string]any) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.kfLog = append(s.ext.kfLog, m)
}

// KFPageSize sets how many messages one sync_msg page carries.
func (s *Server) KFPageSize(n int) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.kfPage = n
}

// KFBreakNextPages makes the next n sync_msg calls answer a page that is
// not JSON.
func (s *Server) KFBreakNextPages(n int) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.kfBad += n
}

// SetRoomAgree sets the archive consent of a customer group's members.
func (s *Server) SetRoomAgree(roomID string, members ...Consent) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.agree[roomID] = members
}

// Requests returns the JSON bodies posted to path, in order.
func (s *Server) Requests(path string) []json.RawMessage {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	return append([]json.RawMessage(nil), s.ext.requests[path]...)
}

// readExt counts the call, checks the token and keeps the body; ok is false
// when it answered already.
func (s *Server) readExt(w http.ResponseWriter, r *http.Request, into any) bool {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40014, "invalid access_token", nil)
		return false
	}
	var raw json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&raw); err != nil {
		answer(w, 47001, "data format error: "+err.Error(), nil)
		return false
	}
	s.ext.mu.Lock()
	s.ext.requests[r.URL.Path] = append(s.ext.requests[r.URL.Path], raw)
	s.ext.mu.Unlock()
	if err := json.Unmarshal(raw, into); err != nil {
		answer(w, 47001, "data format error: "+err.Error(), nil)
		return false
	}
	return true
}

func (s *Server) kfSync(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Cursor   string `json:"cursor"`
		Token    string `json:"token"`
		Limit    int    `json:"limit"`
		OpenKfID string `json:"open_kfid"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	if req.Token != "" && !x.kfTokens[req.Token] {
		answer(w, 95007, "invalid msg token", nil)
		return
	}
	if x.kfBad > 0 {
		x.kfBad--
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","next_cursor":"9`)) // cut short
		return
	}
	from := 0
	if req.Cursor != "" {
		n, err := strconv.Atoi(req.Cursor)
		if err != nil || n < 0 || n > len(x.kfLog) {
			answer(w, 95008, "invalid cursor", nil)
			return
		}
		from = n
	}
	limit := min(x.kfPage, max(req.Limit, 1))
	to := min(from+limit, len(x.kfLog))
	page := x.kfLog[from:to]
	more := 0
	if to < len(x.kfLog) {
		more = 1
	}
	answer(w, 0, "ok", map[string]any{"next_cursor": strconv.Itoa(to), "has_more": more, "msg_list": page})
}

func (s *Server) kfSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ToUser   string `json:"touser"`
		OpenKfID string `json:"open_kfid"`
		MsgType  string `json:"msgtype"`
		Text     struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	x := s.ext
	x.mu.Lock()
	last, wrote := x.kfLastIn[req.ToUser]
	now := x.now()
	ok := wrote && now.Sub(last) <= 48*time.Hour && x.kfAnswers[req.ToUser] < 5
	if ok {
		x.kfAnswers[req.ToUser]++
	}
	x.mu.Unlock()
	if !ok {
		answer(w, 95018, "send msg session status invalid", nil)
		return
	}
	if req.MsgType != "text" || req.Text.Content == "" {
		answer(w, 44004, "empty content", nil)
		return
	}
	s.record(Message{Channel: "kf", To: req.ToUser, MsgType: req.MsgType, Text: req.Text.Content})
	answer(w, 0, "ok", map[string]any{"msgid": fmt.Sprintf("kfm%d", len(s.Sent()))})
}

func (s *Server) kfAddContactWay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenKfID string `json:"open_kfid"`
		Scene    string `json:"scene"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	if req.OpenKfID == "" || len(req.Scene) > 32 {
		answer(w, 40058, "invalid open_kfid or scene", nil)
		return
	}
	s.ext.mu.Lock()
	u := "https://work.weixin.qq.com/kf/kfc" + req.OpenKfID + "?enc_scene=" + req.Scene
	s.ext.links[req.Scene] = u
	s.ext.mu.Unlock()
	answer(w, 0, "ok", map[string]any{"url": u})
}

func (s *Server) checkRoomAgree(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RoomID string `json:"roomid"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	s.ext.mu.Lock()
	members, ok := s.ext.agree[req.RoomID]
	s.ext.mu.Unlock()
	if !ok {
		answer(w, 301052, "room not found or not a customer group", nil)
		return
	}
	sort.SliceStable(members, func(i, j int) bool { return members[i].ExternalUserID < members[j].ExternalUserID })
	var info []map[string]any
	for _, m := range members {
		status := "Disagree"
		if m.Agree {
			status = "Agree"
		}
		// WeCom spells the field "exteranalopenid".
		info = append(info, map[string]any{"status_change_time": m.At.Unix(), "exteranalopenid": m.ExternalUserID, "agree_status": status})
	}
	answer(w, 0, "ok", map[string]any{"agreeinfo": info})
}

// KFCallback is the XML of a kf_msg_or_event callback on the app.
func KFCallback(corpID, token, openKFID string, at time.Time) []byte {
	return []byte(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event><Token><![CDATA[%s]]></Token><OpenKfId><![CDATA[%s]]></OpenKfId></xml>",
		corpID, at.Unix(), token, openKFID))
}
