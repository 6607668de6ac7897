package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// The audit trail keeps what each change was, who made it and from where;
// a station admin searching it finds their own station's rows by action,
// actor or text, newest first; rows leave only when older than retention;
// and a change that fails leaves no audit row claiming it happened.
func TestAuditTrailIsSearchableAndCommitsWithItsChange(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		xcl, tp, _ := twoStations(t, s)
		base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		wang := uint(11)
		rows := []store.AuditEntry{
			{At: base, Actor: "A001 王警官", ActorOfficerID: &wang, Via: store.AuditConsole, Address: "10.0.0.8", Action: "signin", StationID: &xcl},
			{At: base.Add(time.Minute), Actor: "A001 王警官", ActorOfficerID: &wang, Via: store.AuditConsole, Action: "roster.shift.update", StationID: &xcl,
				Target: "值班 王警官 周一", Before: "08:00-18:00", After: "09:00-18:00"},
			{At: base.Add(2 * time.Minute), Actor: "B002 李警官", Via: store.AuditDM, Action: "roster.swap.request", StationID: &tp, Target: "换班 12-05 100%_done"},
			{At: base.Add(3 * time.Minute), Actor: "谁", Via: store.AuditConsole, Address: "10.0.0.9", Action: "signin.failed", Result: store.AuditDenied, Reason: "wrong code"},
		}
		if err := s.AppendAudit(ctx, rows...); err != nil {
			t.Fatal(err)
		}
		list := func(f store.AuditFilter) []string {
			t.Helper()
			got, err := s.ListAudit(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range got {
				out = append(out, r.Action)
			}
			return out
		}
		same := func(name string, got []string, want ...string) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s: got %q, want %q", name, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: got %q, want %q", name, got, want)
				}
			}
		}
		same("all, newest first", list(store.AuditFilter{}), "signin.failed", "roster.swap.request", "roster.shift.update", "signin")
		same("one station", list(store.AuditFilter{StationIDs: []uint{xcl}}), "roster.shift.update", "signin")
		same("action prefix", list(store.AuditFilter{Action: "roster."}), "roster.swap.request", "roster.shift.update")
		same("exact action", list(store.AuditFilter{Action: "signin"}), "signin")
		same("actor", list(store.AuditFilter{ActorID: wang}), "roster.shift.update", "signin")
		same("text in before/after", list(store.AuditFilter{Search: "09:00"}), "roster.shift.update")
		same("wildcards are literal", list(store.AuditFilter{Search: "100%_"}), "roster.swap.request")
		same("no literal match", list(store.AuditFilter{Search: "1000"}))
		same("time range", list(store.AuditFilter{From: base.Add(time.Minute), To: base.Add(3 * time.Minute)}), "roster.swap.request", "roster.shift.update")
		same("limit", list(store.AuditFilter{Limit: 1}), "signin.failed")
		got, _ := s.ListAudit(ctx, store.AuditFilter{Action: "signin"})
		if got[0].Result != store.AuditOK || got[0].Address != "10.0.0.8" {
			t.Fatalf("signin row: %+v", got[0])
		}

		// A change refused as a duplicate writes no audit row.
		msg := store.OutboundMessage{Key: "audit-dup", Purpose: "notice", Platform: "playground", ToUser: "x", Format: "text", Text: "hi"}
		if err := s.Enqueue(ctx, msg); err != nil {
			t.Fatal(err)
		}
		err := s.Apply(ctx, 0, store.Change{Outbound: []store.OutboundMessage{msg}, Audit: []store.AuditEntry{{Actor: "cli", Via: store.AuditCLI, Action: "notice.send"}}})
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("duplicate change: %v", err)
		}
		same("nothing from the refused change", list(store.AuditFilter{Action: "notice.send"}))

		n, err := s.PurgeAuditBefore(ctx, base.Add(90*time.Second))
		if err != nil || n != 2 {
			t.Fatalf("purge: %d %v", n, err)
		}
		same("after purge", list(store.AuditFilter{}), "signin.failed", "roster.swap.request")
	})
}
