package console

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// The Broadcasts page: compose (scope and text), a preview of exactly what
// each platform's groups get with the target count per platform, confirm,
// live progress, failed groups with their reasons, retry, the report and
// the history. Everything goes through the broadcast rules in commands
// (only admins, only their station's groups, only the author confirms);
// the console adds an audit row for each action.

type broadcastPage struct {
	Broadcast *store.Broadcast
	Preview   string
	Platforms []platformTarget
	Counts    map[string]int
	Report    string
	Failed    []failedGroup
	Live      bool
	// MayApprove: the broadcast awaits approval and this account is
	// another admin of its scope.
	MayApprove bool
	// Compose form
	Scope, Text string
	// History
	History []store.Broadcast
}

type platformTarget struct {
	Platform, Label, Limit string
	Groups                 int
}

type failedGroup struct {
	Group, Platform, Reason string
}

// broadcaster is the officer who acts, or a page saying why nobody can.
func (s *Server) broadcaster(w http.ResponseWriter, r *http.Request, sess *session) (*store.Officer, bool) {
	if !sess.account.IsAdmin() {
		s.fail(w, r, http.StatusForbidden, "只有派出所管理员和分局管理员可以发预警广播。")
		return nil, false
	}
	if sess.account.Officer == nil {
		s.fail(w, r, http.StatusForbidden, "本地管理员没有民警身份，不能发预警广播（广播以民警身份发出并向其报告）。")
		return nil, false
	}
	return sess.account.Officer, true
}

func (s *Server) broadcastsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if _, ok := s.broadcaster(w, r, sess); !ok {
		return
	}
	s.showBroadcasts(w, r, sess, http.StatusOK, "", "", "")
}

func (s *Server) showBroadcasts(w http.ResponseWriter, r *http.Request, sess *session, code int, scope, text, problem string) {
	history, err := s.opts.Store.ListBroadcasts(r.Context(), sess.account.Stations(), sess.account.OfficerID(), 50)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if scope == "" {
		scope = "station:" + s.ownStationCode(sess)
	}
	s.render(w, r, code, "broadcasts", page{Title: "预警广播", Nav: "broadcasts", Account: sess.account, Error: problem,
		Cast: &broadcastPage{History: history, Scope: scope, Text: text}, Stations: s.opts.Rules.Stations(sess.account)})
}

func (s *Server) ownStationCode(sess *session) string {
	for _, st := range s.opts.Rules.Stations(sess.account) {
		if sess.account.Officer != nil && st.ID == sess.account.Officer.StationID {
			return st.Code
		}
	}
	return ""
}

func (s *Server) origin(r *http.Request) commands.Origin {
	return commands.Origin{Via: store.ViaConsole, From: clientAddress(r)}
}

// auditedOrigin is the console's origin carrying the audit row of action,
// which the rules write in the same transaction as the broadcast's change.
func (s *Server) auditedOrigin(r *http.Request, sess *session, action string) commands.Origin {
	o := s.origin(r)
	o.Audit = func(b *store.Broadcast) []store.AuditEntry {
		return []store.AuditEntry{s.broadcastEntry(sess, action, b, "", "")}
	}
	return o
}

// broadcastAudit records on its own an action on a broadcast that changed
// nothing (a refusal).
func (s *Server) broadcastAudit(r *http.Request, sess *session, action string, b *store.Broadcast, result, reason string) error {
	return s.opts.Store.AppendAudit(r.Context(), s.broadcastEntry(sess, action, b, result, reason))
}

// broadcastEntry is the audit row of an action on b (nil: none was made).
func (s *Server) broadcastEntry(sess *session, action string, b *store.Broadcast, result, reason string) store.AuditEntry {
	e := sess.account.Audit(action, s.now())
	if b != nil {
		id := b.ID
		e.BroadcastID, e.StationID = &id, b.StationID
		e.Target = fmt.Sprintf("预警广播 B%d（%s，%d 个群）", b.ID, commands.ScopeLabel(b.Scope), b.Total)
		e.After = "status=" + b.Status
	}
	if result != "" {
		e.Result, e.Reason = result, reason
	}
	return e
}

// broadcastCreate makes a draft and shows its preview.
func (s *Server) broadcastCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	by, ok := s.broadcaster(w, r, sess)
	if !ok {
		return
	}
	scopeText := strings.TrimSpace(r.PostFormValue("scope"))
	text := r.PostFormValue("text")
	sc, err := commands.ParseScope(scopeText)
	if err != nil {
		s.showBroadcasts(w, r, sess, http.StatusBadRequest, scopeText, text, "范围写法不对："+err.Error())
		return
	}
	o, platform, user, err := s.opts.Rules.Officer(by.Code)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	plan, err := s.opts.Rules.PlanBroadcast(r.Context(), o, s.auditedOrigin(r, sess, "broadcast.create"), sc, text, platform, user)
	var refusal *commands.BroadcastRefusal
	if errors.As(err, &refusal) {
		if aerr := s.broadcastAudit(r, sess, "broadcast.create", nil, store.AuditDenied, refusal.Message); aerr != nil {
			s.internal(w, r, aerr)
			return
		}
		s.showBroadcasts(w, r, sess, http.StatusUnprocessableEntity, scopeText, text, refusal.Message)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/broadcasts/%d", plan.Broadcast.ID), http.StatusSeeOther)
}

