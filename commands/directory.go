package commands

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jingminhub/jingmin/store"
)

// directory is an immutable in-memory view of stations, groups, officers,
// roster and FAQ, so routing a question costs no query. It is rebuilt from the
// store whenever something in it changes (duty on/off, a config sync).
type directory struct {
	stations   map[uint]*store.Station
	groups     map[string]*store.Group // platform + "\x00" + chat id
	groupByID  map[uint]*store.Group
	officers   map[uint]*store.Officer
	byIdentity map[string]*store.Officer // platform + "\x00" + user id
	identities map[uint][]store.Identity // officer id → identities
	staff      map[uint][]*store.Officer // station id → officers, by id
	names      map[uint]map[string][]*store.Officer
	shifts     map[uint][]store.Shift // officer id
	overrides  map[string][]store.Override
	holidays   map[string]string // date → holiday | workday
	// holidayNames name the holidays and make-up days, for the calendar.
	holidayNames map[string]string
	// version is the directory revision this view was loaded at.
	version   int64
	faqs      []store.FAQ
	templates map[string]string

	// roles are each officer's roles, parsed once here: routing asks them
	// of every officer of a station.
	roles map[uint]roleSet

	// rosterDays memoises shiftsOn (dayKey → []span), and stationNow holds
	// each station's latest stretches of its roster (stationStretches): the
	// parts that fill in after the directory is built. Every worker reads
	// both for every question, so neither takes a lock to read.
	rosterDays  sync.Map
	rosterCount atomic.Int64
	stationNow  map[uint]*atomic.Pointer[stationStretches]
}

// roleSet is an officer's roles as bits.
type roleSet uint16

const (
	roleOfficer roleSet = 1 << iota
	roleAuxiliary
	roleDutyOfficer
	roleLeader
	roleAdmin
	roleDistrictAdmin
	roleDutyAccount
)

var roleBits = []struct {
	name string
	bit  roleSet
}{
	{store.RoleOfficer, roleOfficer}, {store.RoleAuxiliary, roleAuxiliary},
	{store.RoleDutyOfficer, roleDutyOfficer}, {store.RoleLeader, roleLeader},
	{store.RoleAdmin, roleAdmin}, {store.RoleDistrictAdmin, roleDistrictAdmin},
	{store.RoleDutyAccount, roleDutyAccount},
}

func parseRoles(o *store.Officer) roleSet {
	var r roleSet
	for _, b := range roleBits {
		if o.HasRole(b.name) {
			r |= b.bit
		}
	}
	return r
}

// priority is rolePriority from the roles parsed at build.
func (d *directory) priority(o *store.Officer) int {
	r, ok := d.roles[o.ID]
	if !ok {
		return rolePriority(o)
	}
	switch {
	case r&roleDutyAccount != 0:
		return -1
	case r&roleDutyOfficer != 0:
		return 3
	case r&roleOfficer != 0:
		return 2
	case r&roleAuxiliary != 0:
		return 1
	}
	return -1
}

// has reports whether o holds role, from the roles parsed at build.
func (d *directory) has(o *store.Officer, role roleSet) bool {
	r, ok := d.roles[o.ID]
	if !ok {
		return parseRoles(o)&role != 0
	}
	return r&role != 0
}

func newDirectory(d *store.Directory) *directory {
	dir := &directory{
		stations:     map[uint]*store.Station{},
		groups:       map[string]*store.Group{},
		groupByID:    map[uint]*store.Group{},
		officers:     map[uint]*store.Officer{},
		byIdentity:   map[string]*store.Officer{},
		identities:   map[uint][]store.Identity{},
		staff:        map[uint][]*store.Officer{},
		names:        map[uint]map[string][]*store.Officer{},
		shifts:       map[uint][]store.Shift{},
		overrides:    map[string][]store.Override{},
		holidays:     map[string]string{},
		holidayNames: map[string]string{},
		faqs:         d.FAQs,
		templates:    map[string]string{},
		roles:        map[uint]roleSet{},
		stationNow:   map[uint]*atomic.Pointer[stationStretches]{},
	}
	for i := range d.Stations {
		dir.stations[d.Stations[i].ID] = &d.Stations[i]
		dir.stationNow[d.Stations[i].ID] = &atomic.Pointer[stationStretches]{}
	}
	for i := range d.Groups {
		g := &d.Groups[i]
		dir.groups[g.Platform+"\x00"+g.ChatID] = g
		dir.groupByID[g.ID] = g
	}
	for i := range d.Officers {
		o := &d.Officers[i]
		dir.officers[o.ID] = o
		dir.roles[o.ID] = parseRoles(o)
		dir.staff[o.StationID] = append(dir.staff[o.StationID], o)
		if dir.names[o.StationID] == nil {
			dir.names[o.StationID] = map[string][]*store.Officer{}
		}
		for _, n := range append([]string{o.Name}, o.AliasList()...) {
			dir.names[o.StationID][n] = append(dir.names[o.StationID][n], o)
		}
	}
	for _, list := range dir.staff {
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	}
	for _, id := range d.Identities {
		if o, ok := dir.officers[id.OfficerID]; ok {
			dir.byIdentity[id.Platform+"\x00"+id.UserID] = o
			dir.identities[id.OfficerID] = append(dir.identities[id.OfficerID], id)
		}
	}
	for _, s := range d.Shifts {
		dir.shifts[s.OfficerID] = append(dir.shifts[s.OfficerID], s)
	}
	for _, o := range d.Overrides {
		k := fmt.Sprintf("%d\x00%s", o.OfficerID, o.Date)
		dir.overrides[k] = append(dir.overrides[k], o)
	}
	for _, h := range d.Holidays {
		dir.holidays[h.Date] = h.Kind
		dir.holidayNames[h.Date] = h.Name
	}
	for _, t := range d.Templates {
		dir.templates[t.Key] = t.Text
	}
	return dir
}

func (d *directory) group(platform, chatID string) *store.Group {
	return d.groups[platform+"\x00"+chatID]
}

func (d *directory) officerByIdentity(platform, userID string) *store.Officer {
	return d.byIdentity[platform+"\x00"+userID]
}

// officerByName finds the one officer of a station called name (or aliased
// so). Two officers answering to the same name is no answer: never guess.
func (d *directory) officerByName(stationID uint, name string) *store.Officer {
	name = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(name, "@"), "＠"))
	if list := d.names[stationID][name]; len(list) == 1 {
		return list[0]
	}
	return nil
}

// dutyAccount and leader of a station, or nil.
func (d *directory) dutyAccount(st *store.Station) *store.Officer {
	if st.DutyAccountID == nil {
		return nil
	}
	return d.officers[*st.DutyAccountID]
}

func (d *directory) leader(st *store.Station) *store.Officer {
	if st.LeaderID == nil {
		return nil
	}
	return d.officers[*st.LeaderID]
}

// address picks where to DM an officer: their account on the preferred
// platform, else any account they have, in a fixed order.
func (d *directory) address(o *store.Officer, preferred string) (platform, userID string, ok bool) {
	ids := d.identities[o.ID]
	for _, id := range ids {
		if id.Platform == preferred {
			return id.Platform, id.UserID, true
		}
	}
	for _, p := range []string{"dingtalk", "wechat", "playground"} {
		for _, id := range ids {
			if id.Platform == p {
				return id.Platform, id.UserID, true
			}
		}
	}
	return "", "", false
}

func (d *directory) template(key string) string {
	if t, ok := d.templates[key]; ok {
		return t
	}
	return key
}
