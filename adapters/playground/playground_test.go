package playground

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
)

type rig struct {
	a    *Adapter
	addr string // 127.0.0.1:port
	port string
	logs *bottest.LogBuffer
}

func startRig(t *testing.T, listen string) *rig {
	t.Helper()
	return startRigOn(t, listen)
}

// startRigWith is startRig on loopback with a record of the chats.
func startRigWith(t *testing.T, r Record) *rig {
	t.Helper()
	return startRigOn(t, "127.0.0.1:0", WithRecord(r))
}

func startRigOn(t *testing.T, listen string, opts ...Option) *rig {
	t.Helper()
	bus := bot.NewMemoryBus(0)
	t.Cleanup(func() { bus.Close() })
	logs := &bottest.LogBuffer{}
	a := New(bus, Catalog{}, slog.New(slog.NewJSONHandler(logs, nil)), opts...)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := a.NewServer(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &rig{a: a, addr: "127.0.0.1:" + port, port: port, logs: logs}
}

// do sends a request to the playground with the given Host and headers.
func (r *rig) do(t *testing.T, method, path, host string, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const post = `{"chat_id":"hexie","sender_id":"res-1","sender_name":"刘阿姨","text":"@社区警务助手 楼道有焦味"}`

// TestOnlyItsOwnAddressIsServed: a page elsewhere cannot drive the
// playground through the browser: a rebound DNS name (a foreign Host) gets
// 403 for posts and for transcripts, as does a foreign Origin; the
// playground's own addresses work.
func TestOnlyItsOwnAddressIsServed(t *testing.T) {
	r := startRig(t, "127.0.0.1:0")
	json := []string{"Content-Type", "application/json"}
	for _, host := range []string{"127.0.0.1:" + r.port, "localhost:" + r.port, "LOCALHOST:" + r.port} {
		if code, body := r.do(t, "POST", "/api/messages", host, post, json...); code != http.StatusAccepted {
			t.Errorf("post with Host %s: HTTP %d %s, want 202", host, code, body)
		}
	}
	if code, _ := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", "application/json", "Origin", "http://localhost:"+r.port); code != http.StatusAccepted {
		t.Errorf("post from its own page: HTTP %d", code)
	}
	if code, body := r.do(t, "GET", "/api/chats/group/hexie", r.addr, ""); code != http.StatusOK || !strings.Contains(body, "楼道有焦味") {
		t.Errorf("transcript: HTTP %d %s", code, body)
	}
	before := len(r.a.Lines(bot.Group, "hexie"))
	for _, host := range []string{"evil.example:" + r.port, "evil.example", "127.0.0.1:1", "10.0.0.1:" + r.port} {
		if code, body := r.do(t, "POST", "/api/messages", host, post, json...); code != http.StatusForbidden || !strings.Contains(body, "error") {
			t.Errorf("post with Host %q: HTTP %d %s, want 403", host, code, body)
		}
		if code, body := r.do(t, "GET", "/api/chats/group/hexie", host, ""); code != http.StatusForbidden || strings.Contains(body, "楼道有焦味") {
			t.Errorf("transcript with Host %q: HTTP %d %s, want 403", host, code, body)
		}
	}
	for _, origin := range []string{"http://evil.example", "http://evil.example:" + r.port, "null", "https://127.0.0.1:" + r.port, "http://127.0.0.1:1"} {
		if code, _ := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", "application/json", "Origin", origin); code != http.StatusForbidden {
			t.Errorf("post from Origin %q: HTTP %d, want 403", origin, code)
		}
	}
	if n := len(r.a.Lines(bot.Group, "hexie")); n != before {
		t.Errorf("refused posts reached the transcript: %d lines, %d before", n, before)
	}
}

// TestPostsMustBeJSON: a form or text/plain post, which a page elsewhere
// may send without the browser asking, is refused with 415.
func TestPostsMustBeJSON(t *testing.T) {
	r := startRig(t, "127.0.0.1:0")
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		if code, body := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", ct); code != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/json") {
			t.Errorf("Content-Type %q: HTTP %d %s, want 415", ct, code, body)
		}
	}
	if code, _ := r.do(t, "POST", "/api/messages", r.addr, post, "Content-Type", "application/json; charset=utf-8"); code != http.StatusAccepted {
		t.Errorf("application/json; charset=utf-8: HTTP %d", code)
	}
	if n := len(r.a.Lines(bot.Group, "hexie")); n != 1 {
		t.Errorf("transcript has %d lines, want the one JSON post", n)
	}
}

