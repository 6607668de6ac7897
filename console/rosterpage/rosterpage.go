// Package rosterpage serves the console's Roster and Directory pages: a
// station's week and month calendar (holidays and make-up working days
// marked), recurring shifts, overrides by clicking a shift, swap requests
// and their approval, each officer's iCalendar feed, and the directory's
// stations, officers, groups (unknown chats registered in one click), FAQ
// (with "try a question") and message templates (with a preview).
//
// It is an http.Handler the console mounts. The console says who is
// signed in and what they may do (Access); every change goes through the
// rules in commands, which check it again, version it and audit it. Pages
// are server-rendered forms that work without JavaScript. The console
// wraps the handler in its session, cross-origin and body-size protection.
package rosterpage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// Viewer is the person signed in to the console.
type Viewer struct {
	// OfficerID is the officer signed in; 0 for a break-glass local admin.
	OfficerID uint
	Name      string
	// StationID is the officer's own station (the page it opens first).
	StationID uint
}

// Action is what a viewer wants to do, for Access.Allowed.
type Action string

const (
	ViewRoster    Action = "roster.view"
	EditRoster    Action = "roster.edit"    // shifts and overrides
	RequestSwap   Action = "roster.swap"    // ask or answer a swap of one's own
	ApproveSwap   Action = "roster.approve" // approve or reject swaps
	OwnFeed       Action = "roster.feed"    // one's own calendar feed
	ViewDirectory Action = "directory.view"
	EditDirectory Action = "directory.edit"
)

// Access is what the console knows of the request: who is signed in and
// what they may do on which station. The rules check changes again.
type Access interface {
	// Viewer is who is signed in; false: nobody (the page answers 401).
	Viewer(r *http.Request) (Viewer, bool)
	Allowed(r *http.Request, v Viewer, a Action, stationID uint) bool
}

// Options place the pages.
type Options struct {
	// Prefix is where the console mounts the handler ("/" or "/console/"),
	// ending in a slash.
	Prefix   string
	Location *time.Location
	Now      func() time.Time
	Log      *slog.Logger
}

// Handler serves the pages.
type Handler struct {
	rules  *commands.Hub
	store  *store.Store
	access Access
	opts   Options
	tmpl   *template.Template
	mux    *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

//go:embed templates/*.html
var templates embed.FS

// stylesheet is served as a file, not inlined: the console's
// Content-Security-Policy allows only its own origin's styles and scripts.
//
//go:embed static/rosterpage.css
var stylesheet []byte

// maxForm bounds a posted form: the longest is a template or an FAQ answer.
const maxForm = 64 << 10

// New builds the pages over the rules and the store.
func New(rules *commands.Hub, st *store.Store, access Access, opts Options) (*Handler, error) {
	if opts.Prefix == "" {
		opts.Prefix = "/"
	}
	if opts.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("rosterpage: %w", err)
		}
		opts.Location = loc
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	h := &Handler{rules: rules, store: st, access: access, opts: opts, mux: http.NewServeMux()}
	funcs := template.FuncMap{
		"path":      func(p string) string { return opts.Prefix + p },
		"clock":     func(t time.Time) string { return t.In(opts.Location).Format("15:04") },
		"ymd":       func(t time.Time) string { return t.In(opts.Location).Format("2006-01-02") },
		"md":        func(t time.Time) string { return t.In(opts.Location).Format("1/2") },
		"weekday":   func(t time.Time) string { return weekdays[t.In(opts.Location).Weekday()] },
		"kindName":  kindName,
		"swapState": commands.SwapStateName,
		"join":      strings.Join,
		"deref": func(p *uint) uint {
			if p == nil {
				return 0
			}
			return *p
		},
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("rosterpage: parse templates: %w", err)
	}
	h.tmpl = tmpl
	p := opts.Prefix
	h.mux.HandleFunc("GET "+p+"roster", h.rosterPage)
	h.mux.HandleFunc("GET "+p+"roster.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(stylesheet)
	})
	h.mux.HandleFunc("POST "+p+"roster/shifts", h.saveShift)
	h.mux.HandleFunc("POST "+p+"roster/shifts/delete", h.deleteShift)
	h.mux.HandleFunc("GET "+p+"roster/override", h.overridePage)
	h.mux.HandleFunc("POST "+p+"roster/overrides", h.addOverride)
	h.mux.HandleFunc("POST "+p+"roster/overrides/delete", h.deleteOverride)
	h.mux.HandleFunc("POST "+p+"roster/swaps", h.requestSwap)
	h.mux.HandleFunc("POST "+p+"roster/swaps/decide", h.decideSwap)
	h.mux.HandleFunc("POST "+p+"roster/feed", h.newFeed)
	h.mux.HandleFunc("POST "+p+"roster/feed/revoke", h.revokeFeed)
	h.mux.HandleFunc("GET "+p+"ical/{token}", h.feed)
	h.mux.HandleFunc("GET "+p+"directory", h.directoryPage)
	h.mux.HandleFunc("POST "+p+"directory/station", h.saveStation)
	h.mux.HandleFunc("POST "+p+"directory/officers", h.saveOfficer)
	h.mux.HandleFunc("POST "+p+"directory/groups", h.saveGroup)
	h.mux.HandleFunc("POST "+p+"directory/groups/delete", h.deleteGroup)
	h.mux.HandleFunc("POST "+p+"directory/faq", h.saveFAQ)
	h.mux.HandleFunc("POST "+p+"directory/faq/delete", h.deleteFAQ)
	h.mux.HandleFunc("POST "+p+"directory/templates", h.saveTemplate)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

