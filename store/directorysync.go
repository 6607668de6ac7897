package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"gorm.io/gorm"
)

// SyncOptions say how SyncDirectory writes the configuration's directory.
type SyncOptions struct {
	// DryRun reports what would change and writes nothing.
	DryRun bool
	// OnlyIfEmpty writes the directory only into a database that has none
	// yet (no station), so a process starting beside a running deployment
	// never overwrites what was edited there since; decided under the same
	// lock as the write, so of several processes starting at once exactly
	// one writes.
	OnlyIfEmpty bool
}

// SyncReport is what SyncDirectory did (or, dry, would do).
type SyncReport struct {
	// Skipped: OnlyIfEmpty and the database already had a directory.
	Skipped bool
	Changes []DirectoryChange
}

// DirectoryChange is one difference between the database's directory and the
// configuration's: an added, changed or removed row.
type DirectoryChange struct {
	Op     string // "+" added, "~" changed, "-" removed
	What   string // 派出所, 民警, 群, 排班, 调班, 节假日, 问答, 模板
	Key    string
	Detail string
}

func (c DirectoryChange) String() string {
	s := c.Op + " " + c.What + " " + c.Key
	if c.Detail != "" {
		s += "：" + c.Detail
	}
	return s
}

// syncLockSeconds is how long a process waits for another's sync.
const syncLockSeconds = 120

