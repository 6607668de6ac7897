package commands_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// id is the row id of the officer with code.
func (r *rig) id(code string) uint {
	r.t.Helper()
	for id, c := range r.codes {
		if c == code {
			return id
		}
	}
	r.t.Fatalf("no officer %s", code)
	return 0
}

// rosterText is the station's recurring shifts as people read them.
func (r *rig) rosterText(station string) string {
	var b strings.Builder
	for _, s := range r.hub.Shifts(r.stations[station]) {
		b.WriteString(r.hub.ShiftLabel(s) + "\n")
	}
	return b.String()
}

func (r *rig) audit(action string) []store.AuditEntry {
	r.t.Helper()
	rows, err := r.st.ListAudit(r.ctx(), store.AuditFilter{Action: action})
	if err != nil {
		r.t.Fatal(err)
	}
	return rows
}

// A bad shift is refused with a clear reason and leaves the roster and
// the audit trail as they were.
func TestShiftEditsAreChecked(t *testing.T) {
	t.Parallel()
	admin := commands.Actor{Name: "cli", Via: store.AuditCLI}
	cases := []struct {
		name  string
		actor func(r *rig) commands.Actor
		in    func(r *rig) commands.ShiftInput
		want  string // in the error; "forbidden" for ErrForbidden
	}{
		{"zero length", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 6, Start: "09:00", End: "09:00"}
		}, "长度为零"},
		{"overlaps the officer's workday shift", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 1, Start: "12:00", End: "13:00"}
		}, "班次重叠"},
		{"night shift runs into the next morning's", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 1, Start: "23:00", End: "09:00", Kind: "night"}
		}, "班次重叠"},
		{"unknown officer", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: 9999, Weekday: 6, Start: "09:00", End: "12:00"}
		}, "没有编号为 9999 的民警"},
		{"another station's officer", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("sun"), Weekday: 6, Start: "09:00", End: "12:00"}
		}, "孙强属于新成派出所"},
		{"bad clock", nil, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 6, Start: "25:00", End: "12:00"}
		}, "24 小时制"},
		{"an officer may not edit the roster", func(r *rig) commands.Actor {
			return commands.Actor{OfficerID: r.id("wang"), Name: "王建国", Via: store.AuditConsole}
		}, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 6, Start: "09:00", End: "12:00"}
		}, "forbidden"},
		{"another station's admin may not either", func(r *rig) commands.Actor {
			return commands.Actor{OfficerID: r.id("sun"), Name: "孙强", Via: store.AuditConsole}
		}, func(r *rig) commands.ShiftInput {
			return commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 6, Start: "09:00", End: "12:00"}
		}, "forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "2026-11-23 10:00")
			before := r.rosterText("taiping")
			a := admin
			if c.actor != nil {
				a = c.actor(r)
			}
			_, err := r.hub.SaveShift(r.ctx(), a, c.in(r))
			var bad *commands.InvalidError
			switch {
			case c.want == "forbidden":
				if !errors.Is(err, commands.ErrForbidden) {
					t.Fatalf("got %v, want a refusal", err)
				}
			case !errors.As(err, &bad) || !strings.Contains(bad.Msg, c.want):
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			if got := r.rosterText("taiping"); got != before {
				t.Errorf("roster changed by a refused edit:\n%s\nwas:\n%s", got, before)
			}
			if rows := r.audit("roster."); len(rows) != 0 {
				t.Errorf("a refused edit left audit rows: %+v", rows)
			}
		})
	}
}

