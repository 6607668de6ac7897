package rosterpage

import (
	"net/http"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

type dayCell struct {
	commands.CalendarDay
	InMonth bool
	Today   bool
}

type shiftRow struct {
	Shift   store.Shift
	Officer *store.Officer
	Days    string
}

type swapRow struct {
	Swap                 store.ShiftSwap
	Requester, Colleague *store.Officer
	CanAnswer            bool // the viewer is the colleague asked
	CanDecide            bool // the viewer approves swaps
}

type rosterData struct {
	Viewer                    Viewer
	Station                   *store.Station
	Stations                  []*store.Station
	View, Date                string
	Title                     string
	Prev, Next, Today         string
	Weeks                     [][]dayCell
	Staff                     []*store.Officer
	Shifts                    []shiftRow
	Swaps                     []swapRow
	Msg, Err                  string
	CanEdit, CanSwap, CanFeed bool
	CanApprove                bool
	Me                        *store.Officer
	FeedURL                   string
	HasFeed                   bool
	Approval                  bool
	Form                      map[string]string // the refused form's values, kept
}

func (h *Handler) rosterPage(w http.ResponseWriter, r *http.Request) {
	h.showRoster(w, r, http.StatusOK, "")
}

// showRoster renders the roster page; errMsg is a refused change's reason.
func (h *Handler) showRoster(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	stID := h.station(r)
	v, ok := h.viewer(w, r, ViewRoster, stID)
	if !ok {
		return
	}
	st := h.rules.Station(stID)
	if st == nil {
		http.Error(w, "没有这个派出所", http.StatusNotFound)
		return
	}
	loc := h.opts.Location
	now := h.opts.Now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	if t, err := time.ParseInLocation("2006-01-02", r.FormValue("date"), loc); err == nil {
		day = t
	}
	view := r.FormValue("view")
	if view != "month" {
		view = "week"
	}
	monday := func(t time.Time) time.Time { return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)) }
	var from time.Time
	var days int
	var prev, next time.Time
	title := ""
	if view == "week" {
		from, days = monday(day), 7
		prev, next = day.AddDate(0, 0, -7), day.AddDate(0, 0, 7)
		title = from.Format("2006年1月2日") + " 起一周"
	} else {
		first := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc)
		from = monday(first)
		last := first.AddDate(0, 1, -1)
		end := monday(last).AddDate(0, 0, 7)
		days = int(end.Sub(from).Hours()/24 + 0.5)
		prev, next = first.AddDate(0, -1, 0), first.AddDate(0, 1, 0)
		title = first.Format("2006年1月")
	}
	cal, err := h.rules.Calendar(st.ID, from, days)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d := rosterData{Viewer: v, Station: st, Stations: h.rules.AllStations(), View: view, Date: day.Format("2006-01-02"), Title: title,
		Prev: prev.Format("2006-01-02"), Next: next.Format("2006-01-02"), Today: now.Format("2006-01-02"),
		Staff: h.rules.Staff(st.ID), Msg: r.URL.Query().Get("msg"), Err: errMsg,
		CanEdit: h.access.Allowed(r, v, EditRoster, st.ID), CanApprove: h.access.Allowed(r, v, ApproveSwap, st.ID),
		Form: map[string]string{}}
	if r.Method == http.MethodPost {
		for k := range r.PostForm {
			d.Form[k] = r.PostForm.Get(k)
		}
	}
	var week []dayCell
	for _, c := range cal {
		week = append(week, dayCell{CalendarDay: c, InMonth: view == "week" || c.Date.Month() == day.Month(), Today: c.Date.Format("2006-01-02") == d.Today})
		if len(week) == 7 {
			d.Weeks = append(d.Weeks, week)
			week = nil
		}
	}
	if len(week) > 0 {
		d.Weeks = append(d.Weeks, week)
	}
	for _, s := range h.rules.Shifts(st.ID) {
		d.Shifts = append(d.Shifts, shiftRow{Shift: s, Officer: h.rules.OfficerByID(s.OfficerID), Days: commands.ShiftDays(s)})
	}
	if me := h.rules.OfficerByID(v.OfficerID); me != nil && me.StationID == st.ID {
		d.Me = me
		d.CanSwap = h.access.Allowed(r, v, RequestSwap, st.ID)
		d.CanFeed = h.access.Allowed(r, v, OwnFeed, st.ID)
		if d.CanFeed {
			d.HasFeed, _ = h.store.HasCalendarFeed(ctx(r), me.ID)
		}
	}
	swaps, err := h.rules.Swaps(ctx(r), st.ID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, sw := range swaps {
		row := swapRow{Swap: sw, Requester: h.rules.OfficerByID(sw.RequesterID), Colleague: h.rules.OfficerByID(sw.ColleagueID)}
		row.CanAnswer = sw.Status == store.SwapRequested && v.OfficerID != 0 && v.OfficerID == sw.ColleagueID
		row.CanDecide = d.CanApprove && (sw.Status == store.SwapAccepted || sw.Status == store.SwapRequested)
		if row.Requester != nil && row.Colleague != nil {
			d.Swaps = append(d.Swaps, row)
		}
	}
	if fu, ok := r.Context().Value(feedKey{}).(string); ok {
		d.FeedURL = fu
	}
	h.render(w, code, "roster.html", d)
}

