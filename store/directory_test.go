package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// districtSeed is a small directory as configuration describes it: two
// stations, staff with several platform accounts and aliases, groups on both
// platforms, a day and an overnight shift, leave, the National Day holiday
// with its make-up workday, FAQ and message templates.
func districtSeed() store.Seed {
	return store.Seed{
		Stations: []store.SeedStation{
			{Code: "xcl", Name: "新成路派出所", SLAMinutes: 10, DutyAccount: "xcl-duty", Leader: "xcl-zhang"},
			{Code: "jy", Name: "菊园新区派出所", SLAMinutes: 15, DutyAccount: "jy-duty"},
		},
		Officers: []store.SeedOfficer{
			{Code: "xcl-wang", Station: "xcl", Name: "王建国", Roles: []string{store.RoleOfficer},
				Aliases: []string{"老王", "王警官"}, Identities: map[string]string{"dingtalk": "staff-wang", "wechat": "wangjianguo"}},
			{Code: "xcl-li", Station: "xcl", Name: "李明", Roles: []string{store.RoleAuxiliary, store.RoleDutyOfficer},
				Identities: map[string]string{"dingtalk": "staff-li"}},
			{Code: "xcl-zhang", Station: "xcl", Name: "张所长", Roles: []string{store.RoleLeader, store.RoleAdmin},
				Identities: map[string]string{"dingtalk": "staff-zhang"}},
			{Code: "xcl-duty", Station: "xcl", Name: "叶城警事", Roles: []string{store.RoleDutyAccount},
				Identities: map[string]string{"dingtalk": "duty-xcl", "wechat": "duty-xcl"}},
			{Code: "jy-zhao", Station: "jy", Name: "赵敏", Roles: []string{store.RoleOfficer}, Aliases: []string{"赵警官"},
				Identities: map[string]string{"wechat": "zhaomin"}},
			{Code: "jy-duty", Station: "jy", Name: "菊园值班", Roles: []string{store.RoleDutyAccount}},
		},
		Groups: []store.SeedGroup{
			{Platform: "dingtalk", ChatID: "cid-xcl-001", Name: "新成路一居委平安群🏠", Station: "xcl", Officer: "xcl-wang", Tags: []string{"老年群", "平安群"}},
			{Platform: "wechat", ChatID: "wr-xcl-002", Name: "新成路商户群", Station: "xcl", Tags: []string{"企业群"}},
			{Platform: "wechat", ChatID: "wr-jy-001", Name: "菊园小区群", Station: "jy", Officer: "jy-zhao"},
		},
		Shifts: []store.SeedShift{
			{Station: "xcl", Officer: "xcl-wang", Weekdays: []int{1, 2, 3, 4, 5}, DayKind: "workday", Start: "08:30", End: "17:30", Kind: "day"},
			{Station: "xcl", Officer: "xcl-li", Weekdays: []int{0, 6}, Start: "17:30", End: "08:30", Kind: "night"},
			{Station: "jy", Officer: "jy-zhao", Weekdays: []int{1, 3}, Start: "09:00", End: "18:00", Kind: "day"},
		},
		Overrides: []store.SeedOverride{
			{Officer: "xcl-wang", Date: "2026-10-01", Off: true},
			{Officer: "jy-zhao", Date: "2026-10-10", Start: "09:00", End: "12:00"},
		},
		Holidays: []store.Holiday{
			{Date: "2026-10-01", Kind: "holiday", Name: "国庆节"},
			{Date: "2026-10-10", Kind: "workday", Name: "国庆节调休上班"},
		},
		FAQs: []store.SeedFAQ{
			{Topic: "身份证补办", Keywords: []string{"身份证", "补办"}, Answer: "携带户口簿到户籍窗口办理，工作日 9:00-17:00。"},
			{Station: "xcl", Topic: "居住证", Keywords: []string{"居住证"}, Answer: "新成路社区事务受理中心办理 📄"},
		},
		Templates: []store.Template{
			{Key: "ack", Text: "已收到您的问题，工单号 #{number}，民警会尽快答复。"},
			{Key: "escalation_dm", Text: "工单 #{number} 已等待 {waited} 分钟：{question}"},
		},
	}
}