// A shift added through the rules routes at once in this process, in
// another worker at its next Refresh (one cheap read), and leaves an audit
// row; an edit made on a stale copy is a conflict, nothing lost.
func TestShiftChangeRoutesEverywhereWithoutRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 07:00") // a Monday, before anyone's shift
	other := r.secondHub()
	at := r.clock.Now()
	who := func(h *commands.Hub) string {
		out, err := h.Who("taiping", "hexie", at)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if w := who(r.hub); !strings.Contains(w, "太平警务值班号") {
		t.Fatalf("before the change, want the duty account:\n%s", w)
	}
	a := commands.Actor{OfficerID: r.id("zhao"), Name: "zhao 赵刚", Via: store.AuditConsole, Address: "127.0.0.1"}
	sh, err := r.hub.SaveShift(r.ctx(), a, commands.ShiftInput{StationID: r.stations["taiping"], OfficerID: r.id("wang"), Weekday: 1, Start: "06:00", End: "08:00"})
	if err != nil {
		t.Fatal(err)
	}
	if w := who(r.hub); !strings.Contains(w, "答复人：王建国") {
		t.Errorf("this process does not route to the new shift:\n%s", w)
	}
	if w := who(other); strings.Contains(w, "答复人：王建国") {
		t.Fatalf("the other worker saw the change before refreshing (the test proves nothing):\n%s", w)
	}
	if changed, err := other.Refresh(r.ctx()); err != nil || !changed {
		t.Fatalf("refresh: changed %v, %v", changed, err)
	}
	if w := who(other); !strings.Contains(w, "答复人：王建国") {
		t.Errorf("the other worker does not route to the new shift after refreshing:\n%s", w)
	}
	if changed, err := other.Refresh(r.ctx()); err != nil || changed {
		t.Errorf("a second refresh with nothing new reloaded: %v, %v", changed, err)
	}
	rows := r.audit("roster.shift.create")
	if len(rows) != 1 || rows[0].Via != store.AuditConsole || !strings.Contains(rows[0].After, "每周一 06:00–08:00") || rows[0].ActorOfficerID == nil {
		t.Errorf("audit rows: %+v", rows)
	}
	// Another admin edits the same shift from the copy read before the
	// first edit: refused, the first edit stands.
	edit := commands.ShiftInput{ID: sh.ID, Version: sh.Version, StationID: sh.StationID, OfficerID: sh.OfficerID, Weekday: 1, Start: "06:00", End: "07:00"}
	if _, err := r.hub.SaveShift(r.ctx(), a, edit); err != nil {
		t.Fatal(err)
	}
	edit.Start, edit.End = "05:00", "06:30"
	if _, err := other.SaveShift(r.ctx(), a, edit); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale edit: got %v, want a conflict", err)
	}
	if err := r.hub.DeleteShift(r.ctx(), a, sh.ID, sh.Version); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale delete: got %v, want a conflict", err)
	}
	if !strings.Contains(r.rosterText("taiping"), "每周一 06:00–07:00") {
		t.Errorf("the edit that won is not in the roster:\n%s", r.rosterText("taiping"))
	}
}

// Clicking a shift gives overrides: leave, other hours, a colleague's
// cover; each routes at once and is checked.
func TestOverrides(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 07:00")
	a := commands.Actor{Name: "cli", Via: store.AuditCLI}
	st := r.stations["taiping"]
	// wang off on Tuesday: hexie goes to whoever else is on duty.
	if err := r.hub.AddOverride(r.ctx(), a, commands.OverrideInput{StationID: st, OfficerID: r.id("wang"), Date: "2026-11-24", Mode: commands.OverrideOff}); err != nil {
		t.Fatal(err)
	}
	w, _ := r.hub.Who("taiping", "hexie", at(t, "2026-11-24 10:00"))
	if strings.Contains(w, "答复人：王建国") || !strings.Contains(w, "答复人：李明") {
		t.Errorf("wang on leave still routed, or li not:\n%s", w)
	}
	// An extra shift overlapping li's own is refused.
	err := r.hub.AddOverride(r.ctx(), a, commands.OverrideInput{StationID: st, OfficerID: r.id("li"), Date: "2026-11-24", Mode: commands.OverrideExtra, Start: "17:00", End: "19:00"})
	var bad *commands.InvalidError
	if !errors.As(err, &bad) || !strings.Contains(bad.Msg, "重叠") {
		t.Errorf("overlapping extra shift: %v", err)
	}
	// chen covers li on Wednesday.
	if err := r.hub.AddOverride(r.ctx(), a, commands.OverrideInput{StationID: st, OfficerID: r.id("li"), Date: "2026-11-25", Mode: commands.OverrideCover, CoverID: r.id("chen")}); err != nil {
		t.Fatal(err)
	}
	days, err := r.hub.Calendar(st, at(t, "2026-11-25 00:00"), 1)
	if err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, e := range days[0].Entries {
		on = append(on, e.Officer.Name+" "+e.Start.In(shanghai).Format("15:04")+"-"+e.End.In(shanghai).Format("15:04")+" "+e.Kind)
	}
	want := "王建国 08:30-17:30 day|陈晓 08:30-17:30 override|张伟 17:30-22:00 night"
	if got := strings.Join(on, "|"); got != want {
		t.Errorf("calendar of 11-25:\n got %s\nwant %s", got, want)
	}
	if len(days[0].Off) != 1 || days[0].Off[0].Name != "李明" {
		t.Errorf("off that day: %v", days[0].Off)
	}
	if n := len(r.audit("roster.override.create")); n != 2 {
		t.Errorf("%d override audit rows, want 2", n)
	}
}

