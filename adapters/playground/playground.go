// Package playground is a local stand-in for a chat platform: an HTTP JSON API
// and a small web page where anyone can act as a resident in a group, as an
// officer on the phone (direct chat with the bot) or as a station admin, and
// watch the hub answer. It normalises posts into bot.Events exactly as a
// platform adapter does and delivers bot.Outbound into its transcripts, so
// end-to-end tests drive the real bus, handlers and store through it.
package playground

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

//go:embed static
var static embed.FS

// BotName is how the bot appears in playground chats; "@社区警务助手" (or
// "@bot") addresses it.
const BotName = "社区警务助手"

// Chat is a conversation the page lists.
type Chat struct {
	ID   string       `json:"id"`
	Type bot.ChatType `json:"type"`
	Name string       `json:"name"`
}

// Persona is someone the page lets you act as.
type Persona struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"` // empty: a resident
}

// Catalog is what the page offers: the configured groups and the staff.
type Catalog struct {
	Groups []Chat    `json:"groups"`
	Staff  []Persona `json:"staff"`
}

// Line is one message in a transcript.
type Line struct {
	Seq      int64     `json:"seq"`
	From     string    `json:"from"`
	FromName string    `json:"from_name"`
	Bot      bool      `json:"bot"`
	Text     string    `json:"text"`
	Format   string    `json:"format,omitempty"`
	At       []string  `json:"at,omitempty"`
	Time     time.Time `json:"time"`
}

// Adapter is the playground platform.
type Adapter struct {
	pub     bot.Publisher
	catalog Catalog
	log     *slog.Logger

	mu    sync.Mutex
	seq   int64
	chats map[string][]Line // chat key → lines
	wake  chan struct{}
	// stopping ends long-polls when the server shuts down, so shutdown does
	// not wait for open pages.
	stopping chan struct{}
	stopOnce sync.Once
}

var _ bot.Sender = (*Adapter)(nil)

// maxLines bounds each transcript; the playground is for trying things out.
const maxLines = 2000

// maxBody bounds a posted message; text past bot.MaxTextRunes is cut by the hub.
const maxBody = 64 << 10

// New returns an adapter publishing to pub.
func New(pub bot.Publisher, catalog Catalog, log *slog.Logger) *Adapter {
	if log == nil {
		log = slog.Default()
	}
	return &Adapter{pub: pub, catalog: catalog, log: log, chats: map[string][]Line{}, wake: make(chan struct{}), stopping: make(chan struct{})}
}

func chatKey(t bot.ChatType, id string) string { return string(t) + ":" + id }

// Post is the body of POST /api/messages.
type Post struct {
	ChatID   string       `json:"chat_id"`
	ChatType bot.ChatType `json:"chat_type"`
	SenderID string       `json:"sender_id"`
	Sender   string       `json:"sender_name"`
	Text     string       `json:"text"`
	// MessageID is optional; sending the same one twice is how a test plays a
	// platform redelivering a message.
	MessageID string `json:"message_id,omitempty"`
	// Kind "unsupported" plays a picture or voice message.
	Kind bot.Kind `json:"kind,omitempty"`
}

// Normalise turns a post into the event a platform adapter would publish.
func Normalise(p Post, now time.Time) (*bot.Event, error) {
	if p.ChatType == "" {
		p.ChatType = bot.Group
	}
	if p.ChatType == bot.Direct && p.ChatID == "" {
		p.ChatID = p.SenderID // one direct chat per user with the bot
	}
	if p.Kind == "" {
		p.Kind = bot.KindText
	}
	if p.Kind != bot.KindText && p.Kind != bot.KindUnsupported {
		return nil, fmt.Errorf("kind %q: want text or unsupported", p.Kind)
	}
	text, names := bot.ExtractMentions(p.Text)
	e := &bot.Event{
		ID: bot.NewEventID(bot.Playground, p.MessageID), Platform: bot.Playground, MessageID: p.MessageID,
		Chat:   bot.ChatRef{Platform: bot.Playground, ID: p.ChatID, Type: p.ChatType},
		Sender: bot.User{ID: p.SenderID, Name: p.Sender},
		Kind:   p.Kind, Text: text, Time: now.UTC(),
		AddressedToBot: p.ChatType == bot.Direct,
	}
	for _, n := range names {
		isBot := n == BotName || strings.EqualFold(n, "bot")
		e.Mentions = append(e.Mentions, bot.Mention{Name: n, IsBot: isBot})
		if isBot {
			e.AddressedToBot = true
		}
	}
	return e, e.Validate()
}

