package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Actor is who makes a roster or directory change, and through which
// channel: what the audit row records.
type Actor struct {
	// OfficerID is the officer acting; 0 for the CLI or a local admin,
	// who are not officers and may change any station.
	OfficerID uint
	Name      string
	Via       string // store.AuditConsole, AuditAPI, AuditDM or AuditCLI
	Address   string
}

// audit is one audit row of a's change.
func (a Actor) audit(action string, stationID uint, target, before, after string) store.AuditEntry {
	name := a.Name
	if name == "" {
		name = a.Via
	}
	e := store.AuditEntry{ActorOfficerID: ref(a.OfficerID), Actor: name, Via: a.Via, Address: a.Address,
		Action: action, StationID: ref(stationID), Target: target, Before: before, After: after}
	return e
}

// InvalidError refuses an edit whose input is wrong, in words an admin
// acts on; nothing was written.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// ErrForbidden refuses a change the actor may not make (an officer editing
// a roster, an admin another station's).
var ErrForbidden = errors.New("not allowed")

// clockRe is a time of day as the roster writes it.
var clockRe = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)

// mayEdit says whether a may change station's roster and directory:
// the CLI and local admins always, an officer when they are the station's
// admin or a district admin.
func (d *directory) mayEdit(a Actor, stationID uint) bool {
	if a.OfficerID == 0 {
		return true
	}
	o := d.officers[a.OfficerID]
	if o == nil {
		return false
	}
	return d.has(o, roleDistrictAdmin) || (d.has(o, roleAdmin) && o.StationID == stationID)
}

// MayEdit is mayEdit for the console, which shows edit controls only to
// those who may use them.
func (h *Hub) MayEdit(a Actor, stationID uint) bool { return h.dir.Load().mayEdit(a, stationID) }

// ShiftInput is a recurring shift as an admin enters it. Weekday is 0
// (Sunday) to 6, or -1 with DayKind "workday" or "restday" (every working
// day or rest day of the official calendar).
type ShiftInput struct {
	ID        uint
	Version   int64
	StationID uint
	OfficerID uint
	Weekday   int
	DayKind   string
	Start     string
	End       string
	Kind      string // day | night
}

// checkOfficerOf finds officerID among station's staff, or says why not.
func (d *directory) checkOfficerOf(stationID, officerID uint) (*store.Officer, error) {
	o := d.officers[officerID]
	if o == nil {
		return nil, invalid("没有编号为 %d 的民警", officerID)
	}
	if o.StationID != stationID {
		other := "另一个派出所"
		if st := d.stations[o.StationID]; st != nil {
			other = st.Name
		}
		return nil, invalid("%s属于%s，不能排进本所的班", o.Name, other)
	}
	return o, nil
}

func checkHours(start, end string) error {
	if !clockRe.MatchString(start) || !clockRe.MatchString(end) {
		return invalid("时间请写成 08:30 这样的 24 小时制（开始 %q，结束 %q）", start, end)
	}
	if start == end {
		return invalid("班次 %s–%s 长度为零：结束时间要和开始时间不同（跨过午夜的班结束时间早于开始时间）", start, end)
	}
	return nil
}

