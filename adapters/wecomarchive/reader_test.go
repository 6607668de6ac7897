package wecomarchive_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/adapters/wecomarchive/financetest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// readerRig is a reader over the stand-in library and archive, a real
// SQLite store with the example directory (the admin 赵刚 on WeCom as
// zhaog), the rules for its alerts, and an in-memory bus.
type readerRig struct {
	t     testing.TB
	ctx   context.Context
	srv   *wecomtest.Server
	st    *store.Store
	bus   *bot.MemoryBus
	hub   *commands.Hub
	cfg   wecomarchive.Config
	sec   wecomarchive.Secrets
	lib   string
	evs   <-chan *bot.Delivery
	quiet *slog.Logger
}

func newReaderRig(t testing.TB) *readerRig {
	ctx := t.Context()
	srv := wecomtest.NewServer()
	t.Cleanup(srv.Close)
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Officers {
		if cfg.Officers[i].Code == "zhao" {
			cfg.Officers[i].Identities["wechat"] = "zhaog"
		}
	}
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SyncDirectory(ctx, cfg.Seed(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub, err := commands.New(ctx, st, commands.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	bus := bot.NewMemoryBus(1000)
	evs, err := bus.Subscribe(ctx, bot.TopicEvents, "test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := wecomarchive.ParsePrivateKey(srv.ArchiveKeyPEM(1))
	if err != nil {
		t.Fatal(err)
	}
	return &readerRig{t: t, ctx: ctx, srv: srv, st: st, bus: bus, hub: hub, evs: evs, quiet: quiet, lib: financetest.Build(t),
		cfg: wecomarchive.Config{CorpID: "corp", Proxy: srv.URL, Limit: 2, AlertAfter: time.Hour},
		sec: wecomarchive.Secrets{Secret: wecomtest.ArchiveSecret, Keys: map[int]*rsa.PrivateKey{1: key}}}
}

// reader starts a reader (a process starting) on the rig's store.
func (r *readerRig) reader() *wecomarchive.Reader {
	r.t.Helper()
	cfg := r.cfg
	cfg.Library = r.lib
	rd, err := wecomarchive.NewReader(cfg, r.sec, r.st, r.bus, r.hub, func() []string { return []string{"王警官"} }, r.quiet)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(rd.Close)
	return rd
}

// pullAll pulls until the archive has nothing more.
func (r *readerRig) pullAll(rd *wecomarchive.Reader) {
	r.t.Helper()
	for {
		n, err := rd.Pull(r.ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		if n < r.cfg.Limit {
			return
		}
	}
}

// events takes the events published so far: as many as the bus holds
// for the test's group (published before the reader's Pull returned).
func (r *readerRig) events() []string {
	r.t.Helper()
	n, err := r.bus.Pending(r.ctx, bot.TopicEvents, "test")
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for range n {
		d := <-r.evs
		e, err := bot.DecodeEvent(d.Payload)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, e.MessageID+" "+e.Text)
		if err := d.Ack(r.ctx); err != nil {
			r.t.Fatal(err)
		}
	}
	return out
}

// alerts is the admins' notices written so far.
func (r *readerRig) alerts() []string {
	r.t.Helper()
	var out []string
	for _, m := range r.outbound() {
		if m.ToUser == "zhaog" && m.Purpose == string(bot.PurposeNotice) {
			out = append(out, m.Text)
		}
	}
	return out
}

func (r *readerRig) outbound() []store.OutboundMessage {
	r.t.Helper()
	var out []store.OutboundMessage
	for {
		got, err := r.st.ClaimOutbound(r.ctx, "wechat", time.Now().Add(time.Hour), time.Minute, 100)
		if err != nil {
			r.t.Fatal(err)
		}
		if len(got) == 0 {
			return out
		}
		res := make([]store.OutboundResult, len(got))
		for i, m := range got {
			res[i] = store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, At: time.Now()}
		}
		if err := r.st.SettleOutbound(r.ctx, res); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, got...)
	}
}

// The reader pulls in batches through the library, publishes each group
// message once, records every message it took with the cursor, and a
// message it cannot decrypt (corrupt, a key version it has no key for) is
// recorded with the reason and alerted; a reader started again takes
// nothing twice.
func TestReaderTakesEachMessageOnce(t *testing.T) {
	r := newReaderRig(t)
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "a1", From: "wmRes1", RoomID: "wrHexie", Text: "@王警官 楼道灯坏了", At: at})
	r.srv.ArchiveCorrupt(1, "a2")
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "a3", From: "wmRes1", To: []string{"wangjg"}, Text: "一对一的话", At: at})
	r.srv.Archive(9, wecomtest.ArchivedText{MsgID: "a4", From: "wmRes2", RoomID: "wrHexie", Text: "新版本密钥的消息", At: at})
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "a5", From: "wangjg", RoomID: "wrHexie", Text: "收到（工单 #1）", At: at})

	r.pullAll(r.reader())
	got := strings.Join(r.events(), "\n")
	if want := "a1 楼道灯坏了\na5 收到（工单 #1）"; got != want {
		t.Fatalf("published:\n%s\nwant:\n%s", got, want)
	}
	if seq, err := r.st.ArchiveSeq(r.ctx, "corp"); err != nil || seq != 5 {
		t.Fatalf("cursor %d %v, want 5", seq, err)
	}
	bad, err := r.st.ArchivedMessages(r.ctx, "corp", store.ArchiveUndecryptable)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || bad[0].MsgID != "a2" || !strings.Contains(bad[0].Reason, "DecryptData") ||
		bad[1].MsgID != "a4" || !strings.Contains(bad[1].Reason, "publickey_ver 9") {
		t.Fatalf("undecryptable recorded: %+v", bad)
	}
	alerts := r.alerts()
	if len(alerts) != 2 || !strings.Contains(alerts[0], "a2") || !strings.Contains(alerts[1], "a4") {
		t.Fatalf("admin alerts: %q, want one for a2 and one for a4", alerts)
	}

	// A process started again goes on from the cursor: nothing twice.
	pulls := r.srv.ArchivePulls()
	r.pullAll(r.reader())
	if got := r.events(); len(got) != 0 {
		t.Fatalf("after a restart published again: %q", got)
	}
	if r.srv.ArchivePulls() == pulls {
		t.Fatal("the restarted reader did not pull")
	}
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "a6", From: "wmRes1", RoomID: "wrHexie", Text: "还有一件事", At: at})
	r.pullAll(r.reader())
	if got := r.events(); len(got) != 1 || got[0] != "a6 还有一件事" {
		t.Fatalf("after a restart: %q, want only a6", got)
	}
}

