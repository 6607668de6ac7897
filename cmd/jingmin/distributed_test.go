package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
)

// services gives a test its own MariaDB database and Redis key prefix on the
// servers the tests use; without them it skips loudly, or fails when
// JINGMIN_REQUIRE_SERVICES=1.
func services(t *testing.T) (mysqlDSN, redisURL, prefix string) {
	t.Helper()
	unavailable := func(what string, err error) {
		msg := fmt.Sprintf("!!! %s not available: %v — set JINGMIN_REQUIRE_SERVICES=1 to make this a failure", what, err)
		if os.Getenv("JINGMIN_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	server := os.Getenv("JINGMIN_TEST_MYSQL_DSN")
	if server == "" {
		server = "root:@tcp(127.0.0.1:3306)/"
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	name := "jm_" + hex.EncodeToString(raw)
	db, err := sql.Open("mysql", server)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		unavailable("MariaDB at "+server, err)
	}
	if _, err := db.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE " + name); db.Close() })

	redisURL = os.Getenv("JINGMIN_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		unavailable("Redis at "+redisURL, err)
	}
	prefix = "jmtest:" + hex.EncodeToString(raw) + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		rdb.Close()
	})
	return server + name, redisURL, prefix
}

// process is one hub process of a distributed deployment, in this test's
// address space but sharing nothing with the others except MySQL and Redis.
type process struct {
	*hub
	url  string
	stop func()
}

func startProcess(t *testing.T, cfg configs.Config, r role, clock *testClock) *process {
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
	clock := &testClock{t: at("2026-11-23 10:00")}

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