// TestTranscriptsAreBounded: past MaxLines a chat keeps its newest lines,
// and past MaxChats the chat with the oldest last line is dropped.
func TestTranscriptsAreBounded(t *testing.T) {
	a := New(bot.NewMemoryBus(0), Catalog{}, nil)
	ctx := context.Background()
	for i := range MaxLines + 10 {
		a.Send(ctx, &bot.Outbound{Key: fmt.Sprint(i), Chat: &bot.ChatRef{Platform: bot.Playground, Type: bot.Group, ID: "busy"}, Text: fmt.Sprint("第", i, "条")})
	}
	lines := a.Lines(bot.Group, "busy")
	if len(lines) != MaxLines || lines[0].Text != "第10条" || lines[len(lines)-1].Text != fmt.Sprint("第", MaxLines+9, "条") {
		t.Errorf("busy chat kept %d lines from %q, want the last %d", len(lines), lines[0].Text, MaxLines)
	}
	for i := range MaxChats {
		a.Send(ctx, &bot.Outbound{Key: "c", Chat: &bot.ChatRef{Platform: bot.Playground, Type: bot.Group, ID: fmt.Sprint("g", i)}, Text: "hi"})
	}
	if a.Lines(bot.Group, "busy") != nil {
		t.Error("the chat with the oldest last line was kept past MaxChats")
	}
	if a.Lines(bot.Group, "g0") == nil || a.Lines(bot.Group, fmt.Sprint("g", MaxChats-1)) == nil {
		t.Error("a recent chat was dropped")
	}
	a.mu.Lock()
	n := len(a.chats)
	a.mu.Unlock()
	if n != MaxChats {
		t.Errorf("%d chats kept, want %d", n, MaxChats)
	}
	long := strings.Repeat("长", bot.MaxTextRunes*2)
	a.Send(ctx, &bot.Outbound{Key: "l", Chat: &bot.ChatRef{Platform: bot.Playground, Type: bot.Group, ID: "g1"}, Text: long})
	got := a.Lines(bot.Group, "g1")
	if l := got[len(got)-1].Text; len([]rune(l)) > bot.MaxTextRunes {
		t.Errorf("a line of %d characters kept", len([]rune(l)))
	}
}

// TestTranscriptsStayWithinMaxBytes: long messages in many chats keep the
// total under MaxBytes by dropping the oldest lines first.
func TestTranscriptsStayWithinMaxBytes(t *testing.T) {
	a := New(bot.NewMemoryBus(0), Catalog{}, nil)
	ctx := context.Background()
	long := strings.Repeat("长", bot.MaxTextRunes)
	per := lineBytes(Line{From: "bot", FromName: BotName, Text: long, Format: "text"})
	n := 2*MaxBytes/per + 10
	for i := range n {
		a.Send(ctx, &bot.Outbound{Key: "k", Chat: &bot.ChatRef{Platform: bot.Playground, Type: bot.Group, ID: fmt.Sprint("c", i%50)}, Text: long, Format: bot.FormatText})
	}
	total, kept := 0, 0
	a.mu.Lock()
	for _, c := range a.chats {
		for _, l := range c.lines {
			total += lineBytes(l)
			kept++
		}
	}
	counted := a.bytes
	a.mu.Unlock()
	if total > MaxBytes || total != counted {
		t.Errorf("%d bytes kept (counted %d), cap %d", total, counted, MaxBytes)
	}
	if kept < MaxBytes/per-1 {
		t.Errorf("only %d lines kept; the cap should hold about %d", kept, MaxBytes/per)
	}
	// The newest line is kept, the first ones are gone.
	last := a.Lines(bot.Group, fmt.Sprint("c", (n-1)%50))
	if len(last) == 0 || last[len(last)-1].Seq != int64(n) {
		t.Error("the newest line was dropped")
	}
	if first := a.Lines(bot.Group, "c0"); len(first) > 0 && first[0].Seq == 1 {
		t.Error("the oldest line was kept")
	}
}

// TestWarnsWhenListeningBeyondLoopback: the server says loudly when it is
// reachable from other hosts, and not when it is on loopback.
func TestWarnsWhenListeningBeyondLoopback(t *testing.T) {
	quiet := startRig(t, "127.0.0.1:0")
	if strings.Contains(quiet.logs.String(), "PLAYGROUND LISTENS BEYOND") {
		t.Errorf("warned on loopback: %s", quiet.logs.String())
	}
	loud := startRig(t, "0.0.0.0:0")
	if l := loud.logs.String(); !strings.Contains(l, "PLAYGROUND LISTENS BEYOND THIS HOST") || !strings.Contains(l, `"level":"WARN"`) {
		t.Errorf("no warning for 0.0.0.0: %s", l)
	}
	// Reached on loopback it still serves; a Host of the unspecified
	// address is not its own.
	if code, _ := loud.do(t, "POST", "/api/messages", loud.addr, post, "Content-Type", "application/json"); code != http.StatusAccepted {
		t.Errorf("post on loopback: HTTP %d", code)
	}
	if code, _ := loud.do(t, "POST", "/api/messages", "0.0.0.0:"+loud.port, post, "Content-Type", "application/json"); code != http.StatusForbidden {
		t.Errorf("post with Host 0.0.0.0: HTTP %d, want 403", code)
	}
}
