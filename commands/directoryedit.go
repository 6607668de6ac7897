package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// The directory's edits (stations, officers, groups, FAQ, templates) go
// through here: checked, versioned (an edit of a row someone else changed
// or deleted meanwhile is store.ErrConflict, nothing written), committed
// with their audit row, and routed at once.

// jsonOf is a row's fields for the audit trail's before and after.
func jsonOf(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// edited finishes an accepted edit: the store's refusals in an editor's
// words, else a reload so routing follows at once.
func (h *Hub) edited(ctx context.Context, err error) error {
	if err != nil {
		return h.storeErr(err)
	}
	return h.Reload(ctx)
}

// StationInput is a station's editable fields as read at Version.
type StationInput struct {
	ID            uint
	Version       int64
	Name          string
	SLAMinutes    int
	DutyAccountID *uint
	LeaderID      *uint
}

// UpdateStation changes a station's name, SLA, duty account and leader.
func (h *Hub) UpdateStation(ctx context.Context, a Actor, in StationInput) error {
	d := h.dir.Load()
	st := d.stations[in.ID]
	if st == nil {
		return fmt.Errorf("station %d: %w", in.ID, store.ErrConflict)
	}
	if !d.mayEdit(a, st.ID) {
		return fmt.Errorf("edit station %s: %w", st.Code, ErrForbidden)
	}
	if strings.TrimSpace(in.Name) == "" {
		return invalid("派出所名称不能为空")
	}
	if in.SLAMinutes < 1 || in.SLAMinutes > 24*60 {
		return invalid("答复时限要在 1 到 1440 分钟之间，得到 %d", in.SLAMinutes)
	}
	for _, id := range []*uint{in.DutyAccountID, in.LeaderID} {
		if id != nil {
			if _, err := d.checkOfficerOf(st.ID, *id); err != nil {
				return err
			}
		}
	}
	row := *st
	row.Version, row.Name, row.SLAMinutes, row.DutyAccountID, row.LeaderID = in.Version, strings.TrimSpace(in.Name), in.SLAMinutes, in.DutyAccountID, in.LeaderID
	c := store.Edit{Audit: []store.AuditEntry{a.audit("directory.station.update", st.ID, "派出所 "+st.Name,
		jsonOf(stationFields(d, st)), jsonOf(stationFields(d, &row)))}}
	return h.edited(ctx, h.store.UpdateStation(ctx, &row, c))
}

func stationFields(d *directory, st *store.Station) map[string]any {
	name := func(id *uint) string {
		if id == nil || d.officers[*id] == nil {
			return ""
		}
		return d.officers[*id].Name
	}
	return map[string]any{"name": st.Name, "sla_minutes": st.SLAMinutes, "duty_account": name(st.DutyAccountID), "leader": name(st.LeaderID)}
}

// OfficerInput is an officer's editable fields (ID 0: a new officer).
type OfficerInput struct {
	ID         uint
	Version    int64
	StationID  uint
	Code       string
	Name       string
	Roles      []string
	Aliases    []string
	Identities map[string]string // platform → user id
}

var knownRoles = map[string]bool{store.RoleOfficer: true, store.RoleAuxiliary: true, store.RoleDutyOfficer: true, store.RoleLeader: true,
	store.RoleAdmin: true, store.RoleDistrictAdmin: true, store.RoleDutyAccount: true}

// SaveOfficer adds or changes an officer: roles, aliases, platform accounts.
func (h *Hub) SaveOfficer(ctx context.Context, a Actor, in OfficerInput) (*store.Officer, error) {
	d := h.dir.Load()
	var before *store.Officer
	if in.ID != 0 {
		if before = d.officers[in.ID]; before == nil {
			return nil, fmt.Errorf("officer %d: %w", in.ID, store.ErrConflict)
		}
		in.StationID, in.Code = before.StationID, before.Code
	}
	if d.stations[in.StationID] == nil {
		return nil, invalid("没有编号为 %d 的派出所", in.StationID)
	}
	if !d.mayEdit(a, in.StationID) {
		return nil, fmt.Errorf("edit officers of station %d: %w", in.StationID, ErrForbidden)
	}
	if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Code) == "" {
		return nil, invalid("民警的代码和姓名都不能为空")
	}
	for _, r := range in.Roles {
		if !knownRoles[r] {
			return nil, invalid("角色 %q 不认识：officer、auxiliary、duty_officer、leader、admin、district_admin 或 duty_account", r)
		}
		if r == store.RoleDistrictAdmin && a.OfficerID != 0 && !d.has(d.officers[a.OfficerID], roleDistrictAdmin) {
			return nil, fmt.Errorf("grant district_admin: %w", ErrForbidden)
		}
	}
	o := store.Officer{ID: in.ID, Version: in.Version, StationID: in.StationID, Code: strings.TrimSpace(in.Code), Name: strings.TrimSpace(in.Name),
		Roles: store.JoinList(in.Roles), Aliases: store.JoinList(in.Aliases)}
	action, target := "directory.officer.create", "民警 "+o.Name
	var was string
	if before != nil {
		action = "directory.officer.update"
		was = jsonOf(map[string]any{"name": before.Name, "roles": before.Roles, "aliases": before.Aliases, "identities": identityMap(d.identities[before.ID])})
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit(action, in.StationID, target, was,
		jsonOf(map[string]any{"name": o.Name, "roles": o.Roles, "aliases": o.Aliases, "identities": in.Identities}))}}
	if err := h.edited(ctx, h.store.SaveOfficer(ctx, &o, in.Identities, c)); err != nil {
		return nil, err
	}
	return &o, nil
}

