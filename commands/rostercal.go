package commands

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// CalendarEntry is one stretch of duty on the calendar, read from the same
// roster code routing uses, so what the calendar shows is what routes.
type CalendarEntry struct {
	Officer    *store.Officer
	Start, End time.Time
	Kind       string // day | night | override
	// Shift or Override is the row the entry comes from: editing it, or
	// overriding the shift on this date, starts from here.
	Shift    *store.Shift
	Override *store.Override
}

// CalendarDay is one date of a station's calendar.
type CalendarDay struct {
	Date time.Time // midnight, in the hub's zone
	// Workday is the official calendar's answer; DayKind is "holiday" or
	// "workday" (a make-up working day, 调休上班) for a listed date, with
	// its name.
	Workday     bool
	DayKind     string
	HolidayName string
	Entries     []CalendarEntry
	// Off lists the officers on leave that day (an "off" override).
	Off []*store.Officer
}

// Calendar is a station's roster for days dates from from's date on.
func (h *Hub) Calendar(stationID uint, from time.Time, days int) ([]CalendarDay, error) {
	d := h.dir.Load()
	st := d.stations[stationID]
	if st == nil {
		return nil, invalid("没有编号为 %d 的派出所", stationID)
	}
	loc := h.opts.Location
	f := from.In(loc)
	day := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	out := make([]CalendarDay, 0, days)
	for i := 0; i < days; i++ {
		key := day.Format("2006-01-02")
		cd := CalendarDay{Date: day, Workday: d.isWorkday(day), DayKind: d.holidays[key], HolidayName: d.holidayNames[key]}
		for _, o := range d.staff[stationID] {
			for _, s := range d.shiftsOn(o, day, loc) {
				cd.Entries = append(cd.Entries, CalendarEntry{Officer: o, Start: s.start, End: s.end, Kind: s.kind, Shift: s.shift, Override: s.override})
			}
			for _, ov := range d.overrides[fmt.Sprintf("%d\x00%s", o.ID, key)] {
				if ov.Off {
					cd.Off = append(cd.Off, o)
					break
				}
			}
		}
		sort.SliceStable(cd.Entries, func(a, b int) bool { return cd.Entries[a].Start.Before(cd.Entries[b].Start) })
		out = append(out, cd)
		day = day.AddDate(0, 0, 1)
	}
	return out, nil
}

// OffOverride is the "off" override row of officer on date, if any: what
// undoing a leave or a swap deletes.
func (h *Hub) OffOverride(officerID uint, date string) *store.Override {
	d := h.dir.Load()
	for i, ov := range d.overrides[fmt.Sprintf("%d\x00%s", officerID, date)] {
		if ov.Off {
			return &d.overrides[fmt.Sprintf("%d\x00%s", officerID, date)][i]
		}
	}
	return nil
}

// Station, AllStations and Staff read the directory routing uses.
func (h *Hub) Station(id uint) *store.Station { return h.dir.Load().stations[id] }

func (h *Hub) AllStations() []*store.Station {
	d := h.dir.Load()
	out := make([]*store.Station, 0, len(d.stations))
	for _, st := range d.stations {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (h *Hub) Staff(stationID uint) []*store.Officer { return h.dir.Load().staff[stationID] }

// Shifts lists a station's recurring shifts, by officer.
func (h *Hub) Shifts(stationID uint) []store.Shift {
	d := h.dir.Load()
	var out []store.Shift
	for _, o := range d.staff[stationID] {
		out = append(out, d.shifts[o.ID]...)
	}
	return out
}

// ShiftLabel is a shift as people read it ("王建国 每个工作日 08:30–17:30 day").
func (h *Hub) ShiftLabel(s store.Shift) string {
	return describeShift(h.dir.Load().officers[s.OfficerID], s)
}

// icalDays is the stretch an officer's feed covers: a week back and eight
// ahead, each shift expanded to its own event (holidays, make-up days,
// overrides and approved swaps applied, which an RRULE could not say).
const (
	icalBack  = 7
	icalAhead = 56
)

// CalendarFeed is officer's shifts as an RFC 5545 calendar, as of now.
func (h *Hub) CalendarFeed(officerID uint, now time.Time) (string, error) {
	d := h.dir.Load()
	o := d.officers[officerID]
	if o == nil {
		return "", invalid("没有编号为 %d 的民警", officerID)
	}
	loc := h.opts.Location
	st := d.stations[o.StationID]
	var b strings.Builder
	line := func(s string) { b.WriteString(foldICal(s)) }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//jingmin//roster//ZH")
	line("CALSCALE:GREGORIAN")
	line("METHOD:PUBLISH")
	line("X-WR-CALNAME:" + icalText(o.Name+" 值班"))
	line("X-WR-TIMEZONE:Asia/Shanghai")
	line("BEGIN:VTIMEZONE")
	line("TZID:Asia/Shanghai")
	line("BEGIN:STANDARD")
	line("DTSTART:19700101T000000")
	line("TZOFFSETFROM:+0800")
	line("TZOFFSETTO:+0800")
	line("TZNAME:CST")
	line("END:STANDARD")
	line("END:VTIMEZONE")
	n := now.In(loc)
	day := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -icalBack)
	stamp := now.UTC().Format("20060102T150405Z")
	for i := 0; i < icalBack+icalAhead; i++ {
		for _, s := range d.shiftsOn(o, day, loc) {
			kind := map[string]string{"day": "白班", "night": "夜班", "override": "调班"}[s.kind]
			if kind == "" {
				kind = s.kind
			}
			summary := kind
			if st != nil {
				summary = st.Name + " " + kind
			}
			line("BEGIN:VEVENT")
			line(fmt.Sprintf("UID:shift-%d-%s@jingmin", o.ID, s.start.In(loc).Format("20060102T1504")))
			line("DTSTAMP:" + stamp)
			line("DTSTART;TZID=Asia/Shanghai:" + s.start.In(loc).Format("20060102T150405"))
			line("DTEND;TZID=Asia/Shanghai:" + s.end.In(loc).Format("20060102T150405"))
			line("SUMMARY:" + icalText(summary))
			if name := d.holidayNames[day.Format("2006-01-02")]; name != "" {
				line("DESCRIPTION:" + icalText(name))
			}
			line("END:VEVENT")
		}
		day = day.AddDate(0, 0, 1)
	}
	line("END:VCALENDAR")
	return b.String(), nil
}

// icalText escapes a TEXT value (RFC 5545 3.3.11).
func icalText(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`, "\r", "").Replace(s)
}

// foldICal ends a content line with CRLF, folded so no line passes 75
// octets, never inside a UTF-8 character (RFC 5545 3.1).
func foldICal(s string) string {
	var b strings.Builder
	width := 0
	for _, r := range s {
		n := len(string(r))
		if width+n > 75 {
			b.WriteString("\r\n ")
			width = 1
		}
		b.WriteRune(r)
		width += n
	}
	b.WriteString("\r\n")
	return b.String()
}
