package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/configs"
)

// stationConfig writes the example station, changed by edits, with its
// holiday calendar beside it, and returns the file's path.
func stationConfig(t *testing.T, edits ...func(string) string) string {
	t.Helper()
	example, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(example)
	for _, e := range edits {
		text = e(text)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "holidays"), 0o755)
	hol, _ := os.ReadFile("../../configs/holidays/2026.yaml")
	os.WriteFile(filepath.Join(dir, "holidays", "2026.yaml"), hol, 0o644)
	path := filepath.Join(dir, "station.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// dbRows is every row of every table of a SQLite database, as text.
func dbRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.Query(fmt.Sprintf("SELECT * FROM %q ORDER BY 1", table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprint(vals...))
		}
		rows.Close()
	}
	return out
}

// A production database whose officers' accounts differ from the config a
// tool is run with (here: none, so the embedded demo) is left exactly as it
// was by every read-only tool, and by a dry-run sync.
func TestReadOnlyToolsLeaveEveryRowAsItWas(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	prod := stationConfig(t, replace("identities: {playground: wang}", "identities: {playground: wang-prod}"))
	if out, err := runCLI(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "sync", "-config", prod); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	cfg, err := configs.Load(prod)
	if err != nil {
		t.Fatal(err)
	}
	h := startHubOn(t, cfg, at("2026-11-23 10:00"), db)
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道堆满了纸箱")
	h.settle()
	h.Stop()

	before := dbRows(t, db)
	if !strings.Contains(strings.Join(before["identities"], "\n"), "wang-prod") {
		t.Fatalf("the production identity is not there to begin with: %q", before["identities"])
	}
	for _, args := range [][]string{
		{"stats"},
		{"stats", "--json"},
		{"parked"},
		{"roster", "who", "--station", "taiping", "--group", "和谐小区业主群", "--at", "2026-11-23 10:00"},
		{"sync", "--dry-run"},
	} {
		if out, err := runCLI(t, args...); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	after := dbRows(t, db)
	for table, rows := range before {
		if strings.Join(rows, "\n") != strings.Join(after[table], "\n") {
			t.Errorf("table %s changed:\n before %q\n after  %q", table, rows, after[table])
		}
	}
	if len(after) != len(before) {
		t.Errorf("tables before %d, after %d", len(before), len(after))
	}
}

// A config with WeCom and DingTalk blocks and a Redis bus runs the tools
// without the platforms' secrets and without a Redis URL: they build no
// platform adapter and dial no Redis.
func TestStatsWithAWeChatBlockNeedsNoWeComSecrets(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	t.Setenv("JINGMIN_DINGTALK_APP_SECRET", "")
	migrateCfg := stationConfig(t)
	cfg := stationConfig(t,
		replace("# wechat:\n#   listen: 0.0.0.0:8090\n#   corp_id: ww0123456789abcdef\n#   robot: {names: [太平警务值班号]}",
			"wechat:\n  listen: 127.0.0.1:0\n  corp_id: ww0123456789abcdef\n  robot: {names: [太平警务值班号]}"),
		replace("# dingtalk:\n#   app_key: dingxxxxxxxxxxxxxxxx", "dingtalk:\n  app_key: dingxxxxxxxxxxxxxxxx"),
		replace("bus:\n  kind: memory", "bus:\n  kind: redis"),
		replace("playground:\n  enabled: true", "playground:\n  enabled: false"))
	for _, block := range []string{"\nwechat:\n", "\ndingtalk:\n", "kind: redis"} {
		if !strings.Contains(readFile(t, cfg), block) {
			t.Fatalf("the example's %q was not turned on", block)
		}
	}
	if out, err := runCLI(t, "migrate", "-config", migrateCfg); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"sync", "-config", cfg}, {"stats", "-config", cfg}, {"parked", "-config", cfg},
		{"roster", "who", "-config", cfg, "--station", "taiping"}, {"broadcast", "status", "B1", "-config", cfg}} {
		out, err := runCLI(t, args...)
		if args[0] == "broadcast" { // no broadcast yet: the refusal, not a secret
			if err == nil || !strings.Contains(err.Error(), "没有找到预警广播 B1") {
				t.Errorf("%v: %v\n%s", args, err, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A tool refuses a database it would have to change first, and says what
// to run; it does not create a database where there is none.
func TestToolsNameMigrateForAnOutdatedDatabase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	t.Setenv("JINGMIN_DATABASE_DSN", missing)
	_, err := runCLI(t, "stats")
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("stats on a missing database: %v, want an error naming %s", err, missing)
	}
	if _, statErr := os.Stat(missing); statErr == nil {
		t.Errorf("stats created %s", missing)
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil { // an empty file is an empty SQLite database
		t.Fatal(err)
	}
	t.Setenv("JINGMIN_DATABASE_DSN", empty)
	for _, args := range [][]string{{"stats"}, {"parked"}, {"roster", "who", "--station", "taiping"}, {"broadcast", "status", "B1"}, {"sync"}} {
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "jingmin migrate") {
			t.Errorf("%v on an unmigrated database: %v, want it to name `jingmin migrate`", args, err)
		}
	}
	if rows := dbRows(t, empty); len(rows) != 0 {
		t.Errorf("the tools created tables: %v", rows)
	}
}

// `jingmin sync` prints one line per change; --dry-run prints the same and
// writes nothing; a second sync has nothing to do.
func TestSyncPrintsEachChange(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	if out, err := runCLI(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "sync"); err != nil || !strings.Contains(out, "+ 派出所 taiping") {
		t.Fatalf("first sync: %v\n%s", err, out)
	}
	edited := stationConfig(t,
		replace("identities: {playground: wang}", "identities: {playground: wang-prod}"),
		replace("  - {code: chen, station: taiping, name: 陈晓, roles: [auxiliary], aliases: [陈辅警], identities: {playground: chen}}\n", ""),
		replace("sla_minutes: 15", "sla_minutes: 20"),
		func(s string) string {
			// chen's roster leaves with him.
			var keep []string
			for _, l := range strings.Split(s, "\n") {
				if !strings.Contains(l, "officer: chen") {
					keep = append(keep, l)
				}
			}
			return strings.Join(keep, "\n")
		},
	)
	dry, err := runCLI(t, "sync", "-config", edited, "--dry-run")
	if err != nil {
		t.Fatalf("sync --dry-run: %v\n%s", err, dry)
	}
	dry = strings.ReplaceAll(dry, edited, "station.yaml")
	golden.File(t, "testdata/sync-dry-run.golden", []byte(dry))
	applied, err := runCLI(t, "sync", "-config", edited)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, applied)
	}
	golden.File(t, "testdata/sync.golden", []byte(applied))
	again, err := runCLI(t, "sync", "-config", edited)
	if err != nil || !strings.Contains(again, "没有变更") {
		t.Errorf("second sync: %v\n%s", err, again)
	}
}

