package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateTicket numbers and inserts t with its first timeline entries and
// the messages compose derives from the numbered ticket, in one
// transaction. If a ticket for t.SourceEventID exists already (the platform
// redelivered the message) it returns that one and created == false: its
// messages were written with it.
func (s *Store) CreateTicket(ctx context.Context, t *Ticket, timeline []TicketEvent, compose func(t *Ticket) []OutboundMessage) (out *Ticket, created bool, err error) {
	t.utc()
	if s.driver != SQLite {
		// The number comes from this process's block, reserved outside
		// the ticket's transaction (see ticketNumbers).
		if t.Number, err = s.takeTicketNumber(ctx, t.StationID); err != nil {
			return nil, false, err
		}
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.insertTicket(tx, t); err != nil {
			return err
		}
		if err := s.insertTimeline(tx, t.ID, timeline); err != nil {
			return err
		}
		if compose == nil {
			return nil
		}
		if err := s.insertOutbound(tx, compose(t)); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return fmt.Errorf("ticket's first message exists already: %w", err)
			}
			return err
		}
		return nil
	})
	if err == nil {
		return t, true, nil
	}
	// A unique-key clash on the source event means a concurrent or earlier
	// delivery won; anything else is a real failure.
	existing, lookErr := s.TicketBySource(ctx, t.SourceEventID)
	if lookErr == nil {
		if s.driver != SQLite && existing.Number != t.Number {
			// Ours was not written: the number goes to the next ticket.
			s.returnTicketNumber(t.StationID, t.Number)
		}
		return existing, false, nil
	}
	return nil, false, err
}

// utc stores every time of t in UTC. SQLite keeps times as text and
// compares them as text, so a time in another zone (time.Now() on a server
// set to Asia/Shanghai) would compare by its clock reading, not its instant.
func (t *Ticket) utc() {
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	for _, p := range []**time.Time{&t.EscalateAt, &t.FirstResponseAt, &t.ClosedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
}

// insertTicket numbers and inserts t. The number must be unique per
// station. On MySQL t comes numbered from the process's block (see
// ticketNumbers), so the insert is the one statement. On SQLite the single
// writer already serialises inserts, so the number is taken in the INSERT
// itself from the (station_id, number) index, gap-free.
func (s *Store) insertTicket(tx *gorm.DB, t *Ticket) error {
	now := tx.NowFunc()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.UpdatedAt = now
	// Written out by hand: the ORM's reflective insert costs several times
	// as much on the path every question takes. Store tests on both
	// databases read every column back.
	rest := []any{t.SourceEventID, t.GroupID, t.Platform, t.ChatID, t.ChatType,
		t.ResidentID, t.ResidentName, t.Question, t.ReplyHandle, t.Status, t.Emergency, t.AfterHours, t.AutoAnswered,
		t.AssigneeID, t.Routing, t.Level, t.EscalateAt, t.Fence, t.CreatedAt, t.FirstResponseAt, t.AnsweredBy, t.ClosedAt, t.UpdatedAt,
		t.setResponseBucket()}
	if s.driver != SQLite {
		pool, ctx := tx.Statement.ConnPool, tx.Statement.Context
		res, err := pool.ExecContext(ctx, "INSERT INTO tickets ("+ticketInsertColumns+") VALUES (?, ?, "+
			"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", append([]any{t.StationID, t.Number}, rest...)...)
		if err != nil {
			return fmt.Errorf("insert ticket: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert ticket: %w", err)
		}
		t.ID = uint(id)
		return nil
	}
	// On SQLite the single writer already serialises inserts, so
	// numbering, the station check and the insert are one statement. A station that does not
	// exist selects no row, inserts nothing and returns nothing.
	var id, number int64
	err := s.queryInts(tx, "INSERT INTO tickets ("+ticketInsertColumns+") "+
		"SELECT id, COALESCE((SELECT number FROM tickets WHERE station_id = stations.id ORDER BY number DESC LIMIT 1), 0) + 1, "+
		"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM stations WHERE id = ? RETURNING id, number",
		append(rest, t.StationID), &id, &number)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("number ticket: station %d does not exist", t.StationID)
	case err != nil:
		return fmt.Errorf("insert ticket: %w", err)
	}
	t.ID, t.Number = uint(id), number
	return nil
}

