package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// broadcastGroups seeds n groups spread over dingtalk and wechat and
// returns them as loaded.
func broadcastGroups(t *testing.T, s *store.Store, n int) []store.Group {
	t.Helper()
	seed := districtSeed()
	seed.Groups = nil
	for i := range n {
		p := "dingtalk"
		if i%2 == 1 {
			p = "wechat"
		}
		seed.Groups = append(seed.Groups, store.SeedGroup{Platform: p, ChatID: fmt.Sprintf("chat-%04d", i), Name: fmt.Sprintf("群%d", i), Station: "xcl"})
	}
	return syncSeed(t, s, seed).Groups
}

func newBroadcast(t *testing.T, s *store.Store, groups []store.Group) *store.Broadcast {
	t.Helper()
	b := &store.Broadcast{Author: "张所长", Scope: "all", Text: "警惕冒充客服退款诈骗", ReportPlatform: "dingtalk", ReportUser: "staff-zhang"}
	if err := s.CreateBroadcast(testContext(t), b, groups, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBroadcastLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 6)
		b := newBroadcast(t, s, groups)
		now := time.Now()

		// A draft's deliveries are not claimed.
		if got, err := s.ClaimDeliveries(ctx, "dingtalk", now, time.Minute, 10); err != nil || len(got) != 0 {
			t.Fatalf("claim before confirmation = %d, %v; want none", len(got), err)
		}
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{}); !errors.Is(err, store.ErrBroadcastState) {
			t.Fatalf("second confirmation: %v, want ErrBroadcastState", err)
		}
		got, err := s.ClaimDeliveries(ctx, "dingtalk", now, time.Minute, 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("claim = %d, %v; want the 3 dingtalk deliveries", len(got), err)
		}
		// Leased: not claimed again until the lease lapses.
		if again, _ := s.ClaimDeliveries(ctx, "dingtalk", now, time.Minute, 10); len(again) != 0 {
			t.Fatalf("claimed %d leased deliveries again", len(again))
		}
		if ok, err := s.MarkDeliverySent(ctx, got[0].ID, got[0].Attempts, "pqk-1", now); !ok || err != nil {
			t.Fatalf("mark sent = %v, %v", ok, err)
		}
		if ok, err := s.MarkDeliveryFailed(ctx, got[1].ID, got[1].Attempts, "机器人已被移出群", now); !ok || err != nil {
			t.Fatalf("mark failed = %v, %v", ok, err)
		}
		if ok, err := s.RetryDeliveryAt(ctx, got[2].ID, got[2].Attempts, "限流", now.Add(time.Hour)); !ok || err != nil {
			t.Fatalf("retry later = %v, %v", ok, err)
		}
		// The one put back is not due for an hour.
		if again, _ := s.ClaimDeliveries(ctx, "dingtalk", now, time.Minute, 10); len(again) != 0 {
			t.Fatalf("claimed %d deliveries before they were due", len(again))
		}
		// A lapsed lease is taken over, and the old holder's result is refused.
		wc, _ := s.ClaimDeliveries(ctx, "wechat", now, time.Second, 1)
		if len(wc) != 1 {
			t.Fatalf("wechat claim = %d", len(wc))
		}
		later := now.Add(2 * time.Second)
		taken, _ := s.ClaimDeliveries(ctx, "wechat", later, time.Minute, 1)
		if len(taken) != 1 || taken[0].ID != wc[0].ID || taken[0].Attempts != wc[0].Attempts+1 {
			t.Fatalf("takeover = %+v, want delivery %d at attempt %d", taken, wc[0].ID, wc[0].Attempts+1)
		}
		if ok, _ := s.MarkDeliverySent(ctx, wc[0].ID, wc[0].Attempts, "stale", later); ok {
			t.Fatal("a sender whose lease lapsed recorded its result")
		}
		if ok, _ := s.MarkDeliverySent(ctx, taken[0].ID, taken[0].Attempts, "", later); !ok {
			t.Fatal("the lease holder could not record its result")
		}
		counts, err := s.DeliveryCounts(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{store.DeliverySent: 2, store.DeliveryFailed: 1, store.DeliveryPending: 3}
		for k, v := range want {
			if counts[k] != v {
				t.Errorf("counts[%s] = %d, want %d (%v)", k, counts[k], v, counts)
			}
		}
		if n, _ := s.FinishBroadcasts(ctx, later); n != 0 {
			t.Fatal("finished a broadcast with deliveries left")
		}
		reasons, err := s.FailureReasons(ctx, b.ID, 3)
		if err != nil || len(reasons) != 1 || reasons[0].Reason != "机器人已被移出群" || reasons[0].N != 1 {
			t.Fatalf("reasons = %+v, %v", reasons, err)
		}
	})
}

