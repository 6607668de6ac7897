package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Seed is the directory as configuration describes it, with references by
// code rather than by row id. Sync makes the database match it.
type Seed struct {
	Stations  []SeedStation
	Officers  []SeedOfficer
	Groups    []SeedGroup
	Shifts    []SeedShift
	Overrides []SeedOverride
	Holidays  []Holiday
	FAQs      []SeedFAQ
	Templates []Template
}

type SeedStation struct {
	Code, Name          string
	SLAMinutes          int
	DutyAccount, Leader string // officer codes
}

type SeedOfficer struct {
	Code, Station, Name string
	Roles, Aliases      []string
	// Identities maps platform to that platform's user id.
	Identities map[string]string
}

type SeedGroup struct {
	Platform, ChatID, Name string
	Station, Officer       string // codes; Officer may be empty
	Tags                   []string
	Kind                   string // "" or GroupKindCustomer
}

type SeedShift struct {
	Station, Officer string
	Weekdays         []int
	DayKind          string
	Start, End, Kind string
}

type SeedOverride struct {
	Officer, Date, Start, End string
	Off                       bool
}

type SeedFAQ struct {
	Station  string // empty: every station
	Topic    string
	Keywords []string
	Answer   string
}

// Directory is everything routing needs, loaded in one go so that handlers
// route from memory instead of querying per message.
type Directory struct {
	Stations   []Station
	Groups     []Group
	Officers   []Officer
	Identities []Identity
	Shifts     []Shift
	Overrides  []Override
	Holidays   []Holiday
	FAQs       []FAQ
	Templates  []Template
}

// Sync makes stations, officers, groups, roster, holidays, FAQ and templates
// match seed, in one transaction. It leaves tickets and officers' runtime
// state (duty on/off) alone, so a restart with the same config changes nothing.
// SyncDirectory does the same and reports what it changed.
func (s *Store) Sync(ctx context.Context, seed Seed) error {
	_, err := s.SyncDirectory(ctx, seed, SyncOptions{})
	return err
}

