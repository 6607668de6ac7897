package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrBroadcastState is returned when a broadcast is asked to do what its
// current state does not allow (confirming one already sent, cancelling a
// finished one); the caller tells the user what state it is in.
var ErrBroadcastState = errors.New("broadcast is not in a state that allows this")

// CreateBroadcast inserts b as a draft with one pending delivery per target
// group, all in one transaction: a broadcast never exists without its full
// list of targets. compose (nil: none) derives from the new row the messages
// that go with it (the draft shown to its author); a first message that
// exists already means the request was handled before: ErrDuplicate.
// audit (optional) derives the draft's audit rows, written in the same
// transaction.
func (s *Store) CreateBroadcast(ctx context.Context, b *Broadcast, groups []Group, compose func(b *Broadcast) []OutboundMessage, audit ...func(b *Broadcast) []AuditEntry) error {
	if len(groups) == 0 {
		return errors.New("create broadcast: no target groups")
	}
	now := time.Now().UTC()
	b.CreatedAt, b.UpdatedAt = now, now
	b.Status, b.Total = BroadcastDraft, len(groups)
	b.CreatedVia, b.CreatedFrom = clip(b.CreatedVia, 8), clip(b.CreatedFrom, 191)
	return s.tx(ctx, func(tx *gorm.DB) error {
		b.ID = 0 // the insert assigns it
		if err := tx.Create(b).Error; err != nil {
			return fmt.Errorf("insert broadcast: %w", err)
		}
		rows := make([]Delivery, len(groups))
		for i, g := range groups {
			rows[i] = Delivery{BroadcastID: b.ID, GroupID: g.ID, Platform: g.Platform, ChatID: g.ChatID,
				Status: DeliveryPending, DueAt: now, UpdatedAt: now}
		}
		if err := tx.CreateInBatches(rows, 500).Error; err != nil {
			return fmt.Errorf("insert deliveries of broadcast %d: %w", b.ID, err)
		}
		for _, a := range audit {
			if err := insertAudit(tx, a(b)); err != nil {
				return err
			}
		}
		if compose == nil {
			return nil
		}
		if err := s.insertOutbound(tx, compose(b)); err != nil {
			return fmt.Errorf("broadcast %d: %w", b.ID, errors.Unwrap(err))
		}
		return nil
	})
}

// BroadcastByID loads a broadcast.
func (s *Store) BroadcastByID(ctx context.Context, id uint) (*Broadcast, error) {
	var b Broadcast
	err := s.read(ctx).Where("id = ?", id).Take(&b).Error
	return one(&b, err, fmt.Sprintf("broadcast B%d", id))
}

// Channels an action on a broadcast came through.
const (
	ViaChat = "chat" // a command in an officer's direct chat
	ViaCLI  = "cli"  // jingmin broadcast on the operator's shell
	ViaAPI  = "api"  // the admin API
	// ViaConsole is the station console (signed-in officer).
	ViaConsole = "console"
)

// Actor is who acted on a broadcast, for its record: the officer (nil for
// the operator's CLI without --by) and their name, the channel (ViaChat,
// ViaCLI, ViaAPI) and the address it came from (the platform account in
// chat, "cli:" and the OS user on the CLI, the remote address on the API).
type Actor struct {
	OfficerID *uint
	Name      string
	Via       string
	From      string
	// Audit (nil: none) derives the audit rows of the action from the
	// broadcast as the change left it, inside the change's transaction: the
	// change and its audit rows commit together or not at all.
	Audit func(b *Broadcast) []AuditEntry
}

// writeBroadcastAudit reloads broadcast id inside tx and writes audit's rows for it.
func writeBroadcastAudit(tx *gorm.DB, id uint, audit func(b *Broadcast) []AuditEntry) error {
	if audit == nil {
		return nil
	}
	var b Broadcast
	if err := tx.Where("id = ?", id).Take(&b).Error; err != nil {
		return fmt.Errorf("reload broadcast B%d for its audit: %w", id, err)
	}
	return insertAudit(tx, audit(&b))
}

