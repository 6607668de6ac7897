package rosterpage

import (
	"net/http"
	"sort"
	"strings"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

type officerRow struct {
	Officer    *store.Officer
	Identities string // "platform:user" lines
}

type directoryData struct {
	Viewer      Viewer
	Station     *store.Station
	Stations    []*store.Station
	Staff       []*store.Officer
	Officers    []officerRow
	Groups      []*store.Group
	Unknown     []store.UnknownChat
	FAQs        []store.FAQ
	Templates   []commands.TemplateRow
	Try         string
	TryAnswer   *store.FAQ
	Tried       bool
	PreviewKey  string
	Preview     string
	CanEdit     bool
	Msg, Err    string
	OfficerName func(*uint) string
}

func (h *Handler) directoryPage(w http.ResponseWriter, r *http.Request) {
	h.showDirectory(w, r, http.StatusOK, "")
}

func (h *Handler) showDirectory(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	stID := h.station(r)
	v, ok := h.viewer(w, r, ViewDirectory, stID)
	if !ok {
		return
	}
	st := h.rules.Station(stID)
	if st == nil {
		http.Error(w, "没有这个派出所", http.StatusNotFound)
		return
	}
	d := directoryData{Viewer: v, Station: st, Stations: h.rules.AllStations(), Staff: h.rules.Staff(st.ID), Groups: h.rules.Groups(st.ID),
		FAQs: h.rules.FAQs(st.ID), CanEdit: h.access.Allowed(r, v, EditDirectory, st.ID), Msg: r.URL.Query().Get("msg"), Err: errMsg}
	for _, o := range d.Staff {
		ids := h.rules.Identities(o.ID)
		var lines []string
		for p, u := range ids {
			lines = append(lines, p+":"+u)
		}
		sort.Strings(lines)
		d.Officers = append(d.Officers, officerRow{Officer: o, Identities: strings.Join(lines, "\n")})
	}
	d.OfficerName = func(id *uint) string {
		if id == nil {
			return ""
		}
		if o := h.rules.OfficerByID(*id); o != nil {
			return o.Name
		}
		return ""
	}
	var err error
	if d.CanEdit {
		if d.Unknown, err = h.store.UnknownChats(ctx(r)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if d.Templates, err = h.rules.Templates(ctx(r)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if q := strings.TrimSpace(r.URL.Query().Get("try")); q != "" {
		d.Try, d.Tried = q, true
		d.TryAnswer, _ = h.rules.TryFAQ(st.ID, q)
	}
	if key := r.URL.Query().Get("preview"); key != "" {
		d.PreviewKey = key
		text := r.URL.Query().Get("text")
		if text == "" {
			for _, t := range d.Templates {
				if t.Key == key {
					text = t.Text
				}
			}
		}
		d.Preview = commands.PreviewTemplate(text)
	}
	h.render(w, code, "directory.html", d)
}

func dirBack(r *http.Request) string { return "directory?station=" + r.FormValue("station") }

func (h *Handler) editor(w http.ResponseWriter, r *http.Request) (Viewer, uint, bool) {
	if !parseForm(w, r) {
		return Viewer{}, 0, false
	}
	stID := formUint(r, "station")
	v, ok := h.viewer(w, r, EditDirectory, stID)
	return v, stID, ok
}

func (h *Handler) saveStation(w http.ResponseWriter, r *http.Request) {
	v, stID, ok := h.editor(w, r)
	if !ok {
		return
	}
	err := h.rules.UpdateStation(ctx(r), actor(r, v), commands.StationInput{ID: stID, Version: formInt64(r, "version"), Name: r.FormValue("name"),
		SLAMinutes: int(formInt64(r, "sla")), DutyAccountID: formOptUint(r, "duty_account"), LeaderID: formOptUint(r, "leader")})
	h.done(w, r, err, dirBack(r), "派出所信息已保存", h.showDirectory)
}

func (h *Handler) saveOfficer(w http.ResponseWriter, r *http.Request) {
	v, stID, ok := h.editor(w, r)
	if !ok {
		return
	}
	ids := map[string]string{}
	for _, line := range strings.Split(r.FormValue("identities"), "\n") {
		if p, u, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.TrimSpace(u) != "" {
			ids[strings.TrimSpace(p)] = strings.TrimSpace(u)
		}
	}
	_, err := h.rules.SaveOfficer(ctx(r), actor(r, v), commands.OfficerInput{ID: formUint(r, "id"), Version: formInt64(r, "version"), StationID: stID,
		Code: r.FormValue("code"), Name: r.FormValue("name"), Roles: splitWords(r.FormValue("roles")), Aliases: splitWords(r.FormValue("aliases")), Identities: ids})
	h.done(w, r, err, dirBack(r), "民警信息已保存", h.showDirectory)
}

func (h *Handler) saveGroup(w http.ResponseWriter, r *http.Request) {
	v, stID, ok := h.editor(w, r)
	if !ok {
		return
	}
	_, err := h.rules.SaveGroup(ctx(r), actor(r, v), commands.GroupInput{ID: formUint(r, "id"), Version: formInt64(r, "version"),
		Platform: r.FormValue("platform"), ChatID: r.FormValue("chat_id"), Name: r.FormValue("name"), StationID: stID,
		OfficerID: formOptUint(r, "officer"), Tags: splitWords(r.FormValue("tags")), Kind: r.FormValue("kind")})
	h.done(w, r, err, dirBack(r), "群已保存", h.showDirectory)
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	v, _, ok := h.editor(w, r)
	if !ok {
		return
	}
	err := h.rules.DeleteGroup(ctx(r), actor(r, v), formUint(r, "id"), formInt64(r, "version"))
	h.done(w, r, err, dirBack(r), "群已删除", h.showDirectory)
}

func (h *Handler) saveFAQ(w http.ResponseWriter, r *http.Request) {
	v, stID, ok := h.editor(w, r)
	if !ok {
		return
	}
	var sid *uint
	if r.FormValue("shared") == "" {
		sid = &stID
	}
	_, err := h.rules.SaveFAQ(ctx(r), actor(r, v), commands.FAQInput{ID: formUint(r, "id"), Version: formInt64(r, "version"), StationID: sid,
		Topic: r.FormValue("topic"), Keywords: splitWords(r.FormValue("keywords")), Answer: r.FormValue("answer")})
	h.done(w, r, err, dirBack(r), "问答已保存", h.showDirectory)
}

func (h *Handler) deleteFAQ(w http.ResponseWriter, r *http.Request) {
	v, _, ok := h.editor(w, r)
	if !ok {
		return
	}
	err := h.rules.DeleteFAQ(ctx(r), actor(r, v), formUint(r, "id"), formInt64(r, "version"))
	h.done(w, r, err, dirBack(r), "问答已删除", h.showDirectory)
}

func (h *Handler) saveTemplate(w http.ResponseWriter, r *http.Request) {
	v, _, ok := h.editor(w, r)
	if !ok {
		return
	}
	err := h.rules.SaveTemplate(ctx(r), actor(r, v), r.FormValue("key"), r.FormValue("text"), formInt64(r, "version"))
	h.done(w, r, err, dirBack(r), "模板已保存", h.showDirectory)
}