// applySeed writes seed over the directory inside tx. Officers and groups
// that left the configuration are removed (see retire), tickets never.
func (s *Store) applySeed(tx *gorm.DB, seed Seed) error {
	{
		stations := map[string]*Station{}
		for _, ss := range seed.Stations {
			st := Station{Code: ss.Code}
			if err := tx.Where("code = ?", ss.Code).Attrs(Station{Name: ss.Name, SLAMinutes: ss.SLAMinutes}).FirstOrCreate(&st).Error; err != nil {
				return fmt.Errorf("sync station %s: %w", ss.Code, err)
			}
			st.Name, st.SLAMinutes = ss.Name, ss.SLAMinutes
			stations[ss.Code] = &st
		}
		var existing []Officer
		if err := tx.Find(&existing).Error; err != nil {
			return fmt.Errorf("sync officers: %w", err)
		}
		byCode := map[string]*Officer{}
		for i := range existing {
			byCode[existing[i].Code] = &existing[i]
		}
		var fresh []*Officer
		for _, so := range seed.Officers {
			st, ok := stations[so.Station]
			if !ok {
				return fmt.Errorf("sync officer %s: unknown station %q", so.Code, so.Station)
			}
			o, ok := byCode[so.Code]
			if !ok {
				o = &Officer{Code: so.Code}
				byCode[so.Code] = o
				fresh = append(fresh, o)
			}
			changed := o.StationID != st.ID || o.Name != so.Name || o.Roles != JoinList(so.Roles) || o.Aliases != JoinList(so.Aliases)
			o.StationID, o.Name, o.Roles, o.Aliases = st.ID, so.Name, JoinList(so.Roles), JoinList(so.Aliases)
			if ok && changed {
				if err := tx.Model(o).Select("StationID", "Name", "Roles", "Aliases").Updates(o).Error; err != nil {
					return fmt.Errorf("sync officer %s: %w", so.Code, err)
				}
			}
		}
		if len(fresh) > 0 {
			if err := tx.CreateInBatches(fresh, 200).Error; err != nil {
				return fmt.Errorf("sync officers: %w", err)
			}
		}
		officerID := func(code string) (*uint, error) {
			if code == "" {
				return nil, nil
			}
			o, ok := byCode[code]
			if !ok {
				return nil, fmt.Errorf("unknown officer %q", code)
			}
			return &o.ID, nil
		}
		for _, ss := range seed.Stations {
			st := stations[ss.Code]
			var err error
			if st.DutyAccountID, err = officerID(ss.DutyAccount); err != nil {
				return fmt.Errorf("sync station %s duty account: %w", ss.Code, err)
			}
			if st.LeaderID, err = officerID(ss.Leader); err != nil {
				return fmt.Errorf("sync station %s leader: %w", ss.Code, err)
			}
			if err := tx.Model(st).Select("Name", "SLAMinutes", "DutyAccountID", "LeaderID").Updates(st).Error; err != nil {
				return fmt.Errorf("sync station %s: %w", ss.Code, err)
			}
		}
		// Identities are owned by configuration: replace them.
		if err := tx.Where("1 = 1").Delete(&Identity{}).Error; err != nil {
			return fmt.Errorf("sync identities: %w", err)
		}
		var ids []Identity
		for _, so := range seed.Officers {
			for p, uid := range so.Identities {
				ids = append(ids, Identity{OfficerID: byCode[so.Code].ID, Platform: p, UserID: uid})
			}
		}
		if len(ids) > 0 {
			if err := tx.CreateInBatches(ids, 500).Error; err != nil {
				return fmt.Errorf("sync identities: %w", err)
			}
		}
		if err := s.syncGroups(tx, seed.Groups, stations, officerID); err != nil {
			return err
		}
		// Roster, FAQ: replaced wholesale; they carry no runtime state.
		for _, m := range []any{&Shift{}, &Override{}, &FAQ{}} {
			if err := tx.Where("1 = 1").Delete(m).Error; err != nil {
				return fmt.Errorf("sync roster: %w", err)
			}
		}
		var shifts []Shift
		for _, sh := range seed.Shifts {
			st, ok := stations[sh.Station]
			if !ok {
				return fmt.Errorf("sync shift of %s: unknown station %q", sh.Officer, sh.Station)
			}
			oid, err := officerID(sh.Officer)
			if err != nil || oid == nil {
				return fmt.Errorf("sync shift: unknown officer %q", sh.Officer)
			}
			for _, wd := range sh.Weekdays {
				shifts = append(shifts, Shift{StationID: st.ID, OfficerID: *oid, Weekday: wd, DayKind: sh.DayKind, Start: sh.Start, End: sh.End, Kind: sh.Kind})
			}
		}
		if len(shifts) > 0 {
			if err := tx.CreateInBatches(shifts, 500).Error; err != nil {
				return fmt.Errorf("sync shifts: %w", err)
			}
		}
		var overrides []Override
		for _, ov := range seed.Overrides {
			o, ok := byCode[ov.Officer]
			if !ok {
				return fmt.Errorf("sync override: unknown officer %q", ov.Officer)
			}
			overrides = append(overrides, Override{StationID: o.StationID, OfficerID: o.ID, Date: ov.Date, Start: ov.Start, End: ov.End, Off: ov.Off})
		}
		if len(overrides) > 0 {
			if err := tx.Create(&overrides).Error; err != nil {
				return fmt.Errorf("sync overrides: %w", err)
			}
		}
		// The calendar is owned by configuration too: a date corrected or
		// removed there must not linger here.
		if err := tx.Where("1 = 1").Delete(&Holiday{}).Error; err != nil {
			return fmt.Errorf("sync holidays: %w", err)
		}
		if len(seed.Holidays) > 0 {
			if err := tx.CreateInBatches(seed.Holidays, 500).Error; err != nil {
				return fmt.Errorf("sync holidays: %w", err)
			}
		}
		var faqs []FAQ
		for _, f := range seed.FAQs {
			row := FAQ{Topic: f.Topic, Keywords: JoinList(f.Keywords), Answer: f.Answer}
			if f.Station != "" {
				st, ok := stations[f.Station]
				if !ok {
					return fmt.Errorf("sync faq %q: unknown station %q", f.Topic, f.Station)
				}
				row.StationID = &st.ID
			}
			faqs = append(faqs, row)
		}
		if len(faqs) > 0 {
			if err := tx.Create(&faqs).Error; err != nil {
				return fmt.Errorf("sync faq: %w", err)
			}
		}
		if len(seed.Templates) > 0 {
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&seed.Templates).Error; err != nil {
				return fmt.Errorf("sync templates: %w", err)
			}
		}
		if err := retire(tx, seed, stations); err != nil {
			return err
		}
		return bumpDirectory(tx)
	}
}

func (s *Store) syncGroups(tx *gorm.DB, groups []SeedGroup, stations map[string]*Station, officerID func(string) (*uint, error)) error {
	var existing []Group
	if err := tx.Find(&existing).Error; err != nil {
		return fmt.Errorf("sync groups: %w", err)
	}
	byChat := map[string]*Group{}
	for i := range existing {
		byChat[existing[i].Platform+"\x00"+existing[i].ChatID] = &existing[i]
	}
	var fresh []*Group
	for _, sg := range groups {
		st, ok := stations[sg.Station]
		if !ok {
			return fmt.Errorf("sync group %s: unknown station %q", sg.ChatID, sg.Station)
		}
		oid, err := officerID(sg.Officer)
		if err != nil {
			return fmt.Errorf("sync group %s: %w", sg.ChatID, err)
		}
		g, ok := byChat[sg.Platform+"\x00"+sg.ChatID]
		if !ok {
			fresh = append(fresh, &Group{Platform: sg.Platform, ChatID: sg.ChatID, Name: sg.Name, StationID: st.ID, OfficerID: oid, Tags: JoinList(sg.Tags), Kind: sg.Kind})
			continue
		}
		g.Name, g.StationID, g.OfficerID, g.Tags, g.Kind = sg.Name, st.ID, oid, JoinList(sg.Tags), sg.Kind
		if err := tx.Model(g).Select("Name", "StationID", "OfficerID", "Tags", "Kind").Updates(g).Error; err != nil {
			return fmt.Errorf("sync group %s: %w", sg.ChatID, err)
		}
	}
	if len(fresh) > 0 {
		if err := tx.CreateInBatches(fresh, 200).Error; err != nil {
			return fmt.Errorf("sync groups: %w", err)
		}
	}
	return nil
}

