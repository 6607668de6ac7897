package commands

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Stats are the numbers a station reports: how many questions, how fast the
// first human answer came, how many tickets breached the SLA (escalated).
// Each figure is named for what it counts.
type Stats struct {
	Station   string `json:"station"`
	Group     string `json:"group,omitempty"` // empty: the station's total
	Questions int    `json:"questions"`
	// Answered: an officer answered (AutoAnswered ones are not in it).
	Answered     int `json:"answered"`
	AutoAnswered int `json:"auto_answered"`
	Emergencies  int `json:"emergencies"`
	// Unanswered: open or claimed, no answer yet (an answered ticket not
	// yet closed is not in it).
	Unanswered int `json:"unanswered"`
	// Breaches: escalated at least once for want of an answer in time.
	Breaches int `json:"sla_breaches"`
	// MedianMin and P90Min are minutes to the first human answer; nil when
	// nothing was answered, so "no answers" never reads as "answered at once".
	MedianMin *float64 `json:"first_response_median_min"`
	P90Min    *float64 `json:"first_response_p90_min"`
}

// Stats computes per-group and per-station figures for tickets created in
// [from, to); stationCode "" means every station.
func (h *Hub) Stats(ctx context.Context, stationCode string, from, to time.Time) ([]Stats, error) {
	d := h.dir.Load()
	var stationID uint
	if stationCode != "" {
		st := d.stationByCode(stationCode)
		if st == nil {
			return nil, fmt.Errorf("no station with code %q", stationCode)
		}
		stationID = st.ID
	}
	// Counted and bucketed in the database: a year of a district is a
	// million tickets, and none of them is loaded here.
	counts, buckets, err := h.store.TicketStats(ctx, stationID, from, to)
	if err != nil {
		return nil, err
	}
	type acc struct {
		s     Stats
		waits []bucket
	}
	rows := map[string]*acc{}
	get := func(station, group string) *acc {
		k := station + "\x00" + group
		if rows[k] == nil {
			rows[k] = &acc{s: Stats{Station: station, Group: group}}
		}
		return rows[k]
	}
	place := func(stationID uint, groupID *uint, platform, chatType, chatID string) (string, string) {
		station := fmt.Sprint(stationID)
		if st := d.stations[stationID]; st != nil {
			station = st.Name
		}
		return station, chatName(d, &store.Ticket{GroupID: groupID, Platform: platform, ChatType: chatType, ChatID: chatID})
	}
	for _, c := range counts {
		station, group := place(c.StationID, c.GroupID, c.Platform, c.ChatType, c.ChatID)
		for _, a := range []*acc{get(station, group), get(station, "")} {
			a.s.Questions += c.Questions
			a.s.Emergencies += c.Emergencies
			a.s.Breaches += c.Breaches
			a.s.AutoAnswered += c.AutoAnswered
			a.s.Answered += c.Answered
			a.s.Unanswered += c.Unanswered
		}
	}
	for _, b := range buckets {
		station, group := place(b.StationID, b.GroupID, b.Platform, b.ChatType, b.ChatID)
		for _, a := range []*acc{get(station, group), get(station, "")} {
			a.waits = append(a.waits, bucket{minutes: float64(b.Tenths) / 10, n: b.N})
		}
	}
	out := make([]Stats, 0, len(rows))
	for _, a := range rows {
		a.s.MedianMin = percentile(a.waits, 0.5)
		a.s.P90Min = percentile(a.waits, 0.9)
		out = append(out, a.s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Station != out[j].Station {
			return out[i].Station < out[j].Station
		}
		return out[i].Group != "" && (out[j].Group == "" || out[i].Group < out[j].Group)
	})
	return out, nil
}

// bucket is n first answers that came after about minutes.
type bucket struct {
	minutes float64
	n       int
}

// percentile by nearest rank over buckets, rounded to a tenth of a minute;
// nil for no values.
func percentile(bs []bucket, p float64) *float64 {
	total := 0
	for _, b := range bs {
		total += b.n
	}
	if total == 0 {
		return nil
	}
	s := append([]bucket(nil), bs...)
	sort.Slice(s, func(i, j int) bool { return s[i].minutes < s[j].minutes })
	rank := max(1, min(int(float64(total)*p+0.999999), total))
	seen := 0
	for _, b := range s {
		seen += b.n
		if seen >= rank {
			v := float64(int(b.minutes*10+0.5)) / 10
			return &v
		}
	}
	return nil
}

func (d *directory) stationByCode(code string) *store.Station {
	for _, st := range d.stations {
		if st.Code == code {
			return st
		}
	}
	return nil
}

