package store_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// backdate sets a row's time column into the past, as if the row had
// been left alone since.
func backdate(t *testing.T, db *sql.DB, table, column string, id uint, at time.Time) {
	t.Helper()
	if _, err := db.Exec("UPDATE "+table+" SET "+column+" = ? WHERE id = ?", at.UTC(), id); err != nil {
		t.Fatalf("backdate %s %d: %v", table, id, err)
	}
}

func outboundByKey(t *testing.T, s *store.Store, key string) *store.OutboundMessage {
	t.Helper()
	m, err := s.OutboundByKey(testContext(t), key)
	if err != nil {
		t.Fatalf("outbound %s: %v", key, err)
	}
	return m
}

// A purge redacts residents' words, names and ids in closed and answered
// tickets, their timelines, finished messages, parked payloads and unknown
// chats older than the cutoff, and keeps every row, count and time, so the
// statistics are the same before and after. Open tickets, pending
// messages and anything recent stay as they are.
func TestPurgeRedactsOldResidentDataAndKeepsStatistics(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		raw := b.raw(t)
		ctx := testContext(t)
		xcl, _, _ := twoStations(t, s)
		now := time.Now()
		long := now.AddDate(0, 0, -200)
		cutoff := now.AddDate(0, 0, -180)

		closedOld := question(xcl, "closed-old")
		closedOld.Status, closedOld.ReplyHandle = store.StatusClosed, "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
		closedOld = createTicket(t, s, closedOld, store.TicketEvent{Kind: store.TLAsked},
			store.TicketEvent{Kind: store.TLAssigned, Detail: "own_officer：王建国"},
			store.TicketEvent{Kind: store.TLFollowUp, Detail: "我的电话 13812345678"},
			store.TicketEvent{Kind: store.TLAnswered, Detail: "张阿姨您好，马上到"})
		direct := question(xcl, "direct-old")
		direct.Status, direct.ChatType, direct.ChatID, direct.ResidentID = store.StatusAnswered, "direct", "openid-direct", "openid-direct"
		direct = createTicket(t, s, direct)
		closedNew := question(xcl, "closed-new")
		closedNew.Status = store.StatusClosed
		closedNew = createTicket(t, s, closedNew)
		openOld := createTicket(t, s, question(xcl, "open-old"))

		tid := func(id uint) *uint { return &id }
		if err := s.Enqueue(ctx,
			store.OutboundMessage{Key: "reply-old", State: store.OutboundSent, Purpose: "reply", TicketID: tid(closedOld.ID), Platform: "dingtalk", ChatType: "group",
				ChatID: "cid-xcl-001", ChatName: "和谐小区业主群", Format: "text", Text: "@张阿姨 马上到", AtUsers: "resident-closed-old", ReplyHandle: "https://session"},
			store.OutboundMessage{Key: "direct-old", State: store.OutboundSent, Purpose: "reply", TicketID: tid(direct.ID), Platform: "dingtalk", ChatType: "direct",
				ChatID: "openid-direct", ChatName: "张阿姨", Format: "text", Text: "您好，已收到"},
			store.OutboundMessage{Key: "digest-old", State: store.OutboundSent, Purpose: "digest", Platform: "dingtalk", ToUser: "staff-wang", Format: "markdown", Text: "待办：楼道有焦味"},
			store.OutboundMessage{Key: "open-dm", State: store.OutboundSent, Purpose: "dm", TicketID: tid(openOld.ID), Platform: "dingtalk", ToUser: "staff-wang", Format: "markdown", Text: "新问题：楼道有焦味"},
			store.OutboundMessage{Key: "pending-old", Purpose: "digest", Platform: "dingtalk", ToUser: "staff-li", Format: "markdown", Text: "待办：楼道有焦味"},
			store.OutboundMessage{Key: "digest-new", State: store.OutboundSent, Purpose: "digest", Platform: "dingtalk", ToUser: "staff-li", Format: "markdown", Text: "待办：新问题"},
		); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"reply-old", "direct-old", "digest-old", "open-dm", "pending-old"} {
			backdate(t, raw, "outbound_messages", "updated_at", outboundByKey(t, s, k).ID, long)
		}
		for _, tk := range []*store.Ticket{closedOld, direct, openOld} {
			backdate(t, raw, "tickets", "updated_at", tk.ID, long)
		}
		if err := s.Park(ctx, "events", "m-old", []byte(`{"sender":{"id":"resident-9","name":"李大爷"},"text":"家里被盗"}`), "handler failed"); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, "events", "m-new", []byte(`{"text":"新的"}`), "handler failed"); err != nil {
			t.Fatal(err)
		}
		backdate(t, raw, "parked_messages", "at", 1, long)
		if _, err := s.RecordUnknownChat(ctx, "dingtalk", "cid-unknown", "幸福里3号楼业主群", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec("UPDATE unknown_chats SET last_seen = ?", long.UTC()); err != nil {
			t.Fatal(err)
		}
		statsBefore, err := s.TicketsCreated(ctx, xcl, long.AddDate(0, 0, -1), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}

		stored := reload(t, s, closedOld)
		want := store.Redactions{Tickets: 2, Timeline: 2, Messages: 3, Parked: 1, UnknownChats: 1}
		dry, err := s.PurgeBefore(ctx, cutoff, true)
		if err != nil || dry != want {
			t.Fatalf("dry run = %+v, %v; want %+v", dry, err, want)
		}
		if got := reload(t, s, closedOld); got.Question != closedOld.Question {
			t.Fatalf("the dry run changed a ticket: %q", got.Question)
		}
		got, err := s.PurgeBefore(ctx, cutoff, false)
		if err != nil || got != want {
			t.Fatalf("purge = %+v, %v; want %+v", got, err, want)
		}

		c := reload(t, s, closedOld)
		if c.Question != store.Redacted || c.ResidentName != "" || c.ResidentID != "" || c.ReplyHandle != "" ||
			c.ChatID != "cid-xcl-001" || c.Status != store.StatusClosed || c.Number != closedOld.Number || !c.CreatedAt.Equal(stored.CreatedAt) || !c.UpdatedAt.Equal(stored.UpdatedAt) {
			t.Errorf("purged ticket = %+v", c)
		}
		if d := reload(t, s, direct); d.ChatID != "" || d.ResidentID != "" || d.Question != store.Redacted {
			t.Errorf("purged direct ticket keeps the resident's chat: %+v", d)
		}
		for _, tk := range []*store.Ticket{closedNew, openOld} {
			if k := reload(t, s, tk); k.Question != tk.Question || k.ResidentID != tk.ResidentID || k.ResidentName != tk.ResidentName {
				t.Errorf("ticket %s was redacted: %+v", tk.SourceEventID, k)
			}
		}
		tl, err := s.Timeline(ctx, closedOld.ID)
		if err != nil {
			t.Fatal(err)
		}
		details := map[string]string{}
		for _, e := range tl {
			details[e.Kind] = e.Detail
		}
		if details[store.TLFollowUp] != store.Redacted || details[store.TLAnswered] != store.Redacted || details[store.TLAssigned] != "own_officer：王建国" || len(tl) != 4 {
			t.Errorf("purged timeline = %+v", tl)
		}
		if m := outboundByKey(t, s, "reply-old"); m.Text != store.Redacted || m.AtUsers != "" || m.ReplyHandle != "" || m.ChatID != "cid-xcl-001" ||
			m.State != store.OutboundSent {
			t.Errorf("purged group reply = %+v", m)
		}
		if m := outboundByKey(t, s, "direct-old"); m.Text != store.Redacted || m.ChatID != "" || m.ChatName != "" {
			t.Errorf("purged direct reply = %+v", m)
		}
		if m := outboundByKey(t, s, "digest-old"); m.Text != store.Redacted || m.ToUser != "staff-wang" {
			t.Errorf("purged digest = %+v", m)
		}
		for _, k := range []string{"open-dm", "pending-old", "digest-new"} {
			if m := outboundByKey(t, s, k); m.Text == store.Redacted {
				t.Errorf("message %s was redacted", k)
			}
		}
		parked, err := s.Parked(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parked {
			if (p.MessageID == "m-old") != (len(p.Payload) == 0) {
				t.Errorf("parked %s payload = %q", p.MessageID, p.Payload)
			}
		}
		chats, err := s.UnknownChats(ctx)
		if err != nil || len(chats) != 1 || chats[0].Name != "" || chats[0].Messages != 1 {
			t.Errorf("unknown chats = %+v, %v", chats, err)
		}
		// The statistics read the same tickets with the same times.
		statsAfter, err := s.TicketsCreated(ctx, xcl, long.AddDate(0, 0, -1), now.Add(time.Hour))
		if err != nil || len(statsAfter) != len(statsBefore) {
			t.Fatalf("tickets for statistics: %d before, %d after (%v)", len(statsBefore), len(statsAfter), err)
		}
		for i := range statsBefore {
			a, b := statsBefore[i], statsAfter[i]
			if a.ID != b.ID || a.Status != b.Status || !a.CreatedAt.Equal(b.CreatedAt) || a.Emergency != b.Emergency || a.GroupID != b.GroupID && *a.GroupID != *b.GroupID {
				t.Errorf("ticket %d for statistics: %+v before, %+v after", a.ID, a, b)
			}
		}
		// A second purge finds nothing left.
		if again, err := s.PurgeBefore(ctx, cutoff, false); err != nil || again != (store.Redactions{}) {
			t.Errorf("second purge = %+v, %v; want nothing", again, err)
		}
	})
}

