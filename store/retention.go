package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Redacted replaces residents' words once they are past the retention
// period or erased on request (PIPL): the row stays, with its counts and
// times, so statistics and audits keep working.
const Redacted = "（已按保留期限删除）"

// keptTimelineKinds are the timeline lines whose details are the hub's own
// words (an officer's name, a FAQ topic, a broadcast number), kept after
// redaction; every other line's detail (a resident's follow-up, an
// officer's answer, a platform's refusal) is redacted.
var keptTimelineKinds = []string{TLAssigned, TLHandedOver, TLEscalated, TLAutoAnswered, TLAlertDrafted, TLClaimed, TLClosed}

// Redactions counts what a purge or an erasure redacted (or, dry, would).
type Redactions struct {
	Tickets      int64 `json:"tickets"`
	Timeline     int64 `json:"timeline"`
	Messages     int64 `json:"messages"`
	Parked       int64 `json:"parked"`
	UnknownChats int64 `json:"unknown_chats"`
	// KFSessions are customer-service conversations forgotten (a
	// resident's external_userid, the group they came from, when they last
	// wrote).
	KFSessions int64 `json:"kf_sessions"`
	// Consents are customer-group members' archive answers forgotten
	// (their external_userid, whether they refused).
	Consents int64 `json:"consents"`
}

// redaction is one table's part of a purge or an erasure: the rows still
// holding residents' data (where) and what replaces it (set).
type redaction struct {
	table string
	where string
	args  []any
	set   string
	sargs []any
	into  *int64
}

const redactBatch = 500

// PurgeBefore redacts residents' data older than cutoff: closed and
// answered tickets last changed before it (question, name, id, reply
// handle, a direct chat's id) and their timeline details; finished
// outbound messages last changed before it that belong to no ticket still
// in hand (text, mentions, reply handle, a direct chat's id and name);
// parked payloads; unknown chats' names. Counts, states and times stay.
// dry only counts. It runs in batches, each its own transaction, and is
// safe to run from several processes at once.
func (s *Store) PurgeBefore(ctx context.Context, cutoff time.Time, dry bool) (Redactions, error) {
	cutoff = cutoff.UTC()
	var n Redactions
	old := "SELECT id FROM tickets WHERE status IN (?, ?) AND updated_at < ?"
	oldArgs := []any{StatusClosed, StatusAnswered, cutoff}
	rs := []redaction{
		ticketRedaction("status IN (?, ?) AND updated_at < ?", []any{StatusClosed, StatusAnswered, cutoff}, &n.Tickets),
		timelineRedaction("ticket_id IN ("+old+")", oldArgs, &n.Timeline),
		outboundRedaction("state NOT IN (?, ?) AND updated_at < ? AND (ticket_id IS NULL OR ticket_id IN ("+old+"))",
			append([]any{OutboundPending, OutboundSending, cutoff}, oldArgs...), "", &n.Messages),
		cardRedaction("ticket_id IN ("+old+")", oldArgs, &n.Messages),
		{table: "parked_messages", where: "payload IS NOT NULL AND at < ?", args: []any{cutoff},
			set: "payload = NULL", into: &n.Parked},
		{table: "unknown_chats", where: "name <> '' AND last_seen < ?", args: []any{cutoff},
			set: "name = ''", into: &n.UnknownChats},
	}
	for _, r := range rs {
		if err := s.redact(ctx, r, dry); err != nil {
			return n, err
		}
	}
	// Customer-service conversations whose resident last wrote before the
	// cutoff can no longer be answered (WeChat's window is 48 hours), and
	// consent answers not checked since are stale: the next consent check
	// writes the group's members again.
	fs := []forget{
		{table: "kf_sessions", where: "updated_at < ? AND (last_in_at IS NULL OR last_in_at < ?)", args: []any{cutoff, cutoff}, into: &n.KFSessions},
		{table: "archive_consents", where: "checked_at < ?", args: []any{cutoff}, into: &n.Consents},
	}
	for _, f := range fs {
		if err := s.forget(ctx, f, dry); err != nil {
			return n, err
		}
	}
	return n, nil
}

// forget is one table's part of a purge or an erasure whose rows are
// nothing but a resident's data (no counts or times the statistics need):
// they are deleted, not redacted.
type forget struct {
	table string
	where string
	args  []any
	into  *int64
}

// forget deletes the rows f names (or, dry, counts them). One statement:
// these tables hold one row per resident and group or account, deleted
// without reading them first.
func (s *Store) forget(ctx context.Context, f forget, dry bool) error {
	if dry {
		var n int64
		if err := s.read(ctx).Table(f.table).Where(f.where, f.args...).Count(&n).Error; err != nil {
			return fmt.Errorf("count %s to forget: %w", f.table, err)
		}
		*f.into += n
		return nil
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec("DELETE FROM "+f.table+" WHERE "+f.where, f.args...)
		if res.Error != nil {
			return fmt.Errorf("forget %s: %w", f.table, res.Error)
		}
		*f.into += res.RowsAffected
		return nil
	})
}

