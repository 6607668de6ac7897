package store_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Cancelling a broadcast with customer groups, on both databases: its
// groups still awaiting their owners are cancelled, one cancellation row is
// written per owner task created (or being created) that still has groups
// waiting, a sent group stays sent, and the task's platform id is found for
// the cancellation once its creation has settled.
func TestCancelBroadcastStopsOwnersTasks(t *testing.T) {
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
		var owners []store.OwnerGroups
		err := s.ConfirmBroadcastOwners(ctx, b.ID, now, store.Actor{}, store.CustomerCap{}, func(o []store.OwnerGroups) []store.OutboundMessage {
			owners = o
			var out []store.OutboundMessage
			for _, og := range o {
				id, bid := og.OfficerID, b.ID
				out = append(out, store.OutboundMessage{Key: fmt.Sprintf("mass-%d-%d", bid, id), Purpose: store.PurposeMassSend, Platform: "wechat",
					ToUser: fmt.Sprintf("owner-%d", id), Format: "text", Text: "预警", BroadcastID: &bid, OfficerID: &id})
			}
			return out
		})
		if err != nil || len(owners) != 2 {
			t.Fatalf("confirm: owners %+v, %v", owners, err)
		}
		wang, li := owners[0].OfficerID, owners[1].OfficerID
		if len(owners[0].ChatIDs) != 2 {
			wang, li = li, wang
		}
		msgs, err := s.ClaimOutbound(ctx, "wechat", time.Now().Add(time.Second), time.Minute, 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("claimed %d tasks (%v), want 2", len(msgs), err)
		}
		// Wang's task is created and he sent it to one group so far; li's
		// is still being created when the broadcast is cancelled.
		var liRow store.OutboundMessage
		for _, m := range msgs {
			if *m.OfficerID == wang {
				if err := s.SettleOutbound(ctx, []store.OutboundResult{{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, MessageID: "msgWANG", At: now}}); err != nil {
					t.Fatal(err)
				}
			} else {
				liRow = m
			}
		}
		if _, err := s.SettleOwnerDeliveries(ctx, b.ID, []store.OwnerResult{{ChatID: "wr-a", Sent: true, At: now}}); err != nil {
			t.Fatal(err)
		}

		var stops []store.MassSendOwner
		err = s.CancelBroadcastOwners(ctx, b.ID, now, store.Actor{Name: "ops", Via: "cli"}, func(o []store.MassSendOwner) []store.OutboundMessage {
			stops = o
			var out []store.OutboundMessage
			for _, x := range o {
				id, bid := x.OfficerID, b.ID
				out = append(out, store.OutboundMessage{Key: fmt.Sprintf("stop-%d-%d", bid, id), Purpose: store.PurposeMassSendCancel, Platform: x.Platform,
					ToUser: x.UserID, Format: "text", Text: "停止", BroadcastID: &bid, OfficerID: &id})
			}
			return out
		})
		if err != nil {
			t.Fatal(err)
		}
		var who []string
		for _, x := range stops {
			who = append(who, x.UserID)
		}
		sort.Strings(who)
		if want := []string{fmt.Sprintf("owner-%d", li), fmt.Sprintf("owner-%d", wang)}; strings.Join(who, ",") != strings.Join(sortedCopy(want), ",") {
			t.Errorf("tasks to stop: %v, want %v", who, want)
		}
		c, _ := s.DeliveryCounts(ctx, b.ID)
		if c[store.DeliverySent] != 1 || c[store.DeliveryCancelled] != 3 || c[store.DeliveryAwaitingOwner] != 0 {
			t.Errorf("deliveries after the cancellation = %v, want wr-a sent and the rest cancelled", c)
		}
		if m, err := s.OutboundByKey(ctx, fmt.Sprintf("stop-%d-%d", b.ID, wang)); err != nil || m.State != store.OutboundPending {
			t.Errorf("wang's cancellation row = %+v, %v", m, err)
		}
		if id, err := s.MassSendTaskID(ctx, b.ID, wang); err != nil || id != "msgWANG" {
			t.Errorf("wang's task id = %q, %v", id, err)
		}
		if _, err := s.MassSendTaskID(ctx, b.ID, li); !errors.Is(err, store.ErrTaskUnsettled) {
			t.Errorf("li's task id while it is being created: %v, want ErrTaskUnsettled", err)
		}
		if err := s.SettleOutbound(ctx, []store.OutboundResult{{ID: liRow.ID, Fence: liRow.Fence, State: store.OutboundSent, MessageID: "msgLI", At: now}}); err != nil {
			t.Fatal(err)
		}
		if id, err := s.MassSendTaskID(ctx, b.ID, li); err != nil || id != "msgLI" {
			t.Errorf("li's task id once created = %q, %v", id, err)
		}
		if open, _ := s.OpenMassSendTasks(ctx, "wechat"); len(open) != 0 {
			t.Errorf("tasks still followed after the cancellation: %+v", open)
		}
		if err := s.CancelBroadcastOwners(ctx, b.ID, now, store.Actor{}, nil); !errors.Is(err, store.ErrBroadcastState) {
			t.Errorf("cancelling twice: %v, want ErrBroadcastState", err)
		}
	})
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
