package configs

import (
	"sort"

	"github.com/jingminhub/jingmin/store"
)

var weekdays = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// Seed turns the config into the store's code-referenced directory.
func (c *Config) Seed() store.Seed {
	var s store.Seed
	for _, st := range c.Stations {
		s.Stations = append(s.Stations, store.SeedStation{Code: st.Code, Name: st.Name, SLAMinutes: st.SLAMinutes, DutyAccount: st.DutyAccount, Leader: st.Leader})
	}
	for _, o := range c.Officers {
		s.Officers = append(s.Officers, store.SeedOfficer{Code: o.Code, Station: o.Station, Name: o.Name, Roles: o.Roles, Aliases: o.Aliases, Identities: o.Identities})
	}
	for _, g := range c.Groups {
		s.Groups = append(s.Groups, store.SeedGroup{Platform: g.Platform, ChatID: g.ChatID, Name: g.Name, Station: g.Station, Officer: g.Officer, Tags: g.Tags, Kind: g.Kind})
	}
	station := map[string]string{}
	for _, o := range c.Officers {
		station[o.Code] = o.Station
	}
	for _, sh := range c.Roster.Shifts {
		byKind := map[string][]int{}
		for _, d := range sh.Days {
			switch d {
			case "workdays":
				byKind["workday"] = []int{-1}
			case "restdays":
				byKind["restday"] = []int{-1}
			case "daily":
				byKind[""] = []int{0, 1, 2, 3, 4, 5, 6}
			default:
				byKind[""] = append(byKind[""], weekdays[d])
			}
		}
		kinds := make([]string, 0, len(byKind))
		for k := range byKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			s.Shifts = append(s.Shifts, store.SeedShift{Station: station[sh.Officer], Officer: sh.Officer, Weekdays: byKind[k], DayKind: k, Start: sh.Start, End: sh.End, Kind: sh.Kind})
		}
	}
	for _, o := range c.Roster.Overrides {
		s.Overrides = append(s.Overrides, store.SeedOverride{Officer: o.Officer, Date: o.Date, Start: o.Start, End: o.End, Off: o.Off})
	}
	for _, h := range c.Holidays {
		s.Holidays = append(s.Holidays, store.Holiday{Date: h.Date, Kind: h.Kind, Name: h.Name})
	}
	for _, f := range c.FAQ {
		s.FAQs = append(s.FAQs, store.SeedFAQ{Station: f.Station, Topic: f.Topic, Keywords: f.Keywords, Answer: f.Answer})
	}
	keys := make([]string, 0, len(DefaultTemplates))
	for k := range DefaultTemplates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		text := DefaultTemplates[k]
		if v, ok := c.Templates[k]; ok {
			text = v
		}
		s.Templates = append(s.Templates, store.Template{Key: k, Text: text})
	}
	return s
}
