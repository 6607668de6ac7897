package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bottest"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// A shift added with `jingmin roster shift add` (a process of its own,
// as an admin's edit from the console would be) routes the next questions
// in a running distributed hub, on both workers, without a restart; a bad
// shift is refused with its reason and changes nothing; `roster who`
// agrees.
func TestRosterEditRoutesInRunningWorkers(t *testing.T) {
	dsn, redisURL, prefix := services(t)
	base, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	base.Database.Driver, base.Database.DSN = "mysql", dsn
	base.Bus.Kind, base.Bus.RedisURL, base.Bus.Prefix, base.Bus.ClaimIdleSeconds = "redis", redisURL, prefix, 1
	base.Hub.QuestionsPerMinute = 0
	base.Hub.TimerSeconds = 3600
	clock := bottest.NewClock(at("2026-11-23 07:00")) // a Monday, before anyone's shift
	front := startProcess(t, *base, role{platform: bot.Playground}, clock)
	w1 := startProcess(t, *base, role{handlers: true}, clock)
	w2 := startProcess(t, *base, role{handlers: true}, clock)
	post := (&testHub{hub: front.hub, URL: front.url, t: t}).say

	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	post("hexie", "res-0", "刘阿姨", "@社区警务助手 楼道灯坏了")
	waitUntil("the first question reaches the duty account", func() bool { return len(botLinesOf(front, bot.Direct, "taiping-duty")) == 1 })

	t.Setenv("JINGMIN_DATABASE_DRIVER", "mysql")
	t.Setenv("JINGMIN_DATABASE_DSN", dsn)
	out, err := runCLI(t, "roster", "shift", "add", "--officer", "wang", "--days", "mon", "--start", "06:00", "--end", "09:00")
	if err == nil || !strings.Contains(err.Error(), "班次重叠") {
		t.Fatalf("a shift overlapping wang's workday shift: %v\n%s", err, out)
	}
	out, err = runCLI(t, "roster", "shift", "add", "--officer", "wang", "--days", "mon", "--start", "06:00", "--end", "08:00")
	if err != nil {
		t.Fatalf("roster shift add: %v\n%s", err, out)
	}
	mustContain(t, "roster shift add", out, "王建国 每周一 06:00–08:00")
	for i, w := range []*process{w1, w2} {
		waitUntil(fmt.Sprintf("worker %d routes by the new shift", i+1), func() bool {
			who, err := w.rules.Who("taiping", "hexie", clock.Now())
			return err == nil && strings.Contains(who, "答复人：王建国")
		})
	}
	who, err := runCLI(t, "roster", "who", "--station", "taiping", "--group", "hexie", "--at", "2026-11-23 07:00")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "roster who", who, "答复人：王建国")

	const n = 8 // spread over both workers by the stream
	for i := 1; i <= n; i++ {
		post("hexie", fmt.Sprintf("res-%d", i), "居民", fmt.Sprintf("@社区警务助手 问题%d", i))
	}
	waitUntil("every new question reaches wang", func() bool { return len(botLinesOf(front, bot.Direct, "wang")) == n })
	if got := len(botLinesOf(front, bot.Direct, "taiping-duty")); got != 1 {
		t.Errorf("the duty account got %d DMs, want only the one from before the change", got)
	}
	rows, err := front.store.ListAudit(t.Context(), auditFilter("roster.shift.create"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Via != "cli" {
		t.Errorf("audit rows: %+v", rows)
	}
}

func auditFilter(action string) store.AuditFilter { return store.AuditFilter{Action: action} }

// `jingmin export` writes what `jingmin sync` takes back with no change,
// after edits made in the database (a shift, an override, a feed).
func TestExportThenSyncChangesNothing(t *testing.T) {
	t.Setenv("JINGMIN_DATABASE_DSN", filepath.Join(t.TempDir(), "hub.db"))
	for _, args := range [][]string{{"migrate"}, {"sync"},
		{"roster", "shift", "add", "--officer", "li", "--days", "sat,sun", "--start", "10:00", "--end", "14:00"},
		{"roster", "override", "--officer", "wang", "--date", "2026-12-07", "--mode", "cover", "--cover", "chen"},
		{"roster", "feed", "new", "--officer", "wang"}} {
		if out, err := runCLI(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	path := filepath.Join(t.TempDir(), "exported.yaml")
	if out, err := runCLI(t, "export", "-o", path); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	out, err := runCLI(t, "sync", "-config", path, "--dry-run")
	if err != nil {
		t.Fatalf("sync of the export: %v\n%s", err, out)
	}
	mustContain(t, "sync --dry-run of the export", out, "没有变更")
	// And the original config would undo the edits: the export holds them.
	out, err = runCLI(t, "sync", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "sync --dry-run of the original", out, "排班 li 周六 10:00-14:00", "调班 wang 2026-12-07 休")
}
