package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Customer groups' deliveries on both databases: confirmed into owners'
// tasks (or failed at the daily cap), followed until each group is sent or
// refused, and never finished as delivered while they wait.
func TestCustomerGroupDeliveriesAwaitTheirOwners(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		seed := districtSeed()
		seed.Groups = []store.SeedGroup{
			{Platform: "wechat", ChatID: "wr-plain", Name: "普通群", Station: "xcl"},
			{Platform: "wechat", ChatID: "wr-a", Name: "客户群A", Station: "xcl", Officer: "xcl-wang", Kind: store.GroupKindCustomer},
			{Platform: "wechat", ChatID: "wr-b", Name: "客户群B", Station: "xcl", Officer: "xcl-wang", Kind: store.GroupKindCustomer},
			{Platform: "wechat", ChatID: "wr-c", Name: "客户群C", Station: "xcl", Officer: "xcl-li", Kind: store.GroupKindCustomer},
		}
		groups := syncSeed(t, s, seed).Groups
		b := newBroadcast(t, s, groups)
		now := time.Now()
		limit := store.CustomerCap{N: 1, Since: now.Add(-time.Hour), Reason: "今天已群发过"}
		var owners []store.OwnerGroups
		cur := b.ID
		task := func(o []store.OwnerGroups) []store.OutboundMessage {
			owners = o
			var out []store.OutboundMessage
			for _, og := range o {
				id := og.OfficerID
				bid := cur
				out = append(out, store.OutboundMessage{Key: fmt.Sprintf("mass-%d-%d", bid, id), Purpose: store.PurposeMassSend, Platform: "wechat",
					ToUser: "owner", Format: "text", Text: "预警", BroadcastID: &bid, OfficerID: &id})
			}
			return out
		}
		if err := s.ConfirmBroadcastOwners(ctx, b.ID, now, store.Actor{}, limit, task); err != nil {
			t.Fatal(err)
		}
		if len(owners) != 2 || len(owners[0].ChatIDs)+len(owners[1].ChatIDs) != 3 {
			t.Fatalf("owners = %+v, want wang with 2 groups and li with 1", owners)
		}
		c, _ := s.DeliveryCounts(ctx, b.ID)
		if c[store.DeliveryAwaitingOwner] != 3 || c[store.DeliveryPending] != 1 {
			t.Fatalf("deliveries = %v, want 3 awaiting owners and the plain group pending", c)
		}
		chats, err := s.OwnerChats(ctx, b.ID, owners[0].OfficerID)
		if err != nil || len(chats) != len(owners[0].ChatIDs) {
			t.Fatalf("owner chats = %v, %v", chats, err)
		}
		// The plain group is sent; the tasks are still being created: not finished.
		got, err := s.ClaimDeliveries(ctx, "wechat", now, time.Minute, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("claimed %d deliveries (%v), want only the plain group's", len(got), err)
		}
		if _, err := s.MarkDeliverySent(ctx, got[0].ID, got[0].Attempts, "", now); err != nil {
			t.Fatal(err)
		}
		if n, err := s.FinishBroadcasts(ctx, now); err != nil || n != 0 {
			t.Fatalf("finished %d broadcasts (%v) with owners' tasks not yet created", n, err)
		}
		msgs, err := s.ClaimOutbound(ctx, "wechat", time.Now().Add(time.Second), time.Minute, 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("claimed %d tasks (%v), want 2", len(msgs), err)
		}
		var res []store.OutboundResult
		for i, m := range msgs {
			res = append(res, store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, MessageID: "msgGROUP" + string(rune('1'+i)), At: now})
		}
		if err := s.SettleOutbound(ctx, res); err != nil {
			t.Fatal(err)
		}
		if n, err := s.FinishBroadcasts(ctx, now); err != nil || n != 1 {
			t.Fatalf("finished %d broadcasts (%v), want 1 once the tasks exist", n, err)
		}
		open, err := s.OpenMassSendTasks(ctx, "wechat")
		if err != nil || len(open) != 2 {
			t.Fatalf("open tasks = %+v, %v", open, err)
		}
		if w, err := s.AwaitingOwners(ctx, now.Add(time.Minute)); err != nil || len(w) != 2 {
			t.Fatalf("awaiting owners = %+v, %v", w, err)
		}
		// One group sent, one refused by WeCom; the third still waits.
		n, err := s.SettleOwnerDeliveries(ctx, b.ID, []store.OwnerResult{
			{ChatID: "wr-a", Sent: true, At: now}, {ChatID: "wr-b", Reason: "本群今天已收到过其他群发", At: now}, {ChatID: "wr-c", At: now}})
		if err != nil || n != 2 {
			t.Fatalf("settled %d (%v), want 2", n, err)
		}
		c, _ = s.DeliveryCounts(ctx, b.ID)
		if c[store.DeliverySent] != 2 || c[store.DeliveryFailed] != 1 || c[store.DeliveryAwaitingOwner] != 1 {
			t.Errorf("deliveries = %v", c)
		}
		if open, _ := s.OpenMassSendTasks(ctx, "wechat"); len(open) != 1 {
			t.Errorf("open tasks = %+v, want li's only", open)
		}

		// A second broadcast the same day: every customer group is at its cap.
		b2 := newBroadcast(t, s, groups)
		owners, cur = nil, b2.ID
		if err := s.ConfirmBroadcastOwners(ctx, b2.ID, now, store.Actor{}, limit, task); err != nil {
			t.Fatal(err)
		}
		c, _ = s.DeliveryCounts(ctx, b2.ID)
		// wr-b failed in B1 and counts toward no cap; wr-a was sent and wr-c awaits.
		if c[store.DeliveryFailed] != 2 || c[store.DeliveryAwaitingOwner] != 1 || len(owners) != 1 {
			t.Errorf("second broadcast's deliveries = %v, owners %+v; want 2 capped and wr-b awaiting", c, owners)
		}
	})
}

