package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// A chat's record after a restart: the messages sent into it (only sent
// ones, only that chat's; for a direct chat the replies there and the DMs to
// its user too), the questions filed from it, each the newest up to the
// limit, oldest first.
func TestChatRecordReadsBackWhatAChatShowed(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		xcl, _, _ := twoStations(t, s)
		ask := func(source, chatType, chatID, text string) *store.Ticket {
			tk := question(xcl, source)
			tk.Platform, tk.ChatType, tk.ChatID, tk.Question = "playground", chatType, chatID, text
			return createTicket(t, s, tk)
		}
		t1 := ask("e1", "group", "hexie", "楼道有焦味")
		t2 := ask("e2", "group", "hexie", "电动车被偷了")
		ask("e3", "group", "other", "别的群的问题")
		t4 := ask("e4", "direct", "res-9", "私聊咨询")
		msg := func(key, chatType, chatID, toUser, text string, ticket *store.Ticket) store.OutboundMessage {
			m := store.OutboundMessage{Key: key, Purpose: "reply", Platform: "playground", ChatType: chatType, ChatID: chatID, ToUser: toUser, Format: "text", Text: text}
			if ticket != nil {
				m.TicketID = &ticket.ID
			}
			return m
		}
		if err := s.Enqueue(ctx,
			msg("ack1", "group", "hexie", "", "收到 #1", t1),
			msg("ack2", "group", "hexie", "", "收到 #2", t2),
			msg("other", "group", "other", "", "别的群", nil),
			msg("dm-wang", "", "", "wang", "### 新工单 #1", t1),
			msg("reply-wang", "direct", "wang", "", "已答复 #1", t1),
			msg("reply-res9", "direct", "res-9", "", "收到 #3", t4),
			msg("dm-li", "", "", "li", "### 新工单 #2", t2),
			msg("unsent", "group", "hexie", "", "还没发出", nil),
			store.OutboundMessage{Key: "wechat", Purpose: "reply", Platform: "wechat", ChatType: "group", ChatID: "hexie", Format: "text", Text: "别的平台"},
		); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		claimed, err := s.ClaimOutbound(ctx, "playground", now, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		var results []store.OutboundResult
		for _, m := range claimed {
			if m.Key == "unsent" {
				results = append(results, store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundFailed, Reason: "test", At: now})
				continue
			}
			results = append(results, store.OutboundResult{ID: m.ID, Fence: m.Fence, State: store.OutboundSent, At: now})
		}
		if err := s.SettleOutbound(ctx, results); err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			chatType, chatID string
			limit            int
			want             []string
		}{
			{"group", "hexie", 10, []string{"ack1", "ack2"}},
			{"group", "hexie", 1, []string{"ack2"}},
			{"direct", "wang", 10, []string{"dm-wang", "reply-wang"}},
			{"direct", "res-9", 10, []string{"reply-res9"}},
			{"group", "wang", 10, nil},
			{"direct", "nobody", 10, nil},
		} {
			sent, err := s.SentToChat(ctx, "playground", w.chatType, w.chatID, w.limit)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, m := range sent {
				keys = append(keys, m.Key)
			}
			if !slices.Equal(keys, w.want) {
				t.Errorf("sent to %s %s (limit %d) = %q, want %q", w.chatType, w.chatID, w.limit, keys, w.want)
			}
		}
		for _, w := range []struct {
			chatType, chatID string
			limit            int
			want             []string
		}{
			{"group", "hexie", 10, []string{"楼道有焦味", "电动车被偷了"}},
			{"group", "hexie", 1, []string{"电动车被偷了"}},
			{"direct", "res-9", 10, []string{"私聊咨询"}},
			{"direct", "hexie", 10, nil},
		} {
			ts, err := s.TicketsFromChat(ctx, "playground", w.chatType, w.chatID, w.limit)
			if err != nil {
				t.Fatal(err)
			}
			var qs []string
			for _, tk := range ts {
				qs = append(qs, tk.Question)
			}
			if !slices.Equal(qs, w.want) {
				t.Errorf("questions from %s %s (limit %d) = %q, want %q", w.chatType, w.chatID, w.limit, qs, w.want)
			}
		}
		got, err := s.TicketsByID(ctx, []uint{t4.ID, t1.ID, 999999})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != t1.ID || got[1].ID != t4.ID || got[0].Number != t1.Number || got[1].Status != store.StatusOpen {
			t.Errorf("tickets by id = %+v, want tickets %d and %d", got, t1.ID, t4.ID)
		}
	})
}
