// Package playground is a local stand-in for a chat platform: an HTTP JSON API
// and a small web page where anyone can act as a resident in a group, as an
// officer on the phone (direct chat with the bot) or as a station admin, and
// watch the hub answer. It normalises posts into bot.Events exactly as a
// platform adapter does and delivers bot.Outbound into its transcripts, so
// end-to-end tests drive the real bus, handlers and store through it.
//
// Anyone who can post to the playground can speak as any officer or admin,
// so it is for trying the hub out, never beside a real platform (the config
// refuses that), and it defends itself against the browser it runs beside:
// it answers only requests whose Host names its own address (DNS
// rebinding), takes posts only as application/json from its own Origin
// (cross-site requests), and keeps bounded transcripts.
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
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/httpserver"
)

//go:embed static
var static embed.FS

//go:embed static/favicon.png
var faviconPNG []byte

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
	// Ticket is the number of the ticket a message of the bot is about, set
	// only in a staff member's direct chat and only for a ticket of their
	// station; Open says it still takes an answer. The page offers a reply
	// button on open tickets' lines and on no others, and takes it away
	// when a line says the ticket closed.
	Ticket int64 `json:"ticket,omitempty"`
	Open   bool  `json:"open,omitempty"`

	// Key identifies the message across the transcript and the record (the
	// outbound message's key, the inbound event's id), so a line read back
	// from the record is not shown twice.
	Key string `json:"-"`
	// TicketID is the ticket (row id) the bot's message is about.
	TicketID uint `json:"-"`
}

// Record is what the hub keeps of playground chats in its database, which
// outlives the adapter's in-memory transcripts: tickets survive a restart,
// and so does what was said about them.
type Record interface {
	// History is a chat's messages as recorded, oldest first: what the
	// bot sent there and the questions residents filed from it. Lines
	// carry Key, and the bot's lines TicketID; Seq is assigned here.
	History(ctx context.Context, chatType bot.ChatType, chatID string) ([]Line, error)
	// Tickets tells, of ticketIDs, those that user (a playground user id)
	// reaches with "#number ...": the tickets of the user's own station,
	// with their numbers and whether they still take an answer.
	Tickets(ctx context.Context, user string, ticketIDs []uint) (map[uint]TicketState, error)
}

// TicketState is a ticket as its viewer reaches it.
type TicketState struct {
	Number int64
	Open   bool
}

// Option changes how New builds the adapter.
type Option func(*Adapter)

// WithRecord reads each chat's history from r the first time the chat is
// used after start, and asks r which tickets a viewer may answer.
func WithRecord(r Record) Option { return func(a *Adapter) { a.record = r } }

// historyWait bounds reading a chat's history; past it the chat starts
// empty, as it did before the hub kept a record.
const historyWait = 5 * time.Second

// Adapter is the playground platform.
type Adapter struct {
	pub     bot.Publisher
	catalog Catalog
	log     *slog.Logger
	record  Record // nil: transcripts start empty

	// loading serialises reading chats' history, so a chat's first line
	// waits until the lines before it are in.
	loading sync.Mutex

	mu    sync.Mutex
	seq   int64
	chats map[string]*transcript // chat key → its last MaxLines lines
	bytes int                    // lineBytes of every line kept
	wake  chan struct{}
	// stopping ends long-polls when the server shuts down, so shutdown does
	// not wait for open pages.
	stopping chan struct{}
	stopOnce sync.Once
}

var _ bot.Sender = (*Adapter)(nil)

// MaxChats, MaxLines and MaxBytes bound the playground's memory: at most
// MaxChats transcripts are kept (the one with the oldest last message is
// dropped for a new one), the last MaxLines lines of each, and MaxBytes of
// lines in all (the oldest lines go first); every line's text is at most
// bot.MaxTextRunes. The playground is for trying things out; the counts
// leave room for the end-to-end tests that use it as a platform.
const (
	MaxChats = 1000
	MaxLines = 2000
	MaxBytes = 32 << 20
)

// transcript is one chat's lines; last is the seq of its newest line.
// loaded says its history was read from the record.
type transcript struct {
	lines  []Line
	last   int64
	bytes  int
	loaded bool
}

