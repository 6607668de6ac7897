package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot/bustest"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
	"github.com/jingminhub/jingmin/store/storetest"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestRosterWhoExplainsTheAnswer(t *testing.T) {
	t.Setenv("JINGMIN_DATABASE_DSN", filepath.Join(t.TempDir(), "hub.db"))
	for _, step := range []string{"migrate", "sync"} {
		if out, err := runCLI(t, step); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
	}
	for _, tc := range []struct {
		at    string
		wants []string
	}{
		{"2026-11-22 22:00", []string{"休息日", "太平警务值班号", "下一班开始：2026-11-23 08:30"}},
		{"2026-11-23 10:00", []string{"工作日", "王建国（本群民警，在班 08:30–17:30）"}},
		{"2026-11-23 19:00", []string{"张伟"}},
	} {
		out, err := runCLI(t, "roster", "who", "--station", "taiping", "--group", "和谐小区业主群", "--at", tc.at)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("roster who at %s:\n%s\nwant %q", tc.at, out, w)
			}
		}
	}
	if _, err := runCLI(t, "roster", "who", "--station", "nowhere"); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("unknown station: %v", err)
	}
	if _, err := runCLI(t, "roster", "who", "--station", "taiping", "--at", "tomorrow-ish"); err == nil {
		t.Error("unreadable time accepted")
	}
}

func TestInvalidConfigFailsNamingFileAndField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("stations:\n  - code: x\n    name: X\n    sla_minutes: -1\n    duty_account: nobody\n"), 0o644)
	_, err := runCLI(t, "serve", "-config", path)
	if err == nil {
		t.Fatal("serve with an invalid config started")
	}
	for _, w := range []string{path, "stations[0].sla_minutes", "stations[0].duty_account"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	if _, err := runCLI(t, "frobnicate"); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestStatsReportFirstResponseAndBreaches(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	h := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	// One at a time, so the numbers follow the order asked.
	for _, q := range [][3]string{{"hexie", "res-1", "问题一"}, {"hexie", "res-2", "问题二"}, {"yangguang", "res-3", "问题三"}} {
		h.say(q[0], q[1], "居民", "@社区警务助手 "+q[2])
		h.settle()
	}
	h.Clock.Set(at("2026-11-23 10:04"))
	h.dm("wang", "#1 答复一")
	h.settle()
	h.Clock.Set(at("2026-11-23 10:10"))
	h.dm("wang", "#2 答复二")
	h.settle()
	h.Clock.Set(at("2026-11-23 10:30")) // #3 breaches the 15-minute SLA
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	rows, err := h.rules.Stats(context.Background(), "taiping", at("2026-11-23 00:00"), at("2026-11-24 00:00"))
	if err != nil {
		t.Fatal(err)
	}
	byGroup := map[string]commands.Stats{}
	for _, r := range rows {
		byGroup[r.Group] = r
	}
	total, hexie := byGroup[""], byGroup["和谐小区业主群"]
	if total.Questions != 3 || total.Answered != 2 || total.Unanswered != 1 || total.Breaches != 1 {
		t.Errorf("station total = %+v", total)
	}
	if minutes(hexie.MedianMin) != "4.0" || minutes(hexie.P90Min) != "10.0" {
		t.Errorf("和谐小区 first response median/p90 = %v/%v, want 4/10", minutes(hexie.MedianMin), minutes(hexie.P90Min))
	}
	// The console's charts ask the same layer per day, hour and officer.
	for _, c := range []struct {
		by   store.StatsBy
		want string
	}{
		{store.ByDay, "2026-11-23 3 2 1 4.0 10.0"},
		{store.ByHour, "10 3 2 1 4.0 10.0"},
	} {
		points, err := h.rules.Series(context.Background(), "taiping", at("2026-11-23 00:00"), at("2026-11-24 00:00"), c.by)
		if err != nil || len(points) != 1 {
			t.Fatalf("series by %d = %+v (%v), want one point", c.by, points, err)
		}
		p := points[0]
		if got := fmt.Sprint(p.Key, " ", p.Questions, " ", p.Answered, " ", p.Breaches, " ", minutes(p.MedianMin), " ", minutes(p.P90Min)); got != c.want {
			t.Errorf("series by %d = %q, want %q", c.by, got, c.want)
		}
	}
	officers, err := h.rules.Series(context.Background(), "taiping", at("2026-11-23 00:00"), at("2026-11-24 00:00"), store.ByOfficer)
	if err != nil {
		t.Fatal(err)
	}
	byOfficer := map[string]int{}
	for _, p := range officers {
		byOfficer[p.Key] += p.Answered
	}
	if byOfficer["王建国"] != 2 {
		t.Errorf("answers per officer = %v, want 王建国's two", byOfficer)
	}
	h.Stop()

	t.Setenv("JINGMIN_DATABASE_DSN", db)
	out, err := runCLI(t, "stats", "--station", "taiping", "--from", "2026-11-23", "--to", "2026-11-24", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var printed []commands.Stats
	if err := json.Unmarshal([]byte(out), &printed); err != nil || len(printed) != len(rows) {
		t.Fatalf("stats --json printed %q (%v)", out, err)
	}
	// The table: columns named for what they count, lined up by display
	// width, "—" for a group where nothing was answered to time.
	table, err := runCLI(t, "stats", "--station", "taiping", "--from", "2026-11-23", "--to", "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	golden.File(t, "testdata/stats.golden", []byte(table))
}

func TestMigrateReportsApplied(t *testing.T) {
	t.Setenv("JINGMIN_DATABASE_DSN", filepath.Join(t.TempDir(), "hub.db"))
	out, err := runCLI(t, "migrate", "-status")
	if err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("migrate -status on a new database: %q %v", out, err)
	}
	out, err = runCLI(t, "migrate")
	if err != nil || !strings.Contains(out, "2026112201_initial\tapplied") {
		t.Fatalf("migrate: %q %v", out, err)
	}
}

// benchRoute runs `jingmin bench route` with args and returns its JSON line.
func benchRoute(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"bench", "route"}, args...), &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q", lines[len(lines)-1])
	}
	for _, k := range []string{"events_per_sec", "p50_ms", "p99_ms", "ack_p99_ms", "store_tx_per_sec", "ratio", "duplicates_leaked", "lost", "rss_mb", "heap_mb", "cpu_ms_per_event"} {
		if _, ok := res[k]; !ok {
			t.Errorf("bench JSON lacks %s", k)
		}
	}
	if res["lost"] != 0.0 || res["duplicates_leaked"] != 0.0 || res["tickets"].(float64) == 0 {
		t.Errorf("bench: lost %v, duplicates_leaked %v, tickets %v", res["lost"], res["duplicates_leaked"], res["tickets"])
	}
	return res
}

