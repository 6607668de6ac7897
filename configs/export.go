package configs

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/jingminhub/jingmin/store"
)

// Directory is the part of a config file the database holds: what export
// writes and sync reads back.
type Directory struct {
	Stations  []Station         `yaml:"stations"`
	Officers  []Officer         `yaml:"officers"`
	Groups    []Group           `yaml:"groups"`
	Roster    Roster            `yaml:"roster"`
	FAQ       []FAQ             `yaml:"faq"`
	Templates map[string]string `yaml:"templates,omitempty"`
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Export writes d (the database's directory) as config YAML that `jingmin
// sync` takes back with no change: stations, officers with their accounts,
// groups, the roster (shifts and overrides), FAQ and the templates that
// differ from the defaults. Holidays are not written: the built-in
// calendars and holiday_files stay where they are; extra reports dates in
// d that neither holds, for the caller to warn about.
func Export(d *store.Directory, builtin []Holiday) (out []byte, extra []string, err error) {
	stations := map[uint]string{}
	officers := map[uint]*store.Officer{}
	for _, st := range d.Stations {
		stations[st.ID] = st.Code
	}
	for i := range d.Officers {
		officers[d.Officers[i].ID] = &d.Officers[i]
	}
	code := func(id *uint) string {
		if id == nil || officers[*id] == nil {
			return ""
		}
		return officers[*id].Code
	}
	var x Directory
	for _, st := range sortedBy(d.Stations, func(s store.Station) string { return s.Code }) {
		x.Stations = append(x.Stations, Station{Code: st.Code, Name: st.Name, SLAMinutes: st.SLAMinutes, DutyAccount: code(st.DutyAccountID), Leader: code(st.LeaderID)})
	}
	ids := map[uint]map[string]string{}
	for _, id := range d.Identities {
		if ids[id.OfficerID] == nil {
			ids[id.OfficerID] = map[string]string{}
		}
		ids[id.OfficerID][id.Platform] = id.UserID
	}
	for _, o := range sortedBy(d.Officers, func(o store.Officer) string { return fmt.Sprintf("%s\x00%012d", stations[o.StationID], o.ID) }) {
		x.Officers = append(x.Officers, Officer{Code: o.Code, Station: stations[o.StationID], Name: o.Name, Roles: splitComma(o.Roles),
			Aliases: o.AliasList(), Identities: ids[o.ID]})
	}
	for _, g := range sortedBy(d.Groups, func(g store.Group) string { return g.Platform + "\x00" + g.ChatID }) {
		x.Groups = append(x.Groups, Group{Platform: g.Platform, ChatID: g.ChatID, Name: g.Name, Station: stations[g.StationID],
			Officer: code(g.OfficerID), Tags: g.TagList(), Kind: g.Kind})
	}
	// Shifts of one officer at the same hours are one entry with their days.
	type shiftKey struct {
		officer                   uint
		dayKind, start, end, kind string
	}
	byKey := map[shiftKey][]int{}
	var keys []shiftKey
	for _, s := range d.Shifts {
		k := shiftKey{s.OfficerID, s.DayKind, s.Start, s.End, s.Kind}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], s.Weekday)
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.officer != b.officer {
			return a.officer < b.officer
		}
		return a.dayKind+a.start+a.end < b.dayKind+b.start+b.end
	})
	for _, k := range keys {
		o := officers[k.officer]
		if o == nil {
			continue
		}
		var days []string
		switch k.dayKind {
		case "workday":
			days = []string{"workdays"}
		case "restday":
			days = []string{"restdays"}
		default:
			wds := byKey[k]
			sort.Ints(wds)
			for i, wd := range wds {
				if wd >= 0 && wd <= 6 && (i == 0 || wds[i-1] != wd) {
					days = append(days, dayNames[wd])
				}
			}
		}
		x.Roster.Shifts = append(x.Roster.Shifts, Shift{Officer: o.Code, Days: days, Start: k.start, End: k.end, Kind: k.kind})
	}
	for _, ov := range sortedBy(d.Overrides, func(ov store.Override) string { return fmt.Sprintf("%s\x00%012d", ov.Date, ov.ID) }) {
		if o := officers[ov.OfficerID]; o != nil {
			x.Roster.Overrides = append(x.Roster.Overrides, Override{Officer: o.Code, Date: ov.Date, Start: ov.Start, End: ov.End, Off: ov.Off})
		}
	}
	for _, f := range d.FAQs {
		st := ""
		if f.StationID != nil {
			st = stations[*f.StationID]
		}
		x.FAQ = append(x.FAQ, FAQ{Station: st, Topic: f.Topic, Keywords: f.KeywordList(), Answer: f.Answer})
	}
	for _, t := range d.Templates {
		if def, ok := DefaultTemplates[t.Key]; ok && def != t.Text {
			if x.Templates == nil {
				x.Templates = map[string]string{}
			}
			x.Templates[t.Key] = t.Text
		}
	}
	known := map[string]string{}
	for _, h := range builtin {
		known[h.Date] = h.Kind
	}
	for _, h := range d.Holidays {
		if known[h.Date] != h.Kind {
			extra = append(extra, h.Date)
		}
	}
	sort.Strings(extra)
	var b bytes.Buffer
	b.WriteString("# The directory and roster as the database holds them (jingmin export).\n" +
		"# `jingmin sync -config FILE --dry-run` shows what taking it back would change.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(x); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	return b.Bytes(), extra, nil
}

func sortedBy[T any](in []T, key func(T) string) []T {
	out := append([]T(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