func syncSeed(t testing.TB, s *store.Store, seed store.Seed) *store.Directory {
	t.Helper()
	if err := s.Sync(testContext(t), seed); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return loadDirectory(t, s)
}

func loadDirectory(t testing.TB, s *store.Store) *store.Directory {
	t.Helper()
	d, err := s.LoadDirectory(testContext(t))
	if err != nil {
		t.Fatalf("load directory: %v", err)
	}
	return d
}

func stationByCode(t *testing.T, d *store.Directory, code string) store.Station {
	t.Helper()
	for _, st := range d.Stations {
		if st.Code == code {
			return st
		}
	}
	t.Fatalf("station %s not in directory", code)
	return store.Station{}
}

func officerByCode(t *testing.T, d *store.Directory, code string) store.Officer {
	t.Helper()
	for _, o := range d.Officers {
		if o.Code == code {
			return o
		}
	}
	t.Fatalf("officer %s not in directory", code)
	return store.Officer{}
}

func groupByChat(t *testing.T, d *store.Directory, platform, chatID string) store.Group {
	t.Helper()
	for _, g := range d.Groups {
		if g.Platform == platform && g.ChatID == chatID {
			return g
		}
	}
	t.Fatalf("group %s/%s not in directory", platform, chatID)
	return store.Group{}
}

func ptr[T any](v T) *T { return &v }

// cst is China Standard Time, the zone officers and residents live in.
var cst = time.FixedZone("CST", 8*3600)