func TestBenchRouteLosesAndDuplicatesNothing(t *testing.T) {
	small := []string{"-events", "400", "-groups", "64", "-officers", "64", "-stations", "4", "-dir", t.TempDir()}
	t.Run("plain", func(t *testing.T) {
		res := benchRoute(t, small...)
		for _, k := range []string{"burst_groups", "redis_cmds_per_event", "sql_stmts_per_event"} {
			if _, ok := res[k]; ok {
				t.Errorf("embedded bench without a burst reports %s", k)
			}
		}
	})
	// Two groups get 15 questions at once, then an answer to each: 30
	// messages against a limit of 20 per window, so the answers beyond it
	// wait for the window as scheduled rows (the window is long enough for
	// a slow machine to send the 21st within it) and still all arrive
	// (lost 0).
	t.Run("burst", func(t *testing.T) {
		res := benchRoute(t, "-events", "200", "-groups", "64", "-officers", "64", "-stations", "4", "-dir", t.TempDir(),
			"-burst-groups", "2", "-burst-questions", "15", "-group-limit", "20", "-group-window", "10s")
		if res["burst_groups"] != 2.0 || res["burst_events"] != 60.0 || res["group_limit"] != "20/10s" {
			t.Errorf("burst: groups %v, events %v, limit %v; want 2, 60 (15 questions and 15 answers each), 20/10s", res["burst_groups"], res["burst_events"], res["group_limit"])
		}
		if n, _ := res["burst_answers_waited"].(float64); n == 0 {
			t.Errorf("burst_answers_waited = %v: no answer beyond its group's limit waited", res["burst_answers_waited"])
		}
		for _, k := range []string{"burst_ack_p99_ms", "burst_drain_seconds", "sends_told_to_wait", "acks_told_to_wait"} {
			if _, ok := res[k]; !ok {
				t.Errorf("burst bench JSON lacks %s", k)
			}
		}
	})
	for _, bad := range [][]string{{"-burst-groups", "-1"}, {"-burst-groups", "2", "-group-limit", "0"}, {"-burst-groups", "2", "-group-window", "0s"}} {
		if _, err := runCLI(t, append([]string{"bench", "route"}, bad...)...); err == nil || !strings.Contains(err.Error(), "-burst-groups") {
			t.Errorf("bench route %v: %v, want a refusal naming -burst-groups", bad, err)
		}
	}
}

