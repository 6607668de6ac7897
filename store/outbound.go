package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrDuplicate is returned by a change whose first outbound message exists
// already: the cause (a platform message delivered twice) was handled, and
// the change is not applied a second time.
var ErrDuplicate = errors.New("already handled")

// Change is what a rule decided beside a ticket's new state: timeline lines
// and the messages to send, written in the same transaction.
type Change struct {
	Timeline []TicketEvent
	Outbound []OutboundMessage
	// Notices are messages to people who must not be flooded (an
	// escalation to a leader): see Notice.
	Notices []Notice
	// Audit rows record who made the change, committed with it.
	Audit []AuditEntry
}

// Notice is a message gathered with others to the same person. The first
// notice of a window is sent at once: Now, written under the key Window
// (one person's window: unique). Any later notice of the same window finds
// that key taken and is written held instead: Later, due when the window
// Closes, when GatherHeld sends the window's held notices as one digest.
// Which of the two a notice becomes is decided by the unique key inside the
// change's transaction, so concurrent changes never both send at once.
type Notice struct {
	Window string
	Closes time.Time
	Now    OutboundMessage
	Later  OutboundMessage
}

// insertNotices writes each notice at once or held (see Notice).
func (s *Store) insertNotices(tx *gorm.DB, notices []Notice) error {
	for _, n := range notices {
		first := n.Now
		first.Key = n.Window
		ignore := clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}
		msgs := []OutboundMessage{first}
		prepareOutbound(tx, msgs)
		res := tx.Clauses(ignore).Create(&msgs[0])
		if res.Error != nil {
			return fmt.Errorf("write notice %s: %w", n.Window, res.Error)
		}
		if res.RowsAffected == 1 {
			if err := s.writeCards(tx, msgs); err != nil {
				return err
			}
			continue
		}
		later := []OutboundMessage{n.Later}
		later[0].State, later[0].DueAt = OutboundHeld, n.Closes
		prepareOutbound(tx, later)
		if err := tx.Clauses(ignore).Create(&later[0]).Error; err != nil {
			return fmt.Errorf("hold notice %s: %w", later[0].Key, err)
		}
	}
	return nil
}

// insertNoticeBatch is insertNotices for many changes at once (a batch of
// fired timers): one read finds the windows that have their first notice
// already, each window new to the batch tries its first notice on its own
// (another transaction may take the window meanwhile: then it is held, as
// in insertNotices), and every held notice is written with a few
// statements.
func (s *Store) insertNoticeBatch(tx *gorm.DB, notices []Notice) error {
	if len(notices) == 0 {
		return nil
	}
	var windows []string
	seen := map[string]bool{}
	for _, n := range notices {
		if !seen[n.Window] {
			seen[n.Window] = true
			windows = append(windows, n.Window)
		}
	}
	var taken []string
	err := tx.Model(&OutboundMessage{}).Where(clause.IN{Column: clause.Column{Name: "key"}, Values: anySlice(windows)}).Pluck("key", &taken).Error
	if err != nil {
		return fmt.Errorf("read notice windows: %w", err)
	}
	open := make(map[string]bool, len(windows))
	for _, w := range windows {
		open[w] = true
	}
	for _, k := range taken {
		delete(open, k)
	}
	ignore := clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}
	var held []OutboundMessage
	for _, n := range notices {
		if open[n.Window] {
			delete(open, n.Window)
			first := []OutboundMessage{n.Now}
			first[0].Key = n.Window
			prepareOutbound(tx, first)
			res := tx.Clauses(ignore).Create(&first[0])
			if res.Error != nil {
				return fmt.Errorf("write notice %s: %w", n.Window, res.Error)
			}
			if res.RowsAffected == 1 {
				if err := s.writeCards(tx, first); err != nil {
					return err
				}
				continue
			}
		}
		later := n.Later
		later.State, later.DueAt = OutboundHeld, n.Closes
		held = append(held, later)
	}
	if len(held) == 0 {
		return nil
	}
	if err := s.insertOutboundIgnoring(tx, held); err != nil {
		return fmt.Errorf("hold notices: %w", err)
	}
	return nil
}

