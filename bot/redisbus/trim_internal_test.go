package redisbus

import (
	"context"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
)

// A trim removes only what every group has acknowledged: an entry a
// consumer holds, and everything after it, stays; so does what a group has
// not read yet.
func TestTrimKeepsWhatAGroupStillNeeds(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// TrimEvery is long: only the trims this test makes run.
	b := New(rdb, Options{Prefix: prefix, Block: 50 * time.Millisecond, TrimEvery: time.Hour})
	defer b.Close()
	stream := b.key("events")
	length := func() int64 {
		t.Helper()
		n, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	trim := func() {
		t.Helper()
		if err := b.trim(ctx, stream); err != nil {
			t.Fatal(err)
		}
	}
	handlers, err := b.Subscribe(ctx, "events", "handlers")
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if err := b.Publish(ctx, "events", bot.Message{Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	first := <-handlers
	first.Ack(ctx)
	held := <-handlers // the second entry: delivered, not acked
	trim()
	if n := length(); n != 5 {
		t.Errorf("after acking the first entry and holding the second: %d entries, want 5", n)
	}
	if err := held.Nack(ctx); err != nil { // handed back: still pending, redelivered
		t.Fatal(err)
	}
	trim()
	if n := length(); n != 5 {
		t.Errorf("after nacking the second entry: %d entries, want 5", n)
	}
	for range 5 {
		(<-handlers).Ack(ctx)
	}
	// A second group has read nothing yet: everything stays for it.
	audit, err := b.Subscribe(ctx, "events", "audit")
	if err != nil {
		t.Fatal(err)
	}
	trim()
	if n := length(); n != 5 {
		t.Errorf("with a group that has read nothing: %d entries, want 5", n)
	}
	for range 5 {
		(<-audit).Ack(ctx)
	}
	trim()
	if n := length(); n != 0 {
		t.Errorf("after every group acknowledged everything: %d entries, want 0", n)
	}
}