// LoadDirectory reads everything routing needs.
func (s *Store) LoadDirectory(ctx context.Context) (*Directory, error) {
	return loadDirectory(s.read(ctx))
}

// loadDirectory reads the directory through db (the read pool, or a
// transaction).
func loadDirectory(db *gorm.DB) (*Directory, error) {
	var d Directory
	for _, q := range []struct {
		what string
		dest any
	}{
		{"stations", &d.Stations}, {"groups", &d.Groups}, {"officers", &d.Officers},
		{"identities", &d.Identities}, {"shifts", &d.Shifts}, {"overrides", &d.Overrides},
		{"holidays", &d.Holidays}, {"faq", &d.FAQs}, {"templates", &d.Templates},
	} {
		if err := db.Find(q.dest).Error; err != nil {
			return nil, fmt.Errorf("load %s: %w", q.what, err)
		}
	}
	return &d, nil
}

// SetDutyOverride records an officer's "值班 开/关" from at until until (nil:
// no end known); on nil returns them to the roster. msgs (the reply) are
// written in the same transaction; if the first exists already, the
// command was handled before: ErrDuplicate, nothing written.
func (s *Store) SetDutyOverride(ctx context.Context, officerID uint, on *bool, at time.Time, until *time.Time, msgs ...OutboundMessage) error {
	var end *time.Time
	if until != nil {
		u := until.UTC()
		end = &u
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.insertOutbound(tx, msgs); err != nil {
			return err
		}
		if err := tx.Model(&Officer{}).Where("id = ?", officerID).
			Updates(map[string]any{"duty_override": on, "duty_since": at.UTC(), "duty_until": end}).Error; err != nil {
			return err
		}
		return bumpDirectory(tx)
	})
	if err != nil {
		return fmt.Errorf("set duty of officer %d: %w", officerID, err)
	}
	return nil
}

// RecordUnknownChat notes a message from a chat nobody registered, with
// reply (the answer to that message) in the same transaction: a reply that
// exists already means the message was counted before, and the result is
// ErrDuplicate with nothing changed. The first message of a chat creates its
// record and writes first (the notice to the admins who can register it)
// too, so they hear of each chat once; created reports whether it was that.
func (s *Store) RecordUnknownChat(ctx context.Context, platform, chatID, name string, reply, first []OutboundMessage) (created bool, err error) {
	err = s.tx(ctx, func(tx *gorm.DB) error {
		created = false
		if err := s.insertOutbound(tx, reply); err != nil {
			return err
		}
		now := tx.NowFunc()
		row := UnknownChat{Platform: platform, ChatID: chatID, Name: name, Messages: 1, FirstSeen: now, LastSeen: now}
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "platform"}, {Name: "chat_id"}}, DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			created = true
			if err := s.insertOutbound(tx, first); err != nil && !errors.Is(err, ErrDuplicate) {
				return err
			}
			return nil
		}
		return tx.Model(&UnknownChat{}).Where("platform = ? AND chat_id = ?", platform, chatID).
			Updates(map[string]any{"messages": gorm.Expr("messages + 1"), "last_seen": now}).Error
	})
	if errors.Is(err, ErrDuplicate) {
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("record unknown chat: %w", err)
	}
	return created, nil
}

// UnknownChats lists chats waiting for an admin to register them.
func (s *Store) UnknownChats(ctx context.Context) ([]UnknownChat, error) {
	var out []UnknownChat
	if err := s.read(ctx).Order("last_seen desc").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list unknown chats: %w", err)
	}
	return out, nil
}

// Park keeps a message that could not be processed.
func (s *Store) Park(ctx context.Context, topic, messageID string, payload []byte, cause string) error {
	row := ParkedMessage{Topic: topic, MessageID: messageID, Payload: payload, Cause: cause, At: s.db.NowFunc()}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("park message %s: %w", messageID, err)
	}
	return nil
}

// Parked lists parked messages, newest first.
func (s *Store) Parked(ctx context.Context, topic string) ([]ParkedMessage, error) {
	var out []ParkedMessage
	q := s.read(ctx).Order("id desc")
	if topic != "" {
		q = q.Where("topic = ?", topic)
	}
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list parked messages: %w", err)
	}
	return out, nil
}
