package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

func auditCount(t *testing.T, s *store.Store) int {
	t.Helper()
	rows, err := s.ListAudit(testContext(t), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

func version(t *testing.T, s *store.Store) int64 {
	t.Helper()
	v, err := s.DirectoryVersion(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func edit(action string) store.Edit {
	return store.Edit{Audit: []store.AuditEntry{{Actor: "test", Via: store.AuditCLI, Action: action}}}
}

// Roster edits are versioned: a stale edit or delete is a conflict and
// changes nothing; each accepted edit commits with its audit row and moves
// the directory revision; a shift for another station's officer is refused.
func TestRosterEditsAreVersionedAndAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		d := syncSeed(t, s, districtSeed())
		xcl, wang, zhao := stationByCode(t, d, "xcl"), officerByCode(t, d, "xcl-wang"), officerByCode(t, d, "jy-zhao")
		v0 := version(t, s)
		sh := store.Shift{StationID: xcl.ID, OfficerID: wang.ID, Weekday: 6, Start: "09:00", End: "12:00", Kind: "day"}
		if err := s.SaveShift(ctx, &sh, edit("roster.shift.create")); err != nil {
			t.Fatal(err)
		}
		if v := version(t, s); v <= v0 {
			t.Errorf("directory version %d after an edit, was %d", v, v0)
		}
		stale := sh
		sh.End = "13:00"
		if err := s.SaveShift(ctx, &sh, edit("roster.shift.update")); err != nil {
			t.Fatal(err)
		}
		stale.End = "11:00"
		if err := s.SaveShift(ctx, &stale, edit("roster.shift.update")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale update: %v, want ErrConflict", err)
		}
		if err := s.DeleteShift(ctx, sh.ID, stale.Version, edit("roster.shift.delete")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale delete: %v, want ErrConflict", err)
		}
		other := store.Shift{StationID: xcl.ID, OfficerID: zhao.ID, Weekday: 6, Start: "09:00", End: "12:00", Kind: "day"}
		if err := s.SaveShift(ctx, &other, edit("roster.shift.create")); !errors.Is(err, store.ErrOtherStation) {
			t.Errorf("another station's officer: %v, want ErrOtherStation", err)
		}
		got, err := s.Shift(ctx, sh.ID)
		if err != nil || got.End != "13:00" || got.Version != 1 {
			t.Errorf("shift now %+v (%v), want the accepted edit at version 1", got, err)
		}
		if n := auditCount(t, s); n != 2 {
			t.Errorf("%d audit rows, want 2 (refused edits leave none)", n)
		}
		if err := s.DeleteShift(ctx, sh.ID, got.Version, edit("roster.shift.delete")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Shift(ctx, sh.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted shift still read: %v", err)
		}
	})
}

// Directory edits: a group edited or deleted meanwhile is a conflict with
// nothing lost; registering an unknown chat takes it off the unknown list;
// templates (whose key column is a reserved word on MySQL) are versioned.
func TestDirectoryEditsConflict(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		d := syncSeed(t, s, districtSeed())
		g := groupByChat(t, d, "wechat", "wr-xcl-002")
		a, b := g, g
		a.Name = "新成路商户群（改）"
		if err := s.SaveGroup(ctx, &a, edit("directory.group.save")); err != nil {
			t.Fatal(err)
		}
		b.Tags = "企业群,夜市"
		if err := s.SaveGroup(ctx, &b, edit("directory.group.save")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("edit over another admin's: %v, want ErrConflict", err)
		}
		// A sync that changes the directory makes forms read before it stale.
		seed := districtSeed()
		seed.Groups[1].Name = "新成路商户群（同步）"
		if err := s.Sync(ctx, seed); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveGroup(ctx, &a, edit("directory.group.save")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("edit over a sync: %v, want ErrConflict", err)
		}
		a = groupByChat(t, loadDirectory(t, s), "wechat", "wr-xcl-002")
		if err := s.DeleteGroup(ctx, a.ID, a.Version, edit("directory.group.delete")); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveGroup(ctx, &a, edit("directory.group.save")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("edit of a deleted group: %v, want ErrConflict", err)
		}
		if _, err := s.RecordUnknownChat(ctx, "dingtalk", "cid-new", "新群", nil, nil); err != nil {
			t.Fatal(err)
		}
		xcl := stationByCode(t, d, "xcl")
		n := store.Group{Platform: "dingtalk", ChatID: "cid-new", Name: "新群", StationID: xcl.ID}
		if err := s.SaveGroup(ctx, &n, edit("directory.group.save")); err != nil {
			t.Fatal(err)
		}
		if u, _ := s.UnknownChats(ctx); len(u) != 0 {
			t.Errorf("registered chat still unknown: %+v", u)
		}
		dup := store.Group{Platform: "dingtalk", ChatID: "cid-new", Name: "重复", StationID: xcl.ID}
		if err := s.SaveGroup(ctx, &dup, edit("directory.group.save")); !errors.Is(err, store.ErrTaken) {
			t.Errorf("a second group on the same chat: %v, want ErrTaken", err)
		}
		var v int64
		for _, tm := range loadDirectory(t, s).Templates {
			if tm.Key == "ack" {
				v = tm.Version
			}
		}
		if err := s.SaveTemplate(ctx, "ack", "收到 #{number}", v, edit("directory.template.update")); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveTemplate(ctx, "ack", "又改 #{number}", v, edit("directory.template.update")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale template edit: %v, want ErrConflict", err)
		}
		st := stationByCode(t, d, "xcl")
		jy := officerByCode(t, d, "jy-zhao")
		st.LeaderID = &jy.ID
		if err := s.UpdateStation(ctx, &st, edit("directory.station.update")); !errors.Is(err, store.ErrOtherStation) {
			t.Errorf("another station's officer as leader: %v", err)
		}
	})
}