func ticketRedaction(where string, args []any, into *int64) redaction {
	return redaction{table: "tickets", where: where + " AND question <> ?", args: append(args, Redacted),
		set:   "question = ?, resident_name = '', resident_id = '', reply_handle = '', chat_id = CASE WHEN chat_type = 'direct' THEN '' ELSE chat_id END",
		sargs: []any{Redacted}, into: into}
}

func timelineRedaction(where string, args []any, into *int64) redaction {
	return redaction{table: "ticket_events", where: where + " AND detail <> '' AND detail <> ? AND kind NOT IN ?",
		args: append(args, Redacted, keptTimelineKinds), set: "detail = ?", sargs: []any{Redacted}, into: into}
}

// outboundRedaction redacts messages; toUser, when set, is a resident's
// platform id cleared from to_user too.
func outboundRedaction(where string, args []any, toUser string, into *int64) redaction {
	return redaction{table: "outbound_messages", where: where + " AND (text <> ? OR to_user = ?)", args: append(args, Redacted, nonEmpty(toUser)),
		set: "text = ?, at_users = '', reply_handle = '', card = '', " +
			"chat_id = CASE WHEN chat_type = 'direct' THEN '' ELSE chat_id END, " +
			"chat_name = CASE WHEN chat_type = 'direct' THEN '' ELSE chat_name END, " +
			"to_user = CASE WHEN to_user = ? THEN '' ELSE to_user END",
		sargs: []any{Redacted, nonEmpty(toUser)}, into: into}
}

// cardRedaction empties the cards that show tickets (each card's state
// holds the question and the resident's name); they are not redrawn after.
func cardRedaction(where string, args []any, into *int64) redaction {
	return redaction{table: "cards", where: where + " AND card <> ''", args: args, set: "card = '', handle = ''", into: into}
}

// nonEmpty is a value no column holds when s is empty: "to_user = ?" must
// then match nothing, not every message with no to_user.
func nonEmpty(s string) string {
	if s == "" {
		return "\x00"
	}
	return s
}

// redact applies r in batches of ids (the statement that picks them
// re-checks where, so a row changed meanwhile is not counted twice), or
// counts the rows when dry.
func (s *Store) redact(ctx context.Context, r redaction, dry bool) error {
	if dry {
		var n int64
		if err := s.read(ctx).Table(r.table).Where(r.where, r.args...).Count(&n).Error; err != nil {
			return fmt.Errorf("count %s to redact: %w", r.table, err)
		}
		*r.into += n
		return nil
	}
	for {
		var changed int64
		err := s.tx(ctx, func(tx *gorm.DB) error {
			changed = 0
			var ids []uint
			if err := tx.Table(r.table).Where(r.where, r.args...).Order("id").Limit(redactBatch).Pluck("id", &ids).Error; err != nil {
				return fmt.Errorf("find %s to redact: %w", r.table, err)
			}
			if len(ids) == 0 {
				return nil
			}
			res := tx.Exec("UPDATE "+r.table+" SET "+r.set+" WHERE id IN ?", append(append([]any{}, r.sargs...), ids)...)
			if res.Error != nil {
				return fmt.Errorf("redact %s: %w", r.table, res.Error)
			}
			if changed = res.RowsAffected; changed == 0 {
				// The rows were picked as holding data and the update
				// changed none: stop rather than pick them forever.
				return fmt.Errorf("redact %s: %d rows found, none changed", r.table, len(ids))
			}
			*r.into += changed
			return nil
		})
		if err != nil {
			return err
		}
		if changed == 0 {
			return nil
		}
	}
}

// Resident is everything held about one resident of one platform.
type Resident struct {
	Platform string            `json:"platform"`
	ID       string            `json:"id"`
	Tickets  []ResidentTicket  `json:"tickets"`
	Messages []OutboundMessage `json:"messages"`
	Parked   []ResidentParked  `json:"parked"`
	// KFSessions and Consents are a WeChat resident's customer-service
	// conversations and customer-group archive consent answers.
	KFSessions []KFSession      `json:"kf_sessions,omitempty"`
	Consents   []ArchiveConsent `json:"archive_consents,omitempty"`
}

// ResidentParked is a parked message naming a resident, its payload as
// text.
type ResidentParked struct {
	Topic     string    `json:"topic"`
	MessageID string    `json:"message_id"`
	Payload   string    `json:"payload"`
	Cause     string    `json:"cause"`
	At        time.Time `json:"at"`
}

// ResidentTicket is one of a resident's tickets with its timeline.
type ResidentTicket struct {
	Ticket   Ticket        `json:"ticket"`
	Timeline []TicketEvent `json:"timeline"`
}