func anySlice[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// insertOutboundIgnoring writes msgs, skipping any whose key exists (their
// cause was handled before), a hundred a statement.
func (s *Store) insertOutboundIgnoring(tx *gorm.DB, msgs []OutboundMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	prepareOutbound(tx, msgs)
	ignore := clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}
	if err := tx.Clauses(ignore).CreateInBatches(msgs, 100).Error; err != nil {
		return fmt.Errorf("write %d outbound messages: %w", len(msgs), err)
	}
	return nil
}

// prepareOutbound fills in what a new row takes from the moment it is written.
func prepareOutbound(tx *gorm.DB, msgs []OutboundMessage) {
	now := tx.NowFunc()
	for i := range msgs {
		m := &msgs[i]
		m.ID = 0
		if m.State == "" {
			m.State = OutboundPending
		}
		if m.DueAt.IsZero() {
			m.DueAt = now
		}
		m.DueAt = m.DueAt.UTC()
		m.CreatedAt, m.UpdatedAt = now, now
	}
}

// GatherHeld sends platform's held notices whose window closed by now: the
// notices of one person's window (same officer, address and closing time)
// become one message, which compose writes from them, written pending while
// they are marked gathered, in one transaction per window. The store makes
// the message's key unique by adding the first notice's id, so a notice
// held late (by a process whose clock lags) gets a message of its own
// instead of being lost. Processes gathering at once lock the notices by
// primary key in one order: one of them gathers, the others find them
// gathered. It returns the messages written.
func (s *Store) GatherHeld(ctx context.Context, platform string, now time.Time, compose func(held []OutboundMessage) OutboundMessage) ([]OutboundMessage, error) {
	var candidates []OutboundMessage
	err := s.read(ctx).Select("id, officer_id, to_user, due_at").
		Where("platform = ? AND state = ? AND due_at <= ?", platform, OutboundHeld, now.UTC()).
		Order("id").Limit(5000).Find(&candidates).Error
	if err != nil {
		return nil, fmt.Errorf("find held notices on %s: %w", platform, err)
	}
	type window struct {
		officer uint
		toUser  string
		dueAt   int64
	}
	var (
		order   []window
		windows = map[window][]uint{}
	)
	for _, c := range candidates {
		w := window{toUser: c.ToUser, dueAt: c.DueAt.UnixMilli()}
		if c.OfficerID != nil {
			w.officer = *c.OfficerID
		}
		if _, ok := windows[w]; !ok {
			order = append(order, w)
		}
		windows[w] = append(windows[w], c.ID)
	}
	var written []OutboundMessage
	for _, w := range order {
		var digest OutboundMessage
		err := s.tx(ctx, func(tx *gorm.DB) error {
			digest = OutboundMessage{}
			var held []OutboundMessage
			if err := s.lock(tx).Where("id IN ? AND state = ?", windows[w], OutboundHeld).Order("id").Find(&held).Error; err != nil {
				return fmt.Errorf("read held notices: %w", err)
			}
			if len(held) == 0 {
				return nil // gathered by another process meanwhile
			}
			ids := make([]uint, len(held))
			for i := range held {
				ids[i] = held[i].ID
			}
			err := tx.Model(&OutboundMessage{}).Where("id IN ?", ids).
				Updates(map[string]any{"state": OutboundGathered, "updated_at": tx.NowFunc()}).Error
			if err != nil {
				return fmt.Errorf("mark notices gathered: %w", err)
			}
			digest = compose(held)
			digest.Key = fmt.Sprintf("%s:%d", digest.Key, held[0].ID)
			digest.State, digest.DueAt = OutboundPending, time.Time{}
			if err := s.insertOutbound(tx, []OutboundMessage{digest}); err != nil {
				if errors.Is(err, ErrDuplicate) {
					digest = OutboundMessage{} // written before: these are covered
					return nil
				}
				return err
			}
			return nil
		})
		if err != nil {
			return written, err
		}
		if digest.Key != "" {
			written = append(written, digest)
		}
	}
	return written, nil
}

