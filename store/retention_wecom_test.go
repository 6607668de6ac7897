package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// A purge forgets WeCom residents' data past the retention period too:
// customer-service conversations (a resident's external_userid, the group
// they came from, when they last wrote) and archive consent answers
// (whose messages a group does not archive) not refreshed since the
// cutoff. Recent ones stay: the 48-hour answer window and the refusal list
// still need them.
func TestPurgeForgetsOldKFSessionsAndConsents(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		raw := b.raw(t)
		ctx := testContext(t)
		now := time.Now().UTC()
		long := now.AddDate(0, 0, -200)
		cutoff := now.AddDate(0, 0, -180)

		for _, u := range []string{"wmOld", "wmNew"} {
			if err := s.NoteKFScene(ctx, "wkKF1", u, "g1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.NoteKFMessage(ctx, "wkKF1", "wmOld", long); err != nil {
			t.Fatal(err)
		}
		if err := s.NoteKFMessage(ctx, "wkKF1", "wmNew", now); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec("UPDATE kf_sessions SET updated_at = ? WHERE external_user_id = ?", long, "wmOld"); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRoomConsent(ctx, "wrOld", []store.ArchiveConsent{{ExternalUserID: "wmOld", Agree: false}, {ExternalUserID: "wmYes", Agree: true}}, long); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRoomConsent(ctx, "wrNew", []store.ArchiveConsent{{ExternalUserID: "wmNew", Agree: false}}, now); err != nil {
			t.Fatal(err)
		}

		dry, err := s.PurgeBefore(ctx, cutoff, true)
		if err != nil {
			t.Fatal(err)
		}
		if dry.KFSessions != 1 || dry.Consents != 2 {
			t.Errorf("dry run counts %+v, want 1 kf session and 2 consents", dry)
		}
		if _, err := s.KFSessionOf(ctx, "wkKF1", "wmOld"); err != nil {
			t.Errorf("the dry run forgot the old conversation: %v", err)
		}
		n, err := s.PurgeBefore(ctx, cutoff, false)
		if err != nil {
			t.Fatal(err)
		}
		if n.KFSessions != 1 || n.Consents != 2 {
			t.Errorf("purge = %+v, want 1 kf session and 2 consents", n)
		}
		if _, err := s.KFSessionOf(ctx, "wkKF1", "wmOld"); err != store.ErrNotFound {
			t.Errorf("the conversation of a resident who last wrote 200 days ago is kept: %v", err)
		}
		if k, err := s.KFSessionOf(ctx, "wkKF1", "wmNew"); err != nil || k.Scene != "g1" {
			t.Errorf("a recent conversation = %+v, %v", k, err)
		}
		refused, err := s.ArchiveRefusals(ctx)
		if err != nil || len(refused) != 1 || refused[0].ExternalUserID != "wmNew" {
			t.Errorf("refusals after the purge = %+v, %v; want only the recent one", refused, err)
		}
		if again, err := s.PurgeBefore(ctx, cutoff, false); err != nil || again.KFSessions != 0 || again.Consents != 0 {
			t.Errorf("a second purge = %+v, %v", again, err)
		}
	})
}