// lineBytes is what a line is counted as against MaxBytes.
func lineBytes(l Line) int {
	return 96 + len(l.From) + len(l.FromName) + len(l.Text) + len(l.Format) + 16*len(l.At)
}

// maxBody bounds a posted message; text past bot.MaxTextRunes is cut by the hub.
const maxBody = 64 << 10

// New returns an adapter publishing to pub.
func New(pub bot.Publisher, catalog Catalog, log *slog.Logger, opts ...Option) *Adapter {
	if log == nil {
		log = slog.Default()
	}
	a := &Adapter{pub: pub, catalog: catalog, log: log, chats: map[string]*transcript{}, wake: make(chan struct{}), stopping: make(chan struct{})}
	for _, o := range opts {
		o(a)
	}
	return a
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
	text, names := bot.ExtractMentions(bot.CleanText(p.Text))
	e := &bot.Event{
		ID: bot.NewEventID(bot.Playground, p.MessageID), Platform: bot.Playground, MessageID: p.MessageID,
		Chat:   bot.ChatRef{Platform: bot.Playground, ID: p.ChatID, Type: p.ChatType},
		Sender: bot.User{ID: p.SenderID, Name: bot.CleanText(p.Sender)},
		Kind:   p.Kind, Text: text, Time: now.UTC(),
		AddressedToBot: p.ChatType == bot.Direct,
		// The playground hands the hub every message of a group, @ or not.
		SeesAllMessages: p.ChatType == bot.Group,
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
//	POST /api/messages             post as someone (Post), application/json only
//	GET  /api/chats/{type}/{id}    transcript; ?after=seq, ?wait=seconds long-polls
//	GET  /favicon.ico              the icon
//
// Every request must name the playground's own address in Host (the
// address it was reached on, or localhost, 127.0.0.1 or [::1] with its
// port), and carry no Origin or that same one; otherwise it is 403.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	page, _ := fs.Sub(static, "static") // a fixed, valid path: cannot fail
	mux.Handle("GET /", http.FileServerFS(page))
	mux.HandleFunc("GET /api/catalog", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, a.catalog) })
	mux.HandleFunc("POST /api/messages", a.postMessage)
	mux.HandleFunc("GET /api/chats/{type}/{id}", a.transcript)
	mux.HandleFunc("GET /favicon.ico", favicon)
	return sameOrigin(mux)
}

