package wecomtest

import (
	"fmt"
	"net/http"
	"sort"
)

// MassSend is one customer-group mass-send task (add_msg_template): the
// owner (sender) must confirm it in WeCom before any group gets it.
type MassSend struct {
	MsgID   string
	Sender  string
	ChatIDs []string
	Text    string
	// Sent is when the owner confirmed (unix seconds), 0 while unconfirmed.
	Sent int64
	// Refused are groups that will not get it, with WeCom's status
	// (3: the group got another mass send today).
	Refused map[string]int
	// Cancelled: the task was stopped (cancel_groupmsg_send) before the
	// owner sent it; the owner can no longer send it.
	Cancelled bool
}

type massState struct {
	tasks []*MassSend
	// lastDay is the day (yyyy-mm-dd, the stand-in's clock) each group last
	// received a mass send: one a day per group.
	lastDay map[string]string
}

func (s *Server) routeMassSend(mux *http.ServeMux) {
	mux.HandleFunc("POST /cgi-bin/externalcontact/add_msg_template", s.addMsgTemplate)
	mux.HandleFunc("POST /cgi-bin/externalcontact/get_groupmsg_task", s.getGroupMsgTask)
	mux.HandleFunc("POST /cgi-bin/externalcontact/get_groupmsg_send_result", s.getGroupMsgSendResult)
	mux.HandleFunc("POST /cgi-bin/externalcontact/cancel_groupmsg_send", s.cancelGroupMsgSend)
}

// MassSends lists the tasks created so far, in order.
func (s *Server) MassSends() []MassSend {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	var out []MassSend
	for _, t := range s.ext.mass.tasks {
		c := *t
		c.ChatIDs = append([]string(nil), t.ChatIDs...)
		out = append(out, c)
	}
	return out
}

// Confirm plays the owner tapping "send" in WeCom on every task waiting for
// them (a stopped task is no longer there to send): each group gets it, but for groups that had a mass send the same day.
// It reports how many tasks it confirmed.
func (s *Server) Confirm(sender string) int {
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	day := now.Format("2006-01-02")
	n := 0
	for _, t := range x.mass.tasks {
		if t.Sender != sender || t.Sent != 0 || t.Cancelled {
			continue
		}
		t.Sent = now.Unix()
		t.Refused = map[string]int{}
		for _, c := range t.ChatIDs {
			if x.mass.lastDay[c] == day {
				t.Refused[c] = 3
				continue
			}
			x.mass.lastDay[c] = day
		}
		n++
	}
	return n
}

func (s *Server) addMsgTemplate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ChatType   string   `json:"chat_type"`
		Sender     string   `json:"sender"`
		ChatIDList []string `json:"chat_id_list"`
		Text       struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	switch {
	case req.ChatType != "group":
		answer(w, 41063, "chat_type must be group for customer groups", nil)
		return
	case req.Sender == "":
		answer(w, 41048, "sender required for a group mass send", nil)
		return
	case req.Text.Content == "":
		answer(w, 41049, "empty content", nil)
		return
	}
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	id := fmt.Sprintf("msgGROUP%d", len(x.mass.tasks)+1)
	x.mass.tasks = append(x.mass.tasks, &MassSend{MsgID: id, Sender: req.Sender, ChatIDs: append([]string(nil), req.ChatIDList...), Text: req.Text.Content})
	answer(w, 0, "ok", map[string]any{"fail_list": []string{}, "msgid": id})
}

func (x *ext) task(id string) *MassSend {
	for _, t := range x.mass.tasks {
		if t.MsgID == id {
			return t
		}
	}
	return nil
}

func (s *Server) getGroupMsgTask(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MsgID string `json:"msgid"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.task(req.MsgID)
	if t == nil {
		answer(w, 41054, "invalid msgid", nil)
		return
	}
	status := 0 // 0: not sent yet; 2: sent
	if t.Sent != 0 {
		status = 2
	}
	answer(w, 0, "ok", map[string]any{"next_cursor": "", "task_list": []map[string]any{{"userid": t.Sender, "status": status, "send_time": t.Sent}}})
}

func (s *Server) getGroupMsgSendResult(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MsgID  string `json:"msgid"`
		UserID string `json:"userid"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.task(req.MsgID)
	if t == nil || t.Sender != req.UserID {
		answer(w, 41054, "invalid msgid or userid", nil)
		return
	}
	chats := append([]string(nil), t.ChatIDs...)
	sort.Strings(chats)
	var list []map[string]any
	for _, c := range chats {
		status, at := 0, int64(0) // 0: not sent; 1: sent; 3: refused, another mass send today
		if t.Sent != 0 {
			status, at = 1, t.Sent
			if code, ok := t.Refused[c]; ok {
				status, at = code, 0
			}
		}
		list = append(list, map[string]any{"chat_id": c, "userid": t.Sender, "status": status, "send_time": at})
	}
	answer(w, 0, "ok", map[string]any{"next_cursor": "", "send_list": list})
}

// MassSentToday records that a group got a mass send today from elsewhere
// (another app, the owner by hand): WeCom refuses it another one today.
func (s *Server) MassSentToday(chatID string) {
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mass.lastDay[chatID] = x.now().Format("2006-01-02")
}

// cancelGroupMsgSend stops a task: WeCom refuses one already sent
// (41055 here: "the task was sent, it cannot be stopped").
func (s *Server) cancelGroupMsgSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MsgID string `json:"msgid"`
	}
	if !s.readExt(w, r, &req) {
		return
	}
	x := s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.task(req.MsgID)
	switch {
	case t == nil:
		answer(w, 41054, "invalid msgid", nil)
	case t.Sent != 0:
		answer(w, 41055, "the task was sent and cannot be cancelled", nil)
	default:
		t.Cancelled = true
		answer(w, 0, "ok", nil)
	}
}
