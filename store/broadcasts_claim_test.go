package store_test

import (
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// With two broadcasts being sent, claims take the older one's deliveries
// first, a lapsed lease before new work, each delivery once, and the
// younger broadcast's once the older has nothing due; each broadcast
// finishes when its own deliveries are done.
func TestClaimsTakeBroadcastsInOrder(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 8) // 4 on dingtalk
		first, second := newBroadcast(t, s, groups), newBroadcast(t, s, groups)
		now := time.Now()
		for _, b := range []*store.Broadcast{second, first} {
			if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{}); err != nil {
				t.Fatal(err)
			}
		}
		held, err := s.ClaimDeliveries(ctx, "dingtalk", now, time.Second, 1)
		if err != nil || len(held) != 1 || held[0].BroadcastID != first.ID {
			t.Fatalf("first claim = %+v, %v; want one delivery of B%d", held, err, first.ID)
		}
		// The holder dies; two seconds later its delivery comes first.
		later := now.Add(2 * time.Second)
		got, err := s.ClaimDeliveries(ctx, "dingtalk", later, time.Minute, 5)
		if err != nil || len(got) != 5 {
			t.Fatalf("claim = %d, %v; want 5", len(got), err)
		}
		if got[0].ID != held[0].ID || got[0].Attempts != 2 {
			t.Errorf("first of the second claim = delivery %d attempt %d, want the lapsed %d at attempt 2", got[0].ID, got[0].Attempts, held[0].ID)
		}
		var ofFirst, ofSecond int
		seen := map[uint]bool{}
		for _, d := range got {
			if seen[d.ID] {
				t.Errorf("delivery %d claimed twice in one claim", d.ID)
			}
			seen[d.ID] = true
			if d.Platform != "dingtalk" {
				t.Errorf("claimed a %s delivery for dingtalk", d.Platform)
			}
			switch d.BroadcastID {
			case first.ID:
				ofFirst++
			case second.ID:
				ofSecond++
			}
		}
		if ofFirst != 4 || ofSecond != 1 {
			t.Errorf("claimed %d of B%d and %d of B%d, want all 4 of the older and 1 of the younger", ofFirst, first.ID, ofSecond, second.ID)
		}
		for _, d := range got {
			if d.BroadcastID == first.ID {
				if ok, err := s.MarkDeliverySent(ctx, d.ID, d.Attempts, "", later); !ok || err != nil {
					t.Fatalf("mark %d sent: %v %v", d.ID, ok, err)
				}
			}
		}
		rest, err := s.ClaimDeliveries(ctx, "wechat", later, time.Minute, 10)
		if err != nil || len(rest) != 8 {
			t.Fatalf("wechat claim = %d, %v; want the 8 wechat deliveries of both", len(rest), err)
		}
		for _, d := range rest {
			if d.BroadcastID == first.ID {
				if ok, err := s.MarkDeliverySent(ctx, d.ID, d.Attempts, "", later); !ok || err != nil {
					t.Fatalf("mark %d sent: %v %v", d.ID, ok, err)
				}
			}
		}
		if n, err := s.FinishBroadcasts(ctx, later); err != nil || n != 1 {
			t.Fatalf("finished %d, %v; want the older broadcast only", n, err)
		}
		if b, _ := s.BroadcastByID(ctx, second.ID); b.Status != store.BroadcastSending {
			t.Errorf("B%d is %s with deliveries left, want sending", second.ID, b.Status)
		}
	})
}
