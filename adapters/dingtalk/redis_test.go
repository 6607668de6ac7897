package dingtalk

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
)

// process is one adapter process of the app: its own Redis connection,
// bus and adapter, sharing the stand-in and the key prefix with the others.
func process(t *testing.T, srv *dingtalktest.Server, prefix string, run bool, opts ...Option) (*rig, *redis.Client) {
	t.Helper()
	rdb, _ := bustest.Redis(t) // a connection of its own; the prefix is shared
	opts = append([]Option{WithRedis(rdb, prefix)}, opts...)
	return newRig(t, rigOpt{srv: srv, noRun: !run, opts: opts}), rdb
}

func TestRedisSharesTheAccessTokenBetweenProcesses(t *testing.T) {
	_, prefix := bustest.Redis(t)
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	a, _ := process(t, srv, prefix, false)
	b, _ := process(t, srv, prefix, false)
	dm := func(r *rig) {
		t.Helper()
		if err := r.a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "staff-wang", Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	dm(a)
	dm(b)
	if n := srv.TokensIssued(); n != 1 {
		t.Errorf("two processes fetched %d tokens, want 1", n)
	}
	srv.RevokeTokens()
	dm(a) // refused: fetches and shares a new one
	dm(b) // refused: finds the new one in Redis
	if n := srv.TokensIssued(); n != 2 {
		t.Errorf("after revocation %d tokens issued, want 2", n)
	}
}

func TestRedisLeaseKeepsOneStreamAndAStandByTakesOver(t *testing.T) {
	_, prefix := bustest.Redis(t)
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	ttl := WithLeaseTTL(1500 * time.Millisecond)
	a, rdbA := process(t, srv, prefix, true, ttl)
	b, rdbB := process(t, srv, prefix, true, ttl)
	srv.WaitConnections(t, 1)
	time.Sleep(1600 * time.Millisecond) // past a TTL: the stand-by must still stand by
	if n := srv.MaxLive(); n != 1 {
		t.Fatalf("%d stream connections at once, want 1", n)
	}
	holder, standby, holderRdb := a, b, rdbA
	if b.a.Health().Holding {
		holder, standby, holderRdb = b, a, rdbB
	}
	if h := standby.a.Health(); h.Holding || h.Connected || !h.Running {
		t.Errorf("stand-by health = %+v", h)
	}
	fence := holder.a.Health().Fence
	if fence == 0 {
		t.Error("holder shows no fencing token")
	}
	srv.WaitAck(t, srv.Deliver(groupMsg("cidHexie==", "第一条")))
	if e := holder.event(); e.Text != "第一条" {
		t.Errorf("holder published %q", e.Text)
	}

	// The holder dies: its Redis connection goes first, so it cannot hand
	// the lease back, and then its stream.
	holderRdb.Close()
	died := time.Now()
	holder.stop()
	srv.Wait(t, 15*time.Second, "the stand-by to take over", func() bool { return standby.a.Health().Connected })
	took := time.Since(died)
	if took > 1500*time.Millisecond+300*time.Millisecond+2*time.Second {
		t.Errorf("take-over took %s (ttl 1.5 s)", took)
	}
	t.Logf("stand-by took over %s after the holder died (lease ttl 1.5 s)", took.Round(time.Millisecond))
	if f := standby.a.Health().Fence; f <= fence {
		t.Errorf("new holder's fence %d is not above the old %d", f, fence)
	}
	if n := srv.MaxLive(); n != 1 {
		t.Errorf("%d stream connections at once, want 1", n)
	}
	srv.WaitAck(t, srv.Deliver(groupMsg("cidHexie==", "接管后的消息")))
	if e := standby.event(); e.Text != "接管后的消息" {
		t.Errorf("new holder published %q", e.Text)
	}
}

func TestDefaultLeaseTimingTakesOverWithinFifteenSeconds(t *testing.T) {
	// Dead holder's key lapses after the TTL; the stand-by polls every TTL/5;
	// connecting (open + WebSocket) is well under a second on DingTalk.
	if worst := DefaultLeaseTTL + DefaultLeaseTTL/5 + time.Second; worst > 15*time.Second {
		t.Errorf("worst-case take-over %s exceeds 15 s", worst)
	}
}

func TestRedisLeaseLostClosesTheStream(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	a, _ := process(t, srv, prefix, true, WithLeaseTTL(900*time.Millisecond))
	srv.WaitConnections(t, 1)
	fence := a.a.Health().Fence
	// Another process took the lease (say this one stalled past its TTL).
	key := prefix + "dingtalk:" + srv.AppKey() + ":lease"
	if err := rdb.Set(context.Background(), key, "other-process/999", 900*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, 3*time.Second, "the stream to close", func() bool { return srv.Live() == 0 })
	if h := a.a.Health(); h.Holding && h.Fence == fence {
		t.Errorf("still holding after losing the lease: %+v", h)
	}
	// Frames it might still get are refused, not acted on (checked by
	// holds); once the other's lease lapses it takes the stream back.
	srv.WaitConnections(t, 2)
	srv.Wait(t, 3*time.Second, "holding again", func() bool { return a.a.Health().Connected })
	if f := a.a.Health().Fence; f <= fence {
		t.Errorf("fence %d after re-acquiring, want above %d", f, fence)
	}
	if !strings.Contains(a.logs.String(), "lease lost") {
		t.Error("losing the lease was not logged")
	}
}

func TestRedisRateLimitIsSharedBetweenProcesses(t *testing.T) {
	_, prefix := bustest.Redis(t)
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	qps := func(c *Config) { c.QPS = 5 }
	var procs []*rig
	for range 2 {
		rdb, _ := bustest.Redis(t)
		procs = append(procs, newRig(t, rigOpt{srv: srv, noRun: true, cfg: qps, opts: []Option{WithRedis(rdb, prefix)}}))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 6 {
				if err := p.a.Send(context.Background(), &bot.Outbound{Key: "k", Platform: bot.DingTalk, ToUser: "staff-wang", Text: "x"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// Each process alone may send 6 at once (a bucket of 5 plus 5/s); 12
	// calls in 5-call one-second windows need a third window.
	if took := time.Since(start); took < time.Second {
		t.Errorf("12 calls from two processes at 5 QPS took %s: the limit is not shared", took)
	}
}