// ConfirmBroadcast moves a draft to sending, recording who confirmed it. It
// is conditional on the draft state, so of two confirmations only one
// starts the broadcast; the other gets ErrBroadcastState.
func (s *Store) ConfirmBroadcast(ctx context.Context, id uint, at time.Time, by Actor) error {
	at = at.UTC()
	return s.broadcastUpdate(ctx, id, []string{BroadcastDraft, BroadcastAwaitingApproval}, map[string]any{
		"status": BroadcastSending, "confirmed_at": at, "round": 1, "updated_at": at,
		"confirmed_by_id": by.OfficerID, "confirmed_by": clip(by.Name, 128), "confirmed_via": clip(by.Via, 8), "confirmed_from": clip(by.From, 191),
	}, by.Audit, nil)
}

// CancelBroadcast stops a draft or a broadcast being sent, recording who
// cancelled it: deliveries not yet sent are marked cancelled. A delivery a
// sender holds right now may still go out; its result is recorded (see
// MarkDeliverySent).
func (s *Store) CancelBroadcast(ctx context.Context, id uint, at time.Time, by Actor) error {
	at = at.UTC()
	return s.broadcastUpdate(ctx, id, []string{BroadcastDraft, BroadcastAwaitingApproval, BroadcastSending}, map[string]any{
		"status": BroadcastCancelled, "cancelled_at": at, "updated_at": at,
		"cancelled_by_id": by.OfficerID, "cancelled_by": clip(by.Name, 128), "cancelled_via": clip(by.Via, 8), "cancelled_from": clip(by.From, 191),
	}, by.Audit, func(tx *gorm.DB) error {
		return tx.Model(&Delivery{}).Where("broadcast_id = ? AND status = ?", id, DeliveryPending).
			Updates(map[string]any{"status": DeliveryCancelled, "updated_at": at}).Error
	})
}

// RetryFailed puts a finished broadcast's failed deliveries back in the
// queue and the broadcast back to sending, in a new round (with a report of
// its own). It reports how many deliveries were requeued; zero changes
// nothing. audit (optional) derives the retry's audit rows, written in the
// same transaction when something was requeued.
func (s *Store) RetryFailed(ctx context.Context, id uint, at time.Time, audit ...func(b *Broadcast) []AuditEntry) (int64, error) {
	at = at.UTC()
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		n = 0
		var b Broadcast
		if err := s.lock(tx).Where("id = ?", id).Take(&b).Error; err != nil {
			_, err = one(&b, err, fmt.Sprintf("broadcast B%d", id))
			return err
		}
		if b.Status != BroadcastDone {
			return fmt.Errorf("retry broadcast B%d (%s): %w", id, b.Status, ErrBroadcastState)
		}
		// A customer group's delivery failed at its owner or its daily cap;
		// the hub cannot post there, so no retry of its own can help.
		res := tx.Model(&Delivery{}).Where("broadcast_id = ? AND status = ? AND group_id NOT IN (SELECT id FROM `groups` WHERE kind = ?)", id, DeliveryFailed, GroupKindCustomer).
			Updates(map[string]any{"status": DeliveryPending, "attempts": 0, "reason": "", "due_at": at, "lease_until": nil, "updated_at": at})
		if res.Error != nil {
			return fmt.Errorf("requeue failed deliveries of B%d: %w", id, res.Error)
		}
		if n = res.RowsAffected; n == 0 {
			return nil
		}
		if err := tx.Model(&Broadcast{}).Where("id = ?", id).Updates(map[string]any{
			"status": BroadcastSending, "round": gorm.Expr("round + 1"), "finished_at": nil, "reported_at": nil, "updated_at": at,
		}).Error; err != nil {
			return err
		}
		for _, a := range audit {
			if err := writeBroadcastAudit(tx, id, a); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// broadcastUpdate sets fields of broadcast id if its status is one of from,
// then runs also in the same transaction.
func (s *Store) broadcastUpdate(ctx context.Context, id uint, from []string, fields map[string]any, audit func(b *Broadcast) []AuditEntry, also func(tx *gorm.DB) error) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Broadcast{}).Where("id = ? AND status IN ?", id, from).Updates(fields)
		if res.Error != nil {
			return fmt.Errorf("update broadcast B%d: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			var b Broadcast
			if err := tx.Where("id = ?", id).Take(&b).Error; err != nil {
				_, err = one(&b, err, fmt.Sprintf("broadcast B%d", id))
				return err
			}
			return fmt.Errorf("broadcast B%d is %s: %w", id, b.Status, ErrBroadcastState)
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		return writeBroadcastAudit(tx, id, audit)
	})
}