func identityMap(ids []store.Identity) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		m[id.Platform] = id.UserID
	}
	return m
}

// Identities are an officer's platform accounts.
func (h *Hub) Identities(officerID uint) map[string]string {
	return identityMap(h.dir.Load().identities[officerID])
}

// GroupInput is a group's editable fields (ID 0: registering a group).
type GroupInput struct {
	ID        uint
	Version   int64
	Platform  string
	ChatID    string
	Name      string
	StationID uint
	OfficerID *uint
	Tags      []string
	Kind      string
}

// SaveGroup registers a group (an unknown chat in one click) or changes
// one.
func (h *Hub) SaveGroup(ctx context.Context, a Actor, in GroupInput) (*store.Group, error) {
	d := h.dir.Load()
	var before *store.Group
	if in.ID != 0 {
		if before = d.groupByID[in.ID]; before == nil {
			return nil, fmt.Errorf("group %d: %w", in.ID, store.ErrConflict)
		}
		in.Platform, in.ChatID = before.Platform, before.ChatID
		if !d.mayEdit(a, before.StationID) {
			return nil, fmt.Errorf("edit group %s: %w", before.ChatID, ErrForbidden)
		}
	}
	if d.stations[in.StationID] == nil {
		return nil, invalid("没有编号为 %d 的派出所", in.StationID)
	}
	if !d.mayEdit(a, in.StationID) {
		return nil, fmt.Errorf("edit groups of station %d: %w", in.StationID, ErrForbidden)
	}
	switch in.Platform {
	case "dingtalk", "wechat", "playground":
	default:
		return nil, invalid("平台 %q 不认识：dingtalk、wechat 或 playground", in.Platform)
	}
	if strings.TrimSpace(in.ChatID) == "" || strings.TrimSpace(in.Name) == "" {
		return nil, invalid("群号和群名都不能为空")
	}
	if in.Kind != "" && in.Kind != store.GroupKindCustomer {
		return nil, invalid("群类型 %q 不认识：留空或 customer（企业微信客户群）", in.Kind)
	}
	if in.Kind == store.GroupKindCustomer && in.OfficerID == nil {
		return nil, invalid("客户群要指定群主民警：每条消息要由群主点一下才能发出")
	}
	if in.OfficerID != nil {
		if _, err := d.checkOfficerOf(in.StationID, *in.OfficerID); err != nil {
			return nil, err
		}
	}
	g := store.Group{ID: in.ID, Version: in.Version, Platform: in.Platform, ChatID: strings.TrimSpace(in.ChatID), Name: strings.TrimSpace(in.Name),
		StationID: in.StationID, OfficerID: in.OfficerID, Tags: store.JoinList(in.Tags), Kind: in.Kind}
	action, was := "directory.group.create", ""
	if before != nil {
		action, was = "directory.group.update", jsonOf(groupFields(d, before))
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit(action, in.StationID, "群 "+g.Name, was, jsonOf(groupFields(d, &g)))}}
	if err := h.edited(ctx, h.store.SaveGroup(ctx, &g, c)); err != nil {
		return nil, err
	}
	return &g, nil
}

func groupFields(d *directory, g *store.Group) map[string]any {
	officer := ""
	if g.OfficerID != nil && d.officers[*g.OfficerID] != nil {
		officer = d.officers[*g.OfficerID].Name
	}
	return map[string]any{"platform": g.Platform, "chat_id": g.ChatID, "name": g.Name, "officer": officer, "tags": g.Tags, "kind": g.Kind}
}