// Pull errors are noted from the first; the admins hear once they have
// lasted longer than alert_after, and once per trouble. A gap in the
// sequence is told at once: what it skipped cannot be pulled again.
func TestReaderAlertsOnLastingTroubleAndGaps(t *testing.T) {
	r := newReaderRig(t)
	r.cfg.AlertAfter = time.Millisecond
	rd := r.reader()
	r.srv.FailArchive(10001, 10001)
	if _, err := rd.Pull(r.ctx); err == nil {
		t.Fatal("a failed pull reported no error")
	}
	if got := r.alerts(); len(got) != 0 {
		t.Fatalf("alerted on the first failure: %q", got)
	}
	since := time.Now()
	for time.Since(since) < 5*time.Millisecond { // let the trouble outlast alert_after
		time.Sleep(time.Millisecond)
	}
	if _, err := rd.Pull(r.ctx); err == nil {
		t.Fatal("a failed pull reported no error")
	}
	got := r.alerts()
	if len(got) != 1 || !strings.Contains(got[0], "errcode 10001") {
		t.Fatalf("alerts %q, want one naming the error", got)
	}
	// Well again: the trouble is over.
	r.pullAll(rd)
	if c, _ := r.st.ArchiveCursorOf(r.ctx, "corp"); c.TroubleFrom != nil {
		t.Fatalf("trouble still noted after a good pull: %+v", c)
	}
	at := time.Now()
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "g1", From: "wmRes1", RoomID: "wrHexie", Text: "一", At: at})
	r.pullAll(rd)
	r.srv.ArchiveGap(3)
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "g2", From: "wmRes1", RoomID: "wrHexie", Text: "二", At: at})
	r.pullAll(rd)
	got = r.alerts()
	if len(got) != 1 || !strings.Contains(got[0], "sequence gap: 3 messages") {
		t.Fatalf("alerts after a gap: %q", got)
	}
	if got := r.events(); len(got) != 2 {
		t.Fatalf("published %q, want g1 and g2", got)
	}
}