// Export gathers one resident's tickets, timelines, messages and parked
// payloads, and nobody else's; erase redacts exactly those and records who
// ran it, with counts and no personal data.
func TestResidentExportAndErase(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		xcl, _, _ := twoStations(t, s)
		mine := question(xcl, "mine")
		mine.ResidentID, mine.Status = "res_1", store.StatusClosed
		mine = createTicket(t, s, mine, store.TicketEvent{Kind: store.TLFollowUp, Detail: "补充：门牌 3-201"})
		open := question(xcl, "mine-open")
		open.ResidentID = "res_1"
		open = createTicket(t, s, open)
		// res_10 and resX1 look like res_1 to a careless LIKE.
		other := question(xcl, "other")
		other.ResidentID = "res_10"
		other = createTicket(t, s, other, store.TicketEvent{Kind: store.TLFollowUp, Detail: "别人的补充"})
		tid := func(id uint) *uint { return &id }
		if err := s.Enqueue(ctx,
			store.OutboundMessage{Key: "ack-mine", Purpose: "reply", TicketID: tid(mine.ID), Platform: "dingtalk", ChatType: "group", ChatID: "cid-xcl-001", Format: "text", Text: "@张阿姨 已收到", AtUsers: "res_1"},
			store.OutboundMessage{Key: "mention", Purpose: "reply", Platform: "dingtalk", ChatType: "group", ChatID: "cid-xcl-001", Format: "text", Text: "@两位 请注意", AtUsers: "res_10,res_1"},
			store.OutboundMessage{Key: "direct", Purpose: "reply", Platform: "dingtalk", ChatType: "direct", ChatID: "res_1", Format: "text", Text: "您好"},
			store.OutboundMessage{Key: "ack-other", Purpose: "reply", TicketID: tid(other.ID), Platform: "dingtalk", ChatType: "group", ChatID: "cid-xcl-001", Format: "text", Text: "@王先生 已收到", AtUsers: "res_10"},
			store.OutboundMessage{Key: "other-x", Purpose: "reply", Platform: "dingtalk", ChatType: "group", ChatID: "cid-xcl-001", Format: "text", Text: "@某人", AtUsers: "resX1"},
			store.OutboundMessage{Key: "wechat-same-id", Purpose: "reply", Platform: "wechat", ChatType: "direct", ChatID: "res_1", Format: "text", Text: "另一个平台的同名用户"},
		); err != nil {
			t.Fatal(err)
		}
		s.Park(ctx, "events", "p-mine", []byte(`{"sender":{"id":"res_1","name":"张阿姨"},"text":"家里被盗"}`), "failed")
		s.Park(ctx, "events", "p-other", []byte(`{"sender":{"id":"res_10","name":"王先生"},"text":"别的"}`), "failed")

		data, err := s.ResidentData(ctx, "dingtalk", "res_1")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, m := range data.Messages {
			keys = append(keys, m.Key)
		}
		if len(data.Tickets) != 2 || data.Tickets[0].Ticket.ID != mine.ID || len(data.Tickets[0].Timeline) != 1 ||
			strings.Join(keys, ",") != "ack-mine,mention,direct" || len(data.Parked) != 1 || !strings.Contains(data.Parked[0].Payload, "家里被盗") {
			t.Fatalf("export = %d tickets, messages %v, %d parked: %+v", len(data.Tickets), keys, len(data.Parked), data)
		}
		if _, err := s.ResidentData(ctx, "dingtalk", ""); err == nil {
			t.Error("export without an id succeeded")
		}

		n, err := s.EraseResident(ctx, "dingtalk", "res_1", "id:0123456789ab", "cli:ops")
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.Redactions{Tickets: 2, Timeline: 1, Messages: 3, Parked: 1}); n != want {
			t.Errorf("erase = %+v, want %+v", n, want)
		}
		after, err := s.ResidentData(ctx, "dingtalk", "res_1")
		if err != nil || len(after.Tickets) != 0 || len(after.Messages) != 0 || len(after.Parked) != 0 {
			t.Errorf("after erasure the export still finds %+v, %v", after, err)
		}
		if k := reload(t, s, mine); k.Question != store.Redacted || k.ResidentName != "" || k.Status != store.StatusClosed {
			t.Errorf("erased ticket = %+v", k)
		}
		if m := outboundByKey(t, s, "mention"); m.Text != store.Redacted || m.AtUsers != "" {
			t.Errorf("a message mentioning the resident = %+v", m)
		}
		// Nobody else's data is touched.
		if k := reload(t, s, other); k.Question != other.Question || k.ResidentID != "res_10" {
			t.Errorf("another resident's ticket = %+v", k)
		}
		for _, key := range []string{"ack-other", "other-x", "wechat-same-id"} {
			if m := outboundByKey(t, s, key); m.Text == store.Redacted {
				t.Errorf("message %s of someone else was redacted", key)
			}
		}
		if tl, _ := s.Timeline(ctx, other.ID); len(tl) != 1 || tl[0].Detail != "别人的补充" {
			t.Errorf("another resident's timeline = %+v", tl)
		}
		otherData, _ := s.ResidentData(ctx, "dingtalk", "res_10")
		if len(otherData.Parked) != 1 {
			t.Errorf("another resident's parked payload: %+v", otherData.Parked)
		}
		recs, err := s.Erasures(ctx)
		if err != nil || len(recs) != 1 {
			t.Fatalf("erasure records = %+v, %v", recs, err)
		}
		r := recs[0]
		if r.By != "cli:ops" || r.Platform != "dingtalk" || r.Resident != "id:0123456789ab" || r.Tickets != 2 || r.Messages != 3 || r.At.IsZero() {
			t.Errorf("erasure record = %+v", r)
		}
	})
}