// Handler serves the page and the API:
//
//	GET  /                         the page
//	GET  /api/catalog              groups and staff
//	POST /api/messages             post as someone (Post)
//	GET  /api/chats/{type}/{id}    transcript; ?after=seq, ?wait=seconds long-polls
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	page, _ := fs.Sub(static, "static") // a fixed, valid path: cannot fail
	mux.Handle("GET /", http.FileServerFS(page))
	mux.HandleFunc("GET /api/catalog", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, a.catalog) })
	mux.HandleFunc("POST /api/messages", a.postMessage)
	mux.HandleFunc("GET /api/chats/{type}/{id}", a.transcript)
	return mux
}

func (a *Adapter) postMessage(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("message body over %d bytes", maxBody))
		return
	}
	var p Post
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, http.StatusBadRequest, "body is not a JSON message: "+err.Error())
		return
	}
	if p.MessageID == "" {
		p.MessageID = newID()
	}
	if strings.TrimSpace(p.SenderID) == "" {
		writeError(w, http.StatusBadRequest, "sender_id is required: say who is speaking")
		return
	}
	if p.ChatType == bot.Group && p.ChatID == "" {
		writeError(w, http.StatusBadRequest, "chat_id is required for a group message")
		return
	}
	e, err := Normalise(p, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Publish first: only a stored event is acknowledged, as with a platform.
	if err := bot.PublishEvent(r.Context(), a.pub, e); err != nil {
		a.log.Error("playground publish failed", "event", e.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the hub could not take the message now; send it again")
		return
	}
	name := p.Sender
	if name == "" {
		name = p.SenderID
	}
	seq := a.append(chatKey(e.Chat.Type, e.Chat.ID), Line{From: p.SenderID, FromName: name, Text: bot.Truncate(p.Text, bot.MaxTextRunes)})
	writeJSON(w, http.StatusAccepted, map[string]any{"event_id": e.ID, "seq": seq})
}

func (a *Adapter) transcript(w http.ResponseWriter, r *http.Request) {
	t := bot.ChatType(r.PathValue("type"))
	if t != bot.Group && t != bot.Direct {
		writeError(w, http.StatusBadRequest, "chat type must be group or direct")
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	deadline := time.Now().Add(time.Duration(min(max(wait, 0), 30)) * time.Second)
	key := chatKey(t, r.PathValue("id"))
	for {
		a.mu.Lock()
		var out []Line
		for _, l := range a.chats[key] {
			if l.Seq > after {
				out = append(out, l)
			}
		}
		wake := a.wake
		a.mu.Unlock()
		if len(out) > 0 || !time.Now().Before(deadline) {
			if out == nil {
				out = []Line{}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		select {
		case <-wake:
		case <-time.After(time.Until(deadline)):
		case <-a.stopping:
			deadline = time.Now() // answer with what there is
		case <-r.Context().Done():
			return
		}
	}
}

// Stop ends every open long-poll; pass it to http.Server.RegisterOnShutdown.
func (a *Adapter) Stop() { a.stopOnce.Do(func() { close(a.stopping) }) }

func (a *Adapter) append(key string, l Line) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	l.Seq = a.seq
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	lines := append(a.chats[key], l)
	if len(lines) > maxLines {
		lines = append([]Line(nil), lines[len(lines)-maxLines:]...)
	}
	a.chats[key] = lines
	close(a.wake)
	a.wake = make(chan struct{})
	return l.Seq
}

// Send delivers an outbound message into a transcript.
func (a *Adapter) Send(ctx context.Context, o *bot.Outbound) error {
	_, err := a.SendReceipt(ctx, o)
	return err
}

// SendReceipt is Send, returning the line's sequence number as the
// message id.
func (a *Adapter) SendReceipt(_ context.Context, o *bot.Outbound) (string, error) {
	key := chatKey(bot.Direct, o.ToUser)
	if o.Chat != nil {
		if o.Chat.Platform != bot.Playground {
			return "", bot.Permanent(fmt.Errorf("playground cannot deliver to a %s chat", o.Chat.Platform))
		}
		key = chatKey(o.Chat.Type, o.Chat.ID)
	}
	seq := a.append(key, Line{From: "bot", FromName: BotName, Bot: true, Text: o.Text, Format: string(o.Format), At: o.AtUsers})
	return strconv.FormatInt(seq, 10), nil
}

var _ bot.ReceiptSender = (*Adapter)(nil)

// Lines returns a copy of a transcript (tests and the bench read it).
func (a *Adapter) Lines(t bot.ChatType, id string) []Line {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Line(nil), a.chats[chatKey(t, id)]...)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
