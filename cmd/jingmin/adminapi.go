package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/console"
	"github.com/jingminhub/jingmin/store"
)

// adminAPI is the HTTP face of the admin commands, for a web console: the
// same rules as the chat commands and the CLI, behind a bearer token from
// JINGMIN_ADMIN_TOKEN. Every action names the officer acting in "by" (their
// rights, their direct chat for the report). The token is shared by every
// console, so "by" is a claim: the rules hold it to what that officer may
// do (only a broadcast's author confirms it), and the broadcast's record
// keeps, with the name, that it came through the API and from which
// address.
//
//	POST /api/admin/broadcasts                {"scope","text","by","confirm"?}
//	GET  /api/admin/broadcasts/{id}           progress and report
//	POST /api/admin/broadcasts/{id}/confirm   {"by"}
//	POST /api/admin/broadcasts/{id}/cancel    {"by"}
//	POST /api/admin/broadcasts/{id}/retry     {"by"}
type adminAPI struct {
	h     *hub
	token string
	// now is the limiter's clock (nil: time.Now).
	now func() time.Time
}

func (a adminAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/admin/broadcasts", a.create)
	mux.HandleFunc("GET /api/admin/broadcasts/{id}", a.status)
	mux.HandleFunc("POST /api/admin/broadcasts/{id}/{verb}", a.act)
	now := a.now
	if now == nil {
		now = time.Now
	}
	return a.authorised(mux, newAuthLimiter(now), &sync.Once{})
}

// tokenAccount is the request context key of the officer a per-account
// API token acts as.
type tokenAccount struct{}

// authorised refuses any request without the token; comparing in constant
// time keeps the token from leaking through response timing. Each failure
// is logged with the address and path (never what was sent), and an
// address that fails authFailures times within authWindow is answered 429,
// token or not, for authBlock: guessing the token from one address takes
// forever, and the console keeps working for the others.
//
// A per-account token (made in the console, console.TokenPrefix) acts as
// its officer: its use is audited and "by" is that officer. The shared
// token still works, deprecated: the first use logs a warning.
func (a adminAPI) authorised(next http.Handler, lim *authLimiter, deprecated *sync.Once) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := remoteHost(r)
		if wait := lim.blocked(host); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			writeStatus(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed attempts from this address; try again later"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && strings.HasPrefix(got, console.TokenPrefix) {
			o, err := console.UseAPIToken(r.Context(), a.h.store, a.h.rules, got, r.Method+" "+r.URL.Path, host)
			if err == nil {
				lim.succeed(host)
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenAccount{}, o)))
				return
			}
			if !errors.Is(err, store.ErrNotFound) {
				writeStatus(w, http.StatusInternalServerError, map[string]string{"error": "the hub could not check the token now; try again"})
				return
			}
			ok = false
		} else if ok && (a.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1) {
			ok = false
		} else if ok {
			deprecated.Do(func() {
				a.h.log.Warn("admin API: the shared JINGMIN_ADMIN_TOKEN is deprecated and goes in the next release: " +
					"make a per-account token in the console (API tokens) and send it instead")
			})
		}
		if !ok {
			locked := lim.fail(host)
			a.h.log.Warn("admin API: authentication failed", "address", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
				"bearer", ok, "locked_out", locked)
			writeStatus(w, http.StatusUnauthorized, map[string]string{"error": "send Authorization: Bearer <your API token from the console>"})
			return
		}
		lim.succeed(host)
		next.ServeHTTP(w, r)
	})
}

// Failed authentication: authFailures within authWindow from one address
// lock it out for authBlock. At most authAddresses addresses are
// remembered; past that the one whose window started first is forgotten.
const (
	authFailures  = 5
	authWindow    = time.Minute
	authBlock     = 5 * time.Minute
	authAddresses = 10000
)

// authLimiter counts failed authentications per remote address.
type authLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*authFailuresOf
}

type authFailuresOf struct {
	since   time.Time // start of the window being counted
	n       int
	blocked time.Time // until when the address is refused
}