var weekdays = []string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

func kindName(k string) string {
	switch k {
	case "day":
		return "白班"
	case "night":
		return "夜班"
	case "override":
		return "调班"
	}
	return k
}

// viewer is who is signed in and allowed a on station; it answers the
// request itself (401, 403) and returns false otherwise.
func (h *Handler) viewer(w http.ResponseWriter, r *http.Request, a Action, stationID uint) (Viewer, bool) {
	v, ok := h.access.Viewer(r)
	if !ok {
		http.Error(w, "请先登录", http.StatusUnauthorized)
		return Viewer{}, false
	}
	if !h.access.Allowed(r, v, a, stationID) {
		http.Error(w, "您没有权限进行这项操作", http.StatusForbidden)
		return Viewer{}, false
	}
	return v, true
}

// actor is v as the rules and the audit trail know them.
func actor(r *http.Request, v Viewer) commands.Actor {
	addr := r.RemoteAddr
	if host, _, ok := strings.Cut(addr, ":"); ok && !strings.Contains(addr, "[") {
		addr = host
	}
	return commands.Actor{OfficerID: v.OfficerID, Name: v.Name, Via: store.AuditConsole, Address: addr}
}

// station is the station a request is about: ?station= or the form's, else
// the viewer's own.
func (h *Handler) station(r *http.Request) uint {
	if id := formUint(r, "station"); id != 0 {
		return id
	}
	if v, ok := h.access.Viewer(r); ok && v.StationID != 0 {
		return v.StationID
	}
	if sts := h.rules.AllStations(); len(sts) > 0 {
		return sts[0].ID
	}
	return 0
}

func formUint(r *http.Request, name string) uint {
	n, _ := strconv.ParseUint(strings.TrimSpace(r.FormValue(name)), 10, 32)
	return uint(n)
}

func formInt64(r *http.Request, name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(r.FormValue(name)), 10, 64)
	return n
}

func formOptUint(r *http.Request, name string) *uint {
	if id := formUint(r, name); id != 0 {
		return &id
	}
	return nil
}

func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '、' || r == '\n' || r == '\r' })
}

// parseForm reads a posted form within maxForm.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "表单无法读取："+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// done answers a change: back to page with its message, or the page again
// with the error and a status saying what kind it is.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, err error, back string, ok string, rerender func(w http.ResponseWriter, r *http.Request, code int, msg string)) {
	var bad *commands.InvalidError
	switch {
	case err == nil:
		u := h.opts.Prefix + back
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		http.Redirect(w, r, u+sep+"msg="+url.QueryEscape(ok), http.StatusSeeOther)
	case errors.As(err, &bad):
		rerender(w, r, http.StatusUnprocessableEntity, bad.Msg)
	case errors.Is(err, store.ErrConflict):
		rerender(w, r, http.StatusConflict, "这条记录刚被其他人修改或删除了：下面是现在的内容，您的修改没有保存，请核对后重新提交。")
	case errors.Is(err, commands.ErrForbidden):
		rerender(w, r, http.StatusForbidden, "您没有权限进行这项操作。")
	default:
		h.opts.Log.Error("console change failed", "path", r.URL.Path, "err", err)
		rerender(w, r, http.StatusInternalServerError, "保存失败，请稍后再试。")
	}
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, data any) {
	var b strings.Builder
	if err := h.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		h.opts.Log.Error("render page", "page", name, "err", err)
		http.Error(w, "页面出错", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// ctx is the request's context, detached from nothing: changes are short.
func ctx(r *http.Request) context.Context { return r.Context() }

func contextWith(r *http.Request, k, v any) context.Context {
	return context.WithValue(r.Context(), k, v)
}
