package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// rig is the rules over a real SQLite store holding the example station
// (configs/example.yaml), with a clock the test moves. What the rules send
// is read the way a relay reads it: claimed from the outbound rows.
type rig struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	h     *Hub
	clock *bottest.Clock
	seq   atomic.Int64
}

// newRig starts the rules at start; edit may change the config first.
func newRig(t *testing.T, start time.Time, edit func(cfg *configs.Config, o *Options)) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Location: sh, EmergencyKeywords: cfg.Hub.EmergencyKeywords, UrgentKeywords: cfg.Hub.UrgentKeywords, MaxTextRunes: cfg.Hub.MaxTextRunes,
		ConsultationStation: cfg.Hub.ConsultationStation, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(cfg, &opts)
	}
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SyncDirectory(ctx, cfg.Seed(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	clock := bottest.NewClock(start)
	opts.Now = clock.Now
	h, err := New(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, ctx: ctx, st: st, h: h, clock: clock}
}

// group posts text into a group as a resident; "@社区警务助手" at its start
// addresses the bot, as the playground would normalise it.
func (r *rig) group(chat, resident, text string) *bot.Event {
	r.t.Helper()
	e := &bot.Event{ID: fmt.Sprintf("playground:m%d", r.seq.Add(1)), Platform: bot.Playground,
		Chat:   bot.ChatRef{Platform: bot.Playground, ID: chat, Type: bot.Group, Name: chat},
		Sender: bot.User{ID: resident, Name: resident}, Kind: bot.KindText, Time: r.clock.Now()}
	if rest, ok := strings.CutPrefix(text, "@社区警务助手"); ok {
		e.AddressedToBot = true
		e.Mentions = []bot.Mention{{Name: "社区警务助手", IsBot: true}}
		text = rest
	}
	e.Text = strings.TrimSpace(text)
	r.handle(e)
	return e
}

// direct posts text into an officer's (or anyone's) direct chat with the bot.
func (r *rig) direct(user, text string) *bot.Event {
	r.t.Helper()
	e := &bot.Event{ID: fmt.Sprintf("playground:m%d", r.seq.Add(1)), Platform: bot.Playground,
		Chat:   bot.ChatRef{Platform: bot.Playground, ID: user, Type: bot.Direct},
		Sender: bot.User{ID: user, Name: user}, Kind: bot.KindText, Text: text, AddressedToBot: true, Time: r.clock.Now()}
	r.handle(e)
	return e
}

func (r *rig) handle(e *bot.Event) {
	r.t.Helper()
	if err := r.h.Handler().Handle(r.ctx, e); err != nil {
		r.t.Fatalf("handle %q: %v", e.Text, err)
	}
}

// tick runs the timers at the rig's clock.
func (r *rig) tick() {
	r.t.Helper()
	if err := r.h.Tick(r.ctx); err != nil {
		r.t.Fatalf("tick: %v", err)
	}
}

// sent claims every pending message of platform (playground by default) as
// a relay would, marks them sent, and returns them in the order written.
func (r *rig) sent(platform ...bot.Platform) []bot.Outbound {
	r.t.Helper()
	p := bot.Playground
	if len(platform) > 0 {
		p = platform[0]
	}
	q := r.h.Outbox()
	var out []bot.Outbound
	for {
		// Rows are due by the database's clock, the rules' clock is the
		// test's: every pending row is due to a relay far ahead of both.
		got, err := q.Claim(r.ctx, p, time.Now().AddDate(10, 0, 0), time.Minute, 100)
		if err != nil {
			r.t.Fatal(err)
		}
		if len(got) == 0 {
			return out
		}
		res := make([]bot.Result, len(got))
		for i, c := range got {
			out = append(out, c.Msg)
			res[i] = bot.Result{Claimed: c, Outcome: bot.Sent, At: r.clock.Now()}
		}
		if err := q.Settle(r.ctx, res); err != nil {
			r.t.Fatal(err)
		}
	}
}

// to is the messages of msgs to one user's direct chat (ToUser) or chat.
func to(msgs []bot.Outbound, who string) []bot.Outbound {
	var out []bot.Outbound
	for _, m := range msgs {
		if m.ToUser == who || (m.Chat != nil && m.Chat.ID == who) {
			out = append(out, m)
		}
	}
	return out
}

func texts(msgs []bot.Outbound) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "[%s→%s%s] %s\n", m.Ref.Purpose, m.ToUser, chatOf(m), m.Text)
	}
	return b.String()
}

func chatOf(m bot.Outbound) string {
	if m.Chat == nil {
		return ""
	}
	return m.Chat.ID
}