func newAuthLimiter(now func() time.Time) *authLimiter {
	return &authLimiter{now: now, by: map[string]*authFailuresOf{}}
}

// blocked is how long host is still refused (0: not).
func (l *authLimiter) blocked(host string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.by[host]
	if f == nil {
		return 0
	}
	return max(f.blocked.Sub(l.now()), 0)
}

// fail counts a failure of host and reports whether it is now locked out.
func (l *authLimiter) fail(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.by[host]
	if f == nil {
		l.makeRoom(now)
		f = &authFailuresOf{since: now}
		l.by[host] = f
	}
	if now.Sub(f.since) >= authWindow {
		f.since, f.n = now, 0
	}
	f.n++
	if f.n >= authFailures {
		f.blocked = now.Add(authBlock)
		return true
	}
	return false
}

// succeed forgets host's failures.
func (l *authLimiter) succeed(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.by, host)
}

// makeRoom keeps the map bounded: it drops what no longer counts, and
// when that is not enough, the address counted longest.
func (l *authLimiter) makeRoom(now time.Time) {
	if len(l.by) < authAddresses {
		return
	}
	var oldest string
	for h, f := range l.by {
		if now.Sub(f.since) >= authWindow && !now.Before(f.blocked) {
			delete(l.by, h)
			continue
		}
		if oldest == "" || f.since.Before(l.by[oldest].since) {
			oldest = h
		}
	}
	if len(l.by) >= authAddresses {
		delete(l.by, oldest)
	}
}

// remoteHost is the address a request came from, without its port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// apiOrigin is where an API request came from, for the broadcast's record:
// the remote address, and what a proxy in front said it forwarded for
// (a claim, kept as such).
func apiOrigin(r *http.Request) commands.Origin {
	from := r.RemoteAddr
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		from += " (X-Forwarded-For: " + fwd + ")"
	}
	return commands.Origin{Via: store.ViaAPI, From: from}
}

type adminRequest struct {
	Scope   string `json:"scope"`
	Text    string `json:"text"`
	By      string `json:"by"`
	Confirm bool   `json:"confirm"`
}

type broadcastView struct {
	ID         string         `json:"id"`
	Status     string         `json:"status"`
	Scope      string         `json:"scope"`
	Total      int            `json:"total"`
	Platforms  map[string]int `json:"platforms,omitempty"`
	Deliveries map[string]int `json:"deliveries,omitempty"`
	Preview    string         `json:"preview,omitempty"`
	Report     string         `json:"report,omitempty"`
}

func (a adminAPI) read(w http.ResponseWriter, r *http.Request) (adminRequest, *store.Officer, string, string, bool) {
	var req adminRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, map[string]string{"error": "body is not the JSON request (at most 64 KiB): " + err.Error()})
		return req, nil, "", "", false
	}
	if o, ok := r.Context().Value(tokenAccount{}).(*store.Officer); ok {
		// The token says who acts: "by" may repeat it, never name another.
		if by := strings.TrimSpace(req.By); by != "" && by != o.Code {
			writeStatus(w, http.StatusUnprocessableEntity, map[string]string{"error": fmt.Sprintf(`by：这个令牌属于 %s，不能代替 %q 操作；by 可以不填。`, o.Code, by)})
			return req, nil, "", "", false
		}
		req.By = o.Code
	}
	if strings.TrimSpace(req.By) == "" {
		writeStatus(w, http.StatusUnprocessableEntity, map[string]string{"error": `by 为必填项：填写操作人的民警编号，例如 "by":"zhao"。`})
		return req, nil, "", "", false
	}
	o, p, u, err := a.h.rules.Officer(req.By)
	if err != nil {
		writeStatus(w, http.StatusUnprocessableEntity, map[string]string{"error": "by：" + err.Error()})
		return req, nil, "", "", false
	}
	return req, o, p, u, true
}