// Swaps by DM: asked, accepted, approved (or not needed, or declined);
// each step tells the people concerned and is audited; a colleague of
// another station is refused by name.
func TestSwapByDM(t *testing.T) {
	t.Parallel()
	type step struct {
		from, text string
		want       []msg
	}
	cases := []struct {
		name     string
		approval bool
		steps    []step
		status   string
		covered  bool // chen works wang's Tuesday
		audited  int
	}{
		{"approved by the admin", true, []step{
			{"wang", "换班 11-24 陈辅警", []msg{{bot.PurposeNotice, "dm chen", []string{"王建国请您在11月24日（周二）（08:30–17:30）替班", "同意换班 S1"}}, {bot.PurposeReply, "chat wang", []string{"已向陈晓发出换班请求 S1"}}}},
			{"chen", "同意换班 S1", []msg{{bot.PurposeNotice, "dm wang", []string{"陈晓已同意换班 S1", "等待所管理员批准"}}, {bot.PurposeNotice, "dm zhao", []string{"批准换班 S1"}}, {bot.PurposeReply, "chat chen", []string{"在等管理员批准"}}}},
			{"wang", "批准换班 S1", []msg{{bot.PurposeReply, "chat wang", []string{"只有本所管理员可以批准"}}}},
			{"zhao", "批准换班 S1", []msg{{bot.PurposeNotice, "dm wang", []string{"换班 S1 已生效", "陈晓替王建国"}}, {bot.PurposeNotice, "dm chen", []string{"换班 S1 已生效"}}, {bot.PurposeReply, "chat zhao", []string{"生效"}}}},
		}, store.SwapApproved, true, 3},
		{"no approval needed", false, []step{
			{"wang", "换班 11-24 陈晓", []msg{{bot.PurposeNotice, "dm chen", []string{"替班"}}, {bot.PurposeReply, "chat wang", []string{"S1"}}}},
			{"chen", "同意换班 1", []msg{{bot.PurposeNotice, "dm wang", []string{"已生效"}}, {bot.PurposeNotice, "dm chen", []string{"已生效"}}, {bot.PurposeReply, "chat chen", []string{"生效"}}}},
		}, store.SwapApproved, true, 2},
		{"declined by the colleague", true, []step{
			{"wang", "换班 11-24 陈晓", []msg{{bot.PurposeNotice, "dm chen", []string{"替班"}}, {bot.PurposeReply, "chat wang", []string{"S1"}}}},
			{"li", "同意换班 S1", []msg{{bot.PurposeReply, "chat li", []string{"只有被请求替班的陈晓可以同意"}}}},
			{"chen", "拒绝换班 S1", []msg{{bot.PurposeNotice, "dm wang", []string{"陈晓没有同意换班 S1"}}, {bot.PurposeReply, "chat chen", []string{"被同事拒绝"}}}},
			{"chen", "同意换班 S1", []msg{{bot.PurposeReply, "chat chen", []string{"不能再同意"}}}},
		}, store.SwapDeclined, false, 2},
		{"another station's colleague", true, []step{
			{"wang", "换班 11-24 孙强", []msg{{bot.PurposeReply, "chat wang", []string{"孙强属于新成派出所，只能和本所的同事换班"}}}},
		}, "", false, 0},
		{"a colleague on shift the same hours", true, []step{
			{"wang", "换班 11-24 李明", []msg{{bot.PurposeReply, "chat wang", []string{"李明的班次重叠"}}}},
		}, "", false, 0},
		{"a day without a shift", true, []step{
			{"wang", "换班 11-28 陈晓", []msg{{bot.PurposeReply, "chat wang", []string{"王建国在 2026-11-28 没有班"}}}},
		}, "", false, 0},
		{"no colleague named", true, []step{
			{"wang", "换班 11-24", []msg{{bot.PurposeReply, "chat wang", []string{"换班 12-05 李警官"}}}},
		}, "", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "2026-11-23 10:00", func(o *commands.Options) { o.SwapApproval = c.approval })
			r.written()
			for _, s := range c.steps {
				r.handle(r.dm(s.from, s.text))
				r.expect(s.from+": "+s.text, s.want...)
			}
			swaps, err := r.hub.Swaps(r.ctx(), r.stations["taiping"])
			if err != nil {
				t.Fatal(err)
			}
			if c.status == "" {
				if len(swaps) != 0 {
					t.Errorf("a refused request left swaps: %+v", swaps)
				}
				return
			}
			if len(swaps) != 1 || swaps[0].Status != c.status {
				t.Fatalf("swaps: %+v, want one %s", swaps, c.status)
			}
			w, _ := r.hub.Who("taiping", "hexie", at(t, "2026-11-24 10:00"))
			days, _ := r.hub.Calendar(r.stations["taiping"], at(t, "2026-11-24 00:00"), 1)
			chenOn := false
			for _, e := range days[0].Entries {
				chenOn = chenOn || e.Officer.Name == "陈晓"
			}
			if chenOn != c.covered || strings.Contains(w, "答复人：王建国") == c.covered {
				t.Errorf("chen on the calendar %v, want %v; routing:\n%s", chenOn, c.covered, w)
			}
			for _, row := range r.audit("roster.swap.") {
				if row.Via != store.AuditDM || row.ActorOfficerID == nil {
					t.Errorf("swap audit row not attributed to a DM: %+v", row)
				}
			}
			if n := len(r.audit("roster.swap.")); n != c.audited {
				t.Errorf("%d swap audit rows, want %d: one per step taken", n, c.audited)
			}
		})
	}
}

// An officer's iCalendar feed: their own shifts, expanded with holidays,
// make-up days and overrides applied, in Asia/Shanghai.
func TestCalendarFeed(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	feed, err := r.hub.CalendarFeed(r.id("li"), r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(feed, "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line longer than 75 octets: %q", line)
		}
	}
	golden.File(t, "testdata/ical_li.golden", []byte(feed))
}
