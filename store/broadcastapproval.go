package store

import (
	"context"
	"time"
)

// BroadcastAwaitingApproval is a draft its author confirmed while a second
// admin's approval is required (broadcast.second_approval): nothing is sent
// until another admin approves it, which moves it to sending as a
// confirmation does (ConfirmBroadcast, ConfirmBroadcastOwners).
const BroadcastAwaitingApproval = "approval"

// AwaitBroadcastApproval moves a draft to awaiting approval, with by's audit
// rows in the same transaction. It is conditional on the draft state, as a
// confirmation is; the author's confirmation is kept in the audit trail,
// the approver's on the broadcast (confirmed_by) when it starts.
func (s *Store) AwaitBroadcastApproval(ctx context.Context, id uint, at time.Time, by Actor) error {
	at = at.UTC()
	return s.broadcastUpdate(ctx, id, []string{BroadcastDraft}, map[string]any{
		"status": BroadcastAwaitingApproval, "updated_at": at,
	}, by.Audit, nil)
}