// DeleteGroup removes a group read at version; its tickets stay.
func (h *Hub) DeleteGroup(ctx context.Context, a Actor, id uint, version int64) error {
	d := h.dir.Load()
	g := d.groupByID[id]
	if g == nil {
		return fmt.Errorf("group %d: %w", id, store.ErrConflict)
	}
	if !d.mayEdit(a, g.StationID) {
		return fmt.Errorf("delete group %s: %w", g.ChatID, ErrForbidden)
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("directory.group.delete", g.StationID, "群 "+g.Name, jsonOf(groupFields(d, g)), "")}}
	return h.edited(ctx, h.store.DeleteGroup(ctx, id, version, c))
}

// Groups lists a station's groups, by name.
func (h *Hub) Groups(stationID uint) []*store.Group {
	d := h.dir.Load()
	var out []*store.Group
	for _, g := range d.groupByID {
		if g.StationID == stationID {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FAQInput is an FAQ entry's fields (ID 0: a new entry; StationID nil:
// every station's).
type FAQInput struct {
	ID        uint
	Version   int64
	StationID *uint
	Topic     string
	Keywords  []string
	Answer    string
}

// SaveFAQ adds or changes an FAQ entry. A shared entry (no station) is a
// district admin's (or the CLI's) to change.
func (h *Hub) SaveFAQ(ctx context.Context, a Actor, in FAQInput) (*store.FAQ, error) {
	d := h.dir.Load()
	var before *store.FAQ
	if in.ID != 0 {
		for i := range d.faqs {
			if d.faqs[i].ID == in.ID {
				before = &d.faqs[i]
			}
		}
		if before == nil {
			return nil, fmt.Errorf("faq %d: %w", in.ID, store.ErrConflict)
		}
		if !h.mayEditFAQ(d, a, before.StationID) {
			return nil, fmt.Errorf("edit faq %q: %w", before.Topic, ErrForbidden)
		}
	}
	if !h.mayEditFAQ(d, a, in.StationID) {
		return nil, fmt.Errorf("edit faq: %w", ErrForbidden)
	}
	var kws []string
	for _, k := range in.Keywords {
		if k = strings.TrimSpace(k); k != "" {
			kws = append(kws, k)
		}
	}
	if strings.TrimSpace(in.Topic) == "" || strings.TrimSpace(in.Answer) == "" || len(kws) == 0 {
		return nil, invalid("问答要有主题、至少一个关键词和答复")
	}
	f := store.FAQ{ID: in.ID, Version: in.Version, StationID: in.StationID, Topic: strings.TrimSpace(in.Topic), Keywords: store.JoinList(kws), Answer: strings.TrimSpace(in.Answer)}
	action, was := "directory.faq.create", ""
	if before != nil {
		action, was = "directory.faq.update", jsonOf(map[string]any{"topic": before.Topic, "keywords": before.Keywords, "answer": before.Answer})
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit(action, deref(in.StationID), "问答 "+f.Topic, was,
		jsonOf(map[string]any{"topic": f.Topic, "keywords": f.Keywords, "answer": f.Answer}))}}
	if err := h.edited(ctx, h.store.SaveFAQ(ctx, &f, c)); err != nil {
		return nil, err
	}
	return &f, nil
}

func (h *Hub) mayEditFAQ(d *directory, a Actor, stationID *uint) bool {
	if stationID == nil {
		return a.OfficerID == 0 || (d.officers[a.OfficerID] != nil && d.has(d.officers[a.OfficerID], roleDistrictAdmin))
	}
	return d.mayEdit(a, *stationID)
}

// DeleteFAQ removes an FAQ entry read at version.
func (h *Hub) DeleteFAQ(ctx context.Context, a Actor, id uint, version int64) error {
	d := h.dir.Load()
	var f *store.FAQ
	for i := range d.faqs {
		if d.faqs[i].ID == id {
			f = &d.faqs[i]
		}
	}
	if f == nil {
		return fmt.Errorf("faq %d: %w", id, store.ErrConflict)
	}
	if !h.mayEditFAQ(d, a, f.StationID) {
		return fmt.Errorf("delete faq %q: %w", f.Topic, ErrForbidden)
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("directory.faq.delete", deref(f.StationID), "问答 "+f.Topic, jsonOf(map[string]any{"topic": f.Topic, "keywords": f.Keywords, "answer": f.Answer}), "")}}
	return h.edited(ctx, h.store.DeleteFAQ(ctx, id, version, c))
}

// FAQs lists the entries a station's residents may be answered from: its
// own and the shared ones.
func (h *Hub) FAQs(stationID uint) []store.FAQ {
	var out []store.FAQ
	for _, f := range h.dir.Load().faqs {
		if f.StationID == nil || *f.StationID == stationID {
			out = append(out, f)
		}
	}
	return out
}

// TryFAQ says which entry would answer question in station after hours:
// the rules' own matcher, so the answer is what residents would get.
func (h *Hub) TryFAQ(stationID uint, question string) (*store.FAQ, error) {
	d := h.dir.Load()
	st := d.stations[stationID]
	if st == nil {
		return nil, invalid("没有编号为 %d 的派出所", stationID)
	}
	return d.matchFAQ(st, question), nil
}

// TemplateRow is a message template as the directory holds it.
type TemplateRow struct {
	Key, Text, Default string
	Version            int64
}

// Templates lists every template with its text now and its default.
func (h *Hub) Templates(ctx context.Context) ([]TemplateRow, error) {
	d, err := h.store.LoadDirectory(ctx)
	if err != nil {
		return nil, err
	}
	var out []TemplateRow
	for _, t := range d.Templates {
		out = append(out, TemplateRow{Key: t.Key, Text: t.Text, Default: configs.DefaultTemplates[t.Key], Version: t.Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// SaveTemplate changes a message template's text; only admins (district
// ones, as templates are shared) and the CLI may.
func (h *Hub) SaveTemplate(ctx context.Context, a Actor, key, text string, version int64) error {
	d := h.dir.Load()
	def, ok := configs.DefaultTemplates[key]
	if !ok {
		return invalid("没有名为 %q 的消息模板", key)
	}
	if a.OfficerID != 0 && (d.officers[a.OfficerID] == nil || !d.has(d.officers[a.OfficerID], roleDistrictAdmin)) {
		return fmt.Errorf("edit template %s: %w", key, ErrForbidden)
	}
	if strings.TrimSpace(text) == "" {
		return invalid("模板内容不能为空")
	}
	if missing := missingPlaceholders(def, text); len(missing) > 0 {
		return invalid("模板少了占位符 %s：没有它，消息里就缺了这项内容", strings.Join(missing, "、"))
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("directory.template.update", 0, "模板 "+key, d.template(key), text)}}
	return h.edited(ctx, h.store.SaveTemplate(ctx, key, text, version, c))
}

// missingPlaceholders lists the {placeholders} of def that text lacks.
func missingPlaceholders(def, text string) []string {
	var out []string
	for rest := def; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		ph := rest[i : i+j+1]
		if !strings.Contains(text, ph) && !strings.Contains(strings.Join(out, ""), ph) {
			out = append(out, ph)
		}
		rest = rest[i+j+1:]
	}
	return out
}

// templateSample fills a template preview with believable values.
var templateSample = []string{"number", "128", "assignee", "王警官", "next", "明天（周二）08:30", "answer", "请携带身份证到警务室办理。",
	"group", "和谐小区业主群", "resident", "刘阿姨", "question", "楼道里有焦味", "waited", "20", "officer", "王建国", "minutes", "15",
	"from", "李明", "count", "3", "list", "- #128 和谐小区业主群：楼道里有焦味", "reason", "群已解散", "text", "近期有冒充客服的诈骗电话",
	"station", "太平派出所", "name", "李警官", "until", "今天23:00", "due", "明天08:45", "had", "王建国", "chain", "王建国 → 张伟 → 赵刚",
	"requester", "王建国", "colleague", "李明", "date", "12月5日（周六）", "hours", "08:30–17:30", "id", "7", "who", "李明",
	"platform", "dingtalk", "platform_name", "钉钉", "chat_id", "cid-001", "total", "42", "sent", "40", "failed", "2", "state", "已发送完毕",
	"to", "10:05", "page", "1", "pages", "2", "end", "23:00", "scope", "本所", "platforms", "钉钉 30 个、企业微信 12 个",
	"cancelled", "0", "waiting", "0", "reasons", "", "admin", "赵刚", "old", "6", "action", "取消", "limit", "4000 字", "size", "4100 字",
	"tag", "企业群", "tags", "企业群、老年群", "groups", "hexie"}

// PreviewTemplate is text (a template being edited) filled with sample
// values, as a person would read it.
func PreviewTemplate(text string) string { return render(text, templateSample...) }
