package dingtalk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
)

// BenchmarkInboundFramesToBus measures the inbound path end to end: the
// stand-in gateway writes CALLBACK frames on the WebSocket, the real SDK
// decodes and dispatches them, the adapter normalises, de-duplicates and
// publishes each to the embedded default's in-memory bus, and the SDK acks.
// The gateway keeps 1 or 64 frames in flight (the SDK leaves frames past 100
// running handlers unacked). Reported: frames/s, and ack latency (frame
// written to ack read) at p50 and p99.
func BenchmarkInboundFramesToBus(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run(fmt.Sprintf("inflight=%d", window), func(b *testing.B) { benchInbound(b, window) })
	}
}

func benchInbound(b *testing.B, window int) {
	slots := make(chan struct{}, window)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		acked     = make(chan struct{}, 1<<16)
	)
	srv := dingtalktest.NewServer(b, dingtalktest.Options{PingEvery: -1, OnAck: func(a dingtalktest.Ack) {
		mu.Lock()
		latencies = append(latencies, a.At.Sub(a.SentAt))
		mu.Unlock()
		<-slots
		acked <- struct{}{}
	}})
	bus := bot.NewMemoryBus(0)
	defer bus.Close()
	a, err := New(Config{AppKey: srv.AppKey(), AppSecret: srv.AppSecret(), OpenAPIHost: srv.URL}, bus, bot.NewMemoryDeduper(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	// Handlers downstream: drain the bus as the hub would.
	sub, err := bus.Subscribe(ctx, bot.TopicEvents, "handlers")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range sub {
			_ = d.Ack(context.Background())
		}
	}()
	srv.WaitConnections(b, 1)

	msg := groupMsg("cidBench==", "楼下电动车被偷了怎么办，请尽快处理")
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := range b.N {
			slots <- struct{}{}
			m := msg
			m.MsgID = fmt.Sprintf("bench-%d-%d", b.N, i)
			srv.Deliver(m)
		}
	}()
	for range b.N {
		select {
		case <-acked:
		case <-time.After(30 * time.Second):
			b.Fatalf("acks stalled: %d unacked", len(srv.Unacked()))
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(latencies)
	p := func(q float64) float64 {
		return float64(latencies[min(int(float64(len(latencies))*q), len(latencies)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(p(0.50), "ack-p50-ms")
	b.ReportMetric(p(0.99), "ack-p99-ms")
	mu.Unlock()
	cancel()
	<-done
}
