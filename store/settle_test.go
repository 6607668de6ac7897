package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// A relay's batch of sent results is recorded together, each with its own
// platform message id and time; a result whose lease lapsed and was taken
// over by another relay records nothing, and the successor's claim stands.
func TestSettleSentBatchKeepsEachResultAndIgnoresStaleFences(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		var msgs []store.OutboundMessage
		for i := range 4 {
			msgs = append(msgs, store.OutboundMessage{Key: fmt.Sprint("m", i), Purpose: "reply", Platform: "playground", ChatType: "group", ChatID: "hexie", Format: "text", Text: fmt.Sprint("第", i, "条")})
		}
		if err := s.Enqueue(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
		first, err := s.ClaimOutbound(ctx, "playground", t0, time.Minute, 10)
		if err != nil || len(first) != 4 {
			t.Fatalf("claimed %d (%v), want 4", len(first), err)
		}
		// The lease lapses; another relay takes every message over and
		// sends m3 itself.
		second, err := s.ClaimOutbound(ctx, "playground", t0.Add(2*time.Minute), time.Minute, 10)
		if err != nil || len(second) != 4 {
			t.Fatalf("claimed again %d (%v), want 4", len(second), err)
		}
		byKey := map[string]store.OutboundMessage{}
		for _, m := range second {
			byKey[m.Key] = m
		}
		late := t0.Add(2*time.Minute + 10*time.Second)
		m3 := byKey["m3"]
		if err := s.SettleOutbound(ctx, []store.OutboundResult{{ID: m3.ID, Fence: m3.Fence, State: store.OutboundSent, MessageID: "succ-3", At: late}}); err != nil {
			t.Fatal(err)
		}
		// The first relay's results: m3 is stale; m0..m2 are stale too.
		var stale []store.OutboundResult
		for i, m := range first {
			stale = append(stale, store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, MessageID: fmt.Sprint("old-", i), At: t0.Add(time.Second)})
		}
		if err := s.SettleOutbound(ctx, stale); err != nil {
			t.Fatal(err)
		}
		// The second relay records m0..m2, each its own id and time.
		var fresh []store.OutboundResult
		for i := range 3 {
			m := byKey[fmt.Sprint("m", i)]
			fresh = append(fresh, store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, MessageID: fmt.Sprint("new-", i), At: late.Add(time.Duration(i) * time.Second)})
		}
		if err := s.SettleOutbound(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			key := fmt.Sprint("m", i)
			m, err := s.OutboundByKey(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			wantID, wantAt := fmt.Sprint("new-", i), late.Add(time.Duration(i)*time.Second)
			if i == 3 {
				wantID, wantAt = "succ-3", late
			}
			if m.State != store.OutboundSent || m.MessageID != wantID || m.SentAt == nil || !m.SentAt.Equal(wantAt) || m.LeaseUntil != nil {
				t.Errorf("%s = state %s id %q sent %v lease %v, want sent %q at %v", key, m.State, m.MessageID, m.SentAt, m.LeaseUntil, wantID, wantAt)
			}
		}
	})
}