// Erasing a WeCom resident, by their customer-service id or by their bare
// external_userid, erases every form of them: customer-service tickets and
// answers (chat "kf:<open_kfid>:<external_userid>"), customer-group tickets
// (their bare id), their conversations with customer service and their
// archive consent answers. Another resident's stay.
func TestEraseWeComResidentCoversCustomerServiceAndConsent(t *testing.T) {
	t.Parallel()
	for _, erase := range []string{"kf:wkKF1:wmZhang", "wmZhang"} {
		erase := erase
		t.Run(erase, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, s *store.Store) {
				ctx := testContext(t)
				xcl, _, _ := twoStations(t, s)
				kfTicket := func(source, user string) *store.Ticket {
					tk := question(xcl, source)
					tk.Platform, tk.ChatType, tk.ChatID, tk.ResidentID = "wechat", "direct", "kf:wkKF1:"+user, "kf:wkKF1:"+user
					return createTicket(t, s, tk, store.TicketEvent{Kind: store.TLFollowUp, Detail: "补充：门牌 3-201"})
				}
				mineKF := kfTicket("kf-mine", "wmZhang")
				otherKF := kfTicket("kf-other", "wmWang")
				group := question(xcl, "group-mine")
				group.Platform, group.ChatID, group.ResidentID = "wechat", "wrGroup1", "wmZhang"
				group = createTicket(t, s, group)
				tid := func(id uint) *uint { return &id }
				if err := s.Enqueue(ctx,
					store.OutboundMessage{Key: "kf-answer", Purpose: "reply", TicketID: tid(mineKF.ID), Platform: "wechat", ChatType: "direct", ChatID: "kf:wkKF1:wmZhang", Format: "text", Text: "张阿姨您好"},
					store.OutboundMessage{Key: "kf-loose", Purpose: "reply", Platform: "wechat", ChatType: "direct", ChatID: "kf:wkKF2:wmZhang", Format: "text", Text: "另一个客服账号的答复"},
					store.OutboundMessage{Key: "kf-other", Purpose: "reply", TicketID: tid(otherKF.ID), Platform: "wechat", ChatType: "direct", ChatID: "kf:wkKF1:wmWang", Format: "text", Text: "王先生您好"},
				); err != nil {
					t.Fatal(err)
				}
				for _, u := range []string{"wmZhang", "wmWang"} {
					if err := s.NoteKFMessage(ctx, "wkKF1", u, time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.SaveRoomConsent(ctx, "wrGroup1", []store.ArchiveConsent{{ExternalUserID: "wmZhang"}, {ExternalUserID: "wmWang"}}, time.Now()); err != nil {
					t.Fatal(err)
				}

				data, err := s.ResidentData(ctx, "wechat", erase)
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, m := range data.Messages {
					keys = append(keys, m.Key)
				}
				if len(data.Tickets) != 2 || data.Tickets[0].Ticket.ID != mineKF.ID || data.Tickets[1].Ticket.ID != group.ID ||
					strings.Join(keys, ",") != "kf-answer,kf-loose" || len(data.KFSessions) != 1 || len(data.Consents) != 1 {
					t.Errorf("export = %d tickets, messages %v, %d kf sessions, %d consents", len(data.Tickets), keys, len(data.KFSessions), len(data.Consents))
				}

				n, err := s.EraseResident(ctx, "wechat", erase, "id:0123456789ab", "cli:ops")
				if err != nil {
					t.Fatal(err)
				}
				if want := (store.Redactions{Tickets: 2, Timeline: 1, Messages: 2, KFSessions: 1, Consents: 1}); n != want {
					t.Errorf("erase = %+v, want %+v", n, want)
				}
				for _, tk := range []*store.Ticket{mineKF, group} {
					if k := reload(t, s, tk); k.Question != store.Redacted || k.ResidentID != "" || (k.ChatType == "direct" && k.ChatID != "") {
						t.Errorf("erased ticket = %+v", k)
					}
				}
				for _, key := range []string{"kf-answer", "kf-loose"} {
					if m := outboundByKey(t, s, key); m.Text != store.Redacted || m.ChatID != "" {
						t.Errorf("message %s to the erased resident = %+v", key, m)
					}
				}
				if _, err := s.KFSessionOf(ctx, "wkKF1", "wmZhang"); err != store.ErrNotFound {
					t.Errorf("the erased resident's customer-service conversation is kept: %v", err)
				}
				if k := reload(t, s, otherKF); k.Question == store.Redacted || k.ResidentID != "kf:wkKF1:wmWang" {
					t.Errorf("another resident's ticket = %+v", k)
				}
				if m := outboundByKey(t, s, "kf-other"); m.Text == store.Redacted {
					t.Errorf("another resident's answer was redacted")
				}
				if _, err := s.KFSessionOf(ctx, "wkKF1", "wmWang"); err != nil {
					t.Errorf("another resident's conversation: %v", err)
				}
				refused, err := s.ArchiveRefusals(ctx)
				if err != nil || len(refused) != 1 || refused[0].ExternalUserID != "wmWang" {
					t.Errorf("consent answers after the erasure = %+v, %v", refused, err)
				}
			})
		})
	}
}