// sameOrigin refuses requests a web page elsewhere could make a browser
// send: a Host that is not the playground's own address (a name rebound to
// 127.0.0.1 by an attacker's DNS), and an Origin that is not the
// playground's own page.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ownHost(r.Host, local) {
			writeError(w, http.StatusForbidden, "Host "+strconv.Quote(clip(r.Host, 100))+" is not this playground's address: open it as http://127.0.0.1:PORT/ or http://localhost:PORT/")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || u.Scheme != "http" || u.Path != "" || !ownHost(u.Host, local) {
				writeError(w, http.StatusForbidden, "Origin "+strconv.Quote(clip(origin, 100))+" is not this playground's page")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ownHost reports whether host (a Host header or an Origin's host) names
// the address the request came in on: that address itself, or a loopback
// name with its port.
func ownHost(host string, local net.Addr) bool {
	tcp, ok := local.(*net.TCPAddr)
	if !ok || host == "" {
		return false
	}
	port := strconv.Itoa(tcp.Port)
	h, p, err := net.SplitHostPort(host)
	if err != nil { // no port: only right on port 80
		h, p = strings.Trim(host, "[]"), "80"
	}
	if p != port {
		return false
	}
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.Equal(tcp.IP) && !tcp.IP.IsUnspecified()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return bot.Truncate(s, n)
}

func (a *Adapter) postMessage(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		// A form or text/plain post is what a page elsewhere can send
		// without asking; application/json it cannot.
		writeError(w, http.StatusUnsupportedMediaType, "post messages as Content-Type: application/json")
		return
	}
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
	// Before the hub hears of it: the chat's history must be in first, and
	// without the ticket this message may file.
	a.loadHistory(r.Context(), e.Chat.Type, e.Chat.ID)
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
	seq := a.append(chatKey(e.Chat.Type, e.Chat.ID), Line{From: p.SenderID, FromName: bot.CleanText(name), Text: bot.Truncate(bot.CleanText(p.Text), bot.MaxTextRunes), Key: e.ID})
	writeJSON(w, http.StatusAccepted, map[string]any{"event_id": e.ID, "seq": seq})
}

func (a *Adapter) transcript(w http.ResponseWriter, r *http.Request) {
	t := bot.ChatType(r.PathValue("type"))
	if t != bot.Group && t != bot.Direct {
		writeError(w, http.StatusBadRequest, "chat type must be group or direct")
		return
	}
	id := r.PathValue("id")
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	deadline := time.Now().Add(time.Duration(min(max(wait, 0), 30)) * time.Second)
	a.loadHistory(r.Context(), t, id)
	key := chatKey(t, id)
	for {
		a.mu.Lock()
		var out []Line
		var lines []Line
		if c := a.chats[key]; c != nil {
			lines = c.lines
		}
		for _, l := range lines {
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
			if t == bot.Direct {
				a.markTickets(r.Context(), id, out)
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

// loadHistory reads a chat's history from the record the first time the
// chat is used (shown, posted to or sent to), so its transcript starts with
// what it showed before a restart. A chat's lines are appended only after
// this, so what was read comes before them; a line both read back and in
// memory (a message sent while reading) is kept once. Without the record,
// or when it cannot be read, the chat starts empty.
func (a *Adapter) loadHistory(ctx context.Context, t bot.ChatType, id string) {
	if a.record == nil {
		return
	}
	key := chatKey(t, id)
	loaded := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		c := a.chats[key]
		return c != nil && c.loaded
	}
	if loaded() {
		return
	}
	a.loading.Lock()
	defer a.loading.Unlock()
	if loaded() {
		return
	}
	// A page that went away mid-read must not leave the chat without its
	// history: the read finishes on its own clock.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), historyWait)
	defer cancel()
	lines, err := a.record.History(ctx, t, id)
	if err != nil {
		// No chat id: a direct chat's id is a resident's account.
		a.log.Warn("playground: cannot read a chat's history; it starts empty", "chat_type", string(t), "err", err)
		lines = nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	if c := a.chats[key]; c != nil {
		for _, l := range c.lines {
			seen[l.Key] = true
		}
	}
	for _, l := range lines {
		if l.Key != "" && seen[l.Key] {
			continue
		}
		a.appendLocked(key, l)
	}
	c := a.chats[key]
	if c == nil {
		c = a.newTranscript(key)
	}
	c.loaded = true
}

func (a *Adapter) append(key string, l Line) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.appendLocked(key, l)
}

// newTranscript adds an empty transcript, dropping the oldest when there
// are MaxChats.
func (a *Adapter) newTranscript(key string) *transcript {
	if len(a.chats) >= MaxChats {
		a.dropOldestChat()
	}
	c := &transcript{}
	a.chats[key] = c
	return c
}

func (a *Adapter) appendLocked(key string, l Line) int64 {
	a.seq++
	l.Seq = a.seq
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	c := a.chats[key]
	if c == nil {
		c = a.newTranscript(key)
	}
	c.lines = append(c.lines, l)
	c.bytes += lineBytes(l)
	a.bytes += lineBytes(l)
	if len(c.lines) > MaxLines {
		for _, old := range c.lines[:len(c.lines)-MaxLines] {
			c.bytes -= lineBytes(old)
			a.bytes -= lineBytes(old)
		}
		c.lines = append([]Line(nil), c.lines[len(c.lines)-MaxLines:]...)
	}
	c.last = l.Seq
	for a.bytes > MaxBytes {
		a.dropOldestLine()
	}
	close(a.wake)
	a.wake = make(chan struct{})
	return l.Seq
}

// dropOldestChat forgets the transcript whose last line is oldest.
func (a *Adapter) dropOldestChat() {
	oldest, at := "", int64(0)
	for k, c := range a.chats {
		if oldest == "" || c.last < at {
			oldest, at = k, c.last
		}
	}
	a.bytes -= a.chats[oldest].bytes
	delete(a.chats, oldest)
}

// dropOldestLine forgets the oldest line kept, in whichever chat it is.
func (a *Adapter) dropOldestLine() {
	oldest, at := "", int64(0)
	for k, c := range a.chats {
		if len(c.lines) > 0 && (oldest == "" || c.lines[0].Seq < at) {
			oldest, at = k, c.lines[0].Seq
		}
	}
	c := a.chats[oldest]
	if c == nil {
		a.bytes = 0 // nothing left to drop
		return
	}
	n := lineBytes(c.lines[0])
	c.bytes -= n
	a.bytes -= n
	c.lines[0] = Line{}
	c.lines = c.lines[1:]
	if len(c.lines) == 0 {
		delete(a.chats, oldest)
	}
}

// Send delivers an outbound message into a transcript.
func (a *Adapter) Send(ctx context.Context, o *bot.Outbound) error {
	_, err := a.SendReceipt(ctx, o)
	return err
}

// SendReceipt is Send, returning the line's sequence number as the
// message id.
func (a *Adapter) SendReceipt(ctx context.Context, o *bot.Outbound) (string, error) {
	t, id := bot.Direct, o.ToUser
	if o.Chat != nil {
		if o.Chat.Platform != bot.Playground {
			return "", bot.Permanent(fmt.Errorf("playground cannot deliver to a %s chat", o.Chat.Platform))
		}
		t, id = o.Chat.Type, o.Chat.ID
	}
	a.loadHistory(ctx, t, id)
	seq := a.append(chatKey(t, id), Line{From: "bot", FromName: BotName, Bot: true, Text: bot.Truncate(o.Text, bot.MaxTextRunes), Format: string(o.Format), At: o.AtUsers,
		Key: o.Key, TicketID: o.Ref.TicketID})
	return strconv.FormatInt(seq, 10), nil
}

// markTickets sets Ticket and Open on the bot's lines in user's direct
// chat that are about a ticket of user's station. Without a record, or
// when it cannot tell, no line offers a reply.
func (a *Adapter) markTickets(ctx context.Context, user string, lines []Line) {
	if a.record == nil {
		return
	}
	var ids []uint
	for _, l := range lines {
		if l.Bot && l.TicketID != 0 {
			ids = append(ids, l.TicketID)
		}
	}
	if len(ids) == 0 {
		return
	}
	tickets, err := a.record.Tickets(ctx, user, ids)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("playground: cannot tell which tickets a viewer may answer", "err", err)
		}
		return
	}
	for i := range lines {
		if tk, ok := tickets[lines[i].TicketID]; ok && lines[i].Bot {
			lines[i].Ticket, lines[i].Open = tk.Number, tk.Open
		}
	}
}

// favicon is the page's icon at the address browsers ask for unprompted.
func favicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write(faviconPNG)
}

var _ bot.ReceiptSender = (*Adapter)(nil)

// Lines returns a copy of a transcript (tests and the bench read it).
func (a *Adapter) Lines(t bot.ChatType, id string) []Line {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.chats[chatKey(t, id)]
	if c == nil {
		return nil
	}
	return append([]Line(nil), c.lines...)
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

// NewServer serves the playground on ln, bounded like every hub server,
// ending open long-polls when it shuts down. A listener on anything but a
// loopback address is logged as a warning: whoever reaches the port can
// post as any officer or admin.
func (a *Adapter) NewServer(ln net.Listener) *httpserver.Server {
	if !Loopback(ln.Addr()) {
		a.log.Warn("PLAYGROUND LISTENS BEYOND THIS HOST: anyone who reaches "+ln.Addr().String()+
			" can post as any officer or admin; bind it to 127.0.0.1 unless this is a throwaway demo",
			"addr", ln.Addr().String())
	}
	return httpserver.New(ln, a.Handler(), a.log, httpserver.Options{
		Name: "playground", BodyLimit: maxBody, MaxConns: 128, OnShutdown: []func(){a.Stop},
	})
}

// Loopback reports whether addr is on a loopback interface only.
func Loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
