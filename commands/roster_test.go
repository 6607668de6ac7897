package commands

import (
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

var sh = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

func when(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

// demo is a station with a group officer on weekday days, an auxiliary on
// rest days, an evening duty officer, a leader and the duty account.
func demo() (*directory, *store.Station, *store.Group) {
	d := newDirectory(demoRoster())
	return d, d.stations[1], d.groups["playground\x00hexie"]
}

// demoRoster is what demo builds its directory from.
func demoRoster() *store.Directory {
	return &store.Directory{
		Stations: []store.Station{{ID: 1, Code: "tp", Name: "太平派出所", SLAMinutes: 15, DutyAccountID: ptr(uint(6)), LeaderID: ptr(uint(5))}},
		Groups:   []store.Group{{ID: 1, Platform: "playground", ChatID: "hexie", Name: "和谐小区", StationID: 1, OfficerID: ptr(uint(1))}},
		Officers: []store.Officer{
			{ID: 1, StationID: 1, Name: "王建国", Roles: "officer", Aliases: "王警官,老王"},
			{ID: 2, StationID: 1, Name: "李明", Roles: "officer", Aliases: "李警官"},
			{ID: 3, StationID: 1, Name: "陈晓", Roles: "auxiliary"},
			{ID: 4, StationID: 1, Name: "张伟", Roles: "duty_officer"},
			{ID: 5, StationID: 1, Name: "赵刚", Roles: "leader,admin"},
			{ID: 6, StationID: 1, Name: "值班号", Roles: "duty_account"},
			{ID: 7, StationID: 1, Name: "王建国", Roles: "auxiliary", Aliases: "老王"}, // a namesake
		},
		Shifts: []store.Shift{
			{OfficerID: 1, Weekday: -1, DayKind: "workday", Start: "08:30", End: "17:30", Kind: "day"},
			{OfficerID: 2, Weekday: -1, DayKind: "workday", Start: "08:30", End: "17:30", Kind: "day"},
			{OfficerID: 3, Weekday: -1, DayKind: "restday", Start: "09:00", End: "17:00", Kind: "day"},
			{OfficerID: 4, Weekday: 5, Start: "20:00", End: "02:00", Kind: "night"}, // Friday night into Saturday
		},
		Overrides: []store.Override{{OfficerID: 1, Date: "2026-11-24", Off: true}, {OfficerID: 4, Date: "2026-11-25", Start: "12:00", End: "14:00"}},
		Holidays:  []store.Holiday{{Date: "2026-10-01", Kind: "holiday"}, {Date: "2026-10-10", Kind: "workday"}},
	}
}

func TestRouteFollowsRosterCalendarAndOverrides(t *testing.T) {
	d, st, g := demo()
	tests := []struct {
		name, at, want, reason string
	}{
		{"weekday morning: own officer", "2026-11-23 10:00", "王建国", "own_officer"},
		{"shift end is exclusive", "2026-11-23 17:30", "值班号", "duty_account"},
		{"own officer on leave: colleague on duty", "2026-11-24 10:00", "李明", "on_duty"},
		{"Sunday: auxiliary on rest-day shift", "2026-11-22 10:00", "陈晓", "on_duty"},
		{"national holiday on a Thursday is a rest day", "2026-10-01 10:00", "陈晓", "on_duty"},
		{"make-up Saturday is a working day", "2026-10-10 10:00", "王建国", "own_officer"},
		{"Friday night shift", "2026-11-27 23:00", "张伟", "on_duty"},
		{"overnight shift runs past midnight", "2026-11-28 01:30", "张伟", "on_duty"},
		{"and ends", "2026-11-28 02:00", "值班号", "duty_account"},
		{"extra shift from an override", "2026-11-25 13:00", "王建国", "own_officer"},
		{"night: duty account", "2026-11-23 23:00", "值班号", "duty_account"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := d.route(st, g, nil, when(tc.at), sh)
			if officerName(r.Officer) != tc.want || r.Reason != tc.reason {
				t.Errorf("route at %s = %s (%s), want %s (%s)", tc.at, officerName(r.Officer), r.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestDutySwitchOverridesRosterUntilNextShift(t *testing.T) {
	d, st, g := demo()
	wang := d.officers[1]
	wang.DutyOverride, wang.DutySince = ptr(false), ptr(when("2026-11-23 12:00"))
	if r := d.route(st, g, nil, when("2026-11-23 13:00"), sh); r.Reason != "on_duty" || r.Officer.Name != "李明" {
		t.Errorf("after 值班 关 the group went to %s (%s), want 李明", officerName(r.Officer), r.Reason)
	}
	if r := d.route(st, g, nil, when("2026-11-25 09:00"), sh); r.Officer.Name != "王建国" {
		t.Errorf("next day's shift ignored the roster: %s", officerName(r.Officer))
	}
	wang.DutyOverride, wang.DutySince = ptr(true), ptr(when("2026-11-23 20:00"))
	if r := d.route(st, g, nil, when("2026-11-23 23:00"), sh); r.Officer.Name != "王建国" {
		t.Errorf("值班 开 at night not honoured: %s", officerName(r.Officer))
	}
	if r := d.route(st, g, nil, when("2026-11-24 08:01"), sh); r.Reason != "duty_account" {
		t.Errorf("值班 开 should lapse after 12 hours; got %s", officerName(r.Officer))
	}
}

func TestMentionedOfficerTakesQuestionOnlyWhenOnDuty(t *testing.T) {
	d, st, g := demo()
	li := d.officers[2]
	if r := d.route(st, g, li, when("2026-11-23 10:00"), sh); r.Officer != li || r.Reason != "mentioned" {
		t.Errorf("mentioned on-duty officer not chosen: %s (%s)", officerName(r.Officer), r.Reason)
	}
	if r := d.route(st, g, li, when("2026-11-22 10:00"), sh); r.Officer == li {
		t.Errorf("mentioned officer chosen while off duty")
	}
}

func TestNamesResolveOnlyWhenUnambiguous(t *testing.T) {
	d, _, _ := demo()
	for _, tc := range []struct{ name, want string }{
		{"李警官", "李明"}, {"@李明", "李明"}, {"王警官", "王建国"},
		{"老王", ""},  // two officers answer to it: never guess
		{"王建国", ""}, // namesakes
		{"不存在", ""},
	} {
		if got := d.officerByName(1, tc.name); (got == nil && tc.want != "") || (got != nil && got.Name != tc.want) {
			t.Errorf("officerByName(%q) = %v, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNextStartAndHumanTime(t *testing.T) {
	d, st, _ := demo()
	next, ok := d.nextStart(st, when("2026-11-23 23:00"), sh)
	if !ok || !next.Equal(when("2026-11-24 08:30")) {
		t.Fatalf("next start after Monday 23:00 = %v, want Tuesday 08:30", next)
	}
	if got := humanTime(next, when("2026-11-23 23:00"), sh); got != "明天（周二）08:30" {
		t.Errorf("humanTime = %q", got)
	}
	if got := humanTime(when("2026-11-24 08:30"), when("2026-11-24 01:00"), sh); got != "今天08:30" {
		t.Errorf("humanTime after midnight = %q", got)
	}
}
