package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/bot/bustest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store/storetest"
)

// services gives a test its own MariaDB database and Redis key prefix on the
// servers the tests use; without them it skips loudly, or fails when
// JINGMIN_REQUIRE_SERVICES=1.
func services(t *testing.T) (mysqlDSN, redisURL, prefix string) {
	t.Helper()
	mysqlDSN = storetest.MySQL(t)
	_, prefix = bustest.Redis(t)
	return mysqlDSN, "redis://" + bustest.RedisAddr() + "/0", prefix
}

// process is one hub process of a distributed deployment, in this test's
// address space but sharing nothing with the others except MySQL and Redis.
type process struct {
	*hub
	url  string
	stop func()
}

func startProcess(t *testing.T, cfg configs.Config, r role, clock *bottest.Clock) *process {
	t.Helper()
	log := slog.New(bot.NewMaskingHandler(slog.NewJSONHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := openHub(ctx, &cfg, log, hubOptions{role: r, now: clock.Now})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var ln net.Listener
	p := &process{hub: h}
	if h.playground != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		p.url = "http://" + ln.Addr().String()
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	stopped := false
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process stopped with %v", err)
		}
		h.Close()
	}
	t.Cleanup(p.stop)
	return p
}

// TestDistributedWorkersShareTheFlowAndSurviveOneStopping: an adapter
// process takes residents' questions; two workers over Redis Streams and
// MariaDB handle them; one worker goes away halfway. Every question gets
// exactly one ticket, one acknowledgement and one officer DM.
func TestDistributedWorkersShareTheFlowAndSurviveOneStopping(t *testing.T) {
	dsn, redisURL, prefix := services(t)
	base, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	base.Database.Driver, base.Database.DSN = "mysql", dsn
	base.Bus.Kind, base.Bus.RedisURL, base.Bus.Prefix, base.Bus.ClaimIdleSeconds = "redis", redisURL, prefix, 1
	base.Hub.QuestionsPerMinute = 0
	base.Hub.TimerSeconds = 3600
	clock := bottest.NewClock(at("2026-11-23 10:00"))

	front := startProcess(t, *base, role{platform: bot.Playground}, clock)
	w1 := startProcess(t, *base, role{handlers: true}, clock)
	startProcess(t, *base, role{handlers: true}, clock) // the worker that carries on
	post := (&testHub{hub: front.hub, URL: front.url, t: t}).say

	const n = 60
	for i := 0; i < n; i++ {
		post("hexie", fmt.Sprintf("res-%d", i), "居民", fmt.Sprintf("@社区警务助手 问题%d", i))
		if i == n/2 {
			w1.stop() // one worker goes away with whatever it was doing
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var acks, dms int
	for time.Now().Before(deadline) {
		acks = len(botLinesOf(front, bot.Group, "hexie"))
		dms = len(botLinesOf(front, bot.Direct, "wang"))
		if acks >= n && dms >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // room for a late duplicate to show
	acks = len(botLinesOf(front, bot.Group, "hexie"))
	dms = len(botLinesOf(front, bot.Direct, "wang"))
	tickets, err := front.store.CountTickets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tickets != n || acks != n || dms != n {
		t.Errorf("%d questions: %d tickets, %d acknowledgements, %d officer DMs; want %d of each", n, tickets, acks, dms, n)
	}
	seen := map[string]int{}
	for _, l := range botLinesOf(front, bot.Group, "hexie") {
		if len(l.At) == 1 {
			seen[l.At[0]]++
		}
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("res-%d", i)]; c != 1 {
			t.Errorf("resident res-%d got %d acknowledgements, want 1", i, c)
		}
	}
}

func botLinesOf(p *process, t bot.ChatType, id string) []botLine {
	var out []botLine
	for _, l := range p.playground.Lines(t, id) {
		if l.Bot {
			out = append(out, botLine{Text: l.Text, At: l.At})
		}
	}
	return out
}

type botLine struct {
	Text string
	At   []string
}
