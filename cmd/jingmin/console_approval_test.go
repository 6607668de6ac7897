package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"net/url"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// With broadcast.second_approval on, an admin's confirmed broadcast sends
// nothing until another admin of its station approves it on the console:
// the author cannot approve their own, an admin of another station cannot
// either, and the request and the approval are both in the audit trail.
func TestConsoleBroadcastSecondApproval(t *testing.T) {
	cfg := broadcastConfig(t, 0)
	cfg.Broadcast.SecondApproval = true
	cfg.Officers = append(cfg.Officers, configs.Officer{Code: "feng", Station: "taiping", Name: "冯军", Roles: []string{"admin"}, Identities: map[string]string{"playground": "feng"}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startConsoleHub(t, cfg, at("2026-11-23 10:00"), fastBroadcasts)
	ctx := context.Background()
	z := h.client(t)
	z.signIn("zhao", "zhao")
	z.passTOTP("")
	if r := z.post("/broadcasts", url.Values{"scope": {"station:taiping"}, "text": {"反诈提醒：勿点陌生链接"}}); r.code != http.StatusSeeOther || r.location != "/broadcasts/1" {
		t.Fatalf("draft: HTTP %d → %q\n%s", r.code, r.location, r.body)
	}
	if r := z.post("/broadcasts/1/confirm", nil); r.code != http.StatusSeeOther {
		t.Fatalf("confirm: HTTP %d\n%s", r.code, r.body)
	}
	b, err := h.store.BroadcastByID(ctx, 1)
	if err != nil || b.Status != store.BroadcastAwaitingApproval || b.ConfirmedAt != nil {
		t.Fatalf("after the author's confirmation: %+v (%v), want awaiting approval, not started", b, err)
	}
	if counts, _ := h.store.DeliveryCounts(ctx, 1); counts[store.DeliveryPending] != b.Total {
		t.Errorf("deliveries %v while awaiting approval, want all %d pending", counts, b.Total)
	}
	page := z.get("/broadcasts/1")
	mustContain(t, "the author's page", page.body, `id="awaiting-approval"`)
	if strings.Contains(page.body, `id="approve"`) {
		t.Error("the author is offered to approve their own broadcast")
	}
	if r := z.post("/broadcasts/1/approve", nil); r.code != http.StatusConflict || !strings.Contains(r.body, "不能自己批准") {
		t.Errorf("the author approves: HTTP %d, want 409 saying so\n%s", r.code, r.body)
	}
	s := h.client(t)
	s.signIn("sun", "sun")
	s.passTOTP("")
	if r := s.post("/broadcasts/1/approve", nil); r.code != http.StatusConflict {
		t.Errorf("another station's admin approves: HTTP %d, want 409", r.code)
	}
	if b, _ := h.store.BroadcastByID(ctx, 1); b.Status != store.BroadcastAwaitingApproval {
		t.Fatalf("after refused approvals the broadcast is %s", b.Status)
	}

	f := h.client(t)
	f.signIn("feng", "feng")
	f.passTOTP("")
	mustContain(t, "the second admin's page", f.get("/broadcasts/1").body, `id="approve"`)
	if r := f.post("/broadcasts/1/approve", nil); r.code != http.StatusSeeOther {
		t.Fatalf("approve: HTTP %d\n%s", r.code, r.body)
	}
	waitFor(t, "the approved broadcast sent", func() bool {
		b, err := h.store.BroadcastByID(ctx, 1)
		return err == nil && b.Status == store.BroadcastDone
	})
	if b, _ := h.store.BroadcastByID(ctx, 1); b.ConfirmedBy != "冯军" || b.ConfirmedVia != store.ViaConsole {
		t.Errorf("started by %q via %q, want the approver on the console", b.ConfirmedBy, b.ConfirmedVia)
	}
	alerts := 0
	for _, l := range h.botLines(bot.Group, "hexie") {
		if strings.Contains(l.Text, "勿点陌生链接") {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d alerts in 和谐小区 after approval, want 1", alerts)
	}
	if r := f.post("/broadcasts/1/approve", nil); r.code != http.StatusConflict {
		t.Errorf("approving again: HTTP %d, want 409", r.code)
	}
	var got []string
	rows := auditRows(t, h, store.AuditFilter{Action: "broadcast."})
	for i := len(rows) - 1; i >= 0; i-- {
		got = append(got, rows[i].Actor+" "+rows[i].Action+" "+rows[i].Result+" "+rows[i].After)
	}
	want := "zhao 赵刚 broadcast.create ok status=draft|zhao 赵刚 broadcast.confirm ok status=approval|zhao 赵刚 broadcast.approve denied status=approval|" +
		"sun 孙丽 broadcast.approve denied status=approval|feng 冯军 broadcast.approve ok status=sending|feng 冯军 broadcast.approve denied status=done"
	if strings.Join(got, "|") != want {
		t.Errorf("broadcast audit rows:\n%s\nwant:\n%s", strings.Join(got, "|"), want)
	}
}

// Second approval holds a broadcast confirmed in chat too: the author is
// told it waits for another admin, nothing is sent, and the console's
// approval starts it.
func TestChatBroadcastWaitsForSecondApproval(t *testing.T) {
	cfg := broadcastConfig(t, 0)
	cfg.Broadcast.SecondApproval = true
	cfg.Officers = append(cfg.Officers, configs.Officer{Code: "feng", Station: "taiping", Name: "冯军", Roles: []string{"admin"}, Identities: map[string]string{"playground": "feng"}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startConsoleHub(t, cfg, at("2026-11-23 10:00"), fastBroadcasts)
	ctx := context.Background()
	mustContain(t, "preview", h.dmAndSettle("zhao", "广播 本所 "+alert), "B1", "确认 B1")
	mustContain(t, "confirmation", h.dmAndSettle("zhao", "确认 B1"), "B1", "另一位管理员", "批准")
	if b, _ := h.store.BroadcastByID(ctx, 1); b.Status != store.BroadcastAwaitingApproval {
		t.Fatalf("after the chat confirmation the broadcast is %s, want awaiting approval", b.Status)
	}
	mustContain(t, "second confirmation", h.dmAndSettle("zhao", "确认 B1"), "等待另一位管理员批准")
	f := h.client(t)
	f.signIn("feng", "feng")
	f.passTOTP("")
	if r := f.post("/broadcasts/1/approve", nil); r.code != http.StatusSeeOther {
		t.Fatalf("approve: HTTP %d\n%s", r.code, r.body)
	}
	waitFor(t, "the alert in 和谐小区", func() bool { return h.alertsIn("hexie") == 1 })
}
