package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

func TestHealthReadinessAndMetrics(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 17:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 门口有人发小广告")
	h.say("yangguang", "res-2", "王女士", "@社区警务助手 楼上有人打架")
	h.settle()
	h.Clock.Set(at("2026-11-23 17:31"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	srv := httptest.NewServer(h.opsHandler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"store":"ok"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`jingmin_tickets_routed_total{emergency="false",reason="own_officer"} 1`,
		`jingmin_tickets_routed_total{emergency="true",reason="own_officer"} 1`,
		`jingmin_escalations_total{level="1"} 2`,
		`jingmin_events_total{outcome="ok",platform="playground"} 2`,
		`jingmin_outbound_total{outcome="sent",platform="playground"}`,
		`jingmin_bus_pending{group="handlers",topic="events"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	h.store.Close() // the database goes away: not ready any more
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store closed = %d, want 503", code)
	}
}

// gatedSender stands in for the playground's group sends during a
// broadcast: the first two are refused for good, the twelfth waits for
// release, the rest go through; everything else (the admin's direct chat)
// goes to the playground itself.
type gatedSender struct {
	next    atomic.Pointer[playground.Adapter]
	sends   atomic.Int32
	held    chan struct{} // closed when the twelfth send is waiting
	release chan struct{}
}

func (g *gatedSender) Send(ctx context.Context, o *bot.Outbound) error {
	if o.Chat == nil || o.Chat.Type != bot.Group {
		return g.next.Load().Send(ctx, o)
	}
	switch n := g.sends.Add(1); {
	case n <= 2:
		return bot.Permanent(errors.New("机器人已被移出群"))
	case n == 12:
		close(g.held)
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestMetricsShowBroadcastProgress: while a broadcast to 12 groups is
// being sent, /metrics shows its deliveries per state (the same numbers as
// the delivery rows); once finished it shows the final numbers, and after
// the window it is gone.
func TestMetricsShowBroadcastProgress(t *testing.T) {
	gate := &gatedSender{held: make(chan struct{}), release: make(chan struct{})}
	h := startHub(t, broadcastConfig(t, 8), at("2026-11-23 10:00"), fastBroadcasts, func(o *hubOptions) {
		o.senders = map[bot.Platform]bot.Sender{bot.Playground: gate}
	})
	gate.next.Store(h.playground)
	srv := httptest.NewServer(h.opsHandler())
	defer srv.Close()
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics = %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	expect := func(when, body string, want map[string]int, sending int) {
		t.Helper()
		for state, n := range want {
			line := fmt.Sprintf("jingmin_broadcast_deliveries{broadcast=\"B1\",state=%q} %d\n", state, n)
			if !strings.Contains(body, line) {
				t.Errorf("%s: /metrics lacks %s", when, strings.TrimSpace(line))
			}
		}
		if line := fmt.Sprintf("jingmin_broadcasts_sending %d\n", sending); !strings.Contains(body, line) {
			t.Errorf("%s: /metrics lacks %s", when, strings.TrimSpace(line))
		}
	}

	if body := scrape(); strings.Contains(body, `jingmin_broadcast_deliveries{`) {
		t.Errorf("a broadcast shows before there is one")
	}
	mustContain(t, "preview", h.dmAndSettle("zhao", "广播 本所 "+alert), "B1", "共 12 个群")
	if body := scrape(); strings.Contains(body, `broadcast="B1"`) {
		t.Errorf("a draft shows as under way")
	}
	h.dmAndSettle("zhao", "确认 B1")
	select {
	case <-gate.held:
	case <-time.After(20 * time.Second):
		t.Fatalf("the broadcast did not reach its twelfth group (%d sends)", gate.sends.Load())
	}
	// Eleven sends are recorded (the relay records results a moment after
	// each send) and one is on its way.
	running := map[string]int{store.DeliveryPending: 0, store.DeliverySending: 1, store.DeliverySent: 9, store.DeliveryFailed: 2, store.DeliveryCancelled: 0}
	var counts map[string]int
	waitFor(t, "eleven results recorded while the twelfth is sent", func() bool {
		var err error
		if counts, err = h.store.DeliveryCounts(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		for state, n := range running {
			if counts[state] != n {
				return false
			}
		}
		return true
	})
	expect("while sending", scrape(), running, 1)

	close(gate.release)
	waitFor(t, "the delivery report", func() bool {
		return strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "送达报告\n")
	})
	done := map[string]int{store.DeliveryPending: 0, store.DeliverySending: 0, store.DeliverySent: 10, store.DeliveryFailed: 2, store.DeliveryCancelled: 0}
	expect("finished", scrape(), done, 0)

	h.Clock.Add(broadcastWindow + time.Minute)
	if body := scrape(); strings.Contains(body, `broadcast="B1"`) {
		t.Errorf("B1 still shows %s after it finished", broadcastWindow+time.Minute)
	}
}