// TestBenchRouteDistributedCountsServerCallsAndCleansUp: the distributed
// shape reports Redis commands and SQL statements per event from the
// servers' own counters, and leaves nothing behind: no key under its Redis
// prefix, and no database of its own on MySQL.
func TestBenchRouteDistributedCountsServerCallsAndCleansUp(t *testing.T) {
	rdb, _ := bustest.Redis(t)
	redisURL := "redis://" + bustest.RedisAddr() + "/0"
	cfg, err := mysql.ParseDSN(storetest.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = "" // the bench makes a database of its own
	// The workers are processes of the real binary (this test's own
	// binary runs tests, not `bench route-worker`).
	res := benchRoute(t, "-events", "200", "-groups", "32", "-officers", "32", "-stations", "2",
		"-bus", "redis", "-redis", redisURL, "-store", "mysql", "-dsn", cfg.FormatDSN(), "-procs", "2", "-worker-binary", jingminBinary(t))
	prefix, _ := res["redis_prefix"].(string)
	if prefix == "" {
		t.Fatalf("distributed bench names no redis_prefix: %v", res)
	}
	t.Cleanup(func() { // whatever the bench left, not for the next run to find
		if keys, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	if n, _ := res["redis_cmds_per_event"].(float64); n <= 0 {
		t.Errorf("redis_cmds_per_event = %v", res["redis_cmds_per_event"])
	}
	if cmds, _ := res["redis_cmds"].(map[string]any); cmds["xadd"] == nil || cmds["xreadgroup"] == nil {
		t.Errorf("redis_cmds lacks the bus's XADD and XREADGROUP: %v", res["redis_cmds"])
	}
	if n, _ := res["sql_stmts_per_event"].(float64); n <= 0 {
		t.Errorf("sql_stmts_per_event = %v", res["sql_stmts_per_event"])
	}
	if stmts, _ := res["sql_stmts"].(map[string]any); stmts["Com_insert"] == nil || stmts["Com_commit"] == nil {
		t.Errorf("sql_stmts lacks inserts and commits: %v", res["sql_stmts"])
	}
	// Round trips are counted on the wire by every process of the run,
	// the two workers' included: each reports its memory too.
	if n, _ := res["sql_roundtrips_per_event"].(float64); n <= 0 {
		t.Errorf("sql_roundtrips_per_event = %v", res["sql_roundtrips_per_event"])
	}
	if rss, _ := res["worker_rss_mb"].([]any); len(rss) != 2 || rss[0].(float64) <= 0 || rss[1].(float64) <= 0 {
		t.Errorf("worker_rss_mb = %v, want the two worker processes' memory", res["worker_rss_mb"])
	}
	var left []string
	iter := rdb.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		left = append(left, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 || res["redis_keys_left"] != 0.0 {
		t.Errorf("bench left %d keys under %s (it says %v): %v", len(left), prefix, res["redis_keys_left"], left[:min(len(left), 10)])
	}
	made, _ := res["mysql_database_dropped"].(string)
	if !strings.HasPrefix(made, "jingmin_bench_") {
		t.Fatalf("bench on a DSN without a database reports no database of its own: %v", res["mysql_database_dropped"])
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	switch err := db.QueryRow("SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?", made).Scan(&name); {
	case err == nil:
		t.Errorf("database %s is still there after the bench", made)
	case !errors.Is(err, sql.ErrNoRows):
		t.Fatal(err)
	}
}

func TestParkedListsWhatAdminsMustActOn(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	h := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	// A group on a platform this deployment has no adapter for: the reply is
	// parked with the reason, and a group nobody registered is listed.
	if err := h.store.Enqueue(context.Background(), store.OutboundMessage{Key: "k1", Purpose: "reply", Platform: "dingtalk",
		ChatType: "group", ChatID: "cid1", Format: "text", Text: "你好"}); err != nil {
		t.Fatal(err)
	}
	h.say("not-registered", "res-1", "13812345678", "@社区警务助手 你好")
	h.settle()
	h.Stop()
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	out, err := runCLI(t, "parked")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"outbound.dingtalk", "k1", "no dingtalk adapter", "not-registered", "（共 1 条）"} {
		if !strings.Contains(out, w) {
			t.Errorf("parked output lacks %q:\n%s", w, out)
		}
	}
}
