package playground

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// record is a hub's record of two chats: the group hexie (a question and
// its acknowledgement) and wang's direct chat (two tickets' DMs and the
// help text). Tickets 5 (#1, open) and 6 (#2, closed) are wang's station's.
type record struct {
	mu    sync.Mutex
	reads map[string]int
	fail  bool
}

func (r *record) History(_ context.Context, t bot.ChatType, id string) ([]Line, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads[string(t)+":"+id]++
	if r.fail {
		return nil, errors.New("database is down")
	}
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	switch {
	case t == bot.Group && id == "hexie":
		return []Line{
			{From: "res-1", FromName: "刘阿姨", Text: "楼道有焦味", Time: at, Key: "ev1"},
			{From: "bot", FromName: BotName, Bot: true, Text: "收到，已登记为工单 #1", Time: at, Key: "ack1", TicketID: 5},
		}, nil
	case t == bot.Direct && id == "wang":
		return []Line{
			{From: "bot", FromName: BotName, Bot: true, Format: "markdown", Text: "### 新工单 #1", Time: at, Key: "dm1", TicketID: 5},
			{From: "bot", FromName: BotName, Bot: true, Format: "markdown", Text: "### 新工单 #2", Time: at, Key: "dm2", TicketID: 6},
			{From: "bot", FromName: BotName, Bot: true, Text: "可用指令：#123 claim", Time: at, Key: "help"},
		}, nil
	}
	return nil, nil
}

func (r *record) Tickets(_ context.Context, user string, ids []uint) (map[uint]TicketState, error) {
	if user != "wang" {
		return nil, nil
	}
	out := map[uint]TicketState{}
	for _, id := range ids {
		switch id {
		case 5:
			out[id] = TicketState{Number: 1, Open: true}
		case 6:
			out[id] = TicketState{Number: 2}
		}
	}
	return out, nil
}

func (r *record) readsOf(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[key]
}

func (rg *rig) lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	code, body := rg.do(t, "GET", path, rg.addr, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", path, code, body)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return out
}

func texts(lines []map[string]any) string {
	var b []string
	for _, l := range lines {
		b = append(b, l["text"].(string))
	}
	return strings.Join(b, " | ")
}

// A chat's first use (a post, a message sent, the page opening it) reads
// its history from the record once; what is said afterwards follows it.
func TestPlaygroundHistoryComesFirstAndIsReadOnce(t *testing.T) {
	rec := &record{reads: map[string]int{}}
	r := startRigWith(t, rec)
	// A post before anyone looked: the history still comes first.
	if code, body := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", "application/json"); code != http.StatusAccepted {
		t.Fatalf("post: HTTP %d %s", code, body)
	}
	r.a.Send(context.Background(), &bot.Outbound{Key: "ack2", Chat: &bot.ChatRef{Platform: bot.Playground, Type: bot.Group, ID: "hexie"}, Text: "收到，已登记为工单 #2", Ref: bot.Ref{TicketID: 7}})
	got := r.lines(t, "/api/chats/group/hexie")
	if want := "楼道有焦味 | 收到，已登记为工单 #1 | @社区警务助手 楼道有焦味 | 收到，已登记为工单 #2"; texts(got) != want {
		t.Errorf("transcript = %s\nwant %s", texts(got), want)
	}
	for i := 1; i < len(got); i++ {
		if got[i]["seq"].(float64) <= got[i-1]["seq"].(float64) {
			t.Errorf("seq does not rise: %v", got)
		}
	}
	for _, l := range got {
		if _, ok := l["ticket"]; ok {
			t.Errorf("a group line offers a reply: %v", l)
		}
	}
	r.lines(t, "/api/chats/group/hexie")
	if n := rec.readsOf("group:hexie"); n != 1 {
		t.Errorf("history of hexie read %d times, want once", n)
	}
	// A message sent to a direct chat nobody opened yet also follows its history.
	r.a.Send(context.Background(), &bot.Outbound{Key: "closed", ToUser: "wang", Text: "工单 #2 已办结。", Ref: bot.Ref{TicketID: 6}})
	if want := "### 新工单 #1 | ### 新工单 #2 | 可用指令：#123 claim | 工单 #2 已办结。"; texts(r.lines(t, "/api/chats/direct/wang")) != want {
		t.Errorf("wang's transcript = %s\nwant %s", texts(r.lines(t, "/api/chats/direct/wang")), want)
	}
}

// Only lines about a ticket of the viewer's station carry its number, and
// only an open one's say open.
func TestPlaygroundOnlyOwnTicketsLinesCarryTheirTicket(t *testing.T) {
	r := startRigWith(t, &record{reads: map[string]int{}})
	var marked []string
	for _, l := range r.lines(t, "/api/chats/direct/wang") {
		if n, ok := l["ticket"]; ok {
			marked = append(marked, fmt.Sprintf("%v %v %v", l["text"], n, l["open"]))
		}
	}
	if want := []string{"### 新工单 #1 1 true", "### 新工单 #2 2 <nil>"}; !slices.Equal(marked, want) {
		t.Errorf("lines with a ticket: %q, want %q (not the help text)", marked, want)
	}
	// Someone else's view of the same kind of chat: nothing to answer.
	for _, l := range r.lines(t, "/api/chats/direct/res-1") {
		if _, ok := l["ticket"]; ok {
			t.Errorf("a resident's line carries a ticket: %v", l)
		}
	}
}

// A record that cannot be read leaves the chat empty, and working.
func TestPlaygroundUnreadableHistoryStartsEmpty(t *testing.T) {
	r := startRigWith(t, &record{reads: map[string]int{}, fail: true})
	if got := r.lines(t, "/api/chats/group/hexie"); len(got) != 0 {
		t.Errorf("transcript = %v, want empty", got)
	}
	if code, _ := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", "application/json"); code != http.StatusAccepted {
		t.Fatalf("post: HTTP %d", code)
	}
	if got := r.lines(t, "/api/chats/group/hexie"); texts(got) != "@社区警务助手 楼道有焦味" {
		t.Errorf("transcript = %s, want the post", texts(got))
	}
	if !strings.Contains(r.logs.String(), "cannot read a chat's history") {
		t.Errorf("no warning logged:\n%s", r.logs.String())
	}
}

// Browsers ask for /favicon.ico unprompted.
func TestPlaygroundFavicon(t *testing.T) {
	r := startRig(t, "127.0.0.1:0")
	code, body := r.do(t, "GET", "/favicon.ico", r.addr, "")
	if code != http.StatusOK || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("GET /favicon.ico: HTTP %d, %d bytes, want 200 and a PNG", code, len(body))
	}
}