// ticketInsertColumns are the columns insertTicket writes: the station and
// number, then the rest in its order.
const ticketInsertColumns = "station_id, number, source_event_id, group_id, platform, chat_id, chat_type, " +
	"resident_id, resident_name, question, reply_handle, status, emergency, after_hours, auto_answered, " +
	"assignee_id, routing, level, escalate_at, fence, created_at, first_response_at, answered_by, closed_at, updated_at, response_bucket"

// setResponseBucket sets ResponseBucket from the first answer's time and
// returns it as a value to store (nil for NULL).
func (t *Ticket) setResponseBucket() any {
	t.ResponseBucket = nil
	if t.AutoAnswered || t.FirstResponseAt == nil {
		return nil
	}
	b := responseBucket(t.FirstResponseAt.Sub(t.CreatedAt))
	t.ResponseBucket = &b
	return b
}

// responseBucket is a time to first answer in tenths of a minute, rounded
// to the stats histogram's bucket: a tenth of a minute up to an hour, a
// minute up to a day, an hour beyond (as responseBucketSQL).
func responseBucket(d time.Duration) int64 {
	tenths := int64(math.Round(d.Minutes() * 10))
	switch {
	case tenths < 600:
		return tenths
	case tenths < 14400:
		return int64(math.Round(float64(tenths)/10)) * 10
	default:
		return int64(math.Round(float64(tenths)/600)) * 600
	}
}

func (s *Store) insertTimeline(tx *gorm.DB, ticketID uint, timeline []TicketEvent) error {
	for i := range timeline {
		timeline[i].TicketID = ticketID
	}
	return s.insertTimelines(tx, timeline)
}

// insertTimelines writes timeline lines, each of its own TicketID, a few
// hundred a statement.
func (s *Store) insertTimelines(tx *gorm.DB, timeline []TicketEvent) error {
	const perStatement = 500
	for len(timeline) > 0 {
		chunk := timeline[:min(len(timeline), perStatement)]
		timeline = timeline[len(chunk):]
		for i := range chunk {
			chunk[i].ID = 0
			if chunk[i].At.IsZero() {
				chunk[i].At = tx.NowFunc()
			}
			chunk[i].At = chunk[i].At.UTC()
		}
		// Plain SQL: this runs for every question and answer, and nobody
		// needs the new rows' ids back, so skip the ORM's reflection and
		// RETURNING.
		var (
			q    strings.Builder
			args = make([]any, 0, 5*len(chunk))
		)
		q.WriteString("INSERT INTO ticket_events (ticket_id, kind, actor_id, detail, at) VALUES ")
		for i, e := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, e.TicketID, e.Kind, e.ActorID, e.Detail, e.At)
		}
		if _, err := s.exec(tx, q.String(), args...); err != nil {
			return fmt.Errorf("insert timeline of ticket %d: %w", chunk[0].TicketID, err)
		}
	}
	return nil
}

// TicketBySource finds the ticket a bus event created.
func (s *Store) TicketBySource(ctx context.Context, eventID string) (*Ticket, error) {
	return s.ticketWhere(ctx, "ticket from event "+eventID, "source_event_id = ?", eventID)
}

// TicketByID finds a ticket by its row id.
func (s *Store) TicketByID(ctx context.Context, id uint) (*Ticket, error) {
	return s.ticketWhere(ctx, fmt.Sprintf("ticket %d", id), "id = ?", id)
}

// TicketByNumber finds a station's ticket by its number.
func (s *Store) TicketByNumber(ctx context.Context, stationID uint, number int64) (*Ticket, error) {
	return s.ticketWhere(ctx, fmt.Sprintf("ticket #%d", number), "station_id = ? AND number = ?", stationID, number)
}

