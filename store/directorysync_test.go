package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// An officer and a group dropped from the configuration are gone from
// routing after the next sync, while the tickets they were part of stay
// whole: the answering officer's name, the ticket's chat, its timeline.
// The open ticket of the departed officer passes to the duty account.
func TestSyncRemovesOfficersAndGroupsThatLeftTheConfigAndKeepsTickets(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		before := syncSeed(t, s, districtSeed())
		wang := officerByCode(t, before, "xcl-wang")
		group := groupByChat(t, before, "dingtalk", "cid-xcl-001")
		xcl := stationByCode(t, before, "xcl")
		now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
		answered, _, err := s.CreateTicket(ctx, &store.Ticket{
			StationID: xcl.ID, SourceEventID: "ev-answered", GroupID: &group.ID, Platform: "dingtalk", ChatID: "cid-xcl-001",
			ChatType: "group", ResidentID: "r1", Question: "电动车被偷了", Status: store.StatusAnswered,
			AssigneeID: &wang.ID, AnsweredBy: &wang.ID, FirstResponseAt: &now, CreatedAt: now, UpdatedAt: now,
		}, []store.TicketEvent{{Kind: store.TLAnswered, ActorID: &wang.ID, Detail: "已立案", At: now}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		open, _, err := s.CreateTicket(ctx, &store.Ticket{
			StationID: xcl.ID, SourceEventID: "ev-open", GroupID: &group.ID, Platform: "dingtalk", ChatID: "cid-xcl-001",
			ChatType: "group", ResidentID: "r2", Question: "楼道堆物", Status: store.StatusOpen,
			AssigneeID: &wang.ID, CreatedAt: now, UpdatedAt: now,
		}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}

		seed := districtSeed()
		seed.Officers = seed.Officers[1:] // xcl-wang leaves
		seed.Groups = seed.Groups[1:]     // and so does his group
		seed.Shifts = seed.Shifts[1:]
		seed.Overrides = seed.Overrides[1:]
		seed.Officers = append(seed.Officers, store.SeedOfficer{Code: "xcl-new", Station: "xcl", Name: "孙新", Roles: []string{store.RoleOfficer}})
		rep, err := s.SyncDirectory(ctx, seed, store.SyncOptions{})
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		var lines []string
		for _, c := range rep.Changes {
			lines = append(lines, c.String())
		}
		report := strings.Join(lines, "\n")
		for _, want := range []string{"- 民警 xcl-wang：王建国", "- 群 dingtalk/cid-xcl-001：新成路一居委平安群🏠", "+ 民警 xcl-new：孙新（xcl），officer"} {
			if !strings.Contains(report, want) {
				t.Errorf("sync report lacks %q:\n%s", want, report)
			}
		}

		after := loadDirectory(t, s)
		for _, g := range after.Groups {
			if g.ChatID == "cid-xcl-001" {
				t.Errorf("group cid-xcl-001 still registered: %+v", g)
			}
		}
		kept := officerByCode(t, after, "xcl-wang") // answered a ticket: kept for its name
		if kept.Name != "王建国" || kept.Roles != "" || kept.Aliases != "" {
			t.Errorf("departed officer = %+v, want name kept, roles and aliases cleared", kept)
		}
		for _, id := range after.Identities {
			if id.OfficerID == kept.ID {
				t.Errorf("departed officer keeps identity %s/%s", id.Platform, id.UserID)
			}
		}
		got, err := s.TicketByID(ctx, answered.ID)
		if err != nil {
			t.Fatalf("answered ticket: %v", err)
		}
		if got.AnsweredBy == nil || *got.AnsweredBy != kept.ID || got.Question != "电动车被偷了" || got.ChatID != "cid-xcl-001" {
			t.Errorf("answered ticket = %+v, want it whole, answered by %d", got, kept.ID)
		}
		if tl, err := s.Timeline(ctx, answered.ID); err != nil || len(tl) == 0 {
			t.Errorf("answered ticket's timeline = %v, %v; want it kept", tl, err)
		}
		got, err = s.TicketByID(ctx, open.ID)
		if err != nil {
			t.Fatalf("open ticket: %v", err)
		}
		duty := officerByCode(t, after, "xcl-duty")
		if got.AssigneeID == nil || *got.AssigneeID != duty.ID {
			t.Errorf("open ticket of the departed officer assigned to %v, want the duty account %d", got.AssigneeID, duty.ID)
		}

		// An officer nothing refers to is deleted outright, and a second
		// sync with the same seed has nothing left to do.
		seed.Officers = seed.Officers[:len(seed.Officers)-1]
		if _, err := s.SyncDirectory(ctx, seed, store.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, o := range loadDirectory(t, s).Officers {
			if o.Code == "xcl-new" {
				t.Errorf("unreferenced officer xcl-new kept: %+v", o)
			}
		}
		rep, err = s.SyncDirectory(ctx, seed, store.SyncOptions{})
		if err != nil || len(rep.Changes) != 0 {
			t.Errorf("re-sync = %v, %v; want no changes", rep.Changes, err)
		}
	})
}

// A dry run reports the same changes a sync would make and writes nothing;
// a sync asked to write only into an empty database leaves a populated one
// alone.
func TestSyncDryRunAndOnlyIfEmptyWriteNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		syncSeed(t, s, districtSeed())
		seed := districtSeed()
		seed.Officers[0].Identities = map[string]string{"dingtalk": "staff-wang-2", "wechat": "wangjianguo"}
		seed.Stations[1].SLAMinutes = 30

		want := []string{
			"~ 派出所 jy：时限（分钟） 15 → 30",
			"~ 民警 xcl-wang：身份 dingtalk staff-wang → staff-wang-2",
		}
		for _, o := range []store.SyncOptions{{DryRun: true}, {OnlyIfEmpty: true}} {
			rep, err := s.SyncDirectory(ctx, seed, o)
			if err != nil {
				t.Fatalf("%+v: %v", o, err)
			}
			if o.OnlyIfEmpty && !rep.Skipped {
				t.Errorf("OnlyIfEmpty on a populated database: not skipped, changes %v", rep.Changes)
			}
			if o.DryRun && fmt.Sprint(rep.Changes) != fmt.Sprint(want) {
				t.Errorf("dry run reports %q, want %q", rep.Changes, want)
			}
			d := loadDirectory(t, s)
			if jy := stationByCode(t, d, "jy"); jy.SLAMinutes != 15 {
				t.Errorf("%+v changed station jy's SLA to %d", o, jy.SLAMinutes)
			}
		}
	})
}