// residentScope is where one resident's data lies: their tickets, the
// messages of those tickets and those addressed to them (a direct chat,
// a DM, a mention), and parked payloads naming their id.
type residentScope struct {
	tickets  string
	targs    []any
	messages string
	margs    []any
	parked   string
	pargs    []any
}

func (s *Store) scopeOf(platform, id string) residentScope {
	payload := "payload" // MySQL matches LIKE on a BLOB byte by byte
	if s.driver == SQLite {
		payload = "CAST(payload AS TEXT)" // SQLite's LIKE finds nothing in a BLOB
	}
	mine := "SELECT id FROM tickets WHERE platform = ? AND resident_id = ?"
	like := likeEscape(id)
	return residentScope{
		tickets: "platform = ? AND resident_id = ?", targs: []any{platform, id},
		messages: "(ticket_id IN (" + mine + ") OR (platform = ? AND (to_user = ? OR (chat_type = 'direct' AND chat_id = ?) OR " +
			"at_users = ? OR at_users LIKE ? ESCAPE '!' OR at_users LIKE ? ESCAPE '!' OR at_users LIKE ? ESCAPE '!')))",
		margs:  []any{platform, id, platform, id, id, id, like + ",%", "%," + like, "%," + like + ",%"},
		parked: payload + " LIKE ? ESCAPE '!'", pargs: []any{"%" + likeEscape(`"`+id+`"`) + "%"},
	}
}