func TestSyncLoadsDirectoryWithReferencesResolved(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		d := syncSeed(t, s, districtSeed())

		if len(d.Stations) != 2 || len(d.Officers) != 6 || len(d.Groups) != 3 {
			t.Fatalf("got %d stations, %d officers, %d groups; want 2, 6, 3", len(d.Stations), len(d.Officers), len(d.Groups))
		}
		codeOf := map[uint]string{}
		for _, o := range d.Officers {
			codeOf[o.ID] = o.Code
		}
		stationOf := map[uint]string{}
		for _, st := range d.Stations {
			stationOf[st.ID] = st.Code
		}
		codeOfPtr := func(id *uint) string {
			if id == nil {
				return ""
			}
			return codeOf[*id]
		}

		xcl, jy := stationByCode(t, d, "xcl"), stationByCode(t, d, "jy")
		if xcl.Name != "新成路派出所" || xcl.SLAMinutes != 10 || codeOfPtr(xcl.DutyAccountID) != "xcl-duty" || codeOfPtr(xcl.LeaderID) != "xcl-zhang" {
			t.Errorf("station xcl = %+v, want 新成路派出所, SLA 10, duty account xcl-duty, leader xcl-zhang", xcl)
		}
		if jy.SLAMinutes != 15 || codeOfPtr(jy.DutyAccountID) != "jy-duty" || jy.LeaderID != nil {
			t.Errorf("station jy = %+v, want SLA 15, duty account jy-duty, no leader", jy)
		}

		wang := officerByCode(t, d, "xcl-wang")
		if wang.Name != "王建国" || stationOf[wang.StationID] != "xcl" || !wang.HasRole(store.RoleOfficer) || wang.HasRole(store.RoleLeader) {
			t.Errorf("officer xcl-wang = %+v", wang)
		}
		if got := wang.AliasList(); !slices.Equal(got, []string{"老王", "王警官"}) {
			t.Errorf("xcl-wang aliases = %q, want 老王, 王警官", got)
		}
		if wang.DutyOverride != nil {
			t.Errorf("a freshly synced officer has duty override %v, want none (follow the roster)", *wang.DutyOverride)
		}
		li := officerByCode(t, d, "xcl-li")
		if !li.HasRole(store.RoleAuxiliary) || !li.HasRole(store.RoleDutyOfficer) {
			t.Errorf("xcl-li roles = %q, want auxiliary and duty_officer", li.Roles)
		}
		if zhao := officerByCode(t, d, "jy-zhao"); stationOf[zhao.StationID] != "jy" {
			t.Errorf("jy-zhao belongs to station %q, want jy", stationOf[zhao.StationID])
		}

		identities := map[string]string{}
		for _, id := range d.Identities {
			identities[id.Platform+"/"+id.UserID] = codeOf[id.OfficerID]
		}
		wantIdentities := map[string]string{
			"dingtalk/staff-wang": "xcl-wang", "wechat/wangjianguo": "xcl-wang", "dingtalk/staff-li": "xcl-li",
			"dingtalk/staff-zhang": "xcl-zhang", "dingtalk/duty-xcl": "xcl-duty", "wechat/duty-xcl": "xcl-duty",
			"wechat/zhaomin": "jy-zhao",
		}
		if !reflect.DeepEqual(identities, wantIdentities) {
			t.Errorf("identities = %v, want %v", identities, wantIdentities)
		}

		g := groupByChat(t, d, "dingtalk", "cid-xcl-001")
		if g.Name != "新成路一居委平安群🏠" || stationOf[g.StationID] != "xcl" || codeOfPtr(g.OfficerID) != "xcl-wang" || !slices.Equal(g.TagList(), []string{"老年群", "平安群"}) {
			t.Errorf("group cid-xcl-001 = %+v", g)
		}
		if g := groupByChat(t, d, "wechat", "wr-xcl-002"); g.OfficerID != nil || !slices.Equal(g.TagList(), []string{"企业群"}) {
			t.Errorf("group wr-xcl-002 = %+v, want no officer, tag 企业群", g)
		}
		if g := groupByChat(t, d, "wechat", "wr-jy-001"); stationOf[g.StationID] != "jy" || codeOfPtr(g.OfficerID) != "jy-zhao" || len(g.TagList()) != 0 {
			t.Errorf("group wr-jy-001 = %+v, want station jy, officer jy-zhao, no tags", g)
		}

		var shifts []string
		for _, sh := range d.Shifts {
			shifts = append(shifts, fmt.Sprintf("%s %s %d %s %s-%s %s", stationOf[sh.StationID], codeOf[sh.OfficerID], sh.Weekday, sh.DayKind, sh.Start, sh.End, sh.Kind))
		}
		sort.Strings(shifts)
		wantShifts := []string{
			"jy jy-zhao 1  09:00-18:00 day", "jy jy-zhao 3  09:00-18:00 day",
			"xcl xcl-li 0  17:30-08:30 night", "xcl xcl-li 6  17:30-08:30 night",
			"xcl xcl-wang 1 workday 08:30-17:30 day", "xcl xcl-wang 2 workday 08:30-17:30 day",
			"xcl xcl-wang 3 workday 08:30-17:30 day", "xcl xcl-wang 4 workday 08:30-17:30 day",
			"xcl xcl-wang 5 workday 08:30-17:30 day",
		}
		if !slices.Equal(shifts, wantShifts) {
			t.Errorf("shifts:\n got %q\nwant %q", shifts, wantShifts)
		}

		var overrides []string
		for _, ov := range d.Overrides {
			overrides = append(overrides, fmt.Sprintf("%s %s %s %s-%s off=%v", stationOf[ov.StationID], codeOf[ov.OfficerID], ov.Date, ov.Start, ov.End, ov.Off))
		}
		sort.Strings(overrides)
		wantOverrides := []string{"jy jy-zhao 2026-10-10 09:00-12:00 off=false", "xcl xcl-wang 2026-10-01 - off=true"}
		if !slices.Equal(overrides, wantOverrides) {
			t.Errorf("overrides:\n got %q\nwant %q", overrides, wantOverrides)
		}

		holidays := map[string]store.Holiday{}
		for _, h := range d.Holidays {
			holidays[h.Date] = h
		}
		if h := holidays["2026-10-01"]; h.Kind != "holiday" || h.Name != "国庆节" {
			t.Errorf("holiday 2026-10-01 = %+v", h)
		}
		if h := holidays["2026-10-10"]; h.Kind != "workday" || h.Name != "国庆节调休上班" {
			t.Errorf("make-up workday 2026-10-10 = %+v", h)
		}

		faqs := map[string]store.FAQ{}
		for _, f := range d.FAQs {
			faqs[f.Topic] = f
		}
		if f := faqs["身份证补办"]; f.StationID != nil || !slices.Equal(f.KeywordList(), []string{"身份证", "补办"}) || !strings.Contains(f.Answer, "户籍窗口") {
			t.Errorf("district-wide FAQ = %+v, want no station, keywords 身份证, 补办", f)
		}
		if f := faqs["居住证"]; f.StationID == nil || stationOf[*f.StationID] != "xcl" || f.Answer != "新成路社区事务受理中心办理 📄" {
			t.Errorf("station FAQ = %+v, want station xcl", f)
		}

		templates := map[string]string{}
		for _, tp := range d.Templates {
			templates[tp.Key] = tp.Text
		}
		if templates["ack"] != "已收到您的问题，工单号 #{number}，民警会尽快答复。" || templates["escalation_dm"] == "" || len(templates) != 2 {
			t.Errorf("templates = %v", templates)
		}
	})
}

