package console

import (
	"encoding/csv"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/commands"
)

// The Stats page: the figures of `jingmin stats` per station and group,
// questions per day and per hour of day as server-rendered SVG bar charts,
// the after-hours and FAQ shares, and CSV exports of each table.

type statsPage struct {
	From, To, Station string
	Table             []commands.Stats
	Series            *commands.Series
	DayChart          template.HTML
	HourChart         template.HTML
	// ResponseChart is first-response median and p90 per day; the breach
	// charts are SLA breaches per station, group and officer.
	ResponseChart      template.HTML
	StationBreachChart template.HTML
	GroupBreachChart   template.HTML
	OfficerBreachChart template.HTML
	AfterHoursShare    string
	FAQShare           string
}

// statsRange reads the page's range: the last 7 days by default; "to" is
// included.
func (s *Server) statsRange(r *http.Request) (from, to time.Time, fromText, toText string, err error) {
	loc := s.opts.Rules.Location()
	now := s.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	fromText, toText = r.URL.Query().Get("from"), r.URL.Query().Get("to")
	if toText == "" {
		toText = today.Format(time.DateOnly)
	}
	if fromText == "" {
		fromText = today.AddDate(0, 0, -6).Format(time.DateOnly)
	}
	if from, err = s.day(fromText); err != nil {
		return
	}
	if to, err = s.day(toText); err != nil {
		return
	}
	return from, to.AddDate(0, 0, 1), fromText, toText, nil
}

func (s *Server) statsData(r *http.Request, sess *session) (*statsPage, int, error) {
	from, to, ft, tt, err := s.statsRange(r)
	if err != nil {
		return nil, http.StatusBadRequest, errors.New("日期请写成 2026-11-23 的格式。")
	}
	sp := &statsPage{From: ft, To: tt, Station: r.URL.Query().Get("station")}
	table, series, err := s.opts.Rules.StatsFor(r.Context(), sess.account, sp.Station, from, to)
	var refusal *commands.ActRefusal
	switch {
	case errors.Is(err, commands.ErrNotVisible):
		return nil, http.StatusNotFound, errors.New("没有这个派出所，或您无权查看它的统计。")
	case errors.As(err, &refusal):
		return sp, http.StatusBadRequest, refusal
	case err != nil:
		return nil, http.StatusInternalServerError, err
	}
	sp.Table, sp.Series = table, series
	var days []bar
	for _, d := range series.Days {
		days = append(days, bar{Label: d.Day.Format("01-02"), N: d.N})
	}
	var hours []bar
	for h, n := range series.Hours {
		hours = append(hours, bar{Label: strconv.Itoa(h), N: n})
	}
	sp.DayChart = barChart("每日提问数", days)
	sp.HourChart = barChart("各时段提问数（时）", hours)
	sp.ResponseChart = responseChart(series)
	var stations, groups, officers []bar
	for _, st := range table {
		if st.Group == "" {
			stations = append(stations, bar{Label: st.Station, N: st.Breaches})
		} else {
			groups = append(groups, bar{Label: st.Group, N: st.Breaches})
		}
	}
	for _, o := range series.ByOfficer {
		officers = append(officers, bar{Label: o.Key, N: o.Breaches})
	}
	const noBreach = "该时段没有超时升级"
	sp.StationBreachChart = labelledBarChart("各派出所超时升级数", noBreach, stations)
	sp.GroupBreachChart = labelledBarChart("各群超时升级数", noBreach, groups)
	sp.OfficerBreachChart = labelledBarChart("各民警超时升级数", noBreach, officers)
	sp.AfterHoursShare, sp.FAQShare = share(series.AfterHours, series.Total), share(series.FAQAnswered, series.Total)
	return sp, http.StatusOK, nil
}

func share(n, total int) string {
	if total == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%（%d/%d）", float64(n)*100/float64(total), n, total)
}

func (s *Server) statsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	sp, code, err := s.statsData(r, sess)
	p := page{Title: "统计", Nav: "stats", Account: sess.account, Stations: s.opts.Rules.Stations(sess.account), Stats: sp}
	if err != nil && code == http.StatusInternalServerError {
		s.internal(w, r, err)
		return
	}
	if err != nil {
		if sp == nil {
			s.fail(w, r, code, err.Error())
			return
		}
		p.Error = err.Error()
	}
	s.render(w, r, code, "stats", p)
}