// A library that is not where the config says: the reader does not start,
// and the error names the path.
func TestReaderWithoutLibrary(t *testing.T) {
	r := newReaderRig(t)
	cfg := r.cfg
	cfg.Library = filepath.Join(t.TempDir(), "missing", "libWeWorkFinanceSdk_C.so")
	_, err := wecomarchive.NewReader(cfg, r.sec, r.st, r.bus, r.hub, nil, r.quiet)
	if err == nil || !strings.Contains(err.Error(), cfg.Library) {
		t.Fatalf("NewReader = %v, want an error naming %s", err, cfg.Library)
	}
}

// With a customer-contact secret the reader looks residents' names up, so
// officers read names and an answer that @s the resident is recognised;
// a name WeCom does not give leaves the message as it is.
func TestReaderNamesResidents(t *testing.T) {
	r := newReaderRig(t)
	r.cfg.APIBase = r.srv.URL
	r.sec.ContactsSecret = r.srv.CorpSecret
	r.srv.AddContact("wmRes1", "张阿姨")
	at := time.Now()
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "n1", From: "wmRes1", RoomID: "wrHexie", Text: "@王警官 你好", At: at})
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "n2", From: "wmUnknown", RoomID: "wrHexie", Text: "@王警官 在吗", At: at})
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "n3", From: "wmRes1", RoomID: "wrHexie", Text: "谢谢", At: at})
	r.pullAll(r.reader())
	n, err := r.bus.Pending(r.ctx, bot.TopicEvents, "test")
	if err != nil || n != 3 {
		t.Fatalf("%d events pending (%v), want 3", n, err)
	}
	var names []string
	for range n {
		d := <-r.evs
		e, err := bot.DecodeEvent(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.MessageID+":"+e.Sender.Name)
		_ = d.Ack(r.ctx)
	}
	if got := strings.Join(names, " "); got != "n1:张阿姨 n2: n3:张阿姨" {
		t.Fatalf("senders %s, want n1:张阿姨 n2: n3:张阿姨", got)
	}
	if calls := r.srv.Calls("/cgi-bin/externalcontact/get"); calls != 2 {
		t.Errorf("looked names up %d times, want 2 (one per resident)", calls)
	}
}

// BenchmarkPull: archived messages a reader takes per second through the
// library (purego), RSA (1024-bit keys in the stand-in; WeCom's are
// 2048-bit, about four times the decryption cost), decryption, normalising,
// publishing and recording, 1,000 a pull as WeCom allows.
func BenchmarkPull(b *testing.B) {
	r := newReaderRig(b)
	r.cfg.Limit = 1000
	rd := r.reader()
	at := time.Now()
	for i := range b.N {
		r.srv.Archive(1, wecomtest.ArchivedText{MsgID: fmt.Sprintf("b%d", i), From: "wmRes1", RoomID: "wrHexie", Text: "@王警官 楼道的灯坏了，什么时候能修？", At: at})
	}
	b.ResetTimer()
	taken := 0
	for taken < b.N {
		n, err := rd.Pull(r.ctx)
		if err != nil {
			b.Fatal(err)
		}
		taken += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// A pull that fails is tried again soon by itself: the msgaudit_notify that
// announced the messages does not come again, and the next regular pull may
// be far off.
func TestReaderTriesAFailedPullAgainSoon(t *testing.T) {
	r := newReaderRig(t)
	r.cfg.Every = time.Hour
	rd := r.reader()
	r.srv.Archive(1, wecomtest.ArchivedText{MsgID: "r1", From: "wmRes1", RoomID: "wrHexie", Text: "@王警官 门禁坏了", At: time.Now()})
	r.srv.FailArchive(10001)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- rd.Run(ctx, make(chan struct{})) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		seq, err := r.st.ArchiveSeq(r.ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		if seq >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a failed pull the reader waited for the next regular pull (%d pulls answered)", r.srv.ArchivePulls())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.events(); len(got) != 1 || got[0] != "r1 门禁坏了" {
		t.Fatalf("published %q, want r1 once", got)
	}
}