// ticketColumns are every column of a ticket, in ticketWhere's scan order.
const ticketColumns = "id, station_id, number, source_event_id, group_id, platform, chat_id, chat_type, resident_id, resident_name, " +
	"question, reply_handle, status, emergency, after_hours, auto_answered, assignee_id, routing, level, escalate_at, fence, " +
	"created_at, first_response_at, answered_by, closed_at, updated_at"

// ticketWhere reads the one ticket matching where. Written out by hand: an
// officer's every command starts with this lookup, and the ORM's reflective
// scan cost as much as the query. Store tests on both databases read every
// column back through it.
func (s *Store) ticketWhere(ctx context.Context, what, where string, args ...any) (*Ticket, error) {
	query := "SELECT " + ticketColumns + " FROM tickets WHERE " + where + " LIMIT 1"
	pool, err := s.r.DB()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	var (
		t                                   Ticket
		group, assignee, answeredBy         sql.NullInt64
		residentName, replyHandle, routing  sql.NullString
		escalateAt, firstResponse, closedAt sql.NullTime
		emergency, afterHours, auto         sql.NullBool
		createdAt, updatedAt                sql.NullTime
	)
	err = s.queryRow(ctx, pool, query, args...).Scan(
		&t.ID, &t.StationID, &t.Number, &t.SourceEventID, &group, &t.Platform, &t.ChatID, &t.ChatType, &t.ResidentID, &residentName,
		&t.Question, &replyHandle, &t.Status, &emergency, &afterHours, &auto, &assignee, &routing, &t.Level, &escalateAt, &t.Fence,
		&createdAt, &firstResponse, &answeredBy, &closedAt, &updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	t.GroupID, t.AssigneeID, t.AnsweredBy = nullID(group), nullID(assignee), nullID(answeredBy)
	t.ResidentName, t.ReplyHandle, t.Routing = residentName.String, replyHandle.String, routing.String
	t.Emergency, t.AfterHours, t.AutoAnswered = emergency.Bool, afterHours.Bool, auto.Bool
	t.EscalateAt, t.FirstResponseAt, t.ClosedAt = nullTime(escalateAt), nullTime(firstResponse), nullTime(closedAt)
	t.CreatedAt, t.UpdatedAt = createdAt.Time, updatedAt.Time
	return &t, nil
}

func nullID(v sql.NullInt64) *uint {
	if !v.Valid {
		return nil
	}
	id := uint(v.Int64)
	return &id
}

func nullTime(v sql.NullTime) *time.Time {
	if !v.Valid {
		return nil
	}
	return &v.Time
}

// TicketsByNumber finds every station's ticket with this number, for an
// officer reply that must be matched against the officer's own station.
func (s *Store) TicketsByNumber(ctx context.Context, number int64) ([]Ticket, error) {
	var out []Ticket
	if err := s.read(ctx).Where("number = ?", number).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("find ticket #%d: %w", number, err)
	}
	return out, nil
}

func one[T any](v *T, err error, what string) (*T, error) {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	return v, nil
}

// ErrStale is returned by a Transition whose decision was made on a version
// of the ticket that changed meanwhile.
var ErrStale = errors.New("ticket changed meanwhile")

// Transition reads ticket id, lets decide mutate it and name the timeline
// entries and messages that go with the change, and saves them in one
// transaction, on the condition that nobody changed the ticket since it was
// read (its Fence, bumped by every transition). If somebody did, decide runs
// again on the fresh ticket, a few times at most. The read happens outside
// the transaction, so on SQLite it does not hold up the single writer; the
// fence is what makes escalation steps fire at most once. A change whose
// first message exists already was made before (the same platform message
// handled twice): ErrDuplicate, nothing written.
func (s *Store) Transition(ctx context.Context, id uint, decide func(t *Ticket) (Change, error)) (*Ticket, error) {
	return s.TransitionFrom(ctx, &Ticket{ID: id}, decide)
}

