package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// Deliveries is the queue of confirmed broadcasts' per-group deliveries,
// the bulk lane of each platform's relay: one retry policy and one pace
// with every other outbound message.
//
// Duplicate window: a group can get an alert twice only if a relay died (or
// hung past its lease) after the platform took the message and before the
// row was marked sent. Neither DingTalk's groupMessages/send nor WeCom's
// webhook takes an idempotency key, so the platforms allow no smaller window.
func (h *Hub) Deliveries() bot.Queue { return deliveryQueue{h} }

type deliveryQueue struct{ h *Hub }

func (q deliveryQueue) Claim(ctx context.Context, p bot.Platform, now time.Time, lease time.Duration, limit int) ([]bot.Claimed, error) {
	got, err := q.h.store.ClaimDeliveries(ctx, string(p), now, lease, limit)
	if err != nil || len(got) == 0 {
		return nil, err
	}
	dir := q.h.dir.Load()
	texts := map[uint]string{}
	out := make([]bot.Claimed, 0, len(got))
	// The deliveries are held now: what follows runs to its end even if
	// shutdown begins, and hands them back if it fails, rather than leave
	// them to wait out their leases.
	held := context.WithoutCancel(ctx)
	for _, d := range got {
		text, ok := texts[d.BroadcastID]
		if !ok {
			b, err := q.h.store.BroadcastByID(held, d.BroadcastID)
			if err != nil {
				for _, g := range got {
					_, _ = q.h.store.RetryDeliveryAt(held, g.ID, g.Attempts, "", now)
				}
				return nil, fmt.Errorf("load broadcast B%d to send: %w", d.BroadcastID, err)
			}
			text = q.h.alertText(dir, b.Text)
			texts[d.BroadcastID] = text
		}
		msg := bot.Outbound{
			Key: fmt.Sprintf("bc%d:g%d", d.BroadcastID, d.GroupID), Platform: bot.Platform(d.Platform),
			Chat:   &bot.ChatRef{Platform: bot.Platform(d.Platform), ID: d.ChatID, Type: bot.Group},
			Format: bot.FormatText, Title: "警方预警", Text: text,
			Ref: bot.Ref{Purpose: bot.PurposeAlert, BroadcastID: d.BroadcastID},
		}
		out = append(out, bot.Claimed{Msg: msg, Row: d.ID, Fence: int64(d.Attempts), Attempts: d.Attempts - 1})
	}
	return out, nil
}

func (q deliveryQueue) Settle(ctx context.Context, results []bot.Result) error {
	st := q.h.store
	for _, r := range results {
		attempt := int(r.Fence)
		var err error
		switch r.Outcome {
		case bot.Sent:
			_, err = st.MarkDeliverySent(ctx, r.Row, attempt, r.MessageID, r.At)
		case bot.Failed:
			_, err = st.MarkDeliveryFailed(ctx, r.Row, attempt, r.Reason, r.At)
		case bot.Retry:
			_, err = st.RetryDeliveryAt(ctx, r.Row, attempt, r.Reason, r.RetryAt)
		case bot.Released:
			_, err = st.RetryDeliveryAt(ctx, r.Row, attempt, r.Reason, r.At)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RunBroadcastReports finishes broadcasts with nothing left to send and
// sends each finished round's report to its author, until ctx ends. Several
// processes may run it: finishing is conditional, and a report's key is
// the same in all of them, so the outbound dedup sends it once.
func (h *Hub) RunBroadcastReports(ctx context.Context, every time.Duration) error {
	for {
		if err := h.reportBroadcasts(ctx); err != nil && ctx.Err() == nil {
			h.opts.Log.Warn("reporting broadcasts", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func (h *Hub) reportBroadcasts(ctx context.Context) error {
	if _, err := h.store.FinishBroadcasts(ctx, h.now()); err != nil {
		return err
	}
	if err := h.remindOwners(ctx); err != nil {
		return err
	}
	list, err := h.store.Unreported(ctx)
	if err != nil {
		return err
	}
	for _, b := range list {
		text, err := h.BroadcastReport(ctx, b.ID)
		if err != nil {
			return err
		}
		h.opts.Log.Info("broadcast finished", "broadcast", b.ID, "round", b.Round)
		m := bot.Outbound{Key: fmt.Sprintf("bc%d:report:%d", b.ID, b.Round), Platform: bot.Platform(b.ReportPlatform),
			ToUser: b.ReportUser, Format: bot.FormatMarkdown, Title: fmt.Sprintf("预警广播 B%d 送达报告", b.ID), Text: text,
			Ref: bot.Ref{Purpose: bot.PurposeReport, BroadcastID: b.ID, OfficerID: deref(b.AuthorID)}}
		// The report is written with the mark: reported means on its way.
		if err := h.store.MarkReported(ctx, b.ID, b.Round, h.now(), rows([]bot.Outbound{m})); err != nil {
			return err
		}
		h.wake(ctx, []bot.Outbound{m})
	}
	return nil
}