// SaveShift adds or changes a recurring shift after checking it: valid
// hours of non-zero length, an officer of the station, and no overlap with
// the officer's other shifts on any day of the coming year. The change is
// routed at once here, and in other processes at their next Refresh.
func (h *Hub) SaveShift(ctx context.Context, a Actor, in ShiftInput) (*store.Shift, error) {
	d := h.dir.Load()
	if d.stations[in.StationID] == nil {
		return nil, invalid("没有编号为 %d 的派出所", in.StationID)
	}
	if !d.mayEdit(a, in.StationID) {
		return nil, fmt.Errorf("edit the roster of station %d: %w", in.StationID, ErrForbidden)
	}
	o, err := d.checkOfficerOf(in.StationID, in.OfficerID)
	if err != nil {
		return nil, err
	}
	if err := checkHours(in.Start, in.End); err != nil {
		return nil, err
	}
	switch in.DayKind {
	case "workday", "restday":
		in.Weekday = -1
	case "":
		if in.Weekday < 0 || in.Weekday > 6 {
			return nil, invalid("星期要在 0（周日）到 6（周六）之间，得到 %d", in.Weekday)
		}
	default:
		return nil, invalid("日子类型 %q 不认识：留空（按星期）、workday（工作日）或 restday（休息日）", in.DayKind)
	}
	if in.Kind == "" {
		in.Kind = "day"
	}
	if in.Kind != "day" && in.Kind != "night" {
		return nil, invalid("班次类型 %q 不认识：day 或 night", in.Kind)
	}
	sh := store.Shift{ID: in.ID, Version: in.Version, StationID: in.StationID, OfficerID: in.OfficerID, Weekday: in.Weekday,
		DayKind: in.DayKind, Start: in.Start, End: in.End, Kind: in.Kind}
	shifts := []store.Shift{sh}
	var before string
	for _, s := range d.shifts[o.ID] {
		if s.ID == in.ID {
			before = describeShift(o, s)
			continue
		}
		shifts = append(shifts, s)
	}
	if in.ID != 0 && before == "" {
		return nil, fmt.Errorf("shift %d: %w", in.ID, store.ErrConflict)
	}
	if err := d.overlapCheck(o, shifts, h.now(), h.opts.Location); err != nil {
		return nil, err
	}
	action := "roster.shift.create"
	if in.ID != 0 {
		action = "roster.shift.update"
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit(action, in.StationID, "排班 "+o.Name, before, describeShift(o, sh))}}
	if err := h.store.SaveShift(ctx, &sh, c); err != nil {
		return nil, h.storeErr(err)
	}
	return &sh, h.Reload(ctx)
}

// DeleteShift removes a recurring shift read at version.
func (h *Hub) DeleteShift(ctx context.Context, a Actor, id uint, version int64) error {
	d := h.dir.Load()
	var (
		sh *store.Shift
		o  *store.Officer
	)
	for oid, list := range d.shifts {
		for i := range list {
			if list[i].ID == id {
				sh, o = &list[i], d.officers[oid]
			}
		}
	}
	if sh == nil || o == nil {
		return fmt.Errorf("shift %d: %w", id, store.ErrConflict)
	}
	if !d.mayEdit(a, sh.StationID) {
		return fmt.Errorf("edit the roster of station %d: %w", sh.StationID, ErrForbidden)
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("roster.shift.delete", sh.StationID, "排班 "+o.Name, describeShift(o, *sh), "")}}
	if err := h.store.DeleteShift(ctx, id, version, c); err != nil {
		return h.storeErr(err)
	}
	return h.Reload(ctx)
}

// Override modes: what clicking a shift on a date does.
const (
	OverrideOff   = "off"   // leave: the officer works no shift that day
	OverrideHours = "hours" // other hours that day instead of the rostered ones
	OverrideExtra = "extra" // an extra shift that day, besides any rostered
	OverrideCover = "cover" // a colleague works the officer's shifts that day
)

// OverrideInput is a change of one officer's roster on one date.
type OverrideInput struct {
	StationID uint
	OfficerID uint
	Date      string // 2026-12-05
	Mode      string
	Start     string // hours and extra
	End       string
	CoverID   uint // cover: the colleague
}

// AddOverride changes one officer's roster on one date (see the modes),
// checked like a shift.
func (h *Hub) AddOverride(ctx context.Context, a Actor, in OverrideInput) error {
	d := h.dir.Load()
	loc := h.opts.Location
	if d.stations[in.StationID] == nil {
		return invalid("没有编号为 %d 的派出所", in.StationID)
	}
	if !d.mayEdit(a, in.StationID) {
		return fmt.Errorf("edit the roster of station %d: %w", in.StationID, ErrForbidden)
	}
	ovs, target, err := d.overridesFor(in, loc)
	if err != nil {
		return err
	}
	var after []string
	for _, ov := range ovs {
		after = append(after, describeOverride(d.officers[ov.OfficerID], ov))
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("roster.override.create", in.StationID, target, "", strings.Join(after, "\n"))}}
	if err := h.store.SaveOverrides(ctx, ovs, c); err != nil {
		return h.storeErr(err)
	}
	return h.Reload(ctx)
}

