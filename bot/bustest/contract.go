// Package bustest is the contract every bot.Bus must honour. Each transport's
// tests call Run with a constructor; the in-memory bus and the Redis Streams
// bus pass the same suite, so handlers never depend on which one they run on.
package bustest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// NewBus returns a fresh, empty bus for one subtest; the suite closes it.
type NewBus func(t *testing.T) bot.Bus

// Run runs the contract suite. Subtests use their own topic names, so a
// constructor may share one server between them.
func Run(t *testing.T, newBus NewBus) {
	tests := []struct {
		name string
		run  func(t *testing.T, b bot.Bus)
	}{
		{"published before subscribe is delivered with payload and metadata", deliversBacklog},
		{"every group gets every message", fansOutAcrossGroups},
		{"consumers of one group share the work without overlap", sharesWithinGroup},
		{"nack redelivers with a higher attempt", nackRedelivers},
		{"an unsettled delivery goes to another consumer when its consumer leaves", abandonedRedelivered},
		{"acked messages are not delivered again", ackedStaysAcked},
		{"concurrent publishers lose nothing", concurrentPublishers},
		{"publish after close fails", publishAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			defer b.Close()
			tc.run(t, b)
		})
	}
}

func topicFor(t *testing.T) string { return fmt.Sprintf("contract.%d", time.Now().UnixNano()) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func publishN(t *testing.T, b bot.Bus, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := bot.Message{ID: fmt.Sprint(i), Payload: []byte(fmt.Sprintf("payload-%d", i)), Metadata: map[string]string{"n": fmt.Sprint(i)}}
		if err := b.Publish(context.Background(), topic, m); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// receive reads one delivery or fails after wait.
func receive(t *testing.T, ch <-chan *bot.Delivery, wait time.Duration) *bot.Delivery {
	t.Helper()
	select {
	case d, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed early")
		}
		return d
	case <-time.After(wait):
		t.Fatalf("no delivery within %s", wait)
		return nil
	}
}

func deliversBacklog(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	publishN(t, b, topic, 0, 3)
	ch, err := b.Subscribe(ctx, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		d := receive(t, ch, 10*time.Second)
		if want := fmt.Sprintf("payload-%d", i); string(d.Payload) != want {
			t.Errorf("message %d payload = %q, want %q", i, d.Payload, want)
		}
		if d.Metadata["n"] != fmt.Sprint(i) || d.ID != fmt.Sprint(i) {
			t.Errorf("message %d id/metadata = %q/%v", i, d.ID, d.Metadata)
		}
		if d.Attempt != 1 {
			t.Errorf("first delivery attempt = %d, want 1", d.Attempt)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Ack(ctx); err == nil {
			t.Error("second ack of the same delivery succeeded, want an error")
		}
	}
}

func fansOutAcrossGroups(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	a, _ := b.Subscribe(ctx, topic, "a")
	c, err := b.Subscribe(ctx, topic, "c")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, topic, 0, 5)
	for _, ch := range []<-chan *bot.Delivery{a, c} {
		seen := map[string]bool{}
		for i := 0; i < 5; i++ {
			d := receive(t, ch, 10*time.Second)
			seen[string(d.Payload)] = true
			_ = d.Ack(ctx)
		}
		if len(seen) != 5 {
			t.Errorf("group got %d distinct messages, want 5", len(seen))
		}
	}
}

// collect drains subscriptions concurrently until want distinct payloads or timeout.
func collect(t *testing.T, ctx context.Context, chans []<-chan *bot.Delivery, want int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	total := 0
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func(ch <-chan *bot.Delivery) {
			defer wg.Done()
			for {
				select {
				case d, ok := <-ch:
					if !ok {
						return
					}
					mu.Lock()
					got[string(d.Payload)]++
					total++
					if total >= want {
						once.Do(func() { close(done) })
					}
					mu.Unlock()
					_ = d.Ack(ctx)
				case <-done:
					return
				}
			}
		}(ch)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		once.Do(func() { close(done) })
	}
	wg.Wait()
	// Give a late duplicate the chance to show up.
	time.Sleep(200 * time.Millisecond)
	for _, ch := range chans {
		select {
		case d := <-ch:
			if d != nil {
				got[string(d.Payload)]++
				_ = d.Ack(ctx)
			}
		default:
		}
	}
	return got
}

func sharesWithinGroup(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	var chans []<-chan *bot.Delivery
	for i := 0; i < 3; i++ {
		ch, err := b.Subscribe(ctx, topic, "workers")
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	publishN(t, b, topic, 0, 100)
	got := collect(t, ctx, chans, 100)
	if len(got) != 100 {
		t.Errorf("group received %d distinct messages, want 100", len(got))
	}
	for p, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times within one group, want 1", p, n)
		}
	}
}

func nackRedelivers(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	ch, err := b.Subscribe(ctx, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, topic, 0, 1)
	d := receive(t, ch, 10*time.Second)
	if err := d.Nack(ctx); err != nil {
		t.Fatal(err)
	}
	d2 := receive(t, ch, 30*time.Second)
	if string(d2.Payload) != "payload-0" || d2.Attempt != 2 {
		t.Fatalf("redelivery = %q attempt %d, want payload-0 attempt 2", d2.Payload, d2.Attempt)
	}
	_ = d2.Ack(ctx)
}

func abandonedRedelivered(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	leaving, leave := context.WithCancel(ctx)
	first, err := b.Subscribe(leaving, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, topic, 0, 1)
	d := receive(t, first, 10*time.Second)
	if string(d.Payload) != "payload-0" {
		t.Fatalf("got %q", d.Payload)
	}
	leave() // the consumer dies holding the message
	second, err := b.Subscribe(ctx, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	d2 := receive(t, second, 45*time.Second)
	if string(d2.Payload) != "payload-0" {
		t.Fatalf("redelivered %q, want payload-0", d2.Payload)
	}
	_ = d2.Ack(ctx)
}

func ackedStaysAcked(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	sub, cancel := context.WithCancel(ctx)
	ch, _ := b.Subscribe(sub, topic, "g")
	publishN(t, b, topic, 0, 3)
	for i := 0; i < 3; i++ {
		_ = receive(t, ch, 10*time.Second).Ack(ctx)
	}
	cancel()
	ch2, err := b.Subscribe(ctx, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ch2:
		t.Fatalf("acked message %q delivered again", d.Payload)
	case <-time.After(500 * time.Millisecond):
	}
}

func concurrentPublishers(t *testing.T, b bot.Bus) {
	ctx, topic := ctxFor(t), topicFor(t)
	var chans []<-chan *bot.Delivery
	for i := 0; i < 2; i++ {
		ch, _ := b.Subscribe(ctx, topic, "g")
		chans = append(chans, ch)
	}
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				m := bot.Message{Payload: []byte(fmt.Sprintf("p%d-%d", p, i))}
				if err := b.Publish(ctx, topic, m); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	got := collect(t, ctx, chans, 1000)
	if len(got) != 1000 {
		t.Errorf("received %d distinct messages, want 1000", len(got))
	}
}

func publishAfterClose(t *testing.T, b bot.Bus) {
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), topicFor(t), bot.Message{Payload: []byte("x")}); err == nil {
		t.Fatal("publish after close succeeded, want an error")
	}
}