func TestCustomerServiceStateSurvivesOnBothDatabases(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		if c, err := s.KFCursor(ctx, "wk1"); err != nil || c != "" {
			t.Fatalf("cursor before any pull = %q, %v", c, err)
		}
		for _, c := range []string{"10", "25"} {
			if err := s.SaveKFCursor(ctx, "wk1", c); err != nil {
				t.Fatal(err)
			}
		}
		if c, _ := s.KFCursor(ctx, "wk1"); c != "25" {
			t.Errorf("cursor = %q, want the last saved", c)
		}
		at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
		if err := s.NoteKFScene(ctx, "wk1", "wm1", "gscene"); err != nil {
			t.Fatal(err)
		}
		if err := s.NoteKFMessage(ctx, "wk1", "wm1", at); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.CountKFAnswer(ctx, "wk1", "wm1"); err != nil {
				t.Fatal(err)
			}
		}
		// A page pulled again does not move the window back or reset it.
		if err := s.NoteKFMessage(ctx, "wk1", "wm1", at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.KFSessionOf(ctx, "wk1", "wm1")
		if err != nil || got.Scene != "gscene" || got.Answers != 2 || !got.LastInAt.Equal(at) {
			t.Fatalf("session = %+v, %v", got, err)
		}
		if err := s.NoteKFMessage(ctx, "wk1", "wm1", at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.KFSessionOf(ctx, "wk1", "wm1"); got.Answers != 0 {
			t.Errorf("a new message left %d answers counted, want a fresh window", got.Answers)
		}
		if err := s.SaveKFLink(ctx, store.KFLink{ChatID: "wr-a", Scene: "gscene", URL: "https://work.weixin.qq.com/kf/x"}); err != nil {
			t.Fatal(err)
		}
		if l, err := s.KFLinkByScene(ctx, "gscene"); err != nil || l.ChatID != "wr-a" {
			t.Errorf("link by scene = %+v, %v", l, err)
		}
		if _, err := s.KFLinkByScene(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown scene: %v, want ErrNotFound", err)
		}
		if err := s.SaveRoomConsent(ctx, "wr-a", []store.ArchiveConsent{{ExternalUserID: "wm1", Agree: true}, {ExternalUserID: "wm2"}}, at); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRoomConsent(ctx, "wr-a", []store.ArchiveConsent{{ExternalUserID: "wm2"}, {ExternalUserID: "wm3"}}, at); err != nil {
			t.Fatal(err)
		}
		if r, err := s.ArchiveRefusals(ctx); err != nil || len(r) != 2 || r[0].ExternalUserID != "wm2" || r[1].ExternalUserID != "wm3" {
			t.Errorf("refusals = %+v, %v", r, err)
		}
	})
}
