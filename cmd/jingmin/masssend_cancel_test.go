package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/store"
)

// Cancelling an alert whose customer groups still wait for their owners
// stops those owners' WeCom mass-send tasks (cancel_groupmsg_send, through
// an outbound row the relay sends), so an owner can no longer send the
// withdrawn alert; their groups count as cancelled, not awaiting. An owner
// who already sent is left alone: WeCom cannot stop a sent task.
func TestWeChatCancelledAlertStopsOwnersUnsentTasks(t *testing.T) {
	w := newKFWorld(t, at("2026-11-23 10:00"))
	h := w.start(t)

	mustContain(t, "draft", h.adminSays("mc-1", "广播 本所 近期有冒充公安民警的诈骗电话，请勿转账"), "B1")
	h.adminSays("mc-2", "确认 B1")
	waitFor(t, "the delivery report", func() bool { return h.find("zhao.g", "B1 送达报告") != "" })
	if n := len(h.api.MassSends()); n != 2 {
		t.Fatalf("%d mass-send tasks, want one per owner (wang, li)", n)
	}
	if n := h.api.Confirm("wang.jg"); n != 1 {
		t.Fatalf("wang confirmed %d tasks, want 1", n)
	}
	waitFor(t, "wang's groups recorded as sent", func() bool { return h.counts(1)[store.DeliverySent] == 7 })

	mustContain(t, "cancellation", h.adminSays("mc-3", "取消 B1"), "B1 已取消", "已送达 7 个群", "1 个群不再发送")
	waitFor(t, "li's task stopped in WeCom", func() bool {
		for _, m := range h.api.MassSends() {
			if m.Sender == "li.m" {
				return m.Cancelled
			}
		}
		return false
	})
	var liTask string
	for _, m := range h.api.MassSends() {
		switch {
		case m.Sender == "li.m":
			liTask = m.MsgID
		case m.Cancelled:
			t.Errorf("%s's sent task was stopped", m.Sender)
		}
	}
	var stopped []string
	for _, r := range h.api.Requests("/cgi-bin/externalcontact/cancel_groupmsg_send") {
		var v struct {
			MsgID string `json:"msgid"`
		}
		_ = json.Unmarshal(r, &v)
		stopped = append(stopped, v.MsgID)
	}
	if strings.Join(stopped, ",") != liTask {
		t.Errorf("cancel_groupmsg_send asked for %v, want only li's task %s", stopped, liTask)
	}
	c := h.counts(1)
	if c[store.DeliveryCancelled] != 1 || c[store.DeliveryAwaitingOwner] != 0 || c[store.DeliverySent] != 7 {
		t.Errorf("deliveries = %v, want 7 sent and li's group cancelled", c)
	}
	status := h.adminSays("mc-4", "状态 B1")
	mustContain(t, "status", status, "已送达 7/8 个群", "已取消 1 个")
	if strings.Contains(status, "待群主确认") {
		t.Errorf("the status still counts a group as awaiting its owner: %q", status)
	}
	// Li taps send in WeCom too late: the task is gone.
	if n := h.api.Confirm("li.m"); n != 0 {
		t.Errorf("li could still send %d stopped tasks", n)
	}
}
