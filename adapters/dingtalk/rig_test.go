package dingtalk

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
)

// rig is one adapter on an in-memory bus, talking to a stand-in DingTalk
// through the real SDK.
type rig struct {
	t    *testing.T
	srv  *dingtalktest.Server
	bus  *bot.MemoryBus
	a    *Adapter
	logs *bottest.LogBuffer
	sub  <-chan *bot.Delivery
	stop func()
}

type rigOpt struct {
	srv     *dingtalktest.Server
	srvOpts dingtalktest.Options
	cfg     func(*Config)
	pub     func(bot.Publisher) bot.Publisher
	opts    []Option
	noRun   bool
}

func newRig(t *testing.T, ro rigOpt) *rig {
	t.Helper()
	srv := ro.srv
	if srv == nil {
		srv = dingtalktest.NewServer(t, ro.srvOpts)
	}
	bus := bot.NewMemoryBus(0)
	t.Cleanup(func() { bus.Close() })
	logs := &bottest.LogBuffer{}
	log := slog.New(bot.NewMaskingHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cfg := Config{AppKey: srv.AppKey(), AppSecret: srv.AppSecret(), OpenAPIHost: srv.URL}
	if ro.cfg != nil {
		ro.cfg(&cfg)
	}
	var pub bot.Publisher = bus
	if ro.pub != nil {
		pub = ro.pub(bus)
	}
	opts := append([]Option{WithBackoff(20 * time.Millisecond)}, ro.opts...)
	a, err := New(cfg, pub, bot.NewMemoryDeduper(), log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bus.Subscribe(ctx, bot.TopicEvents, "test")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, srv: srv, bus: bus, a: a, logs: logs, sub: sub}
	done := make(chan struct{})
	if ro.noRun {
		close(done)
	} else {
		go func() { defer close(done); _ = a.Run(ctx) }()
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("adapter Run did not return within 10s of its context ending")
			}
		})
	}
	t.Cleanup(r.stop)
	if !ro.noRun && ro.srv == nil {
		srv.WaitConnections(t, 1)
	}
	return r
}

// event waits for the next event on the bus.
func (r *rig) event() *bot.Event {
	r.t.Helper()
	select {
	case d := <-r.sub:
		_ = d.Ack(context.Background())
		e, err := bot.DecodeEvent(d.Payload)
		if err != nil {
			r.t.Fatal(err)
		}
		return e
	case <-time.After(15 * time.Second):
		r.t.Fatal("no event on the bus within 15s")
	}
	return nil
}

// noEvent checks that no event arrives within d.
func (r *rig) noEvent(d time.Duration) {
	r.t.Helper()
	select {
	case dl := <-r.sub:
		_ = dl.Ack(context.Background())
		e, _ := bot.DecodeEvent(dl.Payload)
		r.t.Fatalf("unexpected event %+v", e)
	case <-time.After(d):
	}
}

// cleanLogs fails if the logs carry any of secrets.
func (r *rig) cleanLogs(secrets ...string) {
	r.t.Helper()
	logs := r.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			r.t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

// groupMsg is a resident's @-question in a group, as DingTalk sends it.
func groupMsg(conv, text string) dingtalktest.Msg {
	return dingtalktest.Msg{ConversationID: conv, Group: true, Title: "和谐小区钉钉群", SenderID: "$:LWCP_v1:$res1", SenderNick: "刘阿姨", Text: " " + text, AtBot: true}
}