// statsCSV exports one table of the page: "groups" (per station and group)
// or "days" (questions per day).
func (s *Server) statsCSV(w http.ResponseWriter, r *http.Request, sess *session) {
	sp, code, err := s.statsData(r, sess)
	if err != nil {
		if code == http.StatusInternalServerError {
			s.internal(w, r, err)
			return
		}
		s.fail(w, r, code, err.Error())
		return
	}
	table := r.URL.Query().Get("table")
	var rows [][]string
	switch table {
	case "groups":
		rows = append(rows, []string{"station", "group", "questions", "answered", "auto_answered", "emergencies", "unanswered", "sla_breaches", "first_response_median_min", "first_response_p90_min"})
		for _, st := range sp.Table {
			rows = append(rows, []string{st.Station, st.Group, itoa(st.Questions), itoa(st.Answered), itoa(st.AutoAnswered), itoa(st.Emergencies),
				itoa(st.Unanswered), itoa(st.Breaches), minutes(st.MedianMin), minutes(st.P90Min)})
		}
	case "days":
		rows = append(rows, []string{"day", "questions"})
		for _, d := range sp.Series.Days {
			rows = append(rows, []string{d.Day.Format(time.DateOnly), itoa(d.N)})
		}
	case "hours":
		rows = append(rows, []string{"hour", "questions"})
		for h, n := range sp.Series.Hours {
			rows = append(rows, []string{itoa(h), itoa(n)})
		}
	case "response":
		rows = append(rows, []string{"day", "questions", "answered", "first_response_median_min", "first_response_p90_min"})
		byDay := map[string]commands.SeriesStats{}
		for _, d := range sp.Series.ByDay {
			byDay[d.Key] = d
		}
		for _, d := range sp.Series.Days {
			p := byDay[d.Day.Format(time.DateOnly)]
			rows = append(rows, []string{d.Day.Format(time.DateOnly), itoa(p.Questions), itoa(p.Answered), minutes(p.MedianMin), minutes(p.P90Min)})
		}
	case "stations":
		rows = append(rows, []string{"station", "questions", "sla_breaches", "first_response_median_min", "first_response_p90_min"})
		for _, st := range sp.Table {
			if st.Group == "" {
				rows = append(rows, []string{st.Station, itoa(st.Questions), itoa(st.Breaches), minutes(st.MedianMin), minutes(st.P90Min)})
			}
		}
	case "officers":
		rows = append(rows, []string{"officer", "questions", "answered", "sla_breaches", "first_response_median_min", "first_response_p90_min"})
		for _, o := range sp.Series.ByOfficer {
			rows = append(rows, []string{o.Key, itoa(o.Questions), itoa(o.Answered), itoa(o.Breaches), minutes(o.MedianMin), minutes(o.P90Min)})
		}
	default:
		s.fail(w, r, http.StatusBadRequest, "请选择要导出的表：groups、stations、officers、days、hours 或 response。")
		return
	}
	e := sess.account.Audit("stats.export", s.now())
	e.Target = fmt.Sprintf("统计导出 %s（%s 至 %s）", table, sp.From, sp.To)
	if err := s.opts.Store.AppendAudit(r.Context(), e); err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="stats-%s.csv"`, table))
	w.Write([]byte("\ufeff"))
	cw := csv.NewWriter(w)
	for _, row := range rows {
		for i := range row {
			row[i] = csvCell(row[i])
		}
		cw.Write(row)
	}
	cw.Flush()
}

func itoa(n int) string { return strconv.Itoa(n) }

func minutes(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

// bar is one bar of a chart.
type bar struct {
	Label string
	N     int
}

// barChart draws bars of questions (see labelledBarChart).
func barChart(title string, bars []bar) template.HTML {
	return labelledBarChart(title, "该时段没有提问", bars)
}

// labelledBarChart draws bars as an SVG, scaled to the largest; an empty
// range (or one of zeros) draws the axis and says empty instead. Labels are
// escaped.
func labelledBarChart(title, empty string, bars []bar) template.HTML {
	const w, h, left, bottom, top = 640, 220, 36, 28, 22
	max := 0
	for _, b := range bars {
		max = maxInt(max, b.N)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, w, h, html.EscapeString(title))
	fmt.Fprintf(&sb, `<text x="%d" y="15" class="title">%s</text>`, left, html.EscapeString(title))
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, h-bottom, w-4, h-bottom)
	if max == 0 || len(bars) == 0 {
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="empty">%s</text></svg>`, w/2-60, h/2, html.EscapeString(empty))
		return template.HTML(sb.String())
	}
	fmt.Fprintf(&sb, `<text x="4" y="%d" class="tick">%d</text>`, top+8, max)
	step := float64(w-left-8) / float64(len(bars))
	every := 1 + len(bars)/16 // label at most 16 bars
	for i, b := range bars {
		bh := float64(h-bottom-top) * float64(b.N) / float64(max)
		x := float64(left) + float64(i)*step
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar" data-n="%d"><title>%s：%d</title></rect>`,
			x+1, float64(h-bottom)-bh, min(step-2, 80), bh, b.N, html.EscapeString(b.Label), b.N)
		if i%every == 0 {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" class="tick">%s</text>`, x+1, h-bottom+16, html.EscapeString(b.Label))
		}
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// responseChart draws first-response median and p90 per day, in minutes, as
// two lines over the range's days; a day with nothing answered leaves a gap.
// A range with no answer at all draws the axis and says so.
func responseChart(series *commands.Series) template.HTML {
	const w, h, left, bottom, top = 640, 220, 36, 28, 22
	const title = "首次答复用时（分钟，每日中位数与 P90）"
	byDay := map[string]commands.SeriesStats{}
	for _, d := range series.ByDay {
		byDay[d.Key] = d
	}
	type point struct {
		label       string
		median, p90 *float64
	}
	points := make([]point, 0, len(series.Days))
	max := 0.0
	for _, d := range series.Days {
		p := byDay[d.Day.Format(time.DateOnly)]
		points = append(points, point{label: d.Day.Format("01-02"), median: p.MedianMin, p90: p.P90Min})
		if p.P90Min != nil && *p.P90Min > max {
			max = *p.P90Min
		}
		if p.MedianMin != nil && *p.MedianMin > max {
			max = *p.MedianMin
		}
	}
	answered := false
	for _, p := range points {
		answered = answered || p.median != nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, w, h, title)
	fmt.Fprintf(&sb, `<text x="%d" y="15" class="title">%s</text>`, left, title)
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, h-bottom, w-4, h-bottom)
	if !answered {
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="empty">该时段没有答复</text></svg>`, w/2-60, h/2)
		return template.HTML(sb.String())
	}
	if max == 0 {
		max = 1 // every answer within the first bucket: draw them on the axis
	}
	fmt.Fprintf(&sb, `<text x="4" y="%d" class="tick">%.0f</text>`, top+8, max)
	step := float64(w-left-8) / float64(len(points))
	every := 1 + len(points)/16
	y := func(v float64) float64 { return float64(h-bottom) - float64(h-bottom-top)*v/max }
	for _, line := range []struct {
		class, name string
		pick        func(point) *float64
	}{
		{"median", "中位数", func(p point) *float64 { return p.median }},
		{"p90", "P90", func(p point) *float64 { return p.p90 }},
	} {
		var path strings.Builder
		pen := "M"
		for i, p := range points {
			v := line.pick(p)
			if v == nil {
				pen = "M" // a day without answers breaks the line
				continue
			}
			x := float64(left) + (float64(i)+0.5)*step
			fmt.Fprintf(&path, "%s%.1f %.1f ", pen, x, y(*v))
			pen = "L"
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" class="dot %s" data-min="%.1f"><title>%s %s：%.1f 分钟</title></circle>`,
				x, y(*v), line.class, *v, html.EscapeString(p.label), line.name, *v)
		}
		fmt.Fprintf(&sb, `<path d="%s" class="line %s" fill="none"/>`, strings.TrimSpace(path.String()), line.class)
	}
	for i, p := range points {
		if i%every == 0 {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" class="tick">%s</text>`, float64(left)+float64(i)*step+1, h-bottom+16, html.EscapeString(p.label))
		}
	}
	fmt.Fprintf(&sb, `<text x="%d" y="15" class="legend median">— 中位数</text><text x="%d" y="15" class="legend p90">— P90</text>`, w-150, w-70)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}