// back is the roster page a change returns to.
func back(r *http.Request) string {
	q := "roster?station=" + r.FormValue("station")
	if v := r.FormValue("view"); v != "" {
		q += "&view=" + v
	}
	if v := r.FormValue("date"); v != "" {
		q += "&date=" + v
	}
	return q
}

func (h *Handler) saveShift(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	stID := formUint(r, "station")
	v, ok := h.viewer(w, r, EditRoster, stID)
	if !ok {
		return
	}
	in := commands.ShiftInput{ID: formUint(r, "id"), Version: formInt64(r, "version"), StationID: stID, OfficerID: formUint(r, "officer"),
		Start: strings.TrimSpace(r.FormValue("start")), End: strings.TrimSpace(r.FormValue("end")), Kind: r.FormValue("kind")}
	switch day := r.FormValue("day"); day {
	case "workday", "restday":
		in.DayKind, in.Weekday = day, -1
	default:
		in.Weekday = int(formInt64(r, "day"))
	}
	_, err := h.rules.SaveShift(ctx(r), actor(r, v), in)
	h.done(w, r, err, back(r), "排班已保存，立即生效", h.showRoster)
}

func (h *Handler) deleteShift(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	v, ok := h.viewer(w, r, EditRoster, formUint(r, "station"))
	if !ok {
		return
	}
	err := h.rules.DeleteShift(ctx(r), actor(r, v), formUint(r, "id"), formInt64(r, "version"))
	h.done(w, r, err, back(r), "排班已删除", h.showRoster)
}

type overrideData struct {
	Viewer   Viewer
	Station  *store.Station
	Officer  *store.Officer
	Date     string
	Start    string
	End      string
	Staff    []*store.Officer
	View     string
	Err      string
	OffRow   *store.Override
	Override *store.Override
	CanSwap  bool
	IsMine   bool
}

// overridePage is what clicking a shift opens: leave, other hours, a
// colleague's cover (or, for one's own shift, a swap request).
func (h *Handler) overridePage(w http.ResponseWriter, r *http.Request) {
	h.showOverride(w, r, http.StatusOK, "")
}

func (h *Handler) showOverride(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	stID := h.station(r)
	v, ok := h.viewer(w, r, ViewRoster, stID)
	if !ok {
		return
	}
	o := h.rules.OfficerByID(formUint(r, "officer"))
	st := h.rules.Station(stID)
	if o == nil || st == nil || o.StationID != st.ID {
		http.Error(w, "没有这位民警", http.StatusNotFound)
		return
	}
	d := overrideData{Viewer: v, Station: st, Officer: o, Date: r.FormValue("date"), Start: r.FormValue("start"), End: r.FormValue("end"),
		Staff: h.rules.Staff(st.ID), View: r.FormValue("view"), Err: errMsg, OffRow: h.rules.OffOverride(o.ID, r.FormValue("date")),
		IsMine: v.OfficerID == o.ID, CanSwap: v.OfficerID == o.ID && h.access.Allowed(r, v, RequestSwap, st.ID)}
	if id := formUint(r, "override"); id != 0 {
		d.Override, _ = h.store.OverrideByID(ctx(r), id)
	}
	if !h.access.Allowed(r, v, EditRoster, st.ID) && !d.CanSwap {
		http.Error(w, "您没有权限调整这个班", http.StatusForbidden)
		return
	}
	h.render(w, code, "override.html", d)
}