// TransitionFrom is Transition starting from a ticket the caller has just
// read (its Fence says which version), saving a read when nobody raced.
func (s *Store) TransitionFrom(ctx context.Context, read *Ticket, decide func(t *Ticket) (Change, error)) (*Ticket, error) {
	const attempts = 5
	id := read.ID
	for attempt := 1; ; attempt++ {
		var t Ticket
		if attempt == 1 && read.SourceEventID != "" {
			t = *read
		} else {
			got, err := s.TicketByID(ctx, id)
			if err != nil {
				return nil, err
			}
			t = *got
		}
		fence := t.Fence
		change, err := decide(&t)
		if err != nil {
			return nil, err
		}
		t.utc()
		t.Fence = fence + 1
		raced := false
		err = s.tx(ctx, func(tx *gorm.DB) error {
			// The messages first: a duplicate is found before anything is
			// written.
			if err := s.insertOutbound(tx, change.Outbound); err != nil {
				return err
			}
			saved, err := s.saveTransition(tx, &t, fence)
			if err != nil {
				return err
			}
			if !saved {
				raced = true
				return ErrStale
			}
			if err := s.insertNotices(tx, change.Notices); err != nil {
				return err
			}
			if err := insertAudit(tx, change.Audit); err != nil {
				return err
			}
			return s.insertTimeline(tx, t.ID, change.Timeline)
		})
		switch {
		case raced && attempt < attempts:
			continue
		case err != nil:
			return nil, err
		}
		return &t, nil
	}
}

// saveTransition writes the fields a transition may change (the question,
// its chat and its number never change after filing) if the ticket is still
// at fence; saved is false when somebody else moved it on first.
func (s *Store) saveTransition(tx *gorm.DB, t *Ticket, fence int64) (saved bool, err error) {
	t.UpdatedAt = tx.NowFunc()
	n, err := s.exec(tx,
		"UPDATE tickets SET status = ?, assignee_id = ?, level = ?, escalate_at = ?, fence = ?, first_response_at = ?, "+
			"answered_by = ?, closed_at = ?, auto_answered = ?, response_bucket = ?, updated_at = ? WHERE id = ? AND fence = ?",
		t.Status, t.AssigneeID, t.Level, t.EscalateAt, t.Fence, t.FirstResponseAt,
		t.AnsweredBy, t.ClosedAt, t.AutoAnswered, t.setResponseBucket(), t.UpdatedAt, t.ID, fence)
	if err != nil {
		return false, fmt.Errorf("save ticket %d: %w", t.ID, err)
	}
	return n == 1, nil
}