// insertOutbound writes msgs pending. The first message's key says whether
// the cause was handled already: if it exists, nothing is written and the
// result is ErrDuplicate (untouched, so a group commit goes on). Later
// messages that exist are skipped: a cause handled twice writes each once.
func (s *Store) insertOutbound(tx *gorm.DB, msgs []OutboundMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	prepareOutbound(tx, msgs)
	ignore := clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}
	if s.driver == MySQL && len(msgs) > 1 {
		return s.insertOutboundTogether(tx, msgs, ignore)
	}
	res := tx.Clauses(ignore).Create(&msgs[0])
	if res.Error != nil {
		return fmt.Errorf("write outbound %s: %w", msgs[0].Key, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("outbound %s: %w", msgs[0].Key, ErrDuplicate)
	}
	if len(msgs) > 1 {
		if err := tx.Clauses(ignore).Create(msgs[1:]).Error; err != nil {
			return fmt.Errorf("write outbound %s: %w", msgs[1].Key, err)
		}
	}
	return s.writeCards(tx, msgs)
}

// insertOutboundTogether is insertOutbound in one statement, a round trip
// on MySQL: every message at once, skipping those that exist. When all were
// written (the common case) nothing more is asked. Otherwise the first
// message's row says whether the cause was handled already: the id MySQL
// reports is the first row this statement wrote, so a first message that
// existed has another id (one more round trip, on redeliveries only).
func (s *Store) insertOutboundTogether(tx *gorm.DB, msgs []OutboundMessage, ignore clause.OnConflict) error {
	res := tx.Clauses(ignore).Create(&msgs)
	if res.Error != nil {
		return fmt.Errorf("write outbound %s: %w", msgs[0].Key, res.Error)
	}
	if res.RowsAffected == int64(len(msgs)) {
		return nil
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("outbound %s: %w", msgs[0].Key, ErrDuplicate)
	}
	var first []uint
	if err := tx.Model(&OutboundMessage{}).Where("`key` = ?", msgs[0].Key).Pluck("id", &first).Error; err != nil {
		return fmt.Errorf("write outbound %s: %w", msgs[0].Key, err)
	}
	if len(first) != 1 || first[0] != msgs[0].ID {
		return fmt.Errorf("outbound %s: %w", msgs[0].Key, ErrDuplicate)
	}
	return nil
}

// Enqueue writes messages that no state change goes with (an answer to a
// command that changed nothing, a notice). ErrDuplicate: the first exists.
func (s *Store) Enqueue(ctx context.Context, msgs ...OutboundMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *gorm.DB) error { return s.insertOutbound(tx, msgs) })
}

// Apply records a change of no ticket's state: timeline lines of ticket
// (0: none) and messages, together.
func (s *Store) Apply(ctx context.Context, ticketID uint, c Change) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.insertOutbound(tx, c.Outbound); err != nil {
			return err
		}
		if err := insertAudit(tx, c.Audit); err != nil {
			return err
		}
		if ticketID == 0 {
			return nil
		}
		return s.insertTimeline(tx, ticketID, c.Timeline)
	})
}

