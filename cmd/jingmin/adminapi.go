package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// adminAPI is the HTTP face of the admin commands, for a web console: the
// same rules as the chat commands and the CLI, behind a bearer token from
// JINGMIN_ADMIN_TOKEN. A request acts as the officer named by "by" (their
// rights, their direct chat for the report), or as the operator when none is
// named, as the CLI does.
//
//	POST /api/admin/broadcasts                {"scope","text","by"?,"confirm"?}
//	GET  /api/admin/broadcasts/{id}           progress and report
//	POST /api/admin/broadcasts/{id}/confirm   {"by"?}
//	POST /api/admin/broadcasts/{id}/cancel    {"by"?}
//	POST /api/admin/broadcasts/{id}/retry     {"by"?}
type adminAPI struct {
	h     *hub
	token string
}

func (a adminAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/admin/broadcasts", a.create)
	mux.HandleFunc("GET /api/admin/broadcasts/{id}", a.status)
	mux.HandleFunc("POST /api/admin/broadcasts/{id}/{verb}", a.act)
	return a.authorised(mux)
}

// authorised refuses any request without the token; comparing in constant
// time keeps the token from leaking through response timing.
func (a adminAPI) authorised(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			writeStatus(w, http.StatusUnauthorized, map[string]string{"error": "send Authorization: Bearer <JINGMIN_ADMIN_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
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
	if req.By == "" {
		return req, nil, "", "", true
	}
	o, p, u, err := a.h.rules.Officer(req.By)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
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
	plan, err := a.h.rules.PlanBroadcast(r.Context(), by, sc, req.Text, p, u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b := plan.Broadcast
	if req.Confirm {
		if b, err = a.h.rules.ConfirmBroadcast(r.Context(), by, b.ID); err != nil {
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
		_, err = a.h.rules.ConfirmBroadcast(r.Context(), by, id)
	case "cancel":
		_, err = a.h.rules.CancelBroadcast(r.Context(), by, id)
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