// rosterLines renders the rows Sync replaces wholesale, without their ids.
func rosterLines(d *store.Directory) []string {
	var out []string
	for _, id := range d.Identities {
		out = append(out, fmt.Sprintf("identity %d %s %s", id.OfficerID, id.Platform, id.UserID))
	}
	for _, sh := range d.Shifts {
		out = append(out, fmt.Sprintf("shift %d %d %d %s %s %s %s", sh.StationID, sh.OfficerID, sh.Weekday, sh.DayKind, sh.Start, sh.End, sh.Kind))
	}
	for _, ov := range d.Overrides {
		out = append(out, fmt.Sprintf("override %d %d %s %s %s %v", ov.StationID, ov.OfficerID, ov.Date, ov.Start, ov.End, ov.Off))
	}
	for _, h := range d.Holidays {
		out = append(out, fmt.Sprintf("holiday %s %s %s", h.Date, h.Kind, h.Name))
	}
	for _, f := range d.FAQs {
		station := uint(0)
		if f.StationID != nil {
			station = *f.StationID
		}
		out = append(out, fmt.Sprintf("faq %d %s %s %s", station, f.Topic, f.Keywords, f.Answer))
	}
	for _, tp := range d.Templates {
		out = append(out, fmt.Sprintf("template %s %s", tp.Key, tp.Text))
	}
	sort.Strings(out)
	return out
}

// withoutTimestamps drops the bookkeeping times from stations, officers
// and groups so directories can be compared by content and id.
func withoutTimestamps(d *store.Directory) ([]store.Station, []store.Officer, []store.Group) {
	st := slices.Clone(d.Stations)
	for i := range st {
		st[i].CreatedAt, st[i].UpdatedAt = time.Time{}, time.Time{}
	}
	of := slices.Clone(d.Officers)
	for i := range of {
		of[i].CreatedAt, of[i].UpdatedAt = time.Time{}, time.Time{}
	}
	gr := slices.Clone(d.Groups)
	for i := range gr {
		gr[i].CreatedAt, gr[i].UpdatedAt = time.Time{}, time.Time{}
	}
	return st, of, gr
}

func TestSyncTwiceWithSameSeedChangesNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		first := syncSeed(t, s, districtSeed())
		second := syncSeed(t, s, districtSeed())

		st1, of1, gr1 := withoutTimestamps(first)
		st2, of2, gr2 := withoutTimestamps(second)
		if !reflect.DeepEqual(st1, st2) {
			t.Errorf("stations changed on re-sync:\n before %+v\n after  %+v", st1, st2)
		}
		if !reflect.DeepEqual(of1, of2) {
			t.Errorf("officers changed on re-sync:\n before %+v\n after  %+v", of1, of2)
		}
		if !reflect.DeepEqual(gr1, gr2) {
			t.Errorf("groups changed on re-sync:\n before %+v\n after  %+v", gr1, gr2)
		}
		if r1, r2 := rosterLines(first), rosterLines(second); !slices.Equal(r1, r2) {
			t.Errorf("roster, identities, holidays, FAQ or templates changed on re-sync:\n before %q\n after  %q", r1, r2)
		}
		if len(second.Identities) != 7 || len(second.Shifts) != 9 || len(second.Overrides) != 2 ||
			len(second.Holidays) != 2 || len(second.FAQs) != 2 || len(second.Templates) != 2 {
			t.Errorf("after two syncs: %d identities, %d shifts, %d overrides, %d holidays, %d FAQs, %d templates; want 7, 9, 2, 2, 2, 2",
				len(second.Identities), len(second.Shifts), len(second.Overrides), len(second.Holidays), len(second.FAQs), len(second.Templates))
		}
	})
}

func TestSyncAppliesConfigChangesInPlace(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		before := syncSeed(t, s, districtSeed())

		seed := districtSeed()
		seed.Stations[0].Name = "新成路派出所（嘉定）"
		seed.Stations[0].SLAMinutes = 5
		seed.Stations[1].Leader = "jy-zhao"
		seed.Officers[0].Name = "王建军"
		seed.Officers[0].Aliases = []string{"老王"}
		seed.Officers[0].Identities = map[string]string{"dingtalk": "staff-wang-2"}
		seed.Groups[0].Officer = ""
		seed.Groups[0].Tags = []string{"平安群"}
		seed.Groups[1].Station = "jy"
		seed.Shifts = seed.Shifts[:1]
		seed.Overrides = nil
		seed.Holidays[0].Name = "国庆节假期"
		seed.FAQs = seed.FAQs[:1]
		seed.Templates[0].Text = "收到，工单 #{number}。"
		after := syncSeed(t, s, seed)

		if len(after.Stations) != 2 || len(after.Officers) != 6 || len(after.Groups) != 3 {
			t.Fatalf("got %d stations, %d officers, %d groups; want 2, 6, 3", len(after.Stations), len(after.Officers), len(after.Groups))
		}
		xcl, jy := stationByCode(t, after, "xcl"), stationByCode(t, after, "jy")
		if xcl.ID != stationByCode(t, before, "xcl").ID || xcl.Name != "新成路派出所（嘉定）" || xcl.SLAMinutes != 5 {
			t.Errorf("station xcl = %+v, want same id, renamed, SLA 5", xcl)
		}
		zhao := officerByCode(t, after, "jy-zhao")
		if jy.LeaderID == nil || *jy.LeaderID != zhao.ID {
			t.Errorf("station jy leader = %v, want jy-zhao (%d)", jy.LeaderID, zhao.ID)
		}
		wang := officerByCode(t, after, "xcl-wang")
		if wang.ID != officerByCode(t, before, "xcl-wang").ID || wang.Name != "王建军" || !slices.Equal(wang.AliasList(), []string{"老王"}) {
			t.Errorf("officer xcl-wang = %+v, want same id, renamed, alias 老王 only", wang)
		}
		var wangIDs []string
		for _, id := range after.Identities {
			if id.OfficerID == wang.ID {
				wangIDs = append(wangIDs, id.Platform+"/"+id.UserID)
			}
		}
		if !slices.Equal(wangIDs, []string{"dingtalk/staff-wang-2"}) {
			t.Errorf("xcl-wang identities = %q, want only dingtalk/staff-wang-2", wangIDs)
		}
		g := groupByChat(t, after, "dingtalk", "cid-xcl-001")
		if g.ID != groupByChat(t, before, "dingtalk", "cid-xcl-001").ID || g.OfficerID != nil || !slices.Equal(g.TagList(), []string{"平安群"}) {
			t.Errorf("group cid-xcl-001 = %+v, want same id, no officer, tag 平安群", g)
		}
		if g := groupByChat(t, after, "wechat", "wr-xcl-002"); g.StationID != jy.ID {
			t.Errorf("group wr-xcl-002 station = %d, want jy (%d)", g.StationID, jy.ID)
		}
		if len(after.Shifts) != 5 || len(after.Overrides) != 0 || len(after.FAQs) != 1 {
			t.Errorf("got %d shifts, %d overrides, %d FAQs; want 5, 0, 1", len(after.Shifts), len(after.Overrides), len(after.FAQs))
		}
		for _, h := range after.Holidays {
			if h.Date == "2026-10-01" && h.Name != "国庆节假期" {
				t.Errorf("holiday 2026-10-01 name = %q, want 国庆节假期", h.Name)
			}
		}
		for _, tp := range after.Templates {
			if tp.Key == "ack" && tp.Text != "收到，工单 #{number}。" {
				t.Errorf("template ack = %q, want the new text", tp.Text)
			}
		}
	})
}