// Several processes starting at once on an empty MariaDB database each
// sync the same directory: every one succeeds (no duplicate-key error) and
// the directory ends up written once.
func TestConcurrentSyncsIntoAnEmptyDatabaseAllSucceed(t *testing.T) {
	t.Parallel()
	b := mariadbBackend(t)
	openStore(t, b.opts) // migrated, empty
	const procs = 6
	stores := make([]*store.Store, procs)
	for i := range stores {
		st, err := store.Connect(testContext(t), b.opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	var wg sync.WaitGroup
	errs := make([]error, procs)
	start := make(chan struct{})
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = st.SyncDirectory(testContext(t), districtSeed(), store.SyncOptions{OnlyIfEmpty: i%2 == 0})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	d := loadDirectory(t, stores[0])
	if len(d.Stations) != 2 || len(d.Officers) != 6 || len(d.Groups) != 3 || len(d.Identities) != 7 || len(d.Shifts) != 9 {
		t.Errorf("after %d concurrent syncs: %d stations, %d officers, %d groups, %d identities, %d shifts; want 2, 6, 3, 7, 9",
			procs, len(d.Stations), len(d.Officers), len(d.Groups), len(d.Identities), len(d.Shifts))
	}
}

// Turning a WeCom group into a customer group is shown by a dry run and
// then kept by the sync, so the rules know the hub may not post there.
func TestSyncMarksCustomerGroups(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		syncSeed(t, s, districtSeed())
		seed := districtSeed()
		seed.Groups[2].Kind = store.GroupKindCustomer
		rep, err := s.SyncDirectory(ctx, seed, store.SyncOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"~ 群 wechat/wr-jy-001：类型 普通群 → 客户群"}; fmt.Sprint(rep.Changes) != fmt.Sprint(want) {
			t.Fatalf("dry run reports %q, want %q", rep.Changes, want)
		}
		syncSeed(t, s, seed)
		kinds := map[string]bool{}
		for _, g := range loadDirectory(t, s).Groups {
			kinds[g.ChatID] = g.Customer()
		}
		if !kinds["wr-jy-001"] || kinds["wr-xcl-002"] || kinds["cid-xcl-001"] {
			t.Fatalf("customer groups after sync: %v", kinds)
		}
	})
}
