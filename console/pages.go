package console

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the current page's nav entry
	Account commands.Account
	Error   string
	Notice  string
	// Sign-in
	Login string
	Enrol *enrolment
	// Now
	Now       []commands.StationNow
	Casts     []castProgress
	UpdatedAt time.Time
	// Tickets
	Tickets  []ticketRow
	Filter   ticketFilter
	Stations []store.Station
	Groups   []store.Group
	Staff    []store.Officer
	MoreFrom uint
	// Ticket
	View *commands.TicketView
	// Audit
	Audit      []store.AuditEntry
	AuditQuery auditQuery
	// Broadcasts
	Cast *broadcastPage
	// Stats
	Stats *statsPage
	// Tokens
	Tokens   []store.APIToken
	NewToken string
}

type enrolment struct {
	Secret string
	QR     template.URL // a data: URL of the QR code, made here (empty after a wrong code)
}

type castProgress struct {
	ID     uint
	Status string
	Counts map[string]int
	Total  int
}

type ticketRow struct {
	store.Ticket
	Chat, Station, Assignee, Resident, Question string
}

// parsePages parses each page with the layout, with the functions the
// templates use (times in the hub's zone, names from the directory).
func (s *Server) parsePages() error {
	loc := s.opts.Rules.Location()
	funcs := template.FuncMap{
		"list":     func(v ...string) []string { return v },
		"tl":       timelineLabel,
		"scope":    commands.ScopeLabel,
		"plain":    plainReport,
		"tldetail": timelineDetail,
		"purpose":  purposeLabel,
		"state":    outboundLabel,
		"status":   statusLabel,
		"ago":      func(t, now time.Time) string { return fmt.Sprintf("%d 分钟", int(now.Sub(t)/time.Minute)) },
		"when":     func(t time.Time) string { return whenIn(t, loc) },
		"whenp": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return t.In(loc).Format("01-02 15:04:05")
		},
		"officer": func(id *uint) string {
			if id == nil {
				return ""
			}
			if o := s.opts.Rules.OfficerByID(*id); o != nil {
				return o.Name
			}
			return fmt.Sprintf("#%d", *id)
		},
		"station": s.opts.Rules.StationName,
		"stationp": func(id *uint) string {
			if id == nil {
				return ""
			}
			return s.opts.Rules.StationName(*id)
		},
	}
	names := []string{"signin", "code", "signin_admin", "totp", "error", "now", "tickets", "ticket", "audit", "tokens",
		"broadcasts", "broadcast", "stats"}
	partials := map[string][]string{"broadcast": {"templates/progress.html"}}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		files := append([]string{"templates/layout.html", "templates/" + n + ".html"}, partials[n]...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return fmt.Errorf("parse console page %s: %w", n, err)
		}
		s.pages[n] = t
	}
	return nil
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	s.renderPart(w, code, name, "layout.html", p)
}

// renderPart renders one named template of a page (a fragment the page's
// script swaps in, or the whole page with "layout.html").
func (s *Server) renderPart(w http.ResponseWriter, code int, name, part string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, part, data); err != nil {
		s.opts.Log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "控制台页面出错", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

var timelineLabels = map[string]string{
	store.TLAsked: "居民提问", store.TLAssigned: "分派", store.TLAcknowledged: "群内回执", store.TLNotified: "私信民警",
	store.TLClaimed: "认领", store.TLAnswered: "答复", store.TLEscalated: "升级", store.TLHandedOver: "转交",
	store.TLClosed: "办结", store.TLAutoAnswered: "FAQ 自动答复", store.TLFiled: "登记待办", store.TLPaged: "紧急呼叫",
	store.TLFollowUp: "居民追问", store.TLUndelivered: "未送达", store.TLAlertDrafted: "转为预警草稿", store.TLReopened: "重新打开",
}

func timelineLabel(kind string) string {
	if l, ok := timelineLabels[kind]; ok {
		return l
	}
	return kind
}

// plainReport drops the markdown heading marks of a report written for
// chat: the page shows it as text.
func plainReport(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "# ")
	}
	return strings.Join(lines, "\n")
}

