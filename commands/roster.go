package commands

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the roster is in Asia/Shanghai even on an image with no zoneinfo

	"github.com/jingminhub/jingmin/store"
)

// legacyDutyOnFor is how long a "值班 开" recorded without an end (before
// officers had duty_until) lasts.
const legacyDutyOnFor = 12 * time.Hour

// span is one stretch of duty.
type span struct {
	start, end time.Time
	kind       string // day | night | override | manual
	// shift and override are the roster rows the span comes from (one of
	// them, or neither for a duty switch), so the calendar can offer the
	// very row to edit.
	shift    *store.Shift
	override *store.Override
}

func (s span) String() string {
	return fmt.Sprintf("%s %s-%s", s.kind, s.start.Format("01-02 15:04"), s.end.Format("15:04"))
}

// isWorkday applies the official calendar: a listed holiday is a rest day, a
// listed make-up day (调休) is a working day, otherwise Monday to Friday work.
func (d *directory) isWorkday(day time.Time) bool {
	switch d.holidays[day.Format("2006-01-02")] {
	case "holiday":
		return false
	case "workday":
		return true
	}
	wd := day.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// dayKey is one officer's calendar day in one zone.
type dayKey struct {
	officer uint
	y       int
	m       time.Month
	d       int
	loc     *time.Location
}

// maxRosterDays bounds the memo of rostered days: a directory lives until
// the next change (a duty switch, a sync), and a few thousand officers over
// the next two weeks stay below it; past it, days are worked out again,
// which the stretches of stationNow make rare.
const maxRosterDays = 50000

// shiftsOn lists an officer's rostered spans starting on the calendar day of
// day (in loc), overrides applied. Every question asks it of the officers
// it may go to, and each new stretch (stationNow) of every officer of the
// station for today and yesterday and the next two weeks; the answer cannot
// change while the directory lives, so each day is worked out once. Every
// worker reads the memo at once, so it is a sync.Map, read without a lock.
// The slice is shared: callers only read it.
func (d *directory) shiftsOn(o *store.Officer, day time.Time, loc *time.Location) []span {
	y, m, dd := day.In(loc).Date()
	k := dayKey{o.ID, y, m, dd, loc}
	if out, ok := d.rosterDays.Load(k); ok {
		return out.([]span)
	}
	out := d.rosterDay(o, y, m, dd, loc)
	if d.rosterCount.Load() < maxRosterDays {
		if _, loaded := d.rosterDays.LoadOrStore(k, out); !loaded {
			d.rosterCount.Add(1)
		}
	}
	return out
}

// rosterDay works out shiftsOn.
func (d *directory) rosterDay(o *store.Officer, y int, m time.Month, dd int, loc *time.Location) []span {
	midnight := time.Date(y, m, dd, 0, 0, 0, 0, loc)
	date := midnight.Format("2006-01-02")
	at := func(clock string) time.Time {
		mins := clockMinutes(clock)
		return time.Date(y, m, dd, mins/60, mins%60, 0, 0, loc)
	}
	mk := func(start, end, kind string) span {
		s, e := at(start), at(end)
		if !e.After(s) {
			e = e.AddDate(0, 0, 1) // past midnight
		}
		return span{start: s, end: e, kind: kind}
	}
	var out []span
	off := false
	for i, ov := range d.overrides[fmt.Sprintf("%d\x00%s", o.ID, date)] {
		if ov.Off {
			off = true
			continue
		}
		sp := mk(ov.Start, ov.End, "override")
		sp.override = &d.overrides[fmt.Sprintf("%d\x00%s", o.ID, date)][i]
		out = append(out, sp)
	}
	if off {
		return out
	}
	work := d.isWorkday(midnight)
	for i, s := range d.shifts[o.ID] {
		switch {
		case s.DayKind == "workday" && !work, s.DayKind == "restday" && work:
			continue
		case s.DayKind == "" && time.Weekday(s.Weekday) != midnight.Weekday():
			continue
		}
		sp := mk(s.Start, s.End, s.Kind)
		sp.shift = &d.shifts[o.ID][i]
		out = append(out, sp)
	}
	return out
}

// rosteredAt returns the rostered span covering t, if any.
func (d *directory) rosteredAt(o *store.Officer, t time.Time, loc *time.Location) (span, bool) {
	for _, back := range []int{0, -1} { // yesterday's night shift may run into today
		for _, s := range d.shiftsOn(o, t.AddDate(0, 0, back), loc) {
			if !t.Before(s.start) && t.Before(s.end) {
				return s, true
			}
		}
	}
	return span{}, false
}

// onDuty is the roster with the officer's own switch applied: "值班 开"
// puts them on duty from DutySince until DutyUntil, "值班 关" takes them
// out of routing until then (their next shift).
func (d *directory) onDuty(o *store.Officer, t time.Time, loc *time.Location) (span, bool) {
	s, rostered := d.rosteredAt(o, t, loc)
	if o.DutyOverride != nil && o.DutySince != nil && !t.Before(*o.DutySince) {
		since := *o.DutySince
		switch {
		case *o.DutyOverride:
			end := since.Add(legacyDutyOnFor)
			if o.DutyUntil != nil {
				end = *o.DutyUntil
			}
			if t.Before(end) {
				return span{start: since, end: end, kind: "manual"}, true
			}
		case o.DutyUntil != nil:
			if t.Before(*o.DutyUntil) {
				return span{}, false
			}
		case rostered && !s.start.After(since):
			return span{}, false // signed off this shift
		}
	}
	return s, rostered
}

// dutySwitch is an officer's "值班 开/关" in force at t, if any: on or off,
// and until when.
func (d *directory) dutySwitch(o *store.Officer, t time.Time, loc *time.Location) (on bool, until time.Time, ok bool) {
	if o.DutyOverride == nil || o.DutySince == nil || t.Before(*o.DutySince) {
		return false, time.Time{}, false
	}
	if *o.DutyOverride {
		s, on := d.onDuty(o, t, loc)
		return true, s.end, on && s.kind == "manual"
	}
	if _, on := d.onDuty(o, t, loc); on {
		return false, time.Time{}, false
	}
	if o.DutyUntil != nil {
		return false, *o.DutyUntil, true
	}
	s, _ := d.rosteredAt(o, t, loc)
	return false, s.end, true
}

// nextStart finds when the next shift of anyone but the duty account starts
// at station after t, looking two weeks ahead.
func (d *directory) nextStart(st *store.Station, t time.Time, loc *time.Location) (time.Time, bool) {
	n := d.stretchAt(st, t, loc)
	return n.next, n.hasNext
}

// scanNextStart works out nextStart.
func (d *directory) scanNextStart(st *store.Station, t time.Time, loc *time.Location) (time.Time, bool) {
	var best time.Time
	for day := 0; day <= 14; day++ {
		for _, o := range d.staff[st.ID] {
			if d.has(o, roleDutyAccount) {
				continue
			}
			for _, s := range d.shiftsOn(o, t.AddDate(0, 0, day), loc) {
				if s.start.After(t) && (best.IsZero() || s.start.Before(best)) {
					best = s.start
				}
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// nextShiftOf finds when o's next rostered shift starts after t, looking
// two weeks ahead.
func (d *directory) nextShiftOf(o *store.Officer, t time.Time, loc *time.Location) (time.Time, bool) {
	for day := 0; day <= 14; day++ {
		var best time.Time
		for _, s := range d.shiftsOn(o, t.AddDate(0, 0, day), loc) {
			if s.start.After(t) && (best.IsZero() || s.start.Before(best)) {
				best = s.start
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// rolePriority orders who takes a question when the group's own officer is
// away: the duty officer first, then other officers, then auxiliaries.
// Leaders and admins are the escalation chain, not the first line.
func rolePriority(o *store.Officer) int {
	switch {
	case o.HasRole(store.RoleDutyAccount):
		return -1
	case o.HasRole(store.RoleDutyOfficer):
		return 3
	case o.HasRole(store.RoleOfficer):
		return 2
	case o.HasRole(store.RoleAuxiliary):
		return 1
	}
	return -1
}

// anyRosteredAt: someone of the station's first line has a rostered shift
// at t, whether or not they signed off.
func (d *directory) anyRosteredAt(st *store.Station, t time.Time, loc *time.Location) bool {
	return d.stretchAt(st, t, loc).rostered
}

// Route says who answers a question, and why.
type Route struct {
	Officer *store.Officer
	// Reason is one of: own_officer, mentioned, on_duty, next_in_line
	// (everyone rostered signed off: the leader), duty_account.
	Reason string
	Shift  span
}

// AfterHours is true when nobody but the duty account covers the question.
func (r Route) AfterHours() bool { return r.Reason == "duty_account" }

// route applies DESIGN rule 1: the officer the resident @-ed if on duty, the
// group's own officer if on duty, else the station's officer on duty now,
// else the duty account.
func (d *directory) route(st *store.Station, g *store.Group, mentioned *store.Officer, t time.Time, loc *time.Location) Route {
	if mentioned != nil && mentioned.StationID == st.ID && !d.has(mentioned, roleDutyAccount) {
		if s, ok := d.onDuty(mentioned, t, loc); ok {
			return Route{Officer: mentioned, Reason: "mentioned", Shift: s}
		}
	}
	if g != nil && g.OfficerID != nil {
		if o := d.officers[*g.OfficerID]; o != nil {
			if s, ok := d.onDuty(o, t, loc); ok {
				return Route{Officer: o, Reason: "own_officer", Shift: s}
			}
		}
	}
	if o, s := d.bestOnDuty(st, t, loc, nil); o != nil {
		return Route{Officer: o, Reason: "on_duty", Shift: s}
	}
	// Working hours whose rostered staff all signed off ("值班 关") are not
	// out of hours: the question goes to the next in line, the leader.
	if l := d.leader(st); l != nil && d.anyRosteredAt(st, t, loc) {
		return Route{l, "next_in_line", span{}}
	}
	return Route{d.dutyAccount(st), "duty_account", span{}}
}

// bestOnDuty picks the on-duty officer of highest role priority, lowest id
// first, optionally requiring role.
func (d *directory) bestOnDuty(st *store.Station, t time.Time, loc *time.Location, only func(*store.Officer) bool) (*store.Officer, span) {
	if only == nil {
		n := d.stretchAt(st, t, loc)
		return n.best, n.bestSpan
	}
	return d.scanOnDuty(st, t, loc, only)
}

// scanOnDuty works out bestOnDuty by asking every officer of the station.
func (d *directory) scanOnDuty(st *store.Station, t time.Time, loc *time.Location, only func(*store.Officer) bool) (*store.Officer, span) {
	var (
		best *store.Officer
		bp   int
		bs   span
	)
	for _, o := range d.staff[st.ID] {
		p := d.priority(o)
		if p < 0 || (only != nil && !only(o)) {
			continue
		}
		s, ok := d.onDuty(o, t, loc)
		if !ok {
			continue
		}
		if best == nil || p > bp {
			best, bp, bs = o, p, s
		}
	}
	return best, bs
}

// dutyOfficerNow is who covers the station at t for escalations and pages:
// an on-duty duty officer, else any officer on duty, else the duty account.
func (d *directory) dutyOfficerNow(st *store.Station, t time.Time, loc *time.Location) *store.Officer {
	n := d.stretchAt(st, t, loc)
	if n.bestDuty != nil {
		return n.bestDuty
	}
	if n.best != nil {
		return n.best
	}
	return d.dutyAccount(st)
}

// stationNow is what a station's roster says over a stretch of time in
// which none of it can change: who of the first line is on duty (the best
// of all, and the best duty officer), whether anyone of it is rostered, and
// when the next shift starts. Every question asks this of its station, and
// working it out means asking every officer of the station, so it is worked
// out once per stretch: the stretch ends at the next shift start or end, duty
// switch boundary or midnight, and a directory lives until the roster, an
// override or a duty switch changes.
type stationNow struct {
	loc         *time.Location
	from, until time.Time // the stretch: from <= t < until

	best, bestDuty *store.Officer
	bestSpan       span
	rostered       bool
	next           time.Time
	hasNext        bool
}

// stationStretches are the two stretches of a station last worked out,
// newest first: workers whose clocks straddle a boundary, or a clock that
// goes back and forth, find theirs in hand instead of replacing each
// other's.
type stationStretches [2]*stationNow

// stretchAt is the station's roster at t, from a stretch in hand when t is in
// one.
func (d *directory) stretchAt(st *store.Station, t time.Time, loc *time.Location) *stationNow {
	c := d.stationNow[st.ID]
	var held stationStretches
	if c != nil {
		if p := c.Load(); p != nil {
			held = *p
		}
		for _, n := range held {
			if n != nil && n.loc == loc && !t.Before(n.from) && t.Before(n.until) {
				return n
			}
		}
	}
	n := d.workOutNow(st, t, loc)
	if c != nil {
		c.Store(&stationStretches{n, held[0]})
	}
	return n
}

// workOutNow asks every officer of the station what they do at t, and
// finds the stretch around t in which none of the answers changes.
func (d *directory) workOutNow(st *store.Station, t time.Time, loc *time.Location) *stationNow {
	y, m, dd := t.In(loc).Date()
	midnight := time.Date(y, m, dd, 0, 0, 0, 0, loc)
	n := &stationNow{loc: loc, from: midnight, until: midnight.AddDate(0, 0, 1)}
	edge := func(x time.Time) {
		switch {
		case !x.After(t):
			if x.After(n.from) {
				n.from = x
			}
		case x.Before(n.until):
			n.until = x
		}
	}
	// rosteredAt reads the days of t and of t.AddDate(0, 0, -1); where the
	// latter is a plain 24 hours back its day turns 24 hours after a
	// midnight, not at one.
	yy, ym, yd := t.AddDate(0, 0, -1).In(loc).Date()
	ymid := time.Date(yy, ym, yd, 0, 0, 0, 0, loc)
	edge(ymid.Add(24 * time.Hour))
	edge(ymid.AddDate(0, 0, 1).Add(24 * time.Hour))
	var bp, dp int
	for _, o := range d.staff[st.ID] {
		p := d.priority(o)
		if p < 0 {
			if !d.has(o, roleDutyAccount) {
				// nextStart counts everyone but the duty account.
				for _, s := range d.shiftsOn(o, t, loc) {
					edge(s.start)
				}
			}
			continue
		}
		for _, back := range []int{0, -1} {
			for _, s := range d.shiftsOn(o, t.AddDate(0, 0, back), loc) {
				edge(s.start)
				edge(s.end)
			}
		}
		if o.DutySince != nil {
			edge(*o.DutySince)
			edge(o.DutySince.Add(legacyDutyOnFor))
		}
		if o.DutyUntil != nil {
			edge(*o.DutyUntil)
		}
		if _, ok := d.rosteredAt(o, t, loc); ok {
			n.rostered = true
		}
		s, ok := d.onDuty(o, t, loc)
		if !ok {
			continue
		}
		if n.best == nil || p > bp {
			n.best, bp, n.bestSpan = o, p, s
		}
		if d.has(o, roleDutyOfficer) && (n.bestDuty == nil || p > dp) {
			n.bestDuty, dp = o, p
		}
	}
	if n.next, n.hasNext = d.scanNextStart(st, t, loc); n.hasNext {
		edge(n.next)
	}
	return n
}

// escalationChain is who a ticket held by cur goes to, in order, while
// nobody answers it at t: cur, then the station's duty officer on duty at t
// (dutyOfficerNow), then the leader. Each person appears once, and someone
// already past in that order is not gone back to: a ticket the leader holds
// has a chain of one. `roster who`, the escalation DM and the escalation
// timer all read it from here, so what admins are shown is what happens.
func (d *directory) escalationChain(st *store.Station, cur *store.Officer, t time.Time, loc *time.Location) []*store.Officer {
	ladder := []*store.Officer{d.dutyOfficerNow(st, t, loc), d.leader(st)}
	var chain []*store.Officer
	if cur != nil {
		chain = append(chain, cur)
		for i, o := range ladder {
			if o != nil && o.ID == cur.ID {
				ladder = ladder[i+1:]
				break
			}
		}
	}
next:
	for _, o := range ladder {
		if o == nil {
			continue
		}
		for _, in := range chain {
			if in.ID == o.ID {
				continue next
			}
		}
		chain = append(chain, o)
	}
	return chain
}

// chainNames is a chain as people read it.
func chainNames(chain []*store.Officer) string {
	names := make([]string, len(chain))
	for i, o := range chain {
		names[i] = o.Name
	}
	return strings.Join(names, " → ")
}

// clockMinutes reads "HH:MM" (validated when the config loaded) as minutes
// after midnight; it is on the routing path of every question, so no fmt.
func clockMinutes(clock string) int {
	if len(clock) != 5 || clock[2] != ':' {
		return 0
	}
	d := func(b byte) int { return int(b - '0') }
	return (d(clock[0])*10+d(clock[1]))*60 + d(clock[3])*10 + d(clock[4])
}