func TestBroadcastFinishReportRetryAndCancel(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 2)
		b := newBroadcast(t, s, groups)
		now := time.Now()
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"dingtalk", "wechat"} {
			d, _ := s.ClaimDeliveries(ctx, p, now, time.Minute, 10)
			if len(d) != 1 {
				t.Fatalf("%s claim = %d", p, len(d))
			}
			if p == "wechat" {
				s.MarkDeliveryFailed(ctx, d[0].ID, d[0].Attempts, "群已解散", now)
			} else {
				s.MarkDeliverySent(ctx, d[0].ID, d[0].Attempts, "", now)
			}
		}
		if err := s.CancelBroadcast(ctx, b.ID, now, store.Actor{}); err != nil {
			t.Fatalf("cancel while sending: %v", err)
		}
		// Cancelled: it is not finished or reported, and cannot be retried.
		if n, _ := s.FinishBroadcasts(ctx, now); n != 0 {
			t.Fatal("finished a cancelled broadcast")
		}
		if _, err := s.RetryFailed(ctx, b.ID, now); !errors.Is(err, store.ErrBroadcastState) {
			t.Fatalf("retry of a cancelled broadcast: %v", err)
		}

		b2 := newBroadcast(t, s, groups)
		now = time.Now()
		s.ConfirmBroadcast(ctx, b2.ID, now, store.Actor{})
		for _, p := range []string{"dingtalk", "wechat"} {
			d, _ := s.ClaimDeliveries(ctx, p, now, time.Minute, 10)
			if len(d) != 1 || d[0].BroadcastID != b2.ID {
				t.Fatalf("%s claim = %+v", p, d)
			}
			s.MarkDeliveryFailed(ctx, d[0].ID, d[0].Attempts, "群已解散", now)
		}
		if n, err := s.FinishBroadcasts(ctx, now); n != 1 || err != nil {
			t.Fatalf("finish = %d, %v", n, err)
		}
		if err := s.CancelBroadcast(ctx, b2.ID, now, store.Actor{}); !errors.Is(err, store.ErrBroadcastState) {
			t.Fatalf("cancel after completion: %v, want ErrBroadcastState", err)
		}
		un, err := s.Unreported(ctx)
		if err != nil || len(un) != 1 || un[0].ID != b2.ID || un[0].Round != 1 {
			t.Fatalf("unreported = %+v, %v", un, err)
		}
		if err := s.MarkReported(ctx, b2.ID, 1, now, nil); err != nil {
			t.Fatal(err)
		}
		if un, _ := s.Unreported(ctx); len(un) != 0 {
			t.Fatalf("still unreported: %+v", un)
		}
		n, err := s.RetryFailed(ctx, b2.ID, now)
		if err != nil || n != 2 {
			t.Fatalf("retry-failed = %d, %v", n, err)
		}
		got, _ := s.BroadcastByID(ctx, b2.ID)
		if got.Status != store.BroadcastSending || got.Round != 2 || got.ReportedAt != nil {
			t.Fatalf("after retry-failed: %+v", got)
		}
		if d, _ := s.ClaimDeliveries(ctx, "wechat", now, time.Minute, 10); len(d) != 1 || d[0].Attempts != 1 {
			t.Fatalf("requeued claim = %+v", d)
		}
	})
}

// Several senders claiming at once each get different deliveries, and
// together all of them (SKIP LOCKED on MariaDB, the single writer on SQLite).
func TestConcurrentClaimsShareDeliveries(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 400)
		b := newBroadcast(t, s, groups)
		now := time.Now()
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{}); err != nil {
			t.Fatal(err)
		}
		var (
			mu   sync.Mutex
			seen = map[uint]int{}
			wg   sync.WaitGroup
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.ClaimDeliveries(ctx, "dingtalk", now, time.Minute, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					for _, d := range got {
						if ok, err := s.MarkDeliverySent(ctx, d.ID, d.Attempts, "", now); !ok || err != nil {
							t.Errorf("mark %d: %v %v", d.ID, ok, err)
						}
						mu.Lock()
						seen[d.ID]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(seen) != 200 {
			t.Errorf("claimed %d distinct deliveries, want 200", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %d claimed %d times", id, n)
			}
		}
	})
}

