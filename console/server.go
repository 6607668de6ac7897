// Package console is the station console: a web application for officers
// and admins, served by the hub on console.listen. Officers sign in with a
// one-time code the bot DMs them on their own platform; admins add a TOTP
// second factor; sessions live in the database. Pages are server-rendered
// html/template with a few lines of plain JavaScript (the Now page's live
// updates over server-sent events); assets are embedded, so there is no
// build step.
//
// The handlers decide nothing: who may see or do what, and what an action
// does, are rules in commands (commands.Account, Hub.ViewTicket,
// Hub.ActOnTicket, Hub.Now, the sign-in rules); what is stored is the
// store's. Every change, sign-in, failed sign-in, token use and view of a
// resident's data leaves an audit row.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Session limits.
const (
	// DefaultIdle ends a session nobody used for this long.
	DefaultIdle = 30 * time.Minute
	// Absolute ends a session this long after sign-in, used or not.
	Absolute = 12 * time.Hour
	// cookieName is the session cookie.
	cookieName = "jingmin_session"
)

// Options configure a Server.
type Options struct {
	Store *store.Store
	Rules *commands.Hub
	Log   *slog.Logger
	// Idle is the idle timeout (0: DefaultIdle).
	Idle time.Duration
	// InsecureCookies drops the cookie's Secure flag (plain HTTP on a host
	// other than localhost; browsers treat localhost as secure anyway).
	InsecureCookies bool
	// LivePoll is how often the Now page's stream looks for changes (0: 1s).
	LivePoll time.Duration
}

// Server is the console's HTTP handler.
type Server struct {
	opts   Options
	pages  map[string]*template.Template
	roster http.Handler // the roster and directory pages (rosters.go)

	stopOnce sync.Once
	stop     chan struct{} // closed at shutdown: live streams end
}

// New builds the console.
func New(o Options) (*Server, error) {
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.LivePoll <= 0 {
		o.LivePoll = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{opts: o, stop: make(chan struct{})}
	if err := s.parsePages(); err != nil {
		return nil, err
	}
	rp, err := s.rosterPages()
	if err != nil {
		return nil, err
	}
	s.roster = rp
	return s, nil
}

// Stop ends the live streams, so a graceful shutdown does not wait for
// them (pass it to httpserver.Options.OnShutdown).
func (s *Server) Stop() { s.stopOnce.Do(func() { close(s.stop) }) }

// Handler is the console: every route, behind cross-origin protection
// (a state-changing request another site's page made through the
// person's browser is refused) and security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/now", http.StatusSeeOther) })
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.requestCode)
	mux.HandleFunc("POST /signin/code", s.checkCode)
	mux.HandleFunc("GET /signin/admin", s.adminSignInPage)
	mux.HandleFunc("POST /signin/admin", s.adminSignIn)
	mux.HandleFunc("GET /signin/totp", s.signedIn(s.totpPage, false))
	mux.HandleFunc("POST /signin/totp", s.signedIn(s.totpCheck, false))
	mux.HandleFunc("POST /signout", s.signedIn(s.signOut, false))
	mux.HandleFunc("GET /now", s.signedIn(s.nowPage, true))
	mux.HandleFunc("GET /now/events", s.signedIn(s.nowEvents, true))
	mux.HandleFunc("GET /tickets", s.signedIn(s.ticketsPage, true))
	mux.HandleFunc("GET /tickets/{id}", s.signedIn(s.ticketPage, true))
	mux.HandleFunc("POST /tickets/{id}/act", s.signedIn(s.ticketAct, true))
	mux.HandleFunc("GET /audit", s.signedIn(s.auditPage, true))
	mux.HandleFunc("GET /audit.csv", s.signedIn(s.auditCSV, true))
	mux.HandleFunc("GET /broadcasts", s.signedIn(s.broadcastsPage, true))
	mux.HandleFunc("POST /broadcasts", s.signedIn(s.broadcastCreate, true))
	mux.HandleFunc("GET /broadcasts/{id}", s.signedIn(s.broadcastPage, true))
	mux.HandleFunc("POST /broadcasts/{id}/{verb}", s.signedIn(s.broadcastAct, true))
	mux.HandleFunc("GET /stats", s.signedIn(s.statsPage, true))
	mux.HandleFunc("GET /stats.csv", s.signedIn(s.statsCSV, true))
	mux.HandleFunc("GET /tokens", s.signedIn(s.tokensPage, true))
	mux.HandleFunc("POST /tokens", s.signedIn(s.tokenCreate, true))
	mux.HandleFunc("POST /tokens/{id}/revoke", s.signedIn(s.tokenRevoke, true))
	s.mountRoster(mux, s.roster)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.opts.Log.Warn("console: cross-origin request refused", "address", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		s.fail(w, r, http.StatusForbidden, "这个请求来自别的网站，已拒绝。请直接在控制台页面上操作。")
	}))
	return securityHeaders(cop.Handler(mux))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// clientAddress is the request's remote address without its port: what
// the lockout counts and the trail records. A proxy's X-Forwarded-For is
// a claim and is not used for either.
func clientAddress(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func (s *Server) now() time.Time { return s.opts.Rules.Clock() }

// fail shows an error page with a message for people.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", page{Title: "出错了", Error: msg})
}

// internal logs an unexpected error and says so without detail.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.opts.Log.Error("console: request failed", "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "控制台暂时无法完成这个操作，请稍后再试。")
}