func TestDutyOverrideSurvivesResync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		on   *bool
	}{
		{"forced on duty", ptr(true)},
		{"forced off duty", ptr(false)},
		{"back to roster", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, s *store.Store) {
				d := syncSeed(t, s, districtSeed())
				wang := officerByCode(t, d, "xcl-wang")
				at := time.Date(2026, 11, 23, 20, 15, 0, 0, cst)
				if tc.on == nil {
					if err := s.SetDutyOverride(testContext(t), wang.ID, ptr(true), at.Add(-time.Hour), nil); err != nil {
						t.Fatal(err)
					}
				}
				until := at.Add(105 * time.Minute)
				if err := s.SetDutyOverride(testContext(t), wang.ID, tc.on, at, &until); err != nil {
					t.Fatalf("set duty override: %v", err)
				}

				seed := districtSeed()
				seed.Officers[0].Name = "王建军" // a config change to the same officer
				d = syncSeed(t, s, seed)
				got := officerByCode(t, d, "xcl-wang")
				if !reflect.DeepEqual(got.DutyOverride, tc.on) {
					t.Errorf("duty override after re-sync = %v, want %v", deref(got.DutyOverride), deref(tc.on))
				}
				if got.DutySince == nil || !got.DutySince.Equal(at) {
					t.Errorf("duty since = %v, want %v", deref(got.DutySince), at)
				}
				if got.DutyUntil == nil || !got.DutyUntil.Equal(until) {
					t.Errorf("duty until = %v, want %v", deref(got.DutyUntil), until)
				}
				if got.Name != "王建军" {
					t.Errorf("name = %q, want the re-synced 王建军", got.Name)
				}
				if other := officerByCode(t, d, "xcl-li"); other.DutyOverride != nil {
					t.Errorf("another officer's override = %v, want none", *other.DutyOverride)
				}
			})
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSyncWithUnknownReferenceFailsAndChangesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		breakSeed func(*store.Seed)
		want      string
	}{
		{"officer of unknown station", func(s *store.Seed) {
			s.Officers = append(s.Officers, store.SeedOfficer{Code: "ghost-1", Station: "no-such-station", Name: "无名"})
		}, "no-such-station"},
		{"station duty account unknown", func(s *store.Seed) { s.Stations[1].DutyAccount = "no-such-duty" }, "no-such-duty"},
		{"station leader unknown", func(s *store.Seed) { s.Stations[0].Leader = "no-such-leader" }, "no-such-leader"},
		{"group of unknown station", func(s *store.Seed) { s.Groups[2].Station = "no-such-station" }, "no-such-station"},
		{"group officer unknown", func(s *store.Seed) { s.Groups[1].Officer = "no-such-officer" }, "no-such-officer"},
		{"shift of unknown station", func(s *store.Seed) { s.Shifts[1].Station = "no-such-station" }, "no-such-station"},
		{"shift of unknown officer", func(s *store.Seed) { s.Shifts[2].Officer = "no-such-officer" }, "no-such-officer"},
		{"override of unknown officer", func(s *store.Seed) {
			s.Overrides = append(s.Overrides, store.SeedOverride{Officer: "no-such-officer", Date: "2026-10-02", Off: true})
		}, "no-such-officer"},
		{"FAQ of unknown station", func(s *store.Seed) { s.FAQs[1].Station = "no-such-station" }, "no-such-station"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, s *store.Store) {
				syncSeed(t, s, districtSeed())
				wang := officerByCode(t, loadDirectory(t, s), "xcl-wang")
				if err := s.SetDutyOverride(testContext(t), wang.ID, ptr(true), time.Now(), nil); err != nil {
					t.Fatal(err)
				}
				before := loadDirectory(t, s)

				// Everything else in the bad seed is a valid change that
				// must not be applied either.
				seed := districtSeed()
				seed.Stations[0].Name = "改名的派出所"
				seed.Officers[0].Name = "改名的民警"
				seed.Officers = append(seed.Officers, store.SeedOfficer{Code: "xcl-new", Station: "xcl", Name: "新民警",
					Identities: map[string]string{"dingtalk": "staff-new"}})
				seed.Groups = append(seed.Groups, store.SeedGroup{Platform: "dingtalk", ChatID: "cid-new", Name: "新群", Station: "xcl"})
				seed.Holidays = append(seed.Holidays, store.Holiday{Date: "2027-01-01", Kind: "holiday", Name: "元旦"})
				seed.Templates[0].Text = "changed"
				tc.breakSeed(&seed)

				err := s.Sync(testContext(t), seed)
				if err == nil {
					t.Fatal("sync with an unknown reference succeeded, want an error")
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not name %q", err, tc.want)
				}
				after := loadDirectory(t, s)
				if !reflect.DeepEqual(before, after) {
					t.Errorf("a failed sync changed the directory:\n before %+v\n after  %+v", before, after)
				}
			})
		})
	}
}