// DeliveryCounts counts a broadcast's deliveries per status.
func (s *Store) DeliveryCounts(ctx context.Context, id uint) (map[string]int, error) {
	var rows []struct {
		Status string
		N      int
	}
	err := s.read(ctx).Model(&Delivery{}).Select("status, count(*) AS n").Where("broadcast_id = ?", id).
		Group("status").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count deliveries of B%d: %w", id, err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// BroadcastCount is how many of one broadcast's deliveries are in one
// state, with the broadcast's own state.
type BroadcastCount struct {
	BroadcastID uint
	Broadcast   string // the broadcast's status: sending, done or cancelled
	Delivery    string // the deliveries' status
	N           int
}

// BroadcastProgress counts, per broadcast and delivery state, the
// deliveries of every broadcast being sent and of those finished or
// cancelled at or after since, in one grouped query: cheap enough for every
// metrics scrape. Drafts are left out (nothing of theirs is under way), and
// so are broadcasts finished before since, however many there are.
func (s *Store) BroadcastProgress(ctx context.Context, since time.Time) ([]BroadcastCount, error) {
	since = since.UTC()
	var out []BroadcastCount
	err := s.read(ctx).Table("deliveries").
		Select("deliveries.broadcast_id AS broadcast_id, broadcasts.status AS broadcast, deliveries.status AS delivery, COUNT(*) AS n").
		Joins("JOIN broadcasts ON broadcasts.id = deliveries.broadcast_id").
		Where("broadcasts.status = ? OR (broadcasts.status = ? AND broadcasts.finished_at >= ?) OR (broadcasts.status = ? AND broadcasts.cancelled_at >= ?)",
			BroadcastSending, BroadcastDone, since, BroadcastCancelled, since).
		Group("deliveries.broadcast_id, broadcasts.status, deliveries.status").
		Order("deliveries.broadcast_id, deliveries.status").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("count deliveries of broadcasts under way: %w", err)
	}
	return out, nil
}

// ReasonCount is one failure reason and how many deliveries failed for it.
type ReasonCount struct {
	Reason string
	N      int
}

// FailureReasons lists a broadcast's failure reasons, most frequent first.
func (s *Store) FailureReasons(ctx context.Context, id uint, limit int) ([]ReasonCount, error) {
	var out []ReasonCount
	err := s.read(ctx).Model(&Delivery{}).Select("reason, count(*) AS n").
		Where("broadcast_id = ? AND status = ?", id, DeliveryFailed).
		Group("reason").Order("n DESC").Limit(limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list failure reasons of B%d: %w", id, err)
	}
	return out, nil
}

// Deliveries lists a broadcast's deliveries in a status ("" for all).
func (s *Store) Deliveries(ctx context.Context, id uint, status string) ([]Delivery, error) {
	q := s.read(ctx).Where("broadcast_id = ?", id)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var out []Delivery
	if err := q.Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list deliveries of B%d: %w", id, err)
	}
	return out, nil
}

// sendingBroadcasts lists the ids of broadcasts being sent.
func (s *Store) sendingBroadcasts(ctx context.Context) ([]uint, error) {
	var ids []uint
	if err := s.read(ctx).Model(&Broadcast{}).Where("status = ?", BroadcastSending).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("list broadcasts being sent: %w", err)
	}
	return ids, nil
}