// Swaps move only from the state they were read in.
func TestSwapMovesOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		d := syncSeed(t, s, districtSeed())
		xcl, wang, li := stationByCode(t, d, "xcl"), officerByCode(t, d, "xcl-wang"), officerByCode(t, d, "xcl-li")
		sw := store.ShiftSwap{StationID: xcl.ID, RequesterID: wang.ID, ColleagueID: li.ID, Date: "2026-12-07"}
		if err := s.CreateSwap(ctx, &sw, edit("roster.swap.request"), func(*store.ShiftSwap) []store.OutboundMessage { return nil }); err != nil {
			t.Fatal(err)
		}
		first, second := sw, sw
		if err := s.MoveSwap(ctx, &first, store.SwapAccepted, nil, nil, edit("roster.swap.accept")); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveSwap(ctx, &second, store.SwapDeclined, nil, nil, edit("roster.swap.decline")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second move from the same state: %v, want ErrConflict", err)
		}
		v := version(t, s)
		ovs := []store.Override{{StationID: xcl.ID, OfficerID: wang.ID, Date: "2026-12-07", Off: true},
			{StationID: xcl.ID, OfficerID: li.ID, Date: "2026-12-07", Start: "08:30", End: "17:30"}}
		if err := s.MoveSwap(ctx, &first, store.SwapApproved, &li.ID, ovs, edit("roster.swap.approve")); err != nil {
			t.Fatal(err)
		}
		if version(t, s) <= v {
			t.Error("an approved swap did not move the directory version")
		}
		if got := len(loadDirectory(t, s).Overrides); got != 4 {
			t.Errorf("%d overrides after the swap, want 4", got)
		}
	})
}

// Feed tokens are stored hashed, found by the token, and stop on revoke
// or when a new one is made.
func TestCalendarFeedTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		d := syncSeed(t, s, districtSeed())
		wang := officerByCode(t, d, "xcl-wang")
		tok, err := s.NewCalendarFeed(ctx, wang.ID, edit("roster.feed.new"))
		if err != nil {
			t.Fatal(err)
		}
		if id, err := s.CalendarFeedOfficer(ctx, tok); err != nil || id != wang.ID {
			t.Fatalf("feed officer %d, %v", id, err)
		}
		if _, err := s.CalendarFeedOfficer(ctx, tok+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("wrong token: %v", err)
		}
		tok2, err := s.NewCalendarFeed(ctx, wang.ID, edit("roster.feed.new"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CalendarFeedOfficer(ctx, tok); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replaced token still works: %v", err)
		}
		if err := s.RevokeCalendarFeeds(ctx, wang.ID, edit("roster.feed.revoke")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CalendarFeedOfficer(ctx, tok2); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token still works: %v", err)
		}
	})
}

// What export writes, sync takes back with no change, also after edits
// made in the database.
func TestExportRoundTrips(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		cfg, err := configs.Load("")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx, cfg.Seed()); err != nil {
			t.Fatal(err)
		}
		d := loadDirectory(t, s)
		tp, wang, li := stationByCode(t, d, "taiping"), officerByCode(t, d, "wang"), officerByCode(t, d, "li")
		sh := store.Shift{StationID: tp.ID, OfficerID: wang.ID, Weekday: 6, Start: "09:00", End: "12:00", Kind: "day"}
		if err := s.SaveShift(ctx, &sh, edit("roster.shift.create")); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOverrides(ctx, []store.Override{{StationID: tp.ID, OfficerID: li.ID, Date: "2026-12-05", Start: "10:00", End: "14:00"}}, edit("roster.override.create")); err != nil {
			t.Fatal(err)
		}
		var ackVersion int64
		for _, tm := range d.Templates {
			if tm.Key == "ack" {
				ackVersion = tm.Version
			}
		}
		if err := s.SaveTemplate(ctx, "ack", "收到，工单 #{number}，{assignee}稍后答复。", ackVersion, edit("directory.template.update")); err != nil {
			t.Fatal(err)
		}
		g := groupByChat(t, loadDirectory(t, s), "playground", "xincun-elders")
		g.Tags, g.OfficerID = "老年群,重点", &li.ID
		if err := s.SaveGroup(ctx, &g, edit("directory.group.save")); err != nil {
			t.Fatal(err)
		}
		// The edits are differences from the original config (so the round
		// trip below would see them if export lost them).
		if rep, err := s.SyncDirectory(ctx, cfg.Seed(), store.SyncOptions{DryRun: true}); err != nil || len(rep.Changes) < 4 {
			t.Fatalf("the edits are not differences from the original config: %v, %v", rep, err)
		}
		out, extra, err := configs.Export(loadDirectory(t, s), cfg.Holidays)
		if err != nil {
			t.Fatal(err)
		}
		if len(extra) != 0 {
			t.Errorf("holidays not in the calendars: %v", extra)
		}
		path := filepath.Join(t.TempDir(), "exported.yaml")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := configs.LoadForTools(path)
		if err != nil {
			t.Fatalf("the export does not load as a config: %v\n%s", err, out)
		}
		rep, err := s.SyncDirectory(ctx, back.Seed(), store.SyncOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Changes) != 0 {
			t.Errorf("sync of the export would change:\n%v\nexport:\n%s", rep.Changes, out)
		}
	})
}