// broadcastView loads a broadcast the account may see.
func (s *Server) broadcastView(r *http.Request, sess *session) (*broadcastPage, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		return nil, store.ErrNotFound
	}
	b, counts, err := s.opts.Rules.BroadcastProgress(r.Context(), uint(id))
	if err != nil {
		return nil, err
	}
	mine := b.AuthorID != nil && sess.account.Officer != nil && *b.AuthorID == sess.account.Officer.ID
	if !sess.account.DistrictWide() && !mine && (b.StationID == nil || !sess.account.MaySee(*b.StationID)) {
		return nil, store.ErrNotFound
	}
	report, err := s.opts.Rules.BroadcastReport(r.Context(), b.ID)
	if err != nil {
		return nil, err
	}
	v := &broadcastPage{Broadcast: b, Counts: counts, Report: report, Preview: s.opts.Rules.AlertText(b.Text),
		Live:       b.Status == store.BroadcastSending,
		MayApprove: b.Status == store.BroadcastAwaitingApproval && commands.MayApprove(sess.account.Officer, b)}
	all, err := s.opts.Store.Deliveries(r.Context(), b.ID, "")
	if err != nil {
		return nil, err
	}
	per := map[string]int{}
	groups := map[uint]string{}
	for _, g := range s.opts.Rules.GroupsOf(commands.Account{Admin: &store.ConsoleAdmin{}}) {
		groups[g.ID] = g.Name
	}
	for _, d := range all {
		per[d.Platform]++
		if d.Status == store.DeliveryFailed {
			name := groups[d.GroupID]
			if name == "" {
				name = d.ChatID
			}
			v.Failed = append(v.Failed, failedGroup{Group: name, Platform: commands.PlatformLabel(d.Platform), Reason: d.Reason})
		}
	}
	for p, n := range per {
		v.Platforms = append(v.Platforms, platformTarget{Platform: p, Label: commands.PlatformLabel(p), Limit: s.opts.Rules.AlertLimit(p), Groups: n})
	}
	sort.Slice(v.Platforms, func(i, j int) bool { return v.Platforms[i].Platform < v.Platforms[j].Platform })
	return v, nil
}

func (s *Server) broadcastPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if _, ok := s.broadcaster(w, r, sess); !ok {
		return
	}
	v, err := s.broadcastView(r, sess)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "没有这个广播，或您无权查看。")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if r.URL.Query().Get("part") == "progress" {
		s.renderPart(w, http.StatusOK, "broadcast", "progress", v)
		return
	}
	s.render(w, r, http.StatusOK, "broadcast", page{Title: fmt.Sprintf("预警广播 B%d", v.Broadcast.ID), Nav: "broadcasts", Account: sess.account, Cast: v,
		Notice: map[string]string{"confirm": "已确认。", "approve": "已批准，开始发送。", "cancel": "已取消。", "retry": "失败的群已重新排队发送。"}[r.URL.Query().Get("done")]})
}

// broadcastAct confirms, cancels or retries a broadcast through the rules.
func (s *Server) broadcastAct(w http.ResponseWriter, r *http.Request, sess *session) {
	by, ok := s.broadcaster(w, r, sess)
	if !ok {
		return
	}
	id64, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "没有这个广播。")
		return
	}
	id := uint(id64)
	verb := r.PathValue("verb")
	from := s.auditedOrigin(r, sess, "broadcast."+verb)
	audited := true // the rules wrote the audit row with the change
	switch verb {
	case "confirm":
		_, err = s.opts.Rules.ConfirmBroadcast(r.Context(), by, from, id)
	case "cancel":
		_, err = s.opts.Rules.CancelBroadcast(r.Context(), by, from, id)
	case "approve":
		_, err = s.opts.Rules.ApproveBroadcast(r.Context(), by, from, id)
	case "retry":
		var n int64
		n, err = s.opts.Rules.RetryFailedBroadcast(r.Context(), by, id, from)
		audited = n > 0 // nothing requeued: nothing changed to carry it
	default:
		s.fail(w, r, http.StatusNotFound, "不认识的操作。")
		return
	}
	b, _ := s.opts.Store.BroadcastByID(r.Context(), id)
	var refusal *commands.BroadcastRefusal
	if errors.As(err, &refusal) {
		if aerr := s.broadcastAudit(r, sess, "broadcast."+verb, b, store.AuditDenied, refusal.Message); aerr != nil {
			s.internal(w, r, aerr)
			return
		}
		s.fail(w, r, http.StatusConflict, refusal.Message)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !audited {
		if err := s.broadcastAudit(r, sess, "broadcast."+verb, b, "", ""); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	http.Redirect(w, r, fmt.Sprintf("/broadcasts/%d?done=%s", id, verb), http.StatusSeeOther)
}
