package commands_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// shanghai is the zone the demo roster is written in.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at reads "2026-11-23 10:00" as a time in Asia/Shanghai. 2026-11-23 is a
// Monday.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	if err != nil {
		t.Fatalf("bad time %q in the test: %v", s, err)
	}
	return v
}

// demo is the example deployment (station 太平派出所 with its roster, groups,
// FAQ and the 2026 holiday calendar) plus a second station, 新成派出所, whose
// officer 孙强 must not touch 太平's tickets.
var demo = sync.OnceValues(func() (*configs.Config, error) {
	cfg, err := configs.Load("")
	if err != nil {
		return nil, err
	}
	cfg.Stations = append(cfg.Stations, configs.Station{Code: "xincheng", Name: "新成派出所", SLAMinutes: 20, DutyAccount: "xc-duty"})
	cfg.Officers = append(cfg.Officers,
		configs.Officer{Code: "sun", Station: "xincheng", Name: "孙强", Roles: []string{"officer"}, Identities: map[string]string{"playground": "sun"}},
		configs.Officer{Code: "xc-duty", Station: "xincheng", Name: "新成值班号", Roles: []string{"duty_account"}})
	return cfg, nil
})

// seeded is a SQLite database file, migrated and with the demo directory
// synced into it, that each rig starts from a copy of: migrating and syncing
// for every case would cost most of the package's test time.
var seeded = sync.OnceValues(func() ([]byte, error) {
	cfg, err := demo()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "jingmin-commands-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "seeded.db")
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: path})
	if err != nil {
		return nil, err
	}
	if err := st.Sync(ctx, cfg.Seed()); err != nil {
		st.Close()
		return nil, fmt.Errorf("write the directory: %w", err)
	}
	// Closing the last connection checkpoints the log into the file.
	if err := st.Close(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return nil, fmt.Errorf("%s-wal is left after closing: the copy would miss its pages", path)
	}
	return os.ReadFile(path)
})

// clock is the hub's settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// options are the rules as the example deployment sets them, on c's time.
// QuestionsPerMinute stays off: each case asks once.
func options(cfg *configs.Config, c *clock) commands.Options {
	return commands.Options{
		Location: shanghai, EmergencyKeywords: cfg.Hub.EmergencyKeywords,
		MaxTextRunes: cfg.Hub.MaxTextRunes, ConsultationStation: cfg.Hub.ConsultationStation,
		Now: c.Now,
	}
}

// rig is one hub over its own SQLite file with the demo directory in it.
type rig struct {
	t     *testing.T
	st    *store.Store
	hub   *commands.Hub
	h     bot.Handler
	clock *clock
	// rows reads the outbound table itself (read-only): the store lists a
	// ticket's messages or one by key, and a case must also see that
	// nothing else was written (replies to officers, digests, refusals).
	rows *gorm.DB
	// seen is the last outbound row the test has looked at.
	seen uint
	// codes are officers' codes by id; stations station ids by code.
	codes    map[uint]string
	stations map[string]uint
	events   int
}

// newRig starts a hub at now ("2026-11-23 10:00") over a fresh copy of the
// seeded database; tune changes the example's options.
func newRig(t *testing.T, now string, tune ...func(*commands.Options)) *rig {
	t.Helper()
	cfg, err := demo()
	if err != nil {
		t.Fatalf("load the example config: %v", err)
	}
	image, err := seeded()
	if err != nil {
		t.Fatalf("build the seeded database: %v", err)
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, image, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: path})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{now: at(t, now)}
	opts := options(cfg, c)
	for _, f := range tune {
		f(&opts)
	}
	hub, err := commands.New(ctx, st, opts)
	if err != nil {
		t.Fatalf("build the hub: %v", err)
	}
	rows, err := gorm.Open(sqlite.Open("file:"+path+"?_pragma=query_only(1)&_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open a reader on %s: %v", path, err)
	}
	t.Cleanup(func() {
		if db, err := rows.DB(); err == nil {
			db.Close()
		}
	})
	dir, err := st.LoadDirectory(ctx)
	if err != nil {
		t.Fatalf("load directory: %v", err)
	}
	r := &rig{t: t, st: st, hub: hub, h: hub.Handler(), clock: c, rows: rows,
		codes: map[uint]string{}, stations: map[string]uint{}}
	for _, o := range dir.Officers {
		r.codes[o.ID] = o.Code
	}
	for _, s := range dir.Stations {
		r.stations[s.Code] = s.ID
	}
	return r
}