func TestRecordUnknownChatCountsMessagesPerChat(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		start := time.Now().Add(-time.Second)
		for range 3 {
			if _, err := s.RecordUnknownChat(ctx, "dingtalk", "cid-unregistered", "嘉定某小区业主群", nil, nil); err != nil {
				t.Fatalf("record unknown chat: %v", err)
			}
		}
		// Same chat id on the other platform is another chat.
		if _, err := s.RecordUnknownChat(ctx, "wechat", "cid-unregistered", "同名的微信群", nil, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := s.RecordUnknownChat(ctx, "wechat", "wr-other", "另一个群 😀", nil, nil); err != nil {
			t.Fatal(err)
		}

		chats, err := s.UnknownChats(ctx)
		if err != nil {
			t.Fatalf("list unknown chats: %v", err)
		}
		if len(chats) != 3 {
			t.Fatalf("got %d unknown chats, want 3: %+v", len(chats), chats)
		}
		if chats[0].ChatID != "wr-other" || chats[0].Name != "另一个群 😀" {
			t.Errorf("most recently seen chat = %+v, want wr-other first", chats[0])
		}
		counts := map[string]int64{}
		for _, c := range chats {
			counts[c.Platform+"/"+c.ChatID] = c.Messages
			if c.FirstSeen.Before(start) || c.LastSeen.Before(c.FirstSeen) {
				t.Errorf("chat %s/%s first seen %v, last seen %v", c.Platform, c.ChatID, c.FirstSeen, c.LastSeen)
			}
		}
		want := map[string]int64{"dingtalk/cid-unregistered": 3, "wechat/cid-unregistered": 1, "wechat/wr-other": 1}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("message counts = %v, want %v", counts, want)
		}
	})
}