// A serving process writes the config into the database only when the
// database has no directory yet, or when started with -sync.
func TestServeWritesTheConfigOnlyIntoAnEmptyDatabaseOrWhenAsked(t *testing.T) {
	if got, on, err := takeSyncFlag([]string{"-config", "f.yaml", "--sync", "-ops", ":9090"}); err != nil || !on || strings.Join(got, " ") != "-config f.yaml -ops :9090" {
		t.Errorf("takeSyncFlag = %q, %v, %v", got, on, err)
	}
	if _, on, err := takeSyncFlag([]string{"-sync=false"}); err != nil || on {
		t.Errorf("-sync=false = %v, %v", on, err)
	}
	if _, _, err := takeSyncFlag([]string{"-sync=maybe"}); err == nil {
		t.Error("-sync=maybe accepted")
	}

	db := filepath.Join(t.TempDir(), "hub.db")
	first := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	first.Stop()
	cfg, err := configs.Load(stationConfig(t, replace("identities: {playground: wang}", "identities: {playground: wang-prod}")))
	if err != nil {
		t.Fatal(err)
	}
	identities := func() string { return strings.Join(dbRows(t, db)["identities"], "\n") }
	second := startHubOn(t, cfg, at("2026-11-23 10:00"), db)
	second.Stop()
	if strings.Contains(identities(), "wang-prod") {
		t.Errorf("a restart with another config overwrote the directory: %s", identities())
	}
	mustContain(t, "restart log", second.Logs.String(), "the config differs from the directory in the database")

	// Started with -sync, a serving process applies the config.
	cfg.Database.DSN = db
	h, err := openHub(withSyncRequested(t.Context()), cfg, second.log, hubOptions{})
	if err != nil {
		t.Fatalf("open with -sync: %v", err)
	}
	h.Close()
	if !strings.Contains(identities(), "wang-prod") {
		t.Errorf("-sync did not apply the config: %s", identities())
	}

	// So does `jingmin sync`.
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	if out, err := runCLI(t, "sync"); err != nil || !strings.Contains(out, "~ 民警 wang：身份 playground wang-prod → wang") {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	if strings.Contains(identities(), "wang-prod") {
		t.Errorf("jingmin sync did not apply the config: %s", identities())
	}
}

// A second `jingmin serve` on the SQLite file another one is serving
// refuses to start and says why; the read-only tools still run beside the
// first; once the first has ended, a new one starts.
func TestSecondServeOnOneSQLiteFileRefuses(t *testing.T) {
	bin := jingminBinary(t)
	db := filepath.Join(t.TempDir(), "hub.db")
	env := append(os.Environ(), "JINGMIN_DATABASE_DSN="+db)
	type process struct {
		cmd  *exec.Cmd
		ops  string
		log  string
		done chan struct{}
	}
	serve := func() *process {
		p := &process{ops: freeAddr(t), log: filepath.Join(t.TempDir(), "serve.log"), done: make(chan struct{})}
		p.cmd = exec.Command(bin, "serve", "-listen", freeAddr(t), "-ops", p.ops, "-console", "off")
		p.cmd.Env = env
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd.Stdout, p.cmd.Stderr = f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
		t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
		return p
	}
	waitReady := func(ops string) bool {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if resp, err := http.Get("http://" + ops + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return true
				}
			}
		}
		return false
	}
	first := serve()
	if !waitReady(first.ops) {
		t.Fatalf("first serve did not become ready:\n%s", readFile(t, first.log))
	}

	second := serve()
	<-second.done
	if second.cmd.ProcessState.Success() {
		t.Fatalf("a second serve on %s started:\n%s", db, readFile(t, second.log))
	}
	mustContain(t, "second serve", readFile(t, second.log), "another jingmin process is serving this database", db, fmt.Sprintf("pid %d", first.cmd.Process.Pid))

	cmd := exec.Command(bin, "stats")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("stats beside a running serve: %v\n%s", err, out)
	}

	first.cmd.Process.Signal(os.Interrupt)
	<-first.done
	third := serve()
	if !waitReady(third.ops) {
		t.Errorf("serve after the first ended did not become ready:\n%s", readFile(t, third.log))
	}
}
