package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jingminhub/jingmin/store"
)

// With broadcast.second_approval, one admin alone cannot send an alert to
// many groups: the author's confirmation only asks for approval, and
// another admin of the broadcast's scope starts it. The operator's CLI (no
// officer) is not held: whoever runs it has the whole hub already.

// awaitApproval records the author's confirmation as a request for
// approval.
func (h *Hub) awaitApproval(ctx context.Context, d *directory, by *store.Officer, from Origin, b *store.Broadcast) (*store.Broadcast, error) {
	if err := h.store.AwaitBroadcastApproval(ctx, b.ID, h.now(), actor(by, from)); err != nil {
		return nil, h.stateRefusal(ctx, d, b.ID, "确认", err)
	}
	h.opts.Log.Info("broadcast awaits approval", "broadcast", b.ID, "targets", b.Total, "via", from.Via)
	return h.store.BroadcastByID(ctx, b.ID)
}

// MayApprove says whether by may approve b: an admin of b's scope (its
// station's admin, or a district admin; a district-wide broadcast only a
// district admin) who is not its author.
func MayApprove(by *store.Officer, b *store.Broadcast) bool {
	if by == nil || b == nil || (b.AuthorID != nil && *b.AuthorID == by.ID) {
		return false
	}
	if by.HasRole(store.RoleDistrictAdmin) {
		return true
	}
	return by.HasRole(store.RoleAdmin) && b.StationID != nil && *b.StationID == by.StationID
}

// ApproveBroadcast starts a broadcast awaiting approval, as its author's
// confirmation would have without second approval; from carries the
// approval's audit rows into the same transaction.
func (h *Hub) ApproveBroadcast(ctx context.Context, by *store.Officer, from Origin, id uint) (*store.Broadcast, error) {
	d := h.dir.Load()
	b, err := h.store.BroadcastByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &BroadcastRefusal{render(d.template("broadcast_not_found"), "id", fmt.Sprint(id))}
	}
	if err != nil {
		return nil, err
	}
	switch {
	case by != nil && b.AuthorID != nil && *b.AuthorID == by.ID:
		return nil, &BroadcastRefusal{render(d.template("broadcast_own_draft"), "id", fmt.Sprint(id))}
	case !MayApprove(by, b):
		return nil, &BroadcastRefusal{render(d.template("broadcast_approver"), "id", fmt.Sprint(id))}
	case b.Status != store.BroadcastAwaitingApproval:
		return nil, &BroadcastRefusal{render(d.template("broadcast_state"), "id", fmt.Sprint(id), "state", stateLabel(b.Status), "action", "批准")}
	}
	tasks, err := h.confirmWithOwners(ctx, d, id, h.now(), actor(by, from))
	if err != nil {
		return nil, h.stateRefusal(ctx, d, id, "批准", err)
	}
	h.wake(ctx, tasks)
	h.opts.Log.Info("broadcast approved", "broadcast", id, "targets", b.Total, "via", from.Via)
	return h.store.BroadcastByID(ctx, id)
}
