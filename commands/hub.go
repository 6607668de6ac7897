// Package commands holds the hub's business rules: turning a resident's
// question into a ticket routed to the right officer, officers' replies and
// commands from their phones, emergencies, after-hours handling by the duty
// account, escalation timers, and statistics. It speaks only bot types and the
// store; platforms are the adapters' concern.
package commands

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
	"github.com/jingminhub/jingmin/store"
)

// Options tune the rules; zero values take the defaults from configs.
type Options struct {
	Location          *time.Location
	EmergencyKeywords []string
	// UrgentKeywords mark a question the resident says is urgent: its
	// answer clock starts at once even after hours.
	UrgentKeywords []string
	// QuestionsPerMinute caps one resident's new questions in one chat; 0 = no cap.
	QuestionsPerMinute int
	MaxTextRunes       int
	// ConsultationStation (a station code) answers residents who write to
	// the bot one-to-one; empty: they get directions instead of a ticket.
	ConsultationStation string
	// AlertLimits bound a broadcast's text per platform (what one group
	// message takes there); a platform not listed takes MaxTextRunes.
	AlertLimits map[bot.Platform]TextLimit
	// EscalationWindow gathers escalation notices to one person: the first
	// of a window is sent at once, the rest when it closes, as one digest
	// (0: DefaultEscalationWindow).
	EscalationWindow time.Duration
	// DutyOnFor is how long "值班 开" lasts with no end given and no
	// rostered shift now or starting within it (0: DefaultDutyOnFor).
	DutyOnFor time.Duration
	// CustomerGroupCap is how many mass sends one WeCom customer group
	// takes a day (0: DefaultCustomerGroupCap; negative: no cap).
	CustomerGroupCap int
	// OwnerRemindAfter is when a customer group's owner who has not sent a
	// broadcast's mass send is reminded (0: DefaultOwnerRemindAfter).
	OwnerRemindAfter time.Duration
	// AuditRetention is how long audit rows are kept (0: forever); the
	// retention job purges older ones.
	AuditRetention time.Duration
	// SwapApproval makes an accepted shift swap wait for a station admin's
	// approval; without it the colleague's acceptance puts it in force.
	SwapApproval bool
	// BroadcastSecondApproval makes an officer's confirmed broadcast wait
	// until another admin of its scope approves it (ApproveBroadcast).
	BroadcastSecondApproval bool
	// Now is the clock; tests and `roster who` set it.
	Now func() time.Time
	Log *slog.Logger
	// Observer hears what the rules did, for metrics; nil: nobody.
	Observer Observer
	// Waker nudges the relays after messages were committed; nil: the
	// relays find them by polling.
	Waker bot.Waker
	// Cards lists the platforms whose officers get tap-to-act cards (a
	// DingTalk app with a card template, a WeCom app); the others keep
	// markdown direct messages.
	Cards map[bot.Platform]bool
	// Budget says when a platform's API budget is spent: escalation
	// notices are then gathered longer (nil: never).
	Budget interface{ Spent(bot.Platform) bool }
	// ToolbarURL is the chat-toolbar page officers send prepared messages
	// into customer groups from; linked from their direct messages.
	ToolbarURL string
}

// Observer counts what the rules do. The hub's metrics implement it; the
// rules call it after the fact, never depending on it.
type Observer interface {
	// Routed: a new ticket went to reason (own_officer, mentioned, on_duty,
	// next_in_line, duty_account), emergency or not.
	Routed(reason string, emergency bool)
	// Escalated: an unanswered ticket moved up; level 1 is the SLA breach.
	Escalated(level int)
}

type noObserver struct{}

func (noObserver) Routed(string, bool) {}
func (noObserver) Escalated(int)       {}

// Hub holds the rules and what they need.
type Hub struct {
	store *store.Store
	opts  Options
	dir   atomic.Pointer[directory]

	throttleMu sync.Mutex
	recent     map[string]residentActivity
	swept      time.Time // when recent was last cleared of idle residents
	// digested caches, per officer id, the shift start whose digest is done
	// (the database has the truth; this spares a query per tick).
	digested sync.Map
	// remindedAt is the rules' minute (unix) owners were last looked for
	// reminders: the report loop polls far more often than that is worth.
	remindedAt atomic.Int64
}

