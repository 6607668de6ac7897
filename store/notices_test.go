package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Escalation steps fired by several workers at once, each with a notice to
// the same person in the same window: one is sent at once, the others are
// held, and when the window closes they become one digest, written once
// however many processes gather at the same moment.
func TestNoticesOfOneWindowAreSentOnceAndGatheredOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 2, 16, 0, 0, time.UTC)
	closes := time.Date(2026, 11, 23, 2, 20, 0, 0, time.UTC)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		const tickets, workers = 20, 4
		for i := range tickets {
			due := now.Add(-time.Duration(i+1) * time.Second)
			tk := question(xcl, fmt.Sprintf("storm-%02d", i))
			tk.EscalateAt = &due
			createTicket(t, s, tk)
		}
		leader := uint(7)
		fire := func(tk *store.Ticket) (store.Change, error) {
			tk.Level++
			tk.EscalateAt = nil
			msg := func(key, text string) store.OutboundMessage {
				return store.OutboundMessage{Key: key, Purpose: "escalation", Platform: "dingtalk", ToUser: "leader", OfficerID: &leader,
					TicketID: &tk.ID, Format: "markdown", Text: text}
			}
			return store.Change{Notices: []store.Notice{{Window: "escwin:7:window", Closes: closes,
				Now: msg(fmt.Sprintf("t%d:esc", tk.ID), "超时 "+tk.SourceEventID), Later: msg(fmt.Sprintf("t%d:esc", tk.ID), "- "+tk.SourceEventID)}}}, nil
		}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				if _, err := s.FireDue(testContext(t), now, 100, fire); err != nil {
					t.Errorf("fire: %v", err)
				}
			})
		}
		wg.Wait()
		states := func() map[string]int64 {
			got, err := s.OutboundStates(testContext(t), "dingtalk")
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := states(); got[store.OutboundPending] != 1 || got[store.OutboundHeld] != tickets-1 {
			t.Fatalf("after the storm: %v, want 1 pending (the first, at once) and %d held", got, tickets-1)
		}
		compose := func(held []store.OutboundMessage) store.OutboundMessage {
			lines := make([]string, len(held))
			for i, m := range held {
				lines[i] = m.Text
			}
			d := held[0]
			d.Key, d.TicketID = "escdigest:7:window", nil
			d.Text = fmt.Sprintf("%d 个工单\n%s", len(held), strings.Join(lines, "\n"))
			return d
		}
		if got, err := s.GatherHeld(testContext(t), "dingtalk", closes.Add(-time.Second), compose); err != nil || len(got) != 0 {
			t.Fatalf("before the window closed, gathered %d (%v)", len(got), err)
		}
		var (
			mu      sync.Mutex
			digests []store.OutboundMessage
		)
		for range workers {
			wg.Go(func() {
				got, err := s.GatherHeld(testContext(t), "dingtalk", closes, compose)
				if err != nil {
					t.Errorf("gather: %v", err)
				}
				mu.Lock()
				digests = append(digests, got...)
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(digests) != 1 {
			t.Fatalf("%d processes gathering wrote %d digests, want 1", workers, len(digests))
		}
		row, err := s.OutboundByKey(testContext(t), digests[0].Key)
		if err != nil || !strings.HasPrefix(row.Key, "escdigest:7:window:") {
			t.Fatalf("the digest %q: %v", digests[0].Key, err)
		}
		if row.State != store.OutboundPending || !strings.HasPrefix(row.Text, fmt.Sprintf("%d 个工单\n", tickets-1)) || strings.Count(row.Text, "- storm-") != tickets-1 {
			t.Errorf("the digest row is %s:\n%s", row.State, row.Text)
		}
		if got := states(); got[store.OutboundPending] != 2 || got[store.OutboundHeld] != 0 || got[store.OutboundGathered] != tickets-1 {
			t.Errorf("after gathering: %v, want 2 pending (the first and the digest), none held, %d gathered", got, tickets-1)
		}
		if got, err := s.GatherHeld(testContext(t), "dingtalk", closes.Add(time.Hour), compose); err != nil || len(got) != 0 {
			t.Errorf("gathering again wrote %d (%v)", len(got), err)
		}
	})
}

// The admins hear of an unregistered chat once: the first message's record
// carries their notice, however many messages arrive at once.
func TestUnknownChatNoticeIsWrittenWithTheFirstMessageOnly(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		const messages = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first int
		)
		for i := range messages {
			wg.Go(func() {
				notice := store.OutboundMessage{Key: fmt.Sprintf("unknown-chat:dingtalk:cid-new:%d", i%2), Purpose: "notice", Platform: "dingtalk",
					ToUser: "admin", Format: "markdown", Text: "未登记的群"}
				created, err := s.RecordUnknownChat(testContext(t), "dingtalk", "cid-new", "新群", nil, []store.OutboundMessage{notice})
				if err != nil {
					t.Errorf("record: %v", err)
				}
				if created {
					mu.Lock()
					first++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if first != 1 {
			t.Errorf("%d messages were each told they were the first", first)
		}
		got, err := s.OutboundStates(testContext(t), "dingtalk")
		if err != nil {
			t.Fatal(err)
		}
		if got[store.OutboundPending] != 1 {
			t.Errorf("admins' notices written: %v, want 1", got)
		}
		chats, err := s.UnknownChats(testContext(t))
		if err != nil || len(chats) != 1 || chats[0].Messages != messages {
			t.Errorf("unknown chats: %+v (%v), want one with %d messages", chats, err, messages)
		}
	})
}