// overridesFor turns an override as entered into rows, checked.
func (d *directory) overridesFor(in OverrideInput, loc *time.Location) ([]store.Override, string, error) {
	o, err := d.checkOfficerOf(in.StationID, in.OfficerID)
	if err != nil {
		return nil, "", err
	}
	day, err := time.ParseInLocation("2006-01-02", in.Date, loc)
	if err != nil {
		return nil, "", invalid("日期 %q 看不懂：请写成 2026-12-05", in.Date)
	}
	base := store.Override{StationID: in.StationID, OfficerID: o.ID, Date: in.Date}
	target := fmt.Sprintf("调班 %s %s", o.Name, in.Date)
	var ovs []store.Override
	switch in.Mode {
	case OverrideOff:
		off := base
		off.Off = true
		ovs = append(ovs, off)
	case OverrideHours, OverrideExtra:
		if err := checkHours(in.Start, in.End); err != nil {
			return nil, "", err
		}
		if in.Mode == OverrideHours {
			off := base
			off.Off = true
			ovs = append(ovs, off)
		}
		x := base
		x.Start, x.End = in.Start, in.End
		ovs = append(ovs, x)
	case OverrideCover:
		c, err := d.checkOfficerOf(in.StationID, in.CoverID)
		if err != nil {
			return nil, "", err
		}
		if c.ID == o.ID {
			return nil, "", invalid("替班的人不能是%s自己", o.Name)
		}
		spans := d.shiftsOn(o, day, loc)
		if len(spans) == 0 {
			return nil, "", invalid("%s在 %s 没有班，无需替班", o.Name, in.Date)
		}
		off := base
		off.Off = true
		ovs = append(ovs, off)
		for _, s := range spans {
			ovs = append(ovs, store.Override{StationID: in.StationID, OfficerID: c.ID, Date: in.Date,
				Start: s.start.In(loc).Format("15:04"), End: s.end.In(loc).Format("15:04")})
		}
		target = fmt.Sprintf("调班 %s→%s %s", o.Name, c.Name, in.Date)
	default:
		return nil, "", invalid("调班方式 %q 不认识：off、hours、extra 或 cover", in.Mode)
	}
	// Every officer touched must not end up with overlapping spans that day.
	for _, oid := range uniqueOfficers(ovs) {
		who := d.officers[oid]
		var mine []store.Override
		for _, ov := range ovs {
			if ov.OfficerID == oid {
				mine = append(mine, ov)
			}
		}
		if err := d.dayOverlapCheck(who, in.Date, mine, day, loc); err != nil {
			return nil, "", err
		}
	}
	return ovs, target, nil
}

func uniqueOfficers(ovs []store.Override) []uint {
	var out []uint
	seen := map[uint]bool{}
	for _, ov := range ovs {
		if !seen[ov.OfficerID] {
			seen[ov.OfficerID] = true
			out = append(out, ov.OfficerID)
		}
	}
	return out
}

// DeleteOverride removes one override row read at version.
func (h *Hub) DeleteOverride(ctx context.Context, a Actor, id uint, version int64) error {
	d := h.dir.Load()
	var ov *store.Override
	for k := range d.overrides {
		for i := range d.overrides[k] {
			if d.overrides[k][i].ID == id {
				ov = &d.overrides[k][i]
			}
		}
	}
	if ov == nil {
		return fmt.Errorf("override %d: %w", id, store.ErrConflict)
	}
	if !d.mayEdit(a, ov.StationID) {
		return fmt.Errorf("edit the roster of station %d: %w", ov.StationID, ErrForbidden)
	}
	o := d.officers[ov.OfficerID]
	c := store.Edit{Audit: []store.AuditEntry{a.audit("roster.override.delete", ov.StationID, fmt.Sprintf("调班 %s %s", officerName(o), ov.Date), describeOverride(o, *ov), "")}}
	if err := h.store.DeleteOverride(ctx, id, version, c); err != nil {
		return h.storeErr(err)
	}
	return h.Reload(ctx)
}

