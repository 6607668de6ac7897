package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// A resident's data can be exported and erased on request; closed tickets
// past hub.retention_days are redacted by jingmin purge and by the running
// hub, with the counts the statistics need left in place.
func TestResidentExportEraseAndRetention(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	h := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	ask := func(resident, name, text string) int {
		h.say("hexie", resident, name, "@社区警务助手 "+text)
		h.settle()
		n := ticketNumber(t, h.lastBot(bot.Group, "hexie").Text)
		h.dm("wang", fmt.Sprintf("#%d 收到，马上处理", n))
		h.settle()
		h.dm("wang", fmt.Sprintf("#%d 办结", n))
		h.settle()
		return n
	}
	first := ask("res-1", "刘阿姨", "楼道灯坏了，我电话 13812345678")
	second := ask("res-2", "陈大爷", "小区门口违停很多")
	third := ask("res-3", "王女士", "快递柜被撬了")
	h.Stop()

	out, err := runCLI(t, "resident", "export", "--platform", "playground", "--id", "res-1")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	var data store.Resident
	if err := json.Unmarshal([]byte(out), &data); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, out)
	}
	if len(data.Tickets) != 1 || int(data.Tickets[0].Ticket.Number) != first || !strings.Contains(data.Tickets[0].Ticket.Question, "楼道灯坏了") ||
		len(data.Tickets[0].Timeline) == 0 || len(data.Messages) == 0 || strings.Contains(out, "违停") {
		t.Fatalf("export of res-1 = %s", out)
	}
	out, err = runCLI(t, "resident", "erase", "--platform", "playground", "--id", "res-1")
	if err != nil || !strings.Contains(out, "工单 1") {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if out, _ := runCLI(t, "resident", "export", "--platform", "playground", "--id", "res-1"); strings.Contains(out, "楼道灯") || strings.Contains(out, "13812345678") {
		t.Errorf("after erasure the export still shows the resident's words:\n%s", out)
	}
	for _, bad := range [][]string{{"resident", "export", "--platform", "qq", "--id", "x"}, {"resident", "erase", "--platform", "playground"}, {"resident"}} {
		if out, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v succeeded:\n%s", bad, out)
		}
	}

	// Nothing is past the retention period yet.
	if out, err := runCLI(t, "purge", "--dry-run"); err != nil || !strings.Contains(out, "工单 0") {
		t.Errorf("purge --dry-run with nothing old: %v\n%s", err, out)
	}
	// The second ticket was last changed 200 days ago.
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	long := time.Now().AddDate(0, 0, -200).UTC()
	for _, q := range []string{
		"UPDATE outbound_messages SET updated_at = ? WHERE ticket_id = (SELECT id FROM tickets WHERE number = ?)",
		"UPDATE tickets SET updated_at = ? WHERE number = ?",
	} {
		if _, err := raw.Exec(q, long, second); err != nil {
			t.Fatal(err)
		}
	}
	out, err = runCLI(t, "purge", "--dry-run")
	if err != nil || !strings.Contains(out, "将删除") || !strings.Contains(out, "工单 1，") {
		t.Errorf("purge --dry-run: %v\n%s", err, out)
	}
	out, err = runCLI(t, "purge")
	if err != nil || !strings.Contains(out, "已删除") || !strings.Contains(out, "工单 1，") {
		t.Errorf("purge: %v\n%s", err, out)
	}
	if out, _ := runCLI(t, "resident", "export", "--platform", "playground", "--id", "res-2"); strings.Contains(out, "违停") {
		t.Errorf("the purged resident is still exported:\n%s", out)
	}

	// The running hub purges by itself (at start, then daily): a year on,
	// the third ticket is past the period too.
	later := startHubOn(t, nil, time.Now().AddDate(1, 0, 0), db)
	ctx := context.Background()
	waitFor(t, "the hub's own purge", func() bool {
		ts, err := later.store.TicketsByNumber(ctx, int64(third))
		return err == nil && len(ts) == 1 && ts[0].Question == store.Redacted
	})
	ts, _ := later.store.TicketsByNumber(ctx, int64(third))
	if ts[0].ResidentID != "" || ts[0].ResidentName != "" || ts[0].Status != store.StatusClosed || ts[0].ClosedAt == nil {
		t.Errorf("purged ticket = %+v, want the resident gone and the times kept", ts[0])
	}
	rows, err := later.rules.Stats(ctx, "", time.Now().AddDate(0, 0, -400), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	questions := 0
	for _, r := range rows {
		if r.Group == "" {
			questions += r.Questions
		}
	}
	if questions != 3 {
		t.Errorf("statistics after the purges count %d questions, want 3: %+v", questions, rows)
	}
	if strings.Contains(later.Logs.String(), "res-3") {
		t.Error("the purge logged a resident's id")
	}
}