// BroadcastProgress counts the deliveries of broadcasts under way and of
// those finished or cancelled since the given time, and nothing else.
func TestBroadcastProgressCountsBroadcastsUnderWay(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 4) // two dingtalk, two wechat
		now := time.Now()
		long := now.Add(-2 * time.Hour)
		claim := func(platform string, n int) []store.Delivery {
			t.Helper()
			d, err := s.ClaimDeliveries(ctx, platform, time.Now(), time.Minute, n)
			if err != nil || len(d) != n {
				t.Fatalf("claim %d on %s = %d, %v", n, platform, len(d), err)
			}
			return d
		}
		mark := func(d store.Delivery, sent bool) {
			t.Helper()
			var ok bool
			var err error
			if sent {
				ok, err = s.MarkDeliverySent(ctx, d.ID, d.Attempts, "", now)
			} else {
				ok, err = s.MarkDeliveryFailed(ctx, d.ID, d.Attempts, "群已解散", now)
			}
			if !ok || err != nil {
				t.Fatalf("mark delivery %d = %v, %v", d.ID, ok, err)
			}
		}
		finish := func(at time.Time) {
			t.Helper()
			if n, err := s.FinishBroadcasts(ctx, at); n != 1 || err != nil {
				t.Fatalf("finish = %d, %v", n, err)
			}
		}

		newBroadcast(t, s, groups) // a draft: nothing under way

		old := newBroadcast(t, s, groups) // finished long ago
		s.ConfirmBroadcast(ctx, old.ID, long, store.Actor{})
		for _, d := range append(claim("dingtalk", 2), claim("wechat", 2)...) {
			mark(d, true)
		}
		finish(long)

		recent := newBroadcast(t, s, groups) // finished just now
		s.ConfirmBroadcast(ctx, recent.ID, now, store.Actor{})
		dt := claim("dingtalk", 2)
		mark(dt[0], true)
		mark(dt[1], false)
		for _, d := range claim("wechat", 2) {
			mark(d, false)
		}
		finish(now)

		running := newBroadcast(t, s, groups) // being sent
		s.ConfirmBroadcast(ctx, running.ID, now, store.Actor{})
		mark(claim("dingtalk", 1)[0], true)
		claim("dingtalk", 1) // held by a sender
		w := claim("wechat", 1)[0]
		if ok, err := s.RetryDeliveryAt(ctx, w.ID, w.Attempts, "限流", now.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("retry later = %v, %v", ok, err)
		}

		cancelled := newBroadcast(t, s, groups)
		if err := s.CancelBroadcast(ctx, cancelled.ID, now, store.Actor{}); err != nil {
			t.Fatal(err)
		}
		oldCancelled := newBroadcast(t, s, groups)
		if err := s.CancelBroadcast(ctx, oldCancelled.ID, long, store.Actor{}); err != nil {
			t.Fatal(err)
		}

		got, err := s.BroadcastProgress(ctx, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			id                  uint
			broadcast, delivery string
		}
		want := map[key]int{
			{recent.ID, store.BroadcastDone, store.DeliverySent}:              1,
			{recent.ID, store.BroadcastDone, store.DeliveryFailed}:            3,
			{running.ID, store.BroadcastSending, store.DeliverySent}:          1,
			{running.ID, store.BroadcastSending, store.DeliverySending}:       1,
			{running.ID, store.BroadcastSending, store.DeliveryPending}:       2,
			{cancelled.ID, store.BroadcastCancelled, store.DeliveryCancelled}: 4,
		}
		seen := map[key]int{}
		for _, c := range got {
			k := key{c.BroadcastID, c.Broadcast, c.Delivery}
			if _, dup := seen[k]; dup {
				t.Errorf("%+v counted twice", k)
			}
			seen[k] = c.N
		}
		for k, n := range want {
			if seen[k] != n {
				t.Errorf("B%d (%s) %s = %d, want %d", k.id, k.broadcast, k.delivery, seen[k], n)
			}
		}
		for k, n := range seen {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected count B%d (%s) %s = %d", k.id, k.broadcast, k.delivery, n)
			}
		}
	})
}
