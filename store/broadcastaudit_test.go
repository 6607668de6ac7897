package store_test

import (
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// A broadcast's change and its audit rows commit together: each action's
// row names the broadcast and its state after the change, and an audit row
// that cannot be written (here: an id already taken) undoes the change, so
// no broadcast is drafted, confirmed, cancelled or retried without its
// trail.
func TestBroadcastChangesCommitWithTheirAuditRows(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		groups := broadcastGroups(t, s, 2)
		now := time.Now()
		good := func(action string) func(b *store.Broadcast) []store.AuditEntry {
			return func(b *store.Broadcast) []store.AuditEntry {
				id := b.ID
				return []store.AuditEntry{{At: now, Actor: "zhao 赵刚", Via: store.AuditConsole, Action: action, BroadcastID: &id, After: "status=" + b.Status}}
			}
		}
		if err := s.AppendAudit(ctx, store.AuditEntry{At: now, Actor: "x", Via: store.AuditCLI, Action: "seed"}); err != nil {
			t.Fatal(err)
		}
		taken := auditRowsOf(t, s, "seed")[0].ID
		bad := func(b *store.Broadcast) []store.AuditEntry {
			return []store.AuditEntry{{ID: taken, At: now, Actor: "zhao 赵刚", Via: store.AuditConsole, Action: "broadcast.bad"}}
		}

		// Create: a failing audit row leaves no draft.
		failed := &store.Broadcast{Author: "赵刚", Scope: "all", Text: "反诈提醒"}
		if err := s.CreateBroadcast(ctx, failed, groups, nil, bad); err == nil {
			t.Fatal("a draft whose audit row fails was created")
		}
		if _, err := s.BroadcastByID(ctx, failed.ID); err == nil {
			t.Errorf("broadcast B%d exists although its audit row failed", failed.ID)
		}
		b := &store.Broadcast{Author: "赵刚", Scope: "all", Text: "反诈提醒"}
		if err := s.CreateBroadcast(ctx, b, groups, nil, good("broadcast.create")); err != nil {
			t.Fatal(err)
		}
		// Confirm: refused with a failing row, done with a good one.
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{Audit: bad}); err == nil {
			t.Fatal("a confirmation whose audit row fails went through")
		}
		if got, _ := s.BroadcastByID(ctx, b.ID); got.Status != store.BroadcastDraft {
			t.Errorf("after a failed audit row the broadcast is %s, want still a draft", got.Status)
		}
		if err := s.ConfirmBroadcast(ctx, b.ID, now, store.Actor{Audit: good("broadcast.confirm")}); err != nil {
			t.Fatal(err)
		}
		// Cancel likewise.
		if err := s.CancelBroadcast(ctx, b.ID, now, store.Actor{Audit: bad}); err == nil {
			t.Fatal("a cancellation whose audit row fails went through")
		}
		if got, _ := s.BroadcastByID(ctx, b.ID); got.Status != store.BroadcastSending {
			t.Errorf("after a failed audit row the broadcast is %s, want still sending", got.Status)
		}
		if err := s.CancelBroadcast(ctx, b.ID, now, store.Actor{Audit: good("broadcast.cancel")}); err != nil {
			t.Fatal(err)
		}
		for action, want := range map[string]string{"broadcast.create": "status=draft", "broadcast.confirm": "status=sending", "broadcast.cancel": "status=cancelled"} {
			rows := auditRowsOf(t, s, action)
			if len(rows) != 1 || rows[0].BroadcastID == nil || *rows[0].BroadcastID != b.ID || rows[0].After != want {
				t.Errorf("%s audit rows %+v, want one for B%d with %s", action, rows, b.ID, want)
			}
		}
		if rows := auditRowsOf(t, s, "broadcast.bad"); len(rows) != 0 {
			t.Errorf("%d rows of failed changes kept", len(rows))
		}
	})
}

func auditRowsOf(t *testing.T, s *store.Store, action string) []store.AuditEntry {
	t.Helper()
	rows, err := s.ListAudit(testContext(t), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, r := range rows {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}
