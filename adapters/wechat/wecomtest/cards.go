package wecomtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// CodeBadResponseCode is what the stand-in answers an update whose
// response_code is unknown, used already or for another card.
const CodeBadResponseCode = 40098

// Card is one template card (a task_id) as its recipients see it now.
type Card struct {
	TaskID     string
	Recipients []string
	// Latest is the template_card shown now; Replaced, once set, is the
	// one inactive line the buttons became.
	Latest   json.RawMessage
	Replaced string
	Updates  int
	// Sent is the template_card as first sent.
	Sent json.RawMessage
	// codes are the response_codes issued and not yet used.
	codes map[string]bool
}

// Buttons are the button texts the card shows now (none once replaced).
func (c Card) Buttons() []string {
	if c.Replaced != "" {
		return nil
	}
	var t struct {
		Buttons []struct {
			Text string `json:"text"`
			Key  string `json:"key"`
		} `json:"button_list"`
	}
	_ = json.Unmarshal(c.Latest, &t)
	var out []string
	for _, b := range t.Buttons {
		out = append(out, b.Text)
	}
	return out
}

// Key is the key of the button with text, "" if the card has none.
func (c Card) Key(text string) string {
	var t struct {
		Buttons []struct {
			Text string `json:"text"`
			Key  string `json:"key"`
		} `json:"button_list"`
	}
	_ = json.Unmarshal(c.Latest, &t)
	for _, b := range t.Buttons {
		if b.Text == text {
			return b.Key
		}
	}
	return ""
}

func (s *Server) newCode(c *Card) string {
	s.seq++
	code := fmt.Sprintf("rc-%d-%d", s.seq, time.Now().UnixNano())
	if c.codes == nil {
		c.codes = map[string]bool{}
	}
	c.codes[code] = true
	return code
}

func (s *Server) templateCardSend(w http.ResponseWriter, m wireMessage) {
	var t struct {
		CardType string `json:"card_type"`
		TaskID   string `json:"task_id"`
		Buttons  []struct {
			Text string `json:"text"`
			Key  string `json:"key"`
		} `json:"button_list"`
	}
	if err := json.Unmarshal(m.TemplateCard, &t); err != nil || t.CardType != "button_interaction" {
		answer(w, 40008, "invalid template_card", nil)
		return
	}
	if t.TaskID == "" || len(t.TaskID) > 128 || len(t.Buttons) == 0 || len(t.Buttons) > 6 {
		answer(w, 40058, "template_card needs a task_id and 1 to 6 buttons", nil)
		return
	}
	s.mu.Lock()
	if s.cards == nil {
		s.cards = map[string]*Card{}
	}
	if _, dup := s.cards[t.TaskID]; dup {
		s.mu.Unlock()
		answer(w, 40058, "task_id already used", nil)
		return
	}
	c := &Card{TaskID: t.TaskID, Recipients: strings.Split(m.ToUser, "|"), Latest: m.TemplateCard, Sent: m.TemplateCard}
	s.cards[t.TaskID] = c
	code := s.newCode(c)
	s.mu.Unlock()
	s.record(Message{Channel: "app", To: m.ToUser, MsgType: m.MsgType, Text: string(m.TemplateCard)})
	answer(w, 0, "ok", map[string]any{"invaliduser": "", "msgid": "m-card-" + t.TaskID, "response_code": code})
}

func (s *Server) updateTemplateCard(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40014, "invalid access_token", nil)
		return
	}
	var b struct {
		AtAll        int      `json:"atall"`
		UserIDs      []string `json:"userids"`
		ResponseCode string   `json:"response_code"`
		Button       *struct {
			ReplaceName string `json:"replace_name"`
		} `json:"button"`
		TemplateCard json.RawMessage `json:"template_card"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		answer(w, 40008, "invalid body", nil)
		return
	}
	if code := s.nextFailure("update_card"); code != 0 {
		answer(w, code, "scripted failure", nil)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *Card
	for _, card := range s.cards {
		if card.codes[b.ResponseCode] {
			c = card
		}
	}
	if c == nil {
		answer(w, CodeBadResponseCode, "invalid response_code", nil)
		return
	}
	if b.AtAll != 1 && len(b.UserIDs) == 0 {
		answer(w, 40058, "name the users to update or atall", nil)
		return
	}
	delete(c.codes, b.ResponseCode)
	switch {
	case b.Button != nil && b.Button.ReplaceName != "":
		c.Replaced = b.Button.ReplaceName
	case b.TemplateCard != nil:
		c.Latest, c.Replaced = b.TemplateCard, ""
	default:
		answer(w, 40058, "nothing to update", nil)
		return
	}
	c.Updates++
	answer(w, 0, "ok", map[string]any{"invaliduser": []string{}})
}

// CardsOf returns the template cards user received, as they look now.
func (s *Server) CardsOf(user string) []Card {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Card
	for _, c := range s.cards {
		if slices.Contains(c.Recipients, user) {
			cp := *c
			cp.codes = nil
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b Card) int { return strings.Compare(a.TaskID, b.TaskID) })
	return out
}

// CardByTask is one card as it looks now.
func (s *Server) CardByTask(taskID string) (Card, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cards[taskID]
	if !ok {
		return Card{}, false
	}
	cp := *c
	cp.codes = nil
	return cp, true
}

// Press is the decrypted XML of user pressing the button key on card
// taskID: a template_card_event with a fresh ResponseCode (valid for one
// update of that card), which Press returns too.
func (s *Server) Press(corpID, agentID, user, taskID, key string, at time.Time) (xml []byte, responseCode string) {
	s.mu.Lock()
	code := "rc-unknown-card"
	if c, ok := s.cards[taskID]; ok {
		code = s.newCode(c)
	}
	s.mu.Unlock()
	return []byte(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[%s]]></EventKey><TaskId><![CDATA[%s]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[%s]]></ResponseCode><AgentID>%s</AgentID></xml>",
		corpID, user, at.Unix(), key, taskID, code, agentID)), code
}
