package redisbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
	"github.com/jingminhub/jingmin/bot/redisbus"
)

func TestRedisBusContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bot.Bus {
		rdb, prefix := bustest.Redis(t)
		return redisbus.New(rdb, redisbus.Options{Prefix: prefix, ClaimIdle: 500 * time.Millisecond, Block: 200 * time.Millisecond})
	})
}

func TestRedisDeduperSharedAcrossProcesses(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx := context.Background()
	a, b := redisbus.NewDeduper(rdb, prefix), redisbus.NewDeduper(rdb, prefix)
	if c, err := a.Claim(ctx, "event:1", time.Minute); err != nil || c != bot.ClaimNew {
		t.Fatalf("first claim = %v, %v", c, err)
	}
	if c, _ := b.Claim(ctx, "event:1", time.Minute); c != bot.ClaimBusy {
		t.Errorf("claim while another process holds it = %v, want busy", c)
	}
	if err := a.Release(ctx, "event:1"); err != nil {
		t.Fatal(err)
	}
	if c, _ := b.Claim(ctx, "event:1", time.Minute); c != bot.ClaimNew {
		t.Errorf("claim after release = %v, want new", c)
	}
	if err := b.Done(ctx, "event:1", time.Hour); err != nil {
		t.Fatal(err)
	}
	a.Release(ctx, "event:1") // a late release must not undo done
	if c, _ := a.Claim(ctx, "event:1", time.Minute); c != bot.ClaimDone {
		t.Errorf("claim after done = %v, want done", c)
	}
	if c, _ := a.Claim(ctx, "event:2", 50*time.Millisecond); c != bot.ClaimNew {
		t.Fatal("claim event:2")
	}
	time.Sleep(120 * time.Millisecond) // the holder died: its claim expires
	if c, _ := b.Claim(ctx, "event:2", time.Minute); c != bot.ClaimNew {
		t.Errorf("claim after the holder's hold expired = %v, want new", c)
	}
}

func TestRedisBusPendingCountsLagAndUnacked(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := redisbus.New(rdb, redisbus.Options{Prefix: prefix, Block: 100 * time.Millisecond})
	defer b.Close()
	ch, err := b.Subscribe(ctx, "events", "handlers")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b.Publish(ctx, "events", bot.Message{Payload: []byte("x")})
	}
	d := <-ch
	if n, err := b.Pending(ctx, "events", "handlers"); err != nil || n != 3 {
		t.Errorf("pending with one delivered, unacked = %d (%v), want 3", n, err)
	}
	d.Ack(ctx)
	(<-ch).Ack(ctx)
	(<-ch).Ack(ctx)
	if n, _ := b.Pending(ctx, "events", "handlers"); n != 0 {
		t.Errorf("pending after acking all = %d, want 0", n)
	}
}

func TestSharedLimiterHoldsTwoProcessesToOneRate(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx := context.Background()
	a, b := redisbus.NewLimiter(rdb, prefix+"rate:dingtalk", 20), redisbus.NewLimiter(rdb, prefix+"rate:dingtalk", 20)
	start := time.Now()
	done := make(chan struct{})
	for _, l := range []*redisbus.Limiter{a, b} {
		go func() {
			for i := 0; i < 20; i++ {
				if err := l.Wait(ctx); err != nil {
					t.Error(err)
				}
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	// 40 events at 20/s together: about two seconds, not one.
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("two processes sent 40 in %s at a shared 20/s", took)
	}
}

// Events carry residents' words: once acknowledged they leave the stream.
func TestRedisBusTrimsAcknowledgedEvents(t *testing.T) {
	rdb, prefix := bustest.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := redisbus.New(rdb, redisbus.Options{Prefix: prefix, Block: 50 * time.Millisecond, TrimEvery: 50 * time.Millisecond})
	defer b.Close()
	stream := prefix + "stream:events"
	ch, err := b.Subscribe(ctx, "events", "handlers")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := b.Publish(ctx, "events", bot.Message{ID: fmt.Sprint(i), Payload: []byte("楼道有焦味")}); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		if err := (<-ch).Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream still holds %d acknowledged entries", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