func (h *Handler) addOverride(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	stID := formUint(r, "station")
	v, ok := h.viewer(w, r, EditRoster, stID)
	if !ok {
		return
	}
	err := h.rules.AddOverride(ctx(r), actor(r, v), commands.OverrideInput{StationID: stID, OfficerID: formUint(r, "officer"),
		Date: r.FormValue("date"), Mode: r.FormValue("mode"), Start: r.FormValue("new_start"), End: r.FormValue("new_end"), CoverID: formUint(r, "cover")})
	h.done(w, r, err, back(r), "调班已保存，立即生效", h.showOverride)
}

func (h *Handler) deleteOverride(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	v, ok := h.viewer(w, r, EditRoster, formUint(r, "station"))
	if !ok {
		return
	}
	err := h.rules.DeleteOverride(ctx(r), actor(r, v), formUint(r, "id"), formInt64(r, "version"))
	h.done(w, r, err, back(r), "调班已撤销", h.showRoster)
}

func (h *Handler) requestSwap(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	stID := formUint(r, "station")
	v, ok := h.viewer(w, r, RequestSwap, stID)
	if !ok {
		return
	}
	_, err := h.rules.RequestSwap(ctx(r), actor(r, v), commands.SwapRequest{RequesterID: v.OfficerID, ColleagueID: formUint(r, "colleague"), Date: r.FormValue("date")})
	h.done(w, r, err, back(r), "换班请求已发出，等同事同意", h.showRoster)
}

func (h *Handler) decideSwap(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	stID := formUint(r, "station")
	decision := r.FormValue("decision")
	need := RequestSwap
	if decision == commands.SwapApprove || decision == commands.SwapReject {
		need = ApproveSwap
	}
	v, ok := h.viewer(w, r, need, stID)
	if !ok {
		return
	}
	sw, err := h.rules.DecideSwap(ctx(r), actor(r, v), formUint(r, "id"), decision, formInt64(r, "version"))
	msg := ""
	if sw != nil {
		msg = "换班 S" + r.FormValue("id") + "：" + commands.SwapStateName(sw.Status)
	}
	h.done(w, r, err, back(r), msg, h.showRoster)
}

type feedKey struct{}

// newFeed makes the viewer a new secret feed address and shows it once.
func (h *Handler) newFeed(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	stID := formUint(r, "station")
	v, ok := h.viewer(w, r, OwnFeed, stID)
	if !ok {
		return
	}
	me := h.rules.OfficerByID(v.OfficerID)
	if me == nil {
		http.Error(w, "只有民警本人可以订阅自己的班表", http.StatusForbidden)
		return
	}
	a := actor(r, v)
	c := store.Edit{Audit: []store.AuditEntry{{ActorOfficerID: &me.ID, Actor: v.Name, Via: store.AuditConsole, Address: a.Address,
		Action: "roster.feed.new", StationID: &me.StationID, Target: "日历订阅 " + me.Name}}}
	token, err := h.store.NewCalendarFeed(ctx(r), me.ID, c)
	if err != nil {
		h.done(w, r, err, back(r), "", h.showRoster)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := scheme + "://" + r.Host + h.opts.Prefix + "ical/" + token + ".ics"
	r = r.WithContext(contextWith(r, feedKey{}, u))
	h.showRoster(w, r, http.StatusOK, "")
}

func (h *Handler) revokeFeed(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	v, ok := h.viewer(w, r, OwnFeed, formUint(r, "station"))
	if !ok {
		return
	}
	me := h.rules.OfficerByID(v.OfficerID)
	if me == nil {
		http.Error(w, "只有民警本人可以管理自己的订阅", http.StatusForbidden)
		return
	}
	a := actor(r, v)
	c := store.Edit{Audit: []store.AuditEntry{{ActorOfficerID: &me.ID, Actor: v.Name, Via: store.AuditConsole, Address: a.Address,
		Action: "roster.feed.revoke", StationID: &me.StationID, Target: "日历订阅 " + me.Name}}}
	err := h.store.RevokeCalendarFeeds(ctx(r), me.ID, c)
	h.done(w, r, err, back(r), "日历订阅地址已作废", h.showRoster)
}

// feed answers an officer's secret calendar address: their own shifts as
// iCalendar, no sign-in (calendar apps cannot), nothing for a wrong or
// revoked token.
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSuffix(r.PathValue("token"), ".ics")
	if len(token) < 16 || len(token) > 64 {
		http.NotFound(w, r)
		return
	}
	id, err := h.store.CalendarFeedOfficer(ctx(r), token)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	body, err := h.rules.CalendarFeed(id, h.opts.Now())
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write([]byte(body))
}