// Who explains who would answer a question in a group at a given time: the
// `jingmin roster who` command, and a way for admins to check a roster.
func (h *Hub) Who(stationCode, group string, at time.Time) (string, error) {
	d := h.dir.Load()
	st := d.stationByCode(stationCode)
	if st == nil {
		return "", fmt.Errorf("no station with code %q", stationCode)
	}
	var g *store.Group
	if group != "" {
		for _, cand := range d.groupByID {
			if cand.StationID == st.ID && (cand.ChatID == group || cand.Name == group) {
				g = cand
				break
			}
		}
		if g == nil {
			return "", fmt.Errorf("station %s has no group %q (give its chat id or name)", stationCode, group)
		}
	}
	loc := h.opts.Location
	r := d.route(st, g, nil, at, loc)
	var b strings.Builder
	kind := "工作日"
	if !d.isWorkday(at.In(loc)) {
		kind = "休息日"
	}
	fmt.Fprintf(&b, "%s %s（%s）\n", st.Name, at.In(loc).Format("2006-01-02 15:04 Mon"), kind)
	if g != nil {
		own := "无"
		if g.OfficerID != nil && d.officers[*g.OfficerID] != nil {
			own = d.officers[*g.OfficerID].Name
		}
		fmt.Fprintf(&b, "群：%s，本群民警：%s\n", g.Name, own)
	}
	who := officerName(r.Officer)
	switch r.Reason {
	case "own_officer":
		fmt.Fprintf(&b, "答复人：%s（本群民警，在班 %s–%s）\n", who, r.Shift.start.In(loc).Format("15:04"), r.Shift.end.In(loc).Format("15:04"))
	case "on_duty":
		fmt.Fprintf(&b, "答复人：%s（本群民警不在班，由所内在班人员接手，%s–%s）\n", who, r.Shift.start.In(loc).Format("15:04"), r.Shift.end.In(loc).Format("15:04"))
	case "next_in_line":
		fmt.Fprintf(&b, "答复人：%s（在班人员都已“值班 关”，由所领导接手）\n", who)
	default:
		fmt.Fprintf(&b, "答复人：%s（无人在班，由值班号接收：FAQ 自动答复，其余登记待办，紧急情况呼叫值班民警）\n", who)
		if next, ok := d.nextStart(st, at, loc); ok {
			fmt.Fprintf(&b, "下一班开始：%s\n", next.In(loc).Format("2006-01-02 15:04"))
		}
	}
	var switches []string
	for _, o := range d.staff[st.ID] {
		on, until, ok := d.dutySwitch(o, at, loc)
		if !ok {
			continue
		}
		what := "值班 关"
		if on {
			what = "值班 开"
		}
		end := "本班结束"
		if !until.IsZero() {
			end = until.In(loc).Format("01-02 15:04")
		}
		switches = append(switches, fmt.Sprintf("%s %s（至 %s）", o.Name, what, end))
	}
	if len(switches) > 0 {
		fmt.Fprintf(&b, "值班开关：%s\n", strings.Join(switches, "；"))
	}
	fmt.Fprintf(&b, "升级链：%s", chainNames(d.escalationChain(st, r.Officer, at, loc)))
	return b.String(), nil
}

// SeriesStats is one point of a chart: the tickets filed on one day, in one
// hour of the day, or answered (else held) by one officer.
type SeriesStats struct {
	Key string `json:"key"` // "2026-11-23", "09", or the officer's name
	Stats
	// AfterHours were asked out of hours: with AutoAnswered, the shares
	// the duty account and the FAQ carry.
	AfterHours int `json:"after_hours"`
}

// Series computes Stats per day, hour of the day (the hub's zone) or
// officer for tickets created in [from, to); stationCode "" means every
// station. It asks the store's one query layer, as Stats does.
func (h *Hub) Series(ctx context.Context, stationCode string, from, to time.Time, by store.StatsBy) ([]SeriesStats, error) {
	d := h.dir.Load()
	var stationID uint
	if stationCode != "" {
		st := d.stationByCode(stationCode)
		if st == nil {
			return nil, fmt.Errorf("no station with code %q", stationCode)
		}
		stationID = st.ID
	}
	points, err := h.store.TicketSeries(ctx, stationID, from, to, by, h.opts.Location)
	if err != nil {
		return nil, err
	}
	out := make([]SeriesStats, 0, len(points))
	for _, p := range points {
		s := SeriesStats{Key: p.Key, AfterHours: p.AfterHours, Stats: Stats{Questions: p.Questions, Answered: p.Answered, AutoAnswered: p.AutoAnswered,
			Emergencies: p.Emergencies, Unanswered: p.Unanswered, Breaches: p.Breaches}}
		if stationCode != "" {
			s.Station = stationCode
		}
		if by == store.ByOfficer {
			s.Key = "—"
			var id uint
			if _, err := fmt.Sscan(p.Key, &id); err == nil && d.officers[id] != nil {
				s.Key = d.officers[id].Name
			}
		}
		waits := make([]bucket, 0, len(p.Buckets))
		for _, b := range p.Buckets {
			waits = append(waits, bucket{minutes: float64(b.Tenths) / 10, n: b.N})
		}
		s.MedianMin, s.P90Min = percentile(waits, 0.5), percentile(waits, 0.9)
		out = append(out, s)
	}
	return out, nil
}