// ClaimDeliveries leases up to limit deliveries of platform that are due:
// sending ones whose lease lapsed (their sender died or hung) and pending
// ones whose time has come, the oldest broadcast first. Each claimed row is
// marked sending until now+lease, with Attempts bumped; the caller must
// record the result with that Attempts value. On MySQL the rows are picked
// with FOR UPDATE SKIP LOCKED, so several processes share the work instead
// of queueing on the same rows; on SQLite the single writer serialises
// claims.
//
// Each pick is one broadcast and one state, equal on every column of
// ix_delivery_due (platform, broadcast_id, status), whose entries are in id
// order after those columns on both databases: the pick reads the rows it
// takes and stops, where one query over both states (or several
// broadcasts) read and sorted every delivery of the broadcast, sent ones
// included, at every claim.
func (s *Store) ClaimDeliveries(ctx context.Context, platform string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	now = now.UTC()
	ids, err := s.sendingBroadcasts(ctx)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	until := now.Add(lease)
	var claimed []Delivery
	err = s.claimTx(ctx, func(tx *gorm.DB) error {
		claimed = nil // on MySQL the body runs again after a deadlock (claimTx)
		var rows []Delivery
		for _, id := range ids {
			for _, due := range []struct{ status, col string }{{DeliverySending, "lease_until"}, {DeliveryPending, "due_at"}} {
				if len(rows) == limit {
					break
				}
				q := tx.Where("platform = ? AND broadcast_id = ? AND status = ? AND "+due.col+" <= ?", platform, id, due.status, now).
					Order("id").Limit(limit - len(rows))
				if s.driver == MySQL {
					q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
				}
				var got []Delivery
				if err := q.Find(&got).Error; err != nil {
					return fmt.Errorf("find due deliveries: %w", err)
				}
				rows = append(rows, got...)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		rowIDs := make([]uint, len(rows))
		for i, r := range rows {
			rowIDs[i] = r.ID
		}
		if err := s.lease(tx, &Delivery{}, "status", DeliveryPending, DeliverySending, "attempts", rowIDs, now, until); err != nil {
			return fmt.Errorf("lease deliveries: %w", err)
		}
		for i := range rows {
			rows[i].Status, rows[i].LeaseUntil, rows[i].UpdatedAt = DeliverySending, &until, now
			rows[i].Attempts++
		}
		claimed = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// claimTx runs a claim. On MySQL it runs at READ COMMITTED: under the
// default REPEATABLE READ the locking scan takes gap locks on the due
// index, and concurrent claimers updating the rows they took deadlock on
// them; a deadlock that happens all the same is retried, since nothing was
// claimed.
func (s *Store) claimTx(ctx context.Context, f func(tx *gorm.DB) error) error {
	if s.driver != MySQL {
		return s.tx(ctx, f)
	}
	var err error
	for range 5 {
		err = s.db.WithContext(ctx).Transaction(f, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		var me *mysqldrv.MySQLError
		if !errors.As(err, &me) || me.Number != 1213 {
			return err
		}
	}
	return err
}

// MarkDeliverySent records a delivery as sent with the platform's message
// id. It is fenced on attempt: a sender whose lease lapsed and was taken
// over records nothing (ok false), its successor's result stands. A
// delivery held by a sender when its broadcast was cancelled is still
// recorded: the group did get the message, and the status must say so.
func (s *Store) MarkDeliverySent(ctx context.Context, id uint, attempt int, messageID string, at time.Time) (ok bool, err error) {
	at = at.UTC()
	return s.markDelivery(ctx, id, attempt, map[string]any{
		"status": DeliverySent, "message_id": messageID, "reason": "", "sent_at": at, "lease_until": nil, "updated_at": at,
	})
}

// MarkDeliveryFailed records a delivery as failed for good with the reason.
func (s *Store) MarkDeliveryFailed(ctx context.Context, id uint, attempt int, reason string, at time.Time) (bool, error) {
	at = at.UTC()
	return s.markDelivery(ctx, id, attempt, map[string]any{
		"status": DeliveryFailed, "reason": reason, "lease_until": nil, "updated_at": at,
	})
}

// RetryDeliveryAt hands a delivery back to the queue after a transient
// failure, to be tried again at due.
func (s *Store) RetryDeliveryAt(ctx context.Context, id uint, attempt int, reason string, due time.Time) (bool, error) {
	due = due.UTC()
	return s.markDelivery(ctx, id, attempt, map[string]any{
		"status": DeliveryPending, "reason": reason, "due_at": due, "lease_until": nil, "updated_at": time.Now().UTC(),
	})
}

// MarkDeliveryCancelled records a held delivery of a cancelled broadcast
// as not sent.
func (s *Store) MarkDeliveryCancelled(ctx context.Context, id uint, attempt int, at time.Time) (bool, error) {
	at = at.UTC()
	return s.markDelivery(ctx, id, attempt, map[string]any{"status": DeliveryCancelled, "lease_until": nil, "updated_at": at})
}

func (s *Store) markDelivery(ctx context.Context, id uint, attempt int, fields map[string]any) (bool, error) {
	var ok bool
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Delivery{}).Where("id = ? AND attempts = ? AND status = ?", id, attempt, DeliverySending).Updates(fields)
		if res.Error != nil {
			return fmt.Errorf("record delivery %d: %w", id, res.Error)
		}
		ok = res.RowsAffected == 1
		return nil
	})
	return ok, err
}

// FinishBroadcasts marks done every sending broadcast with no delivery left
// to send, and returns how many it finished. The condition is checked in the
// UPDATE itself, so two processes finishing at once finish each once; it is
// a seek on ix_delivery_state (broadcast_id, status) per broadcast being
// sent, whatever its size.
func (s *Store) FinishBroadcasts(ctx context.Context, at time.Time) (int64, error) {
	at = at.UTC()
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		// Customer groups' deliveries await their owners, maybe for days:
		// the broadcast finishes once their tasks are created, and its
		// report counts them as awaiting, never as delivered.
		res := tx.Exec("UPDATE broadcasts SET status = ?, finished_at = ?, updated_at = ? WHERE status = ? AND NOT EXISTS "+
			"(SELECT 1 FROM deliveries WHERE deliveries.broadcast_id = broadcasts.id AND deliveries.status IN (?, ?)) AND NOT EXISTS "+
			"(SELECT 1 FROM outbound_messages WHERE outbound_messages.broadcast_id = broadcasts.id AND outbound_messages.purpose = ? AND outbound_messages.state IN (?, ?))",
			BroadcastDone, at, at, BroadcastSending, DeliveryPending, DeliverySending, PurposeMassSend, OutboundPending, OutboundSending)
		if res.Error != nil {
			return fmt.Errorf("finish broadcasts: %w", res.Error)
		}
		n = res.RowsAffected
		return nil
	})
	return n, err
}

// Unreported lists finished broadcasts whose report is still to be sent to
// someone. A cancelled one is not reported: the cancel's answer said where
// it stood.
func (s *Store) Unreported(ctx context.Context) ([]Broadcast, error) {
	var out []Broadcast
	err := s.read(ctx).Where("status = ? AND reported_at IS NULL AND report_user <> ''", BroadcastDone).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list unreported broadcasts: %w", err)
	}
	return out, nil
}

// MarkReported records that broadcast id's report of round is written:
// msgs (the report) go in the same transaction.
func (s *Store) MarkReported(ctx context.Context, id uint, round int, at time.Time, msgs []OutboundMessage) error {
	at = at.UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Broadcast{}).Where("id = ? AND round = ? AND reported_at IS NULL", id, round).
			Updates(map[string]any{"reported_at": at, "updated_at": at})
		if res.Error != nil {
			return fmt.Errorf("mark broadcast B%d reported: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // another process reported it
		}
		if err := s.insertOutbound(tx, msgs); err != nil && !errors.Is(err, ErrDuplicate) {
			return err
		}
		return nil
	})
}

// clip cuts s to at most n bytes on a rune boundary, so an address longer
// than its column (a long forwarded-for list) is kept in part, not refused.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