// The reply to a message in an unregistered group is written with the
// count: the same message recorded again (a platform redelivery) is
// ErrDuplicate and counts once.
func TestRecordUnknownChatOncePerReply(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		reply := func(key string) store.OutboundMessage {
			return store.OutboundMessage{Key: key, Purpose: "reply", Platform: "dingtalk", ChatType: "group", ChatID: "cid-new", Format: "text", Text: "本群尚未登记"}
		}
		for i, key := range []string{"unknown:m1", "unknown:m1", "unknown:m2"} {
			_, err := s.RecordUnknownChat(ctx, "dingtalk", "cid-new", "新群", []store.OutboundMessage{reply(key)}, nil)
			if wantDup := i == 1; errors.Is(err, store.ErrDuplicate) != wantDup || (err != nil && !wantDup) {
				t.Fatalf("record %s (delivery %d): %v, want duplicate %v", key, i+1, err, wantDup)
			}
		}
		chats, err := s.UnknownChats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(chats) != 1 || chats[0].Messages != 2 {
			t.Errorf("unknown chats = %+v, want cid-new with 2 messages", chats)
		}
		for _, key := range []string{"unknown:m1", "unknown:m2"} {
			if m, err := s.OutboundByKey(ctx, key); err != nil || m.State != store.OutboundPending || m.ChatID != "cid-new" {
				t.Errorf("reply %s = %+v, %v; want pending to cid-new", key, m, err)
			}
		}
	})
}

func TestParkedMessagesRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		parked := []struct {
			topic, id string
			payload   []byte
			cause     string
		}{
			{"events.ask", "m-1", []byte(`{"text":"楼道有焦味"}`), "route: no station for chat"},
			{"outbound.dingtalk", "m-2", []byte{0, 1, 2, 0xff, 0xfe}, "send: 403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"},
			{"events.ask", "m-3", nil, "decode: unexpected end of JSON input ⚠️"},
		}
		for _, p := range parked {
			if err := s.Park(ctx, p.topic, p.id, p.payload, p.cause); err != nil {
				t.Fatalf("park %s: %v", p.id, err)
			}
		}

		all, err := s.Parked(ctx, "")
		if err != nil {
			t.Fatalf("list parked: %v", err)
		}
		var ids []string
		for _, m := range all {
			ids = append(ids, m.MessageID)
		}
		if !slices.Equal(ids, []string{"m-3", "m-2", "m-1"}) {
			t.Errorf("parked messages = %q, want newest first m-3, m-2, m-1", ids)
		}
		for _, m := range all {
			for _, p := range parked {
				if p.id == m.MessageID && (m.Topic != p.topic || !bytes.Equal(m.Payload, p.payload) || m.Cause != p.cause || m.At.IsZero()) {
					t.Errorf("parked %s = {%s %q %q %v}, want {%s %q %q}", p.id, m.Topic, m.Payload, m.Cause, m.At, p.topic, p.payload, p.cause)
				}
			}
		}

		ask, err := s.Parked(ctx, "events.ask")
		if err != nil {
			t.Fatal(err)
		}
		if len(ask) != 2 || ask[0].MessageID != "m-3" || ask[1].MessageID != "m-1" {
			t.Errorf("parked on events.ask = %+v, want m-3, m-1", ask)
		}
		none, err := s.Parked(ctx, "no.such.topic")
		if err != nil || len(none) != 0 {
			t.Errorf("parked on an unused topic = %v, %v; want none", none, err)
		}
	})
}

func TestSyncDropsHolidaysRemovedFromTheCalendar(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		seed := districtSeed()
		seed.Holidays = []store.Holiday{{Date: "2026-10-01", Kind: "holiday", Name: "国庆节"}, {Date: "2026-10-11", Kind: "workday", Name: "错录"}}
		syncSeed(t, s, seed)
		seed.Holidays = []store.Holiday{{Date: "2026-10-01", Kind: "holiday", Name: "国庆节"}, {Date: "2026-10-10", Kind: "workday", Name: "国庆节调休"}}
		d := syncSeed(t, s, seed)
		got := map[string]string{}
		for _, h := range d.Holidays {
			got[h.Date] = h.Kind
		}
		if len(got) != 2 || got["2026-10-10"] != "workday" || got["2026-10-11"] != "" {
			t.Errorf("calendar after correcting a date = %v, want 10-01 holiday and 10-10 workday only", got)
		}
	})
}
