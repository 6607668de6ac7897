package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

// at is a time in Asia/Shanghai: at("2026-11-23 10:00").
func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

// testHub is a whole hub (SQLite in a temp dir, in-memory bus, rules,
// playground on a free loopback port) as `jingmin serve` wires it.
type testHub struct {
	*hub
	URL   string
	Clock *bottest.Clock
	Logs  *bottest.LogBuffer
	// Stop shuts the hub down as SIGTERM would; cleanup calls it anyway.
	Stop func()
	t    *testing.T
}

// startHub runs the example config (or cfg when non-nil) with the clock at start.
func startHub(t *testing.T, cfg *configs.Config, start time.Time, opts ...func(*hubOptions)) *testHub {
	t.Helper()
	return startHubOn(t, cfg, start, filepath.Join(t.TempDir(), "hub.db"), opts...)
}

// startHubOn is startHub on a given SQLite file, so a test can restart the hub.
// opts add platform adapters (hubOptions.adapters) or senders.
func startHubOn(t *testing.T, cfg *configs.Config, start time.Time, dbPath string, opts ...func(*hubOptions)) *testHub {
	t.Helper()
	if cfg == nil {
		var err error
		if cfg, err = configs.Load(""); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Database.Driver = "sqlite"
	cfg.Database.DSN = dbPath
	cfg.Playground.Enabled = true
	cfg.Hub.TimerSeconds = 3600 // tests call Tick themselves
	clock := bottest.NewClock(start)
	logs := &bottest.LogBuffer{}
	log := slog.New(bot.NewMaskingHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	ho := hubOptions{now: clock.Now}
	for _, o := range opts {
		o(&ho)
	}
	h, err := openHub(ctx, cfg, log, ho)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("hub stopped with %v", err)
			}
			h.Close()
		})
	}
	t.Cleanup(stop)
	return &testHub{hub: h, URL: "http://" + ln.Addr().String(), Clock: clock, Logs: logs, t: t, Stop: stop}
}

// post sends a message through the playground API and returns the HTTP status.
func (h *testHub) post(p playground.Post) int {
	h.t.Helper()
	body, _ := json.Marshal(p)
	resp, err := http.Post(h.URL+"/api/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// say posts as a resident into a group.
func (h *testHub) say(group, residentID, name, text string) {
	h.t.Helper()
	if code := h.post(playground.Post{ChatID: group, ChatType: bot.Group, SenderID: residentID, Sender: name, Text: text}); code != http.StatusAccepted {
		h.t.Fatalf("post to %s: HTTP %d", group, code)
	}
}

// dm posts as a user in their direct chat with the bot.
func (h *testHub) dm(userID, text string) {
	h.t.Helper()
	if code := h.post(playground.Post{ChatType: bot.Direct, SenderID: userID, Text: text}); code != http.StatusAccepted {
		h.t.Fatalf("dm from %s: HTTP %d", userID, code)
	}
}

// settle waits until the bus is empty: every event handled, every reply sent.
func (h *testHub) settle() {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if h.pending(context.Background()) == 0 && h.unsent() == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatal("bus did not settle within 15s")
}

// unsent counts outbound rows not yet settled.
func (h *testHub) unsent() int64 {
	h.t.Helper()
	n, err := h.store.OutboundStates(context.Background(), "")
	if err != nil {
		h.t.Fatal(err)
	}
	return n[store.OutboundPending] + n[store.OutboundSending]
}

// botLines are the bot's messages in a chat, in order.
func (h *testHub) botLines(t bot.ChatType, id string) []playground.Line {
	var out []playground.Line
	for _, l := range h.playground.Lines(t, id) {
		if l.Bot {
			out = append(out, l)
		}
	}
	return out
}

// lastBot is the bot's latest message in a chat, failing if there is none.
func (h *testHub) lastBot(t bot.ChatType, id string) playground.Line {
	h.t.Helper()
	lines := h.botLines(t, id)
	if len(lines) == 0 {
		h.t.Fatalf("no bot message in %s %s", t, id)
	}
	return lines[len(lines)-1]
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want it to contain %q", what, got, w)
		}
	}
}

func ticketNumber(t *testing.T, text string) int {
	t.Helper()
	var n int
	i := strings.Index(text, "#")
	if i < 0 {
		t.Fatalf("no ticket number in %q", text)
	}
	fmt.Sscanf(text[i+1:], "%d", &n)
	return n
}