// routeReasons name why a ticket went to whom (commands.Route.Reason).
var routeReasons = map[string]string{
	"own_officer": "本群民警", "mentioned": "被@的民警", "on_duty": "在班民警", "next_in_line": "所领导接手", "duty_account": "值班号（非工作时间）",
}

// timelineDetail says a line's detail in words: the routing reason, the
// delivery state of the acknowledgement and the officer's DM.
func timelineDetail(kind, detail string) string {
	switch kind {
	case store.TLAssigned:
		reason, who, ok := strings.Cut(detail, "：")
		if l, known := routeReasons[reason]; ok && known {
			return who + "（" + l + "）"
		}
	case store.TLAcknowledged, store.TLNotified:
		state, why, _ := strings.Cut(detail, "：")
		if why != "" {
			return outboundLabel(state) + "：" + why
		}
		return outboundLabel(state)
	}
	return detail
}

var purposeLabels = map[string]string{
	string(bot.PurposeAck): "群内回执", string(bot.PurposeAssign): "派单私信", string(bot.PurposeAnswer): "答复居民",
	string(bot.PurposeEscalation): "升级通知", string(bot.PurposePage): "紧急呼叫", string(bot.PurposeDigest): "待办摘要",
	string(bot.PurposeNotice): "通知", string(bot.PurposeReply): "回复", string(bot.PurposeReport): "送达报告", string(bot.PurposeAlert): "预警",
}

func purposeLabel(p string) string {
	if l, ok := purposeLabels[p]; ok {
		return l
	}
	return p
}

var outboundLabels = map[string]string{
	store.OutboundPending: "待发送", store.OutboundSending: "发送中", store.OutboundSent: "已送达", store.OutboundFailed: "失败",
	store.OutboundCancelled: "已取消", store.OutboundAwaitingHuman: "等待人工发送", store.OutboundHeld: "待并入摘要", store.OutboundGathered: "已并入摘要",
}

func outboundLabel(state string) string {
	if l, ok := outboundLabels[state]; ok {
		return l
	}
	return state
}

var statusLabels = map[string]string{store.StatusOpen: "待答复", store.StatusClaimed: "已认领", store.StatusAnswered: "已答复", store.StatusClosed: "已办结"}

func statusLabel(s string) string {
	if l, ok := statusLabels[s]; ok {
		return l
	}
	return s
}

// maskName keeps a resident's surname: lists show who roughly, the
// ticket's own (audited) page shows them in full.
func maskName(name string) string {
	r := []rune(strings.TrimSpace(name))
	if len(r) == 0 {
		return "居民"
	}
	return string(r[0]) + "**"
}

// ---- Now

func (s *Server) nowData(r *http.Request, sess *session) (page, error) {
	stations, casts, err := s.opts.Rules.Now(r.Context(), sess.account)
	if err != nil {
		return page{}, err
	}
	p := page{Title: "当前", Nav: "now", Account: sess.account, Now: stations, UpdatedAt: s.now()}
	byID := map[uint]*castProgress{}
	for _, c := range casts {
		cp := byID[c.BroadcastID]
		if cp == nil {
			p.Casts = append(p.Casts, castProgress{ID: c.BroadcastID, Status: c.Broadcast, Counts: map[string]int{}})
			cp = &p.Casts[len(p.Casts)-1]
			byID[c.BroadcastID] = cp
		}
		cp.Counts[c.Delivery] += c.N
		cp.Total += c.N
	}
	return p, nil
}

func (s *Server) nowPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p, err := s.nowData(r, sess)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "now", p)
}

