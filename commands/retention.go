package commands

import (
	"context"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Purge redacts residents' data older than keep (by the rules' clock):
// closed and answered tickets, their timelines, finished messages, parked
// payloads and unknown chats' names (see store.PurgeBefore). dry only
// counts.
func (h *Hub) Purge(ctx context.Context, keep time.Duration, dry bool) (store.Redactions, error) {
	return h.store.PurgeBefore(ctx, h.now().Add(-keep), dry)
}

// RunRetention purges residents' data older than keep at start and then
// every interval, until ctx ends; keep 0 keeps everything. A purge that
// fails is logged and tried again at the next interval: the data waits a
// day longer, nothing else does. Every process that handles events runs
// it; purges are conditional updates, so running them in several
// processes at once redacts each row once.
func (h *Hub) RunRetention(ctx context.Context, keep, every time.Duration) error {
	auditKeep := h.opts.AuditRetention
	if keep <= 0 && auditKeep <= 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if keep > 0 {
			n, err := h.Purge(ctx, keep, false)
			switch {
			case err != nil && ctx.Err() == nil:
				h.opts.Log.Warn("retention purge failed", "err", err)
			case err == nil && n != (store.Redactions{}):
				h.opts.Log.Info("retention purge", "tickets", n.Tickets, "timeline", n.Timeline, "messages", n.Messages,
					"parked", n.Parked, "unknown_chats", n.UnknownChats,
					"kf_sessions", n.KFSessions, "consents", n.Consents, "days", int(keep/(24*time.Hour)))
			}
		}
		if auditKeep > 0 {
			// The audit trail has a retention of its own, longer than the
			// residents' data it may name only by reference.
			n, err := h.store.PurgeAuditBefore(ctx, h.now().Add(-auditKeep))
			switch {
			case err != nil && ctx.Err() == nil:
				h.opts.Log.Warn("audit retention purge failed", "err", err)
			case err == nil && n > 0:
				h.opts.Log.Info("audit retention purge", "rows", n, "days", int(auditKeep/(24*time.Hour)))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