// New builds the hub and loads its directory from the store.
func New(ctx context.Context, st *store.Store, opts Options) (*Hub, error) {
	if opts.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("load time zone: %w", err)
		}
		opts.Location = loc
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxTextRunes == 0 {
		opts.MaxTextRunes = bot.MaxTextRunes
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	h := &Hub{store: st, opts: opts, recent: map[string]residentActivity{}}
	if err := h.Reload(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// residentActivity is what the throttle knows of one resident in one chat:
// when they asked within the last minute, and their latest ticket (where a
// throttled message is kept). It lives in memory: after a restart the first
// questions simply are not throttled.
type residentActivity struct {
	asked      []time.Time
	lastTicket uint
	lastNumber int64
}

// Reload rebuilds the in-memory directory from the store.
func (h *Hub) Reload(ctx context.Context) error {
	// The version is read first: a change committed between the two reads
	// is in the directory and moves the version past the one kept, so the
	// next Refresh loads again rather than miss it.
	v, err := h.store.DirectoryVersion(ctx)
	if err != nil {
		return fmt.Errorf("reload directory: %w", err)
	}
	d, err := h.store.LoadDirectory(ctx)
	if err != nil {
		return fmt.Errorf("reload directory: %w", err)
	}
	dir := newDirectory(d)
	dir.version = v
	// Reloads run at once (an edit's, the refresh loop's): one that read
	// an older revision never replaces a newer view.
	for {
		cur := h.dir.Load()
		if cur != nil && cur.version > v {
			return nil
		}
		if h.dir.CompareAndSwap(cur, dir) {
			return nil
		}
	}
}

// Refresh reloads the directory if another process changed it since it
// was loaded: one read of the directory revision when nothing did. Every
// process runs it on a short interval, so an edit made anywhere (the
// console, a DM command handled by another worker, the CLI) routes
// everywhere without a restart.
func (h *Hub) Refresh(ctx context.Context) (bool, error) {
	v, err := h.store.DirectoryVersion(ctx)
	if err != nil {
		return false, err
	}
	if v == h.dir.Load().version {
		return false, nil
	}
	return true, h.Reload(ctx)
}

func (h *Hub) now() time.Time { return h.opts.Now() }

// Location is the zone the rules keep time in (a budget's month too).
func (h *Hub) Location() *time.Location { return h.opts.Location }

// Handler is the event handler for the whole hub: group questions, officers'
// direct messages, and everything else answered politely.
func (h *Hub) Handler() bot.Handler {
	mux := &bot.Mux{}
	mux.RouteFunc(bot.InChat(bot.Group), h.handleGroup)
	mux.RouteFunc(bot.InChat(bot.Direct), h.handleDirect)
	return mux
}

// render fills a template's {placeholders}.
func render(tmpl string, kv ...string) string {
	// One pass, like strings.Replacer (a value is never scanned again),
	// without building a replacer for every message.
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			break
		}
		name, found := tmpl[open+1:open+end], false
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				b.WriteString(tmpl[:open])
				b.WriteString(kv[i+1])
				found = true
				break
			}
		}
		if !found {
			// Not a placeholder of this message: keep the brace, go on after it.
			b.WriteString(tmpl[:open+1])
			tmpl = tmpl[open+1:]
			continue
		}
		tmpl = tmpl[open+end+1:]
	}
	b.WriteString(tmpl)
	return b.String()
}

// replyTo answers in the chat an event came from.
func replyTo(e *bot.Event, key, text string, at ...string) bot.Outbound {
	chat := e.Chat
	if chat.Type == bot.Direct {
		at = nil // nobody else in a one-to-one chat to @
	}
	return bot.Outbound{Key: key, Platform: e.Platform, Chat: &chat, Text: text, AtUsers: at, ReplyHandle: e.ReplyHandle,
		Format: bot.FormatText, Ref: bot.Ref{Purpose: bot.PurposeReply}, ByHand: e.Archived}
}

// about sets what a message is about.
func about(o bot.Outbound, purpose bot.Purpose, ticketID uint) bot.Outbound {
	o.Ref.Purpose, o.Ref.TicketID = purpose, ticketID
	return o
}

// dm addresses an officer; ok is false when the officer has no account.
// A DM is markdown: text is composed once the officer's platform is known,
// with esc making outside text (residents' words and names, group names)
// plain in that platform's dialect.
func (d *directory) dm(o *store.Officer, preferred, key, title string, text func(esc func(string) string) string, r bot.Ref) (bot.Outbound, bool) {
	p, uid, ok := d.address(o, preferred)
	if !ok {
		return bot.Outbound{}, false
	}
	r.OfficerID = o.ID
	esc := func(s string) string { return markdown.Escape(bot.Platform(p), s) }
	return bot.Outbound{Key: key, Platform: bot.Platform(p), ToUser: uid, Title: title, Text: text(esc), Format: bot.FormatMarkdown, Ref: r}, true
}

// renderEsc is render with every value passed through esc: for markdown
// messages whose values come from outside (a resident, a platform).
func renderEsc(esc func(string) string, tmpl string, kv ...string) string {
	out := make([]string, len(kv))
	for i, v := range kv {
		if i%2 == 1 {
			v = esc(v)
		}
		out[i] = v
	}
	return render(tmpl, out...)
}

func officerName(o *store.Officer) string {
	if o == nil {
		return "值班民警"
	}
	return o.Name
}

func idOf(o *store.Officer) *uint {
	if o == nil {
		return nil
	}
	id := o.ID
	return &id
}