// nowEvents streams the Now page's board as server-sent events: the board
// is rendered every LivePoll and sent when it changed, so the page updates
// without a refresh. The stream ends with the session (timed out, signed
// out), the connection, or the server.
func (s *Server) nowEvents(w http.ResponseWriter, r *http.Request, sess *session) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(s.opts.LivePoll)
	defer tick.Stop()
	var last string
	lastWrite := time.Now()
	send := func(ev string) bool {
		// Each write moves the deadline on: the stream lives as long as
		// the person watches, the server's write timeout bounds one write.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write([]byte(ev)); err != nil {
			return false
		}
		lastWrite = time.Now()
		return rc.Flush() == nil
	}
	for {
		again, why, err := s.session(r)
		if err != nil || again == nil {
			fmt.Fprintf(w, "event: signedout\ndata: %s\n\n", why)
			rc.Flush()
			return
		}
		p, err := s.nowData(r, sess)
		if err != nil {
			s.opts.Log.Warn("console: live board", "err", err)
			return
		}
		var buf bytes.Buffer
		if err := s.pages["now"].ExecuteTemplate(&buf, "board", p); err != nil {
			s.opts.Log.Error("console: render live board", "err", err)
			return
		}
		if html := buf.String(); html != last {
			last = html
			var ev strings.Builder
			ev.WriteString("event: board\n")
			for _, line := range strings.Split(html, "\n") {
				ev.WriteString("data: " + line + "\n")
			}
			ev.WriteString("\n")
			if !send(ev.String()) {
				return
			}
		} else if time.Since(lastWrite) > 20*time.Second && !send(": still here\n\n") {
			return // a proxy or the browser hung up
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

func whenIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format("01-02 15:04")
}

// ---- Tickets

type ticketFilter struct {
	Station, Group, Officer uint
	Status, From, To        string
	Emergency               bool
	Before                  uint
}

func uintParam(r *http.Request, name string) uint {
	n, _ := strconv.ParseUint(r.URL.Query().Get(name), 10, 32)
	return uint(n)
}

// day parses a date of the filter form in the hub's time zone.
func (s *Server) day(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return time.ParseInLocation("2006-01-02", v, s.opts.Rules.Location())
}

func (s *Server) ticketsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	f := ticketFilter{Station: uintParam(r, "station"), Group: uintParam(r, "group"), Officer: uintParam(r, "officer"),
		Status: q.Get("status"), From: q.Get("from"), To: q.Get("to"), Emergency: q.Get("emergency") == "1", Before: uintParam(r, "before")}
	a := sess.account
	p := page{Title: "工单", Nav: "tickets", Account: a, Filter: f, Stations: s.opts.Rules.Stations(a),
		Groups: s.opts.Rules.GroupsOf(a), Staff: s.opts.Rules.StaffOf(a)}
	sf := store.TicketFilter{StationIDs: a.Stations(), GroupID: f.Group, AssigneeID: f.Officer, Emergency: f.Emergency, BeforeID: f.Before, Limit: 50}
	if f.Station != 0 {
		if !a.MaySee(f.Station) {
			s.fail(w, r, http.StatusNotFound, "没有这个派出所，或您无权查看它的工单。")
			return
		}
		sf.StationIDs = []uint{f.Station}
	}
	if _, ok := statusLabels[f.Status]; ok {
		sf.Status = f.Status
	} else {
		p.Filter.Status = ""
	}
	from, err1 := s.day(f.From)
	to, err2 := s.day(f.To)
	if err1 != nil || err2 != nil {
		p.Error = "日期请写成 2026-11-23 的格式。"
		s.render(w, r, http.StatusBadRequest, "tickets", p)
		return
	}
	sf.From = from
	if !to.IsZero() {
		sf.To = to.AddDate(0, 0, 1) // the "to" day is included
	}
	ts, err := s.opts.Store.ListTickets(r.Context(), sf)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	for i := range ts {
		t := &ts[i]
		row := ticketRow{Ticket: *t, Chat: s.opts.Rules.ChatName(t), Station: s.opts.Rules.StationName(t.StationID),
			Resident: maskName(t.ResidentName), Question: bot.Truncate(bot.Mask(t.Question), 40)}
		if t.AssigneeID != nil {
			if o := s.opts.Rules.OfficerByID(*t.AssigneeID); o != nil {
				row.Assignee = o.Name
			}
		}
		p.Tickets = append(p.Tickets, row)
	}
	if len(ts) == sf.Limit {
		p.MoreFrom = ts[len(ts)-1].ID
	}
	s.render(w, r, http.StatusOK, "tickets", p)
}