// lock adds FOR UPDATE where the database has it; SQLite's single writer
// connection already serialises transactions.
func (s *Store) lock(tx *gorm.DB) *gorm.DB {
	if s.driver == MySQL {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// dueTimers selects unanswered tickets whose escalation timer has passed.
func dueTimers(db *gorm.DB, now time.Time) *gorm.DB {
	return db.Where("escalate_at IS NOT NULL AND escalate_at <= ? AND status IN ?", now, []string{StatusOpen, StatusClaimed}).
		Order("escalate_at")
}

// FireBatch is how many due timers FireDue fires in one transaction.
// Firing one timer a transaction cost a commit each (about 1 ms on MySQL,
// a storm of 100,000 took over a minute and a half); a batch shares the
// commit, and its tickets, timeline lines and messages are written with a
// few statements. 200 keeps a transaction's locks and statements small.
const FireBatch = 200

// FireDue runs fire on up to limit tickets whose escalation timer is due,
// most overdue first, and saves what fire decided, FireBatch tickets a
// transaction. Several workers may call it at once: on MySQL a batch claims
// its tickets with FOR UPDATE SKIP LOCKED inside the transaction, so workers
// share the due timers instead of queueing on the same rows, and a ticket
// an officer is answering at that moment (its row locked) is left to the
// answer; on SQLite the single writer serialises batches and answers, and
// the batch reads its tickets inside its transaction. Either way fire sees
// the ticket as it is, and the fence guards each step: a step fires once.
// fire may return ErrStale to leave a ticket as it is.
func (s *Store) FireDue(ctx context.Context, now time.Time, limit int, fire func(t *Ticket) (Change, error)) (int, error) {
	now = now.UTC()
	fired := 0
	for left := limit; left > 0; {
		n := min(left, FireBatch)
		claimed, got, err := s.fireBatch(ctx, now, n, fire)
		if err != nil {
			return fired, err
		}
		fired += got
		left -= claimed
		if claimed < n {
			break
		}
	}
	return fired, nil
}

// firedStep is one ticket's escalation step as fire decided it.
type firedStep struct {
	t      *Ticket
	fence  int64
	change Change
}

// fireBatch claims up to n due tickets, decides each and writes the steps
// in one transaction. claimed counts the tickets it took, fired the steps
// it wrote.
func (s *Store) fireBatch(ctx context.Context, now time.Time, n int, fire func(t *Ticket) (Change, error)) (claimed, fired int, err error) {
	err = s.tx(ctx, func(tx *gorm.DB) error {
		q := tx
		if s.driver == MySQL {
			q = tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var due []Ticket
		if err := dueTimers(q, now).Limit(n).Find(&due).Error; err != nil {
			return fmt.Errorf("claim due timers: %w", err)
		}
		claimed = len(due)
		steps := make([]firedStep, 0, len(due))
		for i := range due {
			t := &due[i]
			fence := t.Fence
			change, err := fire(t)
			if errors.Is(err, ErrStale) {
				continue
			}
			if err != nil {
				return fmt.Errorf("fire timer of ticket %d: %w", t.ID, err)
			}
			t.utc()
			t.Fence = fence + 1
			steps = append(steps, firedStep{t: t, fence: fence, change: change})
		}
		fired = len(steps)
		return s.saveFired(tx, steps)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("fire due timers: %w", err)
	}
	return claimed, fired, nil
}

// saveFired writes a batch of fired steps: the tickets in one UPDATE, each
// row on the condition that it is still at the fence its step was decided
// on, then every step's timeline lines, messages (keyed by the fence, so a
// step writes its messages once) and notices. The batch's tickets are
// claimed, so every row matches; if one does not, the whole batch is rolled
// back rather than written without its ticket.
func (s *Store) saveFired(tx *gorm.DB, steps []firedStep) error {
	if len(steps) == 0 {
		return nil
	}
	now := tx.NowFunc()
	var (
		q    strings.Builder
		args = make([]any, 0, 20*len(steps)+2*len(steps)+1)
	)
	q.WriteString("UPDATE tickets ")
	if s.driver == MySQL {
		// By the primary key whatever the optimizer thinks of the table's
		// size: a scan would lock, and wait for, rows outside the batch
		// (a ticket being answered, that the claim skipped).
		q.WriteString("FORCE INDEX (PRIMARY) ")
	}
	q.WriteString("SET ")
	values := make([]any, len(steps))
	for i, col := range firedColumns {
		if i > 0 {
			q.WriteString(", ")
		}
		for j, st := range steps {
			values[j] = col.value(st.t)
		}
		setCase(&q, &args, col.name+" = ", steps, values)
	}
	q.WriteString(", updated_at = ? WHERE id IN (")
	args = append(args, now)
	for i, st := range steps {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("?")
		args = append(args, st.t.ID)
		st.t.UpdatedAt = now
	}
	q.WriteString(") AND ")
	for j, st := range steps {
		values[j] = st.fence
	}
	setCase(&q, &args, "fence = ", steps, values)
	n, err := s.exec(tx, q.String(), args...)
	if err != nil {
		return fmt.Errorf("save %d fired tickets: %w", len(steps), err)
	}
	if n != int64(len(steps)) {
		return fmt.Errorf("save fired tickets: %d of %d were still at their fence: %w", n, len(steps), ErrStale)
	}
	var (
		timeline []TicketEvent
		outbound []OutboundMessage
		notices  []Notice
	)
	for _, st := range steps {
		for _, e := range st.change.Timeline {
			e.TicketID = st.t.ID
			timeline = append(timeline, e)
		}
		outbound = append(outbound, st.change.Outbound...)
		notices = append(notices, st.change.Notices...)
	}
	if err := s.insertTimelines(tx, timeline); err != nil {
		return err
	}
	if err := s.insertOutboundIgnoring(tx, outbound); err != nil {
		return err
	}
	return s.insertNoticeBatch(tx, notices)
}

// setCase writes "prefix value" for the batch: one parameter when every
// step has the same value (an escalation moves most columns of a batch the
// same way), else a CASE on the ticket's id, which the database evaluates
// for every row of the batch.
func setCase(q *strings.Builder, args *[]any, prefix string, steps []firedStep, values []any) {
	q.WriteString(prefix)
	same := true
	for _, v := range values[1:] {
		if !sameValue(v, values[0]) {
			same = false
			break
		}
	}
	if same {
		q.WriteString("?")
		*args = append(*args, values[0])
		return
	}
	q.WriteString("CASE id")
	for j, st := range steps {
		q.WriteString(" WHEN ? THEN ?")
		*args = append(*args, st.t.ID, values[j])
	}
	q.WriteString(" END")
}

// firedColumns are the columns saveFired writes (those a transition may
// change), each with its value: pointers resolved, nil for NULL, so values
// compare.
var firedColumns = []struct {
	name  string
	value func(t *Ticket) any
}{
	{"status", func(t *Ticket) any { return t.Status }},
	{"assignee_id", func(t *Ticket) any { return nullable(t.AssigneeID) }},
	{"level", func(t *Ticket) any { return t.Level }},
	{"escalate_at", func(t *Ticket) any { return nullable(t.EscalateAt) }},
	{"fence", func(t *Ticket) any { return t.Fence }},
	{"first_response_at", func(t *Ticket) any { return nullable(t.FirstResponseAt) }},
	{"answered_by", func(t *Ticket) any { return nullable(t.AnsweredBy) }},
	{"closed_at", func(t *Ticket) any { return nullable(t.ClosedAt) }},
	{"auto_answered", func(t *Ticket) any { return t.AutoAnswered }},
	{"response_bucket", func(t *Ticket) any { return t.setResponseBucket() }},
}

func nullable[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

// OpenTicketsFor lists unanswered tickets an officer must handle.
func (s *Store) OpenTicketsFor(ctx context.Context, officerID uint) ([]Ticket, error) {
	var out []Ticket
	err := s.read(ctx).Where("assignee_id = ? AND status IN ?", officerID, []string{StatusOpen, StatusClaimed}).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list open tickets of officer %d: %w", officerID, err)
	}
	return out, nil
}

// OpenTicketsOfStation lists a station's unanswered tickets.
func (s *Store) OpenTicketsOfStation(ctx context.Context, stationID uint) ([]Ticket, error) {
	var out []Ticket
	err := s.read(ctx).Where("station_id = ? AND status IN ?", stationID, []string{StatusOpen, StatusClaimed}).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list open tickets of station %d: %w", stationID, err)
	}
	return out, nil
}

// Timeline lists the lines stored for a ticket, in order. The lines its
// filing implies (asked, assigned, acknowledged, DM sent) are derived from
// the ticket by the rules (commands.Hub.Timeline).
func (s *Store) Timeline(ctx context.Context, ticketID uint) ([]TicketEvent, error) {
	var stored []TicketEvent
	if err := s.read(ctx).Where("ticket_id = ?", ticketID).Order("id").Find(&stored).Error; err != nil {
		return nil, fmt.Errorf("load timeline of ticket %d: %w", ticketID, err)
	}
	return stored, nil
}

// TicketsCreated lists tickets created in [from, to), optionally of one station.
func (s *Store) TicketsCreated(ctx context.Context, stationID uint, from, to time.Time) ([]Ticket, error) {
	var out []Ticket
	q := s.read(ctx).Where("created_at >= ? AND created_at < ?", from.UTC(), to.UTC())
	if stationID != 0 {
		q = q.Where("station_id = ?", stationID)
	}
	if err := q.Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// CountTickets counts every ticket (the bench checks none was lost or doubled).
func (s *Store) CountTickets(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read(ctx).Model(&Ticket{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	return n, nil
}