// secondHub is another worker's hub over the same database and clock.
func (r *rig) secondHub() *commands.Hub {
	r.t.Helper()
	cfg, err := demo()
	if err != nil {
		r.t.Fatal(err)
	}
	h, err := commands.New(r.ctx(), r.st, options(cfg, r.clock))
	if err != nil {
		r.t.Fatalf("build a second hub: %v", err)
	}
	return h
}

func (r *rig) ctx() context.Context { return r.t.Context() }

// setClock moves the hub's clock ("2026-11-23 10:05").
func (r *rig) setClock(s string) { r.clock.set(at(r.t, s)) }

// event numbers a new platform message.
func (r *rig) event(chat bot.ChatRef, sender bot.User, text string) *bot.Event {
	r.events++
	id := fmt.Sprintf("m%d", r.events)
	return &bot.Event{ID: bot.NewEventID(bot.Playground, id), Platform: bot.Playground, MessageID: id, Chat: chat,
		Sender: sender, Kind: bot.KindText, Text: text, Time: r.clock.Now().UTC()}
}

// ask is a resident's question in a group, @-ing the bot.
func (r *rig) ask(chat, resident, name, text string) *bot.Event {
	e := r.event(bot.ChatRef{Platform: bot.Playground, ID: chat, Type: bot.Group}, bot.User{ID: resident, Name: name}, text)
	e.AddressedToBot = true
	e.Mentions = []bot.Mention{{Name: "社区警务助手", IsBot: true}}
	return e
}

// dm is a direct message to the bot from the playground user id.
func (r *rig) dm(from, text string) *bot.Event {
	e := r.event(bot.ChatRef{Platform: bot.Playground, ID: from, Type: bot.Direct}, bot.User{ID: from}, text)
	e.AddressedToBot = true
	return e
}

// handle runs e through the hub's handler, which must accept it.
func (r *rig) handle(e *bot.Event) {
	r.t.Helper()
	if err := r.h.Handle(r.ctx(), e); err != nil {
		r.t.Fatalf("handle %s %q: %v", e.ID, e.Text, err)
	}
}

// tick fires the timers at the clock's time.
func (r *rig) tick() {
	r.t.Helper()
	if err := r.hub.Tick(r.ctx()); err != nil {
		r.t.Fatalf("tick at %s: %v", r.clock.Now().In(shanghai).Format("01-02 15:04"), err)
	}
}

// written returns the outbound rows written since the last call, in the
// order they were written.
func (r *rig) written() []store.OutboundMessage {
	r.t.Helper()
	var out []store.OutboundMessage
	if err := r.rows.Where("id > ?", r.seen).Order("id").Find(&out).Error; err != nil {
		r.t.Fatalf("read outbound rows: %v", err)
	}
	if len(out) > 0 {
		r.seen = out[len(out)-1].ID
	}
	return out
}

// ticket reads ticket number n of the station with code station.
func (r *rig) ticket(station string, n int64) *store.Ticket {
	r.t.Helper()
	t, err := r.st.TicketByNumber(r.ctx(), r.stations[station], n)
	if err != nil {
		r.t.Fatalf("ticket %s #%d: %v", station, n, err)
	}
	return t
}

// noTicket checks that station has no ticket number n.
func (r *rig) noTicket(station string, n int64) {
	r.t.Helper()
	if t, err := r.st.TicketByNumber(r.ctx(), r.stations[station], n); err == nil {
		r.t.Errorf("ticket %s #%d exists (%q), want none", station, n, t.Question)
	}
}