func (s *Server) ticketPage(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "没有这个工单。")
		return
	}
	v, err := s.opts.Rules.ViewTicket(r.Context(), sess.account, uint(id))
	if errors.Is(err, commands.ErrNotVisible) {
		s.fail(w, r, http.StatusNotFound, "没有这个工单，或它不属于您的派出所。")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	p := page{Title: fmt.Sprintf("工单 #%d", v.Ticket.Number), Nav: "tickets", Account: sess.account, View: v,
		Notice: map[string]string{"assign": "已分派。", "handover": "已转交。", "close": "已办结。", "reopen": "已重新打开。"}[r.URL.Query().Get("done")]}
	s.render(w, r, http.StatusOK, "ticket", p)
}

func (s *Server) ticketAct(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "没有这个工单。")
		return
	}
	verb := r.PostFormValue("verb")
	target, _ := strconv.ParseUint(r.PostFormValue("officer"), 10, 32)
	_, err = s.opts.Rules.ActOnTicket(r.Context(), sess.account, uint(id), verb, uint(target))
	var refusal *commands.ActRefusal
	switch {
	case errors.Is(err, commands.ErrNotVisible):
		s.fail(w, r, http.StatusNotFound, "没有这个工单，或它不属于您的派出所。")
		return
	case errors.Is(err, commands.ErrNotAllowed):
		s.fail(w, r, http.StatusForbidden, "只有管理员可以分派工单。")
		return
	case errors.As(err, &refusal):
		v, verr := s.opts.Rules.ViewTicket(r.Context(), sess.account, uint(id))
		if verr != nil {
			s.internal(w, r, verr)
			return
		}
		s.render(w, r, http.StatusConflict, "ticket", page{Title: fmt.Sprintf("工单 #%d", v.Ticket.Number), Nav: "tickets",
			Account: sess.account, View: v, Error: refusal.Message})
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/tickets/%d?done=%s", id, verb), http.StatusSeeOther)
}

// ---- Audit

type auditQuery struct {
	From, To, Action, Search string
	Before                   uint
	MoreFrom                 uint
}

// auditFilter reads the Audit page's filter; admins only, a station admin
// sees their own station's trail.
func (s *Server) auditFilter(r *http.Request, sess *session) (store.AuditFilter, auditQuery, error) {
	q := r.URL.Query()
	aq := auditQuery{From: q.Get("from"), To: q.Get("to"), Action: strings.TrimSpace(q.Get("action")), Search: strings.TrimSpace(q.Get("q")), Before: uintParam(r, "before")}
	f := store.AuditFilter{StationIDs: sess.account.Stations(), Action: aq.Action, Search: aq.Search, BeforeID: aq.Before}
	from, err1 := s.day(aq.From)
	to, err2 := s.day(aq.To)
	if err1 != nil || err2 != nil {
		return f, aq, errors.New("日期请写成 2026-11-23 的格式。")
	}
	f.From = from
	if !to.IsZero() {
		f.To = to.AddDate(0, 0, 1)
	}
	return f, aq, nil
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if !sess.account.IsAdmin() {
		s.fail(w, r, http.StatusForbidden, "审计记录只有管理员可以查看。")
		return
	}
	f, aq, err := s.auditFilter(r, sess)
	p := page{Title: "审计", Nav: "audit", Account: sess.account, AuditQuery: aq}
	if err != nil {
		p.Error = err.Error()
		s.render(w, r, http.StatusBadRequest, "audit", p)
		return
	}
	f.Limit = 100
	rows, err := s.opts.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	p.Audit = rows
	if len(rows) == f.Limit {
		p.AuditQuery.MoreFrom = rows[len(rows)-1].ID
	}
	s.render(w, r, http.StatusOK, "audit", p)
}