// ClaimOutbound leases up to limit of platform's due messages until
// now+lease, most urgent first, bumping each one's Fence; the result must be
// recorded with that fence. On MySQL rows are picked FOR UPDATE SKIP LOCKED,
// so several relays share the work; on SQLite the single writer serialises
// claims.
func (s *Store) ClaimOutbound(ctx context.Context, platform string, now time.Time, lease time.Duration, limit int) ([]OutboundMessage, error) {
	now = now.UTC()
	until := now.Add(lease)
	var claimed []OutboundMessage
	err := s.claimTx(ctx, func(tx *gorm.DB) error {
		claimed = nil
		// Two index range reads on (platform, state, due_at): pending rows
		// that are due, oldest first, and the few held rows whose lease
		// lapsed. An OR of the two would read every row of the platform,
		// sent ones included, on every claim.
		lock := func(q *gorm.DB) *gorm.DB {
			if s.driver == MySQL {
				return q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
			}
			return q
		}
		var rows []OutboundMessage
		if s.lapsedDue(platform, now, lease) {
			lapsed := lock(tx.Where("platform = ? AND state = ? AND lease_until <= ?", platform, OutboundSending, now).Order("due_at").Limit(limit))
			if err := lapsed.Find(&rows).Error; err != nil {
				return fmt.Errorf("find lapsed outbound messages: %w", err)
			}
		}
		if len(rows) < limit {
			var due []OutboundMessage
			q := lock(tx.Where("platform = ? AND state = ? AND due_at <= ?", platform, OutboundPending, now).Order("due_at").Limit(limit - len(rows)))
			if err := q.Find(&due).Error; err != nil {
				return fmt.Errorf("find due outbound messages: %w", err)
			}
			rows = append(rows, due...)
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]uint, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		if err := s.lease(tx, &OutboundMessage{}, "state", OutboundPending, OutboundSending, "fence", ids, now, until); err != nil {
			return fmt.Errorf("lease outbound messages: %w", err)
		}
		for i := range rows {
			rows[i].State, rows[i].LeaseUntil, rows[i].UpdatedAt = OutboundSending, &until, now
			rows[i].Fence++
		}
		claimed = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// lapsedDue says whether a claim of platform's messages at now looks for
// lapsed leases. On MySQL, where every claim is round trips to the server,
// this process looks at most twice per lease period: a lease that lapsed
// is taken over within half a lease of lapsing instead of at the next
// claim, and the claims between (one or more per event) make one round
// trip fewer each. SQLite looks every time.
func (s *Store) lapsedDue(platform string, now time.Time, lease time.Duration) bool {
	if s.driver != MySQL {
		return true
	}
	s.lapsedMu.Lock()
	defer s.lapsedMu.Unlock()
	last, ok := s.lapsedAt[platform]
	if ok && !now.Before(last) && now.Sub(last) < lease/2 {
		return false
	}
	if s.lapsedAt == nil {
		s.lapsedAt = map[string]time.Time{}
	}
	s.lapsedAt[platform] = now
	return true
}

// OutboundResult is what became of one claimed message.
type OutboundResult struct {
	ID    uint
	Fence int64
	// State is sent, failed or pending (to be tried again at DueAt).
	State     string
	DueAt     time.Time
	MessageID string
	Reason    string
	// CountAttempt adds the failure to the message's Attempts.
	CountAttempt bool
	At           time.Time
	// Then is what follows from this result (an officer told that an answer
	// failed), on ticket ThenTicket (0: none), written with it: only if the
	// result itself is recorded.
	ThenTicket uint
	Then       Change
	// CardTrack names the card a sent message created or updated:
	// CardHandle is the platform's handle to update it with next (kept),
	// SpentHandle the one this update used up (forgotten).
	CardTrack, CardHandle, SpentHandle string
	// CardGone: the card went as a plain message, so no card exists to
	// update; its rows are forgotten.
	CardGone bool
}

// SettleOutbound records results in one transaction. A result whose fence
// is stale (the lease lapsed and another relay took the message over)
// records nothing: the successor's result stands.
func (s *Store) SettleOutbound(ctx context.Context, results []OutboundResult) error {
	if len(results) == 0 {
		return nil
	}
	if s.driver == MySQL && len(results) <= settlePerStatement && allPlainSent(results) {
		// One statement is atomic by itself: no BEGIN and COMMIT, one
		// round trip instead of three.
		return s.settleSent(s.db.WithContext(ctx), results)
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		// Sent messages with nothing following from them, the common
		// case, are recorded by one statement; the rest one by one.
		var plain []OutboundResult
		rest := results[:0:0]
		for _, r := range results {
			if allPlainSent([]OutboundResult{r}) {
				plain = append(plain, r)
			} else {
				rest = append(rest, r)
			}
		}
		if err := s.settleSent(tx, plain); err != nil {
			return err
		}
		for _, r := range rest {
			at := r.At.UTC()
			fields := map[string]any{"state": r.State, "lease_until": nil, "reason": r.Reason, "updated_at": at}
			switch r.State {
			case OutboundSent:
				fields["message_id"], fields["sent_at"] = r.MessageID, at
			case OutboundPending:
				fields["due_at"] = r.DueAt.UTC()
				if r.CountAttempt {
					fields["attempts"] = gorm.Expr("attempts + 1")
				}
			case OutboundFailed:
			default:
				return fmt.Errorf("settle outbound %d: unknown state %q", r.ID, r.State)
			}
			res := tx.Model(&OutboundMessage{}).Where("id = ? AND fence = ? AND state = ?", r.ID, r.Fence, OutboundSending).
				Updates(fields)
			if res.Error != nil {
				return fmt.Errorf("settle outbound %d: %w", r.ID, res.Error)
			}
			if res.RowsAffected == 1 && r.State == OutboundSent && r.CardTrack != "" {
				if err := settleCard(tx, r); err != nil {
					return err
				}
			}
			if res.RowsAffected == 0 || (len(r.Then.Outbound) == 0 && len(r.Then.Timeline) == 0) {
				continue // stale: the successor's result stands, and its consequences
			}
			if err := s.insertOutbound(tx, r.Then.Outbound); err != nil && !errors.Is(err, ErrDuplicate) {
				return err
			}
			if r.ThenTicket != 0 {
				if err := s.insertTimeline(tx, r.ThenTicket, r.Then.Timeline); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// settlePerStatement bounds the results one settling UPDATE records.
const settlePerStatement = 200

// allPlainSent says whether every result is a sent message with nothing
// following from it (a sent card's handle is recorded one by one).
func allPlainSent(results []OutboundResult) bool {
	for _, r := range results {
		if r.State != OutboundSent || r.CardTrack != "" || len(r.Then.Outbound) > 0 || len(r.Then.Timeline) > 0 {
			return false
		}
	}
	return true
}

// settleSent records sent results in one UPDATE, each row fenced as
// SettleOutbound's one by one: a row whose fence moved on is left alone.
func (s *Store) settleSent(tx *gorm.DB, results []OutboundResult) error {
	for len(results) > 0 {
		chunk := results[:min(len(results), settlePerStatement)]
		results = results[len(chunk):]
		var (
			ids, fence, msgID, sentAt          strings.Builder
			idArgs, fenceArgs, msgArgs, atArgs []any
		)
		for i, r := range chunk {
			if i > 0 {
				ids.WriteString(", ")
			}
			ids.WriteString("?")
			idArgs = append(idArgs, r.ID)
			fence.WriteString(" WHEN ? THEN ?")
			fenceArgs = append(fenceArgs, r.ID, r.Fence)
			msgID.WriteString(" WHEN ? THEN ?")
			msgArgs = append(msgArgs, r.ID, r.MessageID)
			sentAt.WriteString(" WHEN ? THEN ?")
			atArgs = append(atArgs, r.ID, r.At.UTC())
		}
		q := "UPDATE outbound_messages SET state = ?, lease_until = NULL, reason = '', " +
			"message_id = CASE id" + msgID.String() + " END, " +
			"sent_at = CASE id" + sentAt.String() + " END, " +
			"updated_at = CASE id" + sentAt.String() + " END " +
			"WHERE id IN (" + ids.String() + ") AND state = ? AND fence = CASE id" + fence.String() + " END"
		args := []any{OutboundSent}
		args = append(args, msgArgs...)
		args = append(args, atArgs...)
		args = append(args, atArgs...)
		args = append(args, idArgs...)
		args = append(args, OutboundSending)
		args = append(args, fenceArgs...)
		if _, err := s.exec(tx, q, args...); err != nil {
			return fmt.Errorf("settle %d sent outbound messages: %w", len(chunk), err)
		}
	}
	return nil
}

// OutboundOf lists a ticket's messages in the order they were written.
func (s *Store) OutboundOf(ctx context.Context, ticketID uint) ([]OutboundMessage, error) {
	var out []OutboundMessage
	if err := s.read(ctx).Where("ticket_id = ?", ticketID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list messages of ticket %d: %w", ticketID, err)
	}
	return out, nil
}

// FailedOutbound lists messages that could not be delivered, newest first.
func (s *Store) FailedOutbound(ctx context.Context, platform string, limit int) ([]OutboundMessage, error) {
	q := s.read(ctx).Where("state = ?", OutboundFailed)
	if platform != "" {
		q = q.Where("platform = ?", platform)
	}
	var out []OutboundMessage
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list undelivered messages: %w", err)
	}
	return out, nil
}

// OutboundByKey finds one message by its key.
func (s *Store) OutboundByKey(ctx context.Context, key string) (*OutboundMessage, error) {
	var m OutboundMessage
	return one(&m, s.read(ctx).Where("`key` = ?", key).Take(&m).Error, "outbound "+key)
}

// OutboundStates counts messages per state (a process's readiness to shut
// down, the bench's end, metrics), of one platform or all.
func (s *Store) OutboundStates(ctx context.Context, platform string) (map[string]int64, error) {
	type row struct {
		State string
		N     int64
	}
	q := s.read(ctx).Model(&OutboundMessage{}).Select("state, COUNT(*) AS n").Group("state")
	if platform != "" {
		q = q.Where("platform = ?", platform)
	}
	var rows []row
	if err := q.Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count outbound messages: %w", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// lease marks rows ids of model's table held (state column stateCol set to
// sending) until until, bumping fenceCol, and fails unless every one of
// them changed. On MySQL the rows were locked when read; on SQLite their
// state is checked again here, by row id alone (naming the platform would
// send SQLite down the platform's index instead).
func (s *Store) lease(tx *gorm.DB, model any, stateCol, pending, sending, fenceCol string, ids []uint, now, until time.Time) error {
	upd := tx.Model(model).Where("id IN ?", ids)
	if s.driver != MySQL {
		upd = upd.Where("("+stateCol+" = ? AND due_at <= ?) OR ("+stateCol+" = ? AND lease_until <= ?)", pending, now, sending, now)
	}
	res := upd.Updates(map[string]any{stateCol: sending, "lease_until": until, fenceCol: gorm.Expr(fenceCol + " + 1"), "updated_at": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != int64(len(ids)) {
		return fmt.Errorf("%d of %d rows changed meanwhile", len(ids)-int(res.RowsAffected), len(ids))
	}
	return nil
}

// settleCard keeps a sent card's handle for its next update, and forgets
// the one an update used.
func settleCard(tx *gorm.DB, r OutboundResult) error {
	now := tx.NowFunc()
	if r.CardGone {
		if err := tx.Where("track = ?", r.CardTrack).Delete(&Card{}).Error; err != nil {
			return fmt.Errorf("forget card %s: %w", r.CardTrack, err)
		}
		return nil
	}
	if r.SpentHandle != "" {
		err := tx.Model(&Card{}).Where("track = ? AND handle = ?", r.CardTrack, r.SpentHandle).
			Updates(map[string]any{"handle": "", "updated_at": now}).Error
		if err != nil {
			return fmt.Errorf("spend handle of card %s: %w", r.CardTrack, err)
		}
	}
	if r.CardHandle != "" {
		err := tx.Model(&Card{}).Where("track = ?", r.CardTrack).Updates(map[string]any{"handle": r.CardHandle, "updated_at": now}).Error
		if err != nil {
			return fmt.Errorf("keep handle of card %s: %w", r.CardTrack, err)
		}
	}
	return nil
}