// storeErr turns the store's refusals into what the editor reads.
func (h *Hub) storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrUnknownOfficer):
		return invalid("没有这位民警（可能刚被删除）")
	case errors.Is(err, store.ErrOtherStation):
		return invalid("这位民警属于另一个派出所")
	case errors.Is(err, store.ErrTaken):
		return &InvalidError{Msg: "已被占用：" + err.Error()}
	}
	return err
}

// overlapDays is how far ahead a shift is checked against the officer's
// others: a year covers every weekday against every holiday and make-up
// day of the calendars loaded.
const overlapDays = 366

// overlapCheck works out o's roster with shifts in place of o's own for
// each day of the coming year (the routing's own roster code, holidays and
// overrides applied) and refuses the first two spans that overlap.
func (d *directory) overlapCheck(o *store.Officer, shifts []store.Shift, now time.Time, loc *time.Location) error {
	sim := &directory{shifts: map[uint][]store.Shift{o.ID: shifts}, overrides: d.overrides, holidays: d.holidays}
	n := now.In(loc)
	day := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	var prev []span
	for i := 0; i < overlapDays; i++ {
		cur := sim.rosterDay(o, day.Year(), day.Month(), day.Day(), loc)
		if err := overlapping(o, append(append([]span{}, prev...), cur...), loc); err != nil {
			return err
		}
		prev = cur
		day = day.AddDate(0, 0, 1)
	}
	return nil
}

// dayOverlapCheck is overlapCheck for one date with extra overrides.
func (d *directory) dayOverlapCheck(o *store.Officer, date string, extra []store.Override, day time.Time, loc *time.Location) error {
	ovs := map[string][]store.Override{}
	for k, v := range d.overrides {
		ovs[k] = v
	}
	k := fmt.Sprintf("%d\x00%s", o.ID, date)
	ovs[k] = append(append([]store.Override{}, ovs[k]...), extra...)
	sim := &directory{shifts: d.shifts, overrides: ovs, holidays: d.holidays}
	var all []span
	for _, back := range []int{-1, 0, 1} {
		x := day.AddDate(0, 0, back)
		all = append(all, sim.rosterDay(o, x.Year(), x.Month(), x.Day(), loc)...)
	}
	return overlapping(o, all, loc)
}

// overlapping refuses spans of which two overlap.
func overlapping(o *store.Officer, spans []span, loc *time.Location) error {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.start.Before(a.end) {
			return invalid("%s的班次重叠：%s %s–%s 与 %s %s–%s", o.Name,
				a.start.In(loc).Format("01-02"), a.start.In(loc).Format("15:04"), a.end.In(loc).Format("15:04"),
				b.start.In(loc).Format("01-02"), b.start.In(loc).Format("15:04"), b.end.In(loc).Format("15:04"))
		}
	}
	return nil
}

// describeShift is a shift as the audit trail and the CLI say it.
func describeShift(o *store.Officer, s store.Shift) string {
	return fmt.Sprintf("%s %s %s–%s %s", officerName(o), ShiftDays(s), s.Start, s.End, s.Kind)
}

// ShiftDays is the days a recurring shift falls on, as people read them.
func ShiftDays(s store.Shift) string {
	switch {
	case s.DayKind == "restday":
		return "每个休息日"
	case s.DayKind == "" && s.Weekday >= 0 && s.Weekday <= 6:
		return "每" + weekdayNames[s.Weekday]
	}
	return "每个工作日"
}

func describeOverride(o *store.Officer, ov store.Override) string {
	if ov.Off {
		return fmt.Sprintf("%s %s 休", officerName(o), ov.Date)
	}
	return fmt.Sprintf("%s %s %s–%s", officerName(o), ov.Date, ov.Start, ov.End)
}