// csvCell keeps a cell from being read as a formula by a spreadsheet.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// auditCSV exports the filtered trail (up to 10,000 rows), and audits the
// export.
func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request, sess *session) {
	if !sess.account.IsAdmin() {
		s.fail(w, r, http.StatusForbidden, "审计记录只有管理员可以导出。")
		return
	}
	f, aq, err := s.auditFilter(r, sess)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit = 10000
	rows, err := s.opts.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	e := sess.account.Audit("audit.export", s.now())
	e.Target = fmt.Sprintf("审计导出 %d 行（from=%s to=%s action=%s q=%s）", len(rows), aq.From, aq.To, aq.Action, aq.Search)
	if err := s.opts.Store.AppendAudit(r.Context(), e); err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.csv"`)
	w.Write([]byte("\ufeff")) // spreadsheets read the Chinese as UTF-8
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "at", "actor", "via", "address", "action", "station", "target", "before", "after", "result", "reason"})
	loc := s.opts.Rules.Location()
	for _, a := range rows {
		station := ""
		if a.StationID != nil {
			station = s.opts.Rules.StationName(*a.StationID)
		}
		rec := []string{strconv.FormatUint(uint64(a.ID), 10), a.At.In(loc).Format(time.RFC3339), a.Actor, a.Via, a.Address, a.Action,
			station, a.Target, a.Before, a.After, a.Result, a.Reason}
		for i := range rec {
			rec[i] = csvCell(rec[i])
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// ---- API tokens

func (s *Server) tokenOwner(sess *session) (*uint, *uint) {
	if sess.account.Admin != nil {
		id := sess.account.Admin.ID
		return nil, &id
	}
	return sess.account.OfficerID(), nil
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showTokens(w, r, sess, http.StatusOK, "", "")
}

func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, sess *session, code int, fresh, problem string) {
	o, a := s.tokenOwner(sess)
	tokens, err := s.opts.Store.APITokensOf(r.Context(), o, a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, code, "tokens", page{Title: "API 令牌", Nav: "tokens", Account: sess.account, Tokens: tokens, NewToken: fresh, Error: problem})
}

// tokenCreate makes a token for the signed-in officer and shows it once.
func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len([]rune(name)) > 40 {
		s.showTokens(w, r, sess, http.StatusBadRequest, "", "请给令牌起一个 1–40 个字的名字，例如“值班台脚本”。")
		return
	}
	if sess.account.Officer == nil {
		s.showTokens(w, r, sess, http.StatusBadRequest, "", "本地管理员没有民警身份，不能创建 API 令牌（API 以民警身份操作）。")
		return
	}
	secret, err := randomToken()
	if err != nil {
		s.internal(w, r, err)
		return
	}
	token := TokenPrefix + secret
	o, a := s.tokenOwner(sess)
	now := s.now()
	e := sess.account.Audit("token.create", now)
	e.Target = "令牌 " + name
	if err := s.opts.Store.CreateAPIToken(r.Context(), &store.APIToken{OfficerID: o, AdminID: a, Name: name, TokenHash: hashToken(token), CreatedAt: now.UTC()}, e); err != nil {
		s.internal(w, r, err)
		return
	}
	s.showTokens(w, r, sess, http.StatusOK, token, "")
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request, sess *session) {
	id, _ := strconv.ParseUint(r.PathValue("id"), 10, 32)
	o, a := s.tokenOwner(sess)
	now := s.now()
	e := sess.account.Audit("token.revoke", now)
	e.Target = fmt.Sprintf("令牌 %d", id)
	err := s.opts.Store.RevokeAPIToken(r.Context(), uint(id), o, a, now, e)
	if errors.Is(err, store.ErrNotFound) {
		s.showTokens(w, r, sess, http.StatusNotFound, "", "没有这个令牌，或它已经吊销。")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}