// fail answers a refusal by the rules with 422 and its message, worded for
// the API (fields, not chat commands), a missing broadcast with 404,
// anything else with 500.
func (a adminAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var refusal *commands.BroadcastRefusal
	switch {
	case errors.As(err, &refusal):
		writeStatus(w, http.StatusUnprocessableEntity, map[string]string{"error": reword(r.Context(), a.h.store, refusal.Message, apiRefusals)})
	case errors.Is(err, store.ErrNotFound):
		writeStatus(w, http.StatusNotFound, map[string]string{"error": "no such broadcast"})
	default:
		writeStatus(w, http.StatusInternalServerError, map[string]string{"error": "the hub could not do that now; try again"})
	}
}

func (a adminAPI) create(w http.ResponseWriter, r *http.Request) {
	req, by, p, u, ok := a.read(w, r)
	if !ok {
		return
	}
	sc, err := commands.ParseScope(req.Scope)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	plan, err := a.h.rules.PlanBroadcast(r.Context(), by, apiOrigin(r), sc, req.Text, p, u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b := plan.Broadcast
	if req.Confirm {
		if b, err = a.h.rules.ConfirmBroadcast(r.Context(), by, apiOrigin(r), b.ID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	writeStatus(w, http.StatusCreated, broadcastView{ID: "B" + strconv.FormatUint(uint64(b.ID), 10), Status: b.Status,
		Scope: b.Scope, Total: b.Total, Platforms: plan.PerPlatform, Preview: apiPreview(b, plan.PerPlatform)})
}

// apiPreview is the draft (or the confirmed broadcast) in the API's terms:
// the chat's preview asks for a reply "确认 B12", the API for a request.
func apiPreview(b *store.Broadcast, per map[string]int) string {
	id := "B" + strconv.FormatUint(uint64(b.ID), 10)
	head := fmt.Sprintf("预警广播 %s：%s，共 %d 个群（%s）\n内容：%s\n", id, commands.ScopeLabel(b.Scope), b.Total, platformWords(per), b.Text)
	if b.Status == store.BroadcastDraft {
		return head + fmt.Sprintf("发送：POST /api/admin/broadcasts/%s/confirm；放弃：POST /api/admin/broadcasts/%s/cancel", id, id)
	}
	return head + fmt.Sprintf("已开始发送。进度：GET /api/admin/broadcasts/%s；停止：POST /api/admin/broadcasts/%s/cancel", id, id)
}

func broadcastID(r *http.Request) (uint, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(r.PathValue("id"), "B"), "b"), 10, 32)
	return uint(n), err == nil
}

func (a adminAPI) status(w http.ResponseWriter, r *http.Request) {
	id, ok := broadcastID(r)
	if !ok {
		writeStatus(w, http.StatusBadRequest, map[string]string{"error": "name the broadcast, e.g. B12"})
		return
	}
	b, counts, err := a.h.rules.BroadcastProgress(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	report, err := a.h.rules.BroadcastReport(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeStatus(w, http.StatusOK, broadcastView{ID: "B" + strconv.FormatUint(uint64(b.ID), 10), Status: b.Status,
		Scope: b.Scope, Total: b.Total, Deliveries: counts, Report: report})
}

func (a adminAPI) act(w http.ResponseWriter, r *http.Request) {
	id, ok := broadcastID(r)
	if !ok {
		writeStatus(w, http.StatusBadRequest, map[string]string{"error": "name the broadcast, e.g. B12"})
		return
	}
	_, by, _, _, ok := a.read(w, r)
	if !ok {
		return
	}
	var err error
	switch r.PathValue("verb") {
	case "confirm":
		_, err = a.h.rules.ConfirmBroadcast(r.Context(), by, apiOrigin(r), id)
	case "cancel":
		_, err = a.h.rules.CancelBroadcast(r.Context(), by, apiOrigin(r), id)
	case "retry":
		_, err = a.h.rules.RetryFailedBroadcast(r.Context(), by, id)
	default:
		writeStatus(w, http.StatusNotFound, map[string]string{"error": "unknown action: confirm, cancel or retry"})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.status(w, r)
}
