package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// platformStandIn answers each send as the test tells it to, per target, and
// records what it took.
type platformStandIn struct {
	mu     sync.Mutex
	answer map[string]error // by target; nil: sent
	sent   []string         // keys, in order
}

func (p *platformStandIn) SendReceipt(_ context.Context, o *bot.Outbound) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	target := o.ToUser
	if o.Chat != nil {
		target = o.Chat.ID
	}
	if err := p.answer[target]; err != nil {
		return "", err
	}
	p.sent = append(p.sent, o.Key)
	return "pid-" + o.Key, nil
}

func (p *platformStandIn) Send(ctx context.Context, o *bot.Outbound) error {
	_, err := p.SendReceipt(ctx, o)
	return err
}

func (p *platformStandIn) took(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.sent {
		if k == key {
			return true
		}
	}
	return false
}

func relayStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "relay.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func dmRow(key, to string) store.OutboundMessage {
	return store.OutboundMessage{Key: key, Purpose: string(bot.PurposeAssign), Platform: "playground", ToUser: to, Format: "markdown", Text: "新工单 " + key}
}

// waitRow waits until the row of key is in state, and returns it.
func waitRow(t *testing.T, st *store.Store, key, state string) *store.OutboundMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := st.OutboundByKey(context.Background(), key)
		if err == nil && m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("row %s: %+v (%v), want state %s", key, m, err, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The relay sends what is due, records what became of each message, and
// one target's trouble holds up no other target.
func TestRelaySendsRecordsAndSchedules(t *testing.T) {
	st := relayStore(t)
	platform := &platformStandIn{answer: map[string]error{
		"flow-controlled": bot.RetryAfter(time.Hour, errors.New("recipient is flow-controlled")),
		"gone":            bot.Permanent(errors.New("robot removed from the group")),
		"flaky":           errors.New("connection reset"),
	}}
	relay := &bot.Relay{
		Platform: bot.Playground, Sender: platform, Poll: 20 * time.Millisecond, Backoff: time.Hour, MaxBackoff: 2 * time.Hour,
		Lanes: []bot.Lane{{Name: "interactive", Queue: outboxQueue{st: st}, Workers: 4}}, Log: slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if err := st.Enqueue(ctx, dmRow("a", "flow-controlled"), dmRow("b", "wang"), dmRow("c", "gone"), dmRow("d", "flaky")); err != nil {
		t.Fatal(err)
	}
	sent := waitRow(t, st, "b", store.OutboundSent)
	if sent.MessageID != "pid-b" || sent.SentAt == nil {
		t.Errorf("sent row = %+v, want the platform's id and the time", sent)
	}
	later := waitRow(t, st, "a", store.OutboundPending)
	for later.Reason == "" {
		later = waitRow(t, st, "a", store.OutboundPending)
	}
	if until := time.Until(later.DueAt); until < 50*time.Minute || later.Attempts != 0 {
		t.Errorf("flow-controlled row due in %v after %d attempts, want about an hour and no attempt counted", until, later.Attempts)
	}
	gone := waitRow(t, st, "c", store.OutboundFailed)
	if gone.Reason == "" {
		t.Error("a refused message was failed without its reason")
	}
	flaky := waitRow(t, st, "d", store.OutboundPending)
	for flaky.Attempts == 0 {
		flaky = waitRow(t, st, "d", store.OutboundPending)
	}
	if time.Until(flaky.DueAt) < 50*time.Minute {
		t.Errorf("transient failure due again in %v, want the backoff", time.Until(flaky.DueAt))
	}
}

// A relay that holds a message past its lease loses it to the next claim,
// and its late result changes nothing: the successor's stands.
func TestRelayLeaseLapseIsTakenOverAndTheStaleResultIgnored(t *testing.T) {
	st := relayStore(t)
	ctx := context.Background()
	if err := st.Enqueue(ctx, dmRow("k", "wang")); err != nil {
		t.Fatal(err)
	}
	q := outboxQueue{st: st}
	first, err := q.Claim(ctx, bot.Playground, time.Now(), time.Millisecond, 10)
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim: %v %v", first, err)
	}
	time.Sleep(5 * time.Millisecond) // the lease lapses
	second, err := q.Claim(ctx, bot.Playground, time.Now(), time.Minute, 10)
	if err != nil || len(second) != 1 || second[0].Fence == first[0].Fence {
		t.Fatalf("claim after the lease lapsed: %+v %v", second, err)
	}
	if err := q.Settle(ctx, []bot.Result{{Claimed: second[0], Outcome: bot.Sent, MessageID: "new", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := q.Settle(ctx, []bot.Result{{Claimed: first[0], Outcome: bot.Failed, Reason: "late", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	m, err := st.OutboundByKey(ctx, "k")
	if err != nil || m.State != store.OutboundSent || m.MessageID != "new" {
		t.Errorf("row = %+v (%v), want the successor's result", m, err)
	}
	if again, _ := q.Claim(ctx, bot.Playground, time.Now(), time.Minute, 10); len(again) != 0 {
		t.Errorf("a sent message was claimed again: %+v", again)
	}
}

// A nudge after a commit sends at once, long before the next poll.
func TestRelayWakesOnANudge(t *testing.T) {
	st := relayStore(t)
	platform := &platformStandIn{}
	waker := &bot.MemoryWaker{}
	ctx, cancel := context.WithCancel(context.Background())
	wake, _ := waker.Wakeups(ctx, bot.Playground)
	relay := &bot.Relay{Platform: bot.Playground, Sender: platform, Poll: time.Hour, Wake: wake,
		Lanes: []bot.Lane{{Name: "interactive", Queue: outboxQueue{st: st}}}}
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The first message may be found by the relay's first look; after it
	// the relay waits, the poll an hour away, and only the nudge finds the
	// next ones.
	for i := range 3 {
		key := fmt.Sprint("n", i)
		if err := st.Enqueue(ctx, dmRow(key, "wang")); err != nil {
			t.Fatal(err)
		}
		waker.Wake(ctx, bot.Playground)
		waitRow(t, st, key, store.OutboundSent)
		if !platform.took(key) {
			t.Fatalf("%s marked sent but not taken by the platform", key)
		}
	}
}