// msg is an outbound row a test expects: what it is for, where it goes
// ("group hexie @res-1" in a group, @-ing res-1; "chat wang" in the chat
// the command came from; "dm wang" a direct message to an officer's
// account) and what its text must contain.
type msg struct {
	purpose bot.Purpose
	to      string
	has     []string
}

// where says where a row goes, in msg's words.
func where(m *store.OutboundMessage) string {
	switch {
	case m.ToUser != "":
		return "dm " + m.ToUser
	case m.ChatType == string(bot.Group):
		s := "group " + m.ChatID
		if m.AtUsers != "" {
			s += " @" + m.AtUsers
		}
		return s
	}
	return "chat " + m.ChatID
}

func describe(rows []store.OutboundMessage) string {
	var b strings.Builder
	for i := range rows {
		fmt.Fprintf(&b, "\n  %s → %s: %q", rows[i].Purpose, where(&rows[i]), rows[i].Text)
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

// expect checks that exactly the messages want were written since the last
// look, in that order.
func (r *rig) expect(what string, want ...msg) {
	r.t.Helper()
	got := r.written()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		g, w := &got[i], want[i]
		if g.Purpose != string(w.purpose) || where(g) != w.to || g.State != store.OutboundPending {
			ok = false
		}
		for _, s := range w.has {
			if !strings.Contains(g.Text, s) {
				ok = false
			}
		}
	}
	if ok {
		return
	}
	var b strings.Builder
	for _, w := range want {
		fmt.Fprintf(&b, "\n  %s → %s containing %q", w.purpose, w.to, w.has)
	}
	if b.Len() == 0 {
		b.WriteString(" none")
	}
	r.t.Errorf("%s: messages written:%s\nwant:%s", what, describe(got), b.String())
}

// ticketWant is what a ticket must look like; empty fields are not checked
// except escalate, where "-" means no timer.
type ticketWant struct {
	status   string
	assignee string // officer code
	escalate string // "2026-11-23 10:15", or "-" for none
	level    int
	answered string // officer code who answered first; "-" for nobody
	// responded is when the first answer was recorded; "-" for never.
	responded string
	flags     string // "emergency", "after_hours", "auto" joined by ","; "-" for none
}

func (r *rig) check(t *store.Ticket, w ticketWant) {
	r.t.Helper()
	code := func(id *uint) string {
		if id == nil {
			return "-"
		}
		return r.codes[*id]
	}
	if w.status != "" && t.Status != w.status {
		r.t.Errorf("ticket #%d status %s, want %s", t.Number, t.Status, w.status)
	}
	if w.assignee != "" && code(t.AssigneeID) != w.assignee {
		r.t.Errorf("ticket #%d assigned to %s, want %s", t.Number, code(t.AssigneeID), w.assignee)
	}
	clock := func(v *time.Time) string {
		if v == nil {
			return "-"
		}
		return v.In(shanghai).Format("2006-01-02 15:04")
	}
	if got := clock(t.EscalateAt); w.escalate != "" && got != w.escalate {
		r.t.Errorf("ticket #%d escalates at %s, want %s", t.Number, got, w.escalate)
	}
	if got := clock(t.FirstResponseAt); w.responded != "" && got != w.responded {
		r.t.Errorf("ticket #%d first answered at %s, want %s", t.Number, got, w.responded)
	}
	if t.Level != w.level {
		r.t.Errorf("ticket #%d at escalation level %d, want %d", t.Number, t.Level, w.level)
	}
	if w.answered != "" && code(t.AnsweredBy) != w.answered {
		r.t.Errorf("ticket #%d first answered by %s, want %s", t.Number, code(t.AnsweredBy), w.answered)
	}
	if w.flags != "" {
		var f []string
		for _, x := range []struct {
			on   bool
			name string
		}{{t.Emergency, "emergency"}, {t.AfterHours, "after_hours"}, {t.AutoAnswered, "auto"}} {
			if x.on {
				f = append(f, x.name)
			}
		}
		got := strings.Join(f, ",")
		if got == "" {
			got = "-"
		}
		if got != w.flags {
			r.t.Errorf("ticket #%d flags %s, want %s", t.Number, got, w.flags)
		}
	}
}