// SyncDirectory makes the directory match seed and reports each change.
// On MySQL it holds a named lock (GET_LOCK) around the transaction, so
// processes started together sync one after the other instead of racing
// to insert the same station; on SQLite the single writer does the same.
func (s *Store) SyncDirectory(ctx context.Context, seed Seed, o SyncOptions) (*SyncReport, error) {
	rep := &SyncReport{}
	if o.DryRun {
		d, err := s.LoadDirectory(ctx)
		if err != nil {
			return nil, err
		}
		rep.Changes = diffDirectory(d, seed)
		return rep, nil
	}
	body := func(tx *gorm.DB) error {
		rep.Skipped, rep.Changes = false, nil // a body may be retried
		d, err := loadDirectory(tx)
		if err != nil {
			return err
		}
		if o.OnlyIfEmpty && len(d.Stations) > 0 {
			rep.Skipped = true
			return nil
		}
		rep.Changes = diffDirectory(d, seed)
		if err := s.applySeed(tx, seed); err != nil {
			return err
		}
		if len(rep.Changes) == 0 {
			return nil
		}
		// A form read before the sync must not write over it: every
		// editable row the sync may have touched moves its version on.
		for _, m := range []any{&Station{}, &Officer{}, &Group{}, &Template{}} {
			if err := tx.Session(&gorm.Session{AllowGlobalUpdate: true}).Model(m).UpdateColumn("version", gorm.Expr("version + 1")).Error; err != nil {
				return fmt.Errorf("sync: move versions on: %w", err)
			}
		}
		return nil
	}
	if s.driver != MySQL {
		if err := s.tx(ctx, body); err != nil {
			return nil, err
		}
		return rep, nil
	}
	err := s.db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		// The lock is the server's, so it is named after the database.
		const name = "CONCAT('jingmin_sync:', LEFT(MD5(DATABASE()), 24))"
		var got sql.NullInt64
		if err := conn.Raw("SELECT GET_LOCK("+name+", ?)", syncLockSeconds).Row().Scan(&got); err != nil {
			return fmt.Errorf("sync: take the directory lock: %w", err)
		}
		if !got.Valid || got.Int64 != 1 {
			return fmt.Errorf("sync: another process held the directory lock for %ds", syncLockSeconds)
		}
		defer func() {
			// Released even when ctx has ended: the connection goes back
			// to the pool and must not keep the lock.
			conn.WithContext(context.WithoutCancel(ctx)).Exec("SELECT RELEASE_LOCK(" + name + ")")
		}()
		return conn.Transaction(body)
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// retire removes officers and groups that are no longer in seed. A row
// nothing refers to is deleted. An officer whose name is on tickets or
// broadcasts is kept so those stay readable, but loses roles, aliases and
// duty state (identities and shifts are already gone), so nothing routes to
// them; their open tickets pass to their station's duty account. A removed
// group's tickets keep their platform and chat id; pending broadcast
// deliveries to it are cancelled.
func retire(tx *gorm.DB, seed Seed, stations map[string]*Station) error {
	keepGroup := map[string]bool{}
	for _, g := range seed.Groups {
		keepGroup[g.Platform+"\x00"+g.ChatID] = true
	}
	var groups []Group
	if err := tx.Find(&groups).Error; err != nil {
		return fmt.Errorf("sync: list groups: %w", err)
	}
	for _, g := range groups {
		if keepGroup[g.Platform+"\x00"+g.ChatID] {
			continue
		}
		if err := tx.Model(&Ticket{}).Where("group_id = ?", g.ID).Update("group_id", nil).Error; err != nil {
			return fmt.Errorf("sync: detach tickets from group %s: %w", g.ChatID, err)
		}
		if err := tx.Model(&Delivery{}).Where("group_id = ? AND status = ?", g.ID, DeliveryPending).
			Updates(map[string]any{"status": DeliveryCancelled, "reason": "群已从配置中移除"}).Error; err != nil {
			return fmt.Errorf("sync: cancel deliveries to group %s: %w", g.ChatID, err)
		}
		if err := tx.Delete(&Group{}, g.ID).Error; err != nil {
			return fmt.Errorf("sync: remove group %s: %w", g.ChatID, err)
		}
	}
	keepOfficer := map[string]bool{}
	for _, o := range seed.Officers {
		keepOfficer[o.Code] = true
	}
	var officers []Officer
	if err := tx.Where("roles <> ''").Find(&officers).Error; err != nil {
		return fmt.Errorf("sync: list officers: %w", err)
	}
	dutyOf := map[uint]*uint{}
	for _, st := range stations {
		dutyOf[st.ID] = st.DutyAccountID
	}
	for _, o := range officers {
		if keepOfficer[o.Code] {
			continue
		}
		var refs int64
		for _, q := range []struct {
			model any
			where string
		}{
			{&Ticket{}, "assignee_id = ? OR answered_by = ?"},
			{&TicketEvent{}, "actor_id = ? OR actor_id = ?"},
			{&Broadcast{}, "author_id = ? OR author_id = ?"},
		} {
			var n int64
			if err := tx.Model(q.model).Where(q.where, o.ID, o.ID).Count(&n).Error; err != nil {
				return fmt.Errorf("sync: look for references to officer %s: %w", o.Code, err)
			}
			refs += n
		}
		if err := tx.Model(&Group{}).Where("officer_id = ?", o.ID).Update("officer_id", nil).Error; err != nil {
			return fmt.Errorf("sync: detach groups from officer %s: %w", o.Code, err)
		}
		if refs == 0 {
			if err := tx.Delete(&Officer{}, o.ID).Error; err != nil {
				return fmt.Errorf("sync: remove officer %s: %w", o.Code, err)
			}
			continue
		}
		if duty := dutyOf[o.StationID]; duty != nil {
			err := tx.Model(&Ticket{}).Where("assignee_id = ? AND status IN ?", o.ID, []string{StatusOpen, StatusClaimed}).
				Update("assignee_id", *duty).Error
			if err != nil {
				return fmt.Errorf("sync: hand officer %s's tickets to the duty account: %w", o.Code, err)
			}
		}
		err := tx.Model(&Officer{}).Where("id = ?", o.ID).
			Updates(map[string]any{"roles": "", "aliases": "", "duty_override": nil, "duty_since": nil, "duty_until": nil}).Error
		if err != nil {
			return fmt.Errorf("sync: retire officer %s: %w", o.Code, err)
		}
	}
	return nil
}

// diffDirectory lists how seed differs from d, in a stable order: stations,
// officers, groups, shifts, overrides, holidays, FAQ, templates.
func diffDirectory(d *Directory, seed Seed) []DirectoryChange {
	var out []DirectoryChange
	add := func(op, what, key, detail string) {
		out = append(out, DirectoryChange{Op: op, What: what, Key: key, Detail: detail})
	}
	stationCode := map[uint]string{}
	stations := map[string]Station{}
	for _, st := range d.Stations {
		stationCode[st.ID] = st.Code
		stations[st.Code] = st
	}
	officerCode := map[uint]string{}
	officers := map[string]Officer{}
	for _, o := range d.Officers {
		officerCode[o.ID] = o.Code
		officers[o.Code] = o
	}
	codeOf := func(id *uint) string {
		if id == nil {
			return ""
		}
		return officerCode[*id]
	}
	for _, ss := range seed.Stations {
		st, ok := stations[ss.Code]
		if !ok {
			add("+", "派出所", ss.Code, fmt.Sprintf("%s，时限 %d 分钟", ss.Name, ss.SLAMinutes))
			continue
		}
		var f fields
		f.diff("名称", st.Name, ss.Name)
		f.diff("时限（分钟）", fmt.Sprint(st.SLAMinutes), fmt.Sprint(ss.SLAMinutes))
		f.diff("值班号", codeOf(st.DutyAccountID), ss.DutyAccount)
		f.diff("所领导", codeOf(st.LeaderID), ss.Leader)
		if len(f) > 0 {
			add("~", "派出所", ss.Code, f.String())
		}
	}

	identities := map[uint]map[string]string{}
	for _, id := range d.Identities {
		if identities[id.OfficerID] == nil {
			identities[id.OfficerID] = map[string]string{}
		}
		identities[id.OfficerID][id.Platform] = id.UserID
	}
	inSeed := map[string]bool{}
	for _, so := range seed.Officers {
		inSeed[so.Code] = true
		o, ok := officers[so.Code]
		if !ok || o.Roles == "" {
			detail := fmt.Sprintf("%s（%s），%s", so.Name, so.Station, JoinList(so.Roles))
			if ok {
				detail += "，重新启用"
			}
			add("+", "民警", so.Code, detail)
			continue
		}
		var f fields
		f.diff("姓名", o.Name, so.Name)
		f.diff("派出所", stationCode[o.StationID], so.Station)
		f.diff("角色", o.Roles, JoinList(so.Roles))
		f.diff("别名", o.Aliases, JoinList(so.Aliases))
		have := identities[o.ID]
		for _, p := range slices.Sorted(maps.Keys(union(have, so.Identities))) {
			f.diff("身份 "+p, have[p], so.Identities[p])
		}
		if len(f) > 0 {
			add("~", "民警", so.Code, f.String())
		}
	}
	for _, o := range d.Officers {
		if !inSeed[o.Code] && o.Roles != "" {
			add("-", "民警", o.Code, o.Name)
		}
	}

	groups := map[string]Group{}
	for _, g := range d.Groups {
		groups[g.Platform+"/"+g.ChatID] = g
	}
	inSeed = map[string]bool{}
	for _, sg := range seed.Groups {
		key := sg.Platform + "/" + sg.ChatID
		inSeed[key] = true
		g, ok := groups[key]
		if !ok {
			add("+", "群", key, fmt.Sprintf("%s（%s）", sg.Name, sg.Station))
			continue
		}
		var f fields
		f.diff("名称", g.Name, sg.Name)
		f.diff("派出所", stationCode[g.StationID], sg.Station)
		f.diff("社区民警", codeOf(g.OfficerID), sg.Officer)
		f.diff("标签", g.Tags, JoinList(sg.Tags))
		f.diff("类型", groupKindName(g.Kind), groupKindName(sg.Kind))
		if len(f) > 0 {
			add("~", "群", key, f.String())
		}
	}
	for _, g := range d.Groups {
		if key := g.Platform + "/" + g.ChatID; !inSeed[key] {
			add("-", "群", key, g.Name)
		}
	}

	var haveShifts, wantShifts []string
	for _, sh := range d.Shifts {
		haveShifts = append(haveShifts, shiftLine(officerCode[sh.OfficerID], sh.Weekday, sh.DayKind, sh.Start, sh.End, sh.Kind))
	}
	for _, sh := range seed.Shifts {
		for _, wd := range sh.Weekdays {
			wantShifts = append(wantShifts, shiftLine(sh.Officer, wd, sh.DayKind, sh.Start, sh.End, sh.Kind))
		}
	}
	bagDiff(&out, "排班", haveShifts, wantShifts)

	var haveOv, wantOv []string
	for _, ov := range d.Overrides {
		haveOv = append(haveOv, overrideLine(officerCode[ov.OfficerID], ov.Date, ov.Start, ov.End, ov.Off))
	}
	for _, ov := range seed.Overrides {
		wantOv = append(wantOv, overrideLine(ov.Officer, ov.Date, ov.Start, ov.End, ov.Off))
	}
	bagDiff(&out, "调班", haveOv, wantOv)

	var haveHol, wantHol []string
	for _, h := range d.Holidays {
		haveHol = append(haveHol, h.Date+" "+h.Kind+" "+h.Name)
	}
	for _, h := range seed.Holidays {
		wantHol = append(wantHol, h.Date+" "+h.Kind+" "+h.Name)
	}
	bagDiff(&out, "节假日", haveHol, wantHol)

	faqKey := func(station, topic string) string {
		if station == "" {
			station = "全部"
		}
		return station + "/" + topic
	}
	haveFAQ := map[string]string{}
	for _, f := range d.FAQs {
		st := ""
		if f.StationID != nil {
			st = stationCode[*f.StationID]
		}
		haveFAQ[faqKey(st, f.Topic)] = f.Keywords + "\x00" + f.Answer
	}
	wantFAQ := map[string]string{}
	for _, f := range seed.FAQs {
		wantFAQ[faqKey(f.Station, f.Topic)] = JoinList(f.Keywords) + "\x00" + f.Answer
	}
	keyedDiff(&out, "问答", haveFAQ, wantFAQ)

	haveTpl, wantTpl := map[string]string{}, map[string]string{}
	for _, t := range d.Templates {
		haveTpl[t.Key] = t.Text
	}
	for _, t := range seed.Templates {
		wantTpl[t.Key] = t.Text
	}
	// Templates are only ever added or replaced, never removed.
	for k := range haveTpl {
		if _, ok := wantTpl[k]; !ok {
			delete(haveTpl, k)
		}
	}
	keyedDiff(&out, "模板", haveTpl, wantTpl)
	return out
}

// fields collects "name a → b" differences of one row.
type fields []string

func (f *fields) diff(name, have, want string) {
	if have == want {
		return
	}
	show := func(s string) string {
		if s == "" {
			return "（无）"
		}
		return s
	}
	*f = append(*f, name+" "+show(have)+" → "+show(want))
}

func (f fields) String() string { return strings.Join(f, "；") }

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

var weekdayNames = []string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

func shiftLine(officer string, weekday int, dayKind, start, end, kind string) string {
	day := "每天"
	if weekday >= 0 && weekday < len(weekdayNames) {
		day = weekdayNames[weekday]
	}
	switch dayKind {
	case "workday":
		day = "工作日"
		if weekday >= 0 {
			day += weekdayNames[weekday]
		}
	case "restday":
		day = "休息日"
		if weekday >= 0 {
			day += weekdayNames[weekday]
		}
	}
	return fmt.Sprintf("%s %s %s-%s %s", officer, day, start, end, kind)
}

func overrideLine(officer, date, start, end string, off bool) string {
	if off {
		return officer + " " + date + " 休"
	}
	return officer + " " + date + " " + start + "-" + end
}

// bagDiff reports rows that have no identity of their own (shifts,
// holidays): each line added or removed, counted with repeats.
func bagDiff(out *[]DirectoryChange, what string, have, want []string) {
	count := map[string]int{}
	for _, h := range have {
		count[h]++
	}
	var added []string
	for _, w := range want {
		if count[w] > 0 {
			count[w]--
			continue
		}
		added = append(added, w)
	}
	var removed []string
	for _, h := range have {
		if count[h] > 0 {
			count[h]--
			removed = append(removed, h)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	for _, a := range added {
		*out = append(*out, DirectoryChange{Op: "+", What: what, Key: a})
	}
	for _, r := range removed {
		*out = append(*out, DirectoryChange{Op: "-", What: what, Key: r})
	}
}

// keyedDiff reports rows keyed by name whose content may change.
func keyedDiff(out *[]DirectoryChange, what string, have, want map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		h, ok := have[k]
		switch {
		case !ok:
			*out = append(*out, DirectoryChange{Op: "+", What: what, Key: k})
		case h != want[k]:
			*out = append(*out, DirectoryChange{Op: "~", What: what, Key: k})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			*out = append(*out, DirectoryChange{Op: "-", What: what, Key: k})
		}
	}
}

// groupKindName is how a sync report names a group's kind.
func groupKindName(kind string) string {
	if kind == GroupKindCustomer {
		return "客户群"
	}
	return "普通群"
}