// likeEscape escapes LIKE's wildcards with "!".
func likeEscape(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

// ResidentData gathers everything held about the resident with platform
// id on platform, for an export: their tickets with timelines, messages
// sent to or about them, parked payloads naming them; for a WeChat
// resident, under every id they go by (see residentAliases), with their
// customer-service conversations and archive consent answers.
func (s *Store) ResidentData(ctx context.Context, platform, id string) (*Resident, error) {
	if platform == "" || id == "" {
		return nil, errors.New("resident: a platform and an id are both needed")
	}
	ids, ext, err := s.residentAliases(ctx, platform, id)
	if err != nil {
		return nil, err
	}
	out := &Resident{Platform: platform, ID: id, Tickets: []ResidentTicket{}, Messages: []OutboundMessage{}, Parked: []ResidentParked{}}
	db := s.read(ctx)
	seenT, seenM, seenP := map[uint]bool{}, map[uint]bool{}, map[uint]bool{}
	for _, id := range ids {
		sc := s.scopeOf(platform, id)
		var tickets []Ticket
		if err := db.Where(sc.tickets, sc.targs...).Order("id").Find(&tickets).Error; err != nil {
			return nil, fmt.Errorf("resident's tickets: %w", err)
		}
		for _, t := range tickets {
			if seenT[t.ID] {
				continue
			}
			seenT[t.ID] = true
			tl, err := s.Timeline(ctx, t.ID)
			if err != nil {
				return nil, err
			}
			out.Tickets = append(out.Tickets, ResidentTicket{Ticket: t, Timeline: tl})
		}
		var msgs []OutboundMessage
		if err := db.Where(sc.messages, sc.margs...).Order("id").Find(&msgs).Error; err != nil {
			return nil, fmt.Errorf("resident's messages: %w", err)
		}
		for _, m := range msgs {
			if !seenM[m.ID] {
				seenM[m.ID] = true
				out.Messages = append(out.Messages, m)
			}
		}
		var parked []ParkedMessage
		if err := db.Where(sc.parked, sc.pargs...).Order("id").Find(&parked).Error; err != nil {
			return nil, fmt.Errorf("resident's parked messages: %w", err)
		}
		for _, p := range parked {
			if !seenP[p.ID] {
				seenP[p.ID] = true
				out.Parked = append(out.Parked, ResidentParked{Topic: p.Topic, MessageID: p.MessageID, Payload: string(p.Payload), Cause: p.Cause, At: p.At})
			}
		}
	}
	sort.Slice(out.Tickets, func(i, j int) bool { return out.Tickets[i].Ticket.ID < out.Tickets[j].Ticket.ID })
	sort.Slice(out.Messages, func(i, j int) bool { return out.Messages[i].ID < out.Messages[j].ID })
	if ext != "" {
		if err := db.Where("external_user_id = ?", ext).Order("open_kfid").Find(&out.KFSessions).Error; err != nil {
			return nil, fmt.Errorf("resident's customer-service conversations: %w", err)
		}
		if err := db.Where("external_user_id = ?", ext).Order("chat_id").Find(&out.Consents).Error; err != nil {
			return nil, fmt.Errorf("resident's archive consent: %w", err)
		}
	}
	return out, nil
}

// EraseResident redacts everything held about the resident with platform
// id on platform, whatever its age (open tickets too: an officer can still
// answer in the group), and records the erasure: who ran it, when, and the
// counts. The resident is recorded by their keyed log hash (residentHash),
// never by their id.
func (s *Store) EraseResident(ctx context.Context, platform, id, residentHash, by string) (Redactions, error) {
	var n Redactions
	if platform == "" || id == "" {
		return n, errors.New("resident: a platform and an id are both needed")
	}
	ids, ext, err := s.residentAliases(ctx, platform, id)
	if err != nil {
		return n, err
	}
	for _, id := range ids {
		sc := s.scopeOf(platform, id)
		mine := "SELECT id FROM tickets WHERE platform = ? AND resident_id = ?"
		// Messages and timelines are found through the tickets' resident id:
		// redact them before the tickets lose it.
		rs := []redaction{
			timelineRedaction("ticket_id IN ("+mine+")", []any{platform, id}, &n.Timeline),
			outboundRedaction(sc.messages, sc.margs, id, &n.Messages),
			cardRedaction("ticket_id IN ("+mine+")", []any{platform, id}, &n.Messages),
			{table: "parked_messages", where: sc.parked, args: sc.pargs, set: "payload = NULL", into: &n.Parked},
			ticketRedaction(sc.tickets, sc.targs, &n.Tickets),
		}
		for _, r := range rs {
			if err := s.redact(ctx, r, false); err != nil {
				return n, err
			}
		}
	}
	if ext != "" {
		fs := []forget{
			{table: "kf_sessions", where: "external_user_id = ?", args: []any{ext}, into: &n.KFSessions},
			{table: "archive_consents", where: "external_user_id = ?", args: []any{ext}, into: &n.Consents},
		}
		for _, f := range fs {
			if err := s.forget(ctx, f, false); err != nil {
				return n, err
			}
		}
	}
	rec := ResidentErasure{Platform: platform, Resident: residentHash, By: by, At: time.Now().UTC(),
		Tickets: n.Tickets, Timeline: n.Timeline, Messages: n.Messages, Parked: n.Parked}
	if err := s.db.WithContext(ctx).Create(&rec).Error; err != nil {
		return n, fmt.Errorf("record the erasure: %w", err)
	}
	return n, nil
}

// kfPrefix is how the WeChat adapter names a customer-service resident
// and their one-to-one chat: "kf:<open_kfid>:<external_userid>" (see
// wechat.KFPrefix). The erasure needs it because one WeCom external_userid
// is the same resident in customer groups (a bare "wm…" id) and in
// customer service.
const kfPrefix = "kf:"

// residentAliases lists the ids one WeChat resident goes by: the id asked
// for, their bare external_userid (ext) and every customer-service form of
// it found in conversations, tickets and messages, so erasing either form
// erases them all. Other platforms have one id each; ext is then "".
func (s *Store) residentAliases(ctx context.Context, platform, id string) (ids []string, ext string, err error) {
	if platform != "wechat" {
		return []string{id}, "", nil
	}
	ext = id
	if strings.HasPrefix(id, kfPrefix) {
		if i := strings.LastIndex(id, ":"); i >= len(kfPrefix) {
			ext = id[i+1:]
		}
	}
	if ext == "" {
		return []string{id}, "", nil
	}
	seen := map[string]bool{}
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			ids = append(ids, v)
		}
	}
	add(id)
	add(ext)
	db := s.read(ctx)
	var kfids []string
	if err := db.Table("kf_sessions").Where("external_user_id = ?", ext).Order("open_kfid").Pluck("open_kfid", &kfids).Error; err != nil {
		return nil, "", fmt.Errorf("resident's customer-service accounts: %w", err)
	}
	for _, k := range kfids {
		add(kfPrefix + k + ":" + ext)
	}
	pattern := likeEscape(kfPrefix) + "%:" + likeEscape(ext)
	var found []string
	if err := db.Table("tickets").Where("platform = ? AND resident_id LIKE ? ESCAPE '!'", platform, pattern).
		Distinct("resident_id").Order("resident_id").Pluck("resident_id", &found).Error; err != nil {
		return nil, "", fmt.Errorf("resident's customer-service tickets: %w", err)
	}
	var chats []string
	if err := db.Table("outbound_messages").Where("platform = ? AND chat_type = 'direct' AND chat_id LIKE ? ESCAPE '!'", platform, pattern).
		Distinct("chat_id").Order("chat_id").Pluck("chat_id", &chats).Error; err != nil {
		return nil, "", fmt.Errorf("resident's customer-service messages: %w", err)
	}
	for _, v := range append(found, chats...) {
		add(v)
	}
	return ids, ext, nil
}

// Erasures lists the recorded erasures, oldest first.
func (s *Store) Erasures(ctx context.Context) ([]ResidentErasure, error) {
	var out []ResidentErasure
	if err := s.read(ctx).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list erasures: %w", err)
	}
	return out, nil
}
