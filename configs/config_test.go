package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
)

func TestExampleLoadsWithHolidaysAndTemplates(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Stations) != 1 || c.Stations[0].Name != "太平派出所" {
		t.Errorf("stations = %+v", c.Stations)
	}
	var makeUp bool
	for _, h := range c.Holidays {
		makeUp = makeUp || (h.Date == "2026-10-10" && h.Kind == "workday")
	}
	if !makeUp {
		t.Error("2026 calendar lacks the 10-10 make-up working day")
	}
	seed := c.Seed()
	if len(seed.Templates) != len(DefaultTemplates) || len(seed.Shifts) == 0 || len(seed.Groups) != len(c.Groups) {
		t.Errorf("seed incomplete: %d templates, %d shifts, %d groups", len(seed.Templates), len(seed.Shifts), len(seed.Groups))
	}
}

func TestBadConfigNamesFileFieldAndProblem(t *testing.T) {
	base, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"unknown key", "  sla_minutes: 15", "  sla_minutes: 15\n    sla_minuts: 20", []string{"stations[0].sla_minuts: unknown key (did you mean sla_minutes?)", "line "}},
		{"unknown hub key", "  timer_seconds: 15", "  timer_seconds: 15\n  sla_minute: 20", []string{"hub.sla_minute: unknown key"}},
		{"unknown nested key", "  timer_seconds: 15", "  timer_seconds: 15\nbroadcast:\n  rates: {dingtalk: 5}\n  lease_second: 30", []string{"broadcast.lease_second: unknown key (did you mean lease_seconds?)"}},
		{"unknown top-level key", "faq:", "holiday_file: [x.yaml]\nfaq:", []string{"holiday_file: unknown key (did you mean holiday_files?)"}},
		{"impossible override date", "date: 2026-11-27", "date: 2026-11-31", []string{"roster.overrides[0].date", `"2026-11-31" is not a date`}},
		{"missing holiday file", "faq:", "holiday_files: [holidays/2030.yaml]\nfaq:", []string{"holiday_files", "2030.yaml"}},
		{"unknown station", "{code: li, station: taiping", "{code: li, station: taipin", []string{"officers[1].station", `unknown station "taipin"`}},
		{"bad clock", `start: "08:30", end: "17:30"`, `start: "8:30", end: "17:30"`, []string{"roster.shifts[0]", "HH:MM"}},
		{"bad day", "days: [workdays], start: \"08:30\"", "days: [weekdays], start: \"08:30\"", []string{"roster.shifts[0].days", `"weekdays"`}},
		{"unknown officer in group", "officer: wang, tags: [住宅]}", "officer: wong, tags: [住宅]}", []string{"groups[0].officer", `"wong"`}},
		{"unknown group kind", "officer: wang, tags: [住宅]}", "officer: wang, tags: [住宅], kind: client}", []string{"groups[0].kind", `"client"`}},
		{"customer group off WeCom", "officer: wang, tags: [住宅]}", "officer: wang, tags: [住宅], kind: customer}", []string{"groups[0].kind", "platform must be wechat"}},
		{"unknown role", "roles: [leader, admin]", "roles: [boss]", []string{"officers[4].roles", `"boss"`}},
		{"zero SLA", "sla_minutes: 15", "sla_minutes: 0", []string{"stations[0].sla_minutes"}},
		{"unknown template", "faq:", "templates: {ack: 好, akc: 坏}\nfaq:", []string{"templates.akc", "unknown template"}},
		{"wrong type", "questions_per_minute: 5", "questions_per_minute: many", []string{"line", "many"}},
		{"negative digest window", "escalation_digest_minutes: 5", "escalation_digest_minutes: -3", []string{"hub.escalation_digest_minutes", "1 to 1440"}},
		{"duty switch past a day", "duty_on_hours: 4", "duty_on_hours: 30", []string{"hub.duty_on_hours", "1 to 24"}},
		{"dedup keys kept shorter than a redelivery", "  kind: memory", "  kind: memory\n  dedup_keep_seconds: 30", []string{"bus.dedup_keep_seconds", "at least 60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(base), tc.from) {
				t.Fatalf("example.yaml no longer contains %q", tc.from)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "station.yaml")
			os.MkdirAll(filepath.Join(dir, "holidays"), 0o755)
			hol, _ := os.ReadFile("holidays/2026.yaml")
			os.WriteFile(filepath.Join(dir, "holidays", "2026.yaml"), hol, 0o644)
			os.WriteFile(path, []byte(strings.Replace(string(base), tc.from, tc.to, 1)), 0o644)
			_, err := Load(path)
			if err == nil {
				t.Fatal("bad config loaded without error")
			}
			for _, w := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEnvironmentOverridesDatabase(t *testing.T) {
	t.Setenv(EnvDatabaseDriver, "mysql")
	t.Setenv(EnvDatabaseDSN, "u:p@tcp(db:3306)/jingmin")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.Driver != "mysql" || c.Database.DSN != "u:p@tcp(db:3306)/jingmin" {
		t.Errorf("database = %+v", c.Database)
	}
	// The store the environment picks sets how many events are handled at once.
	if n := c.HandlerWorkers(); n != 8 {
		t.Errorf("workers on MySQL = %d, want 8", n)
	}
	t.Setenv(EnvDatabaseDriver, "sqlite")
	if c, err := Load(""); err != nil || c.HandlerWorkers() != 16 {
		t.Errorf("workers on SQLite = %v (%v), want 16", c, err)
	}
	t.Setenv(EnvDatabaseDriver, "oracle")
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), "database.driver") {
		t.Errorf("bad driver from env: %v", err)
	}
}

func TestWeChatBlockTurnsTheAdapterOnWithDefaults(t *testing.T) {
	base, _ := os.ReadFile("example.yaml")
	text := strings.Replace(withoutPlayground(string(base)), "stations:", "wechat:\n  corp_id: ww0123\n  robot: {names: [太平警务值班号]}\n\nstations:", 1)
	c, err := Parse("station.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.WeChat == nil || c.WeChat.Listen == "" || c.WeChat.WebhookPerMinute != 20 {
		t.Errorf("wechat config = %+v, want it on with defaults", c.WeChat)
	}
	bad := strings.Replace(withoutPlayground(string(base)), "stations:", "wechat:\n  corp_id: ww0123\n  webhook_per_minute: -1\n\nstations:", 1)
	if _, err := Parse("station.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "wechat.") {
		t.Errorf("bad wechat block: %v, want an error naming the wechat field", err)
	}
}

func TestDingTalkBlockNeedsItsSecretFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "holidays"), 0o755)
	hol, _ := os.ReadFile("holidays/2026.yaml")
	os.WriteFile(filepath.Join(dir, "holidays", "2026.yaml"), hol, 0o644)
	base, _ := os.ReadFile("example.yaml")
	path := filepath.Join(dir, "station.yaml")
	os.WriteFile(path, []byte(strings.Replace(withoutPlayground(string(base)), "stations:", "dingtalk: {app_key: dingabc}\n\nstations:", 1)), 0o644)
	t.Setenv("JINGMIN_DINGTALK_APP_SECRET", "")
	// Only the DingTalk adapter's process is given the secret: the config
	// loads without it everywhere else, and the adapter refuses to start
	// without it, naming the variable.
	c, err := Load(path)
	if err != nil {
		t.Fatalf("dingtalk block without the secret, in a process that does not run the adapter: %v", err)
	}
	if _, err := dingtalk.New(*c.DingTalk, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "JINGMIN_DINGTALK_APP_SECRET") {
		t.Errorf("dingtalk adapter without its secret: %v, want an error naming the variable", err)
	}
	os.WriteFile(path, []byte(strings.Replace(withoutPlayground(string(base)), "stations:", "dingtalk: {app_key: dingabc, openapi_host: \"ftp://x\"}\n\nstations:", 1)), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "dingtalk.openapi_host") {
		t.Errorf("bad dingtalk block: %v, want an error naming the field", err)
	}
	os.WriteFile(path, []byte(strings.Replace(withoutPlayground(string(base)), "stations:", "dingtalk: {app_key: dingabc}\n\nstations:", 1)), 0o644)
	t.Setenv("JINGMIN_DINGTALK_APP_SECRET", "s3cret")
	c, err = Load(path)
	if err != nil || c.DingTalk == nil || c.DingTalk.AppKey != "dingabc" {
		t.Fatalf("dingtalk config = %+v, %v", c.DingTalk, err)
	}
	os.WriteFile(path, []byte(strings.Replace(withoutPlayground(string(base)), "stations:", "dingtalk: {app_key: dingabc, app_secret: x}\n\nstations:", 1)), 0o644)
	if _, err := Load(path); err == nil {
		t.Error("a secret in the YAML was accepted")
	}
}

// The official calendars are built in: a config copied anywhere, with no
// calendar beside it, still knows the holidays and make-up days. A file a
// config adds (absolute or relative to it) adds dates or corrects them, and
// one with an impossible date is refused.
func TestHolidayCalendarsAreBuiltInAndFilesAddToThem(t *testing.T) {
	base, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	os.WriteFile(extra, []byte("year: 2027\ndays:\n  - {date: 2027-01-01, kind: holiday, name: 元旦}\n  - {date: 2026-10-10, kind: holiday, name: 改为休息}\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "cal"), 0o755)
	os.WriteFile(filepath.Join(dir, "cal", "bad.yaml"), []byte("days:\n  - {date: 2027-02-30, kind: holiday}\n"), 0o644)
	for _, tc := range []struct {
		name, files string
		want        map[string]string // date: kind
		err         []string
	}{
		{"none", "", map[string]string{"2026-10-10": "workday", "2026-10-01": "holiday"}, nil},
		{"absolute", "holiday_files: [" + extra + "]\n", map[string]string{"2027-01-01": "holiday", "2026-10-10": "holiday"}, nil},
		{"impossible date", "holiday_files: [cal/bad.yaml]\n", nil, []string{"cal/bad.yaml", "days[0].date", `"2027-02-30" is not a date`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			os.WriteFile(path, []byte(strings.Replace(string(base), "faq:", tc.files+"faq:", 1)), 0o644)
			c, err := Load(path)
			if tc.err != nil {
				if err == nil {
					t.Fatal("loaded")
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, h := range c.Holidays {
				if _, dup := got[h.Date]; dup {
					t.Errorf("date %s listed twice", h.Date)
				}
				got[h.Date] = h.Kind
			}
			for d, k := range tc.want {
				if got[d] != k {
					t.Errorf("%s = %q, want %q", d, got[d], k)
				}
			}
		})
	}
}

// withoutPlayground turns the example's playground off, as a deployment on
// a real platform must.
func withoutPlayground(yaml string) string {
	return strings.Replace(yaml, "playground:\n  enabled: true", "playground:\n  enabled: false", 1)
}

// TestPlaygroundRefusedBesideARealPlatform: the example (playground on)
// with a wechat: or dingtalk: block added does not load, and the error says
// why and what to change.
func TestPlaygroundRefusedBesideARealPlatform(t *testing.T) {
	base, _ := os.ReadFile("example.yaml")
	if !strings.Contains(string(base), "playground:\n  enabled: true") {
		t.Fatal("the example no longer turns the playground on; this test needs another base")
	}
	for name, block := range map[string]string{
		"wechat":   "wechat:\n  corp_id: ww0123\n  robot: {names: [太平警务值班号]}\n",
		"dingtalk": "dingtalk: {app_key: dingabc}\n",
	} {
		text := strings.Replace(string(base), "stations:", block+"\nstations:", 1)
		_, err := Parse("station.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "playground.enabled") || !strings.Contains(err.Error(), "any officer") ||
			!strings.Contains(err.Error(), "the "+name+": block") || !strings.Contains(err.Error(), "enabled: false") {
			t.Errorf("%s beside the playground: %v, want an error saying why and what to set", name, err)
		}
		if _, err := Parse("station.yaml", []byte(withoutPlayground(text))); err != nil && strings.Contains(err.Error(), "playground") {
			t.Errorf("%s with the playground off: %v", name, err)
		}
	}
}

// The admin API does not start with a guessable token, and the refusal
// says how to make a good one (without echoing the token).
func TestAdminTokenNeedsEntropy(t *testing.T) {
	t.Setenv(EnvAdminListen, "127.0.0.1:0")
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"", true},                           // no shared token: the per-account tokens of the console only
		{"a-long-enough-admin-token", false}, // 16+ characters, words: about 120 bits at most
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},    // long, one character
		{"Password1234Password1234Password1234", false},        // repeated words
		{"0123456789abcdef0123456789abcde", false},             // 31 hex digits: 124 bits
		{"9f86d081884c7d659a2feaa0c55ad015", true},             // openssl rand -hex 16
		{"q3Vt9mZr0bXkL2yH7sWcNf", true},                       // 22 base64url characters
		{"Yk3qL0cN7rTz2vH8pW5sXb9dF1gJ4mQe6uA0iR7oK2E=", true}, // openssl rand -base64 32
	} {
		t.Setenv(EnvAdminToken, tc.token)
		_, err := Load("")
		if tc.ok != (err == nil) {
			t.Errorf("token %q: %v, want ok=%v", tc.token, err, tc.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "openssl rand -base64 32") || !strings.Contains(err.Error(), EnvAdminToken) {
				t.Errorf("token %q: %v, want it to name the variable and say how to generate one", tc.token, err)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the refusal repeats the token: %v", err)
			}
		}
	}
	// Tools never serve the API and load whatever the token.
	t.Setenv(EnvAdminToken, "short")
	if _, err := LoadForTools(""); err != nil {
		t.Errorf("tools with a short admin token: %v", err)
	}
}

func TestRetentionDaysDefaultsTo180AndZeroKeepsForever(t *testing.T) {
	base, _ := os.ReadFile("example.yaml")
	without := strings.Replace(string(base), "  retention_days: 180\n", "", 1)
	c, err := Parse("station.yaml", []byte(without))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hub.Retention(); got != 180*24*time.Hour {
		t.Errorf("retention without the setting = %v, want 180 days", got)
	}
	c, err = Parse("station.yaml", []byte(strings.Replace(string(base), "retention_days: 180", "retention_days: 0", 1)))
	if err != nil || c.Hub.Retention() != 0 {
		t.Errorf("retention_days: 0 = %v, %v; want 0 (forever)", c.Hub.Retention(), err)
	}
	if _, err := Parse("station.yaml", []byte(strings.Replace(string(base), "retention_days: 180", "retention_days: -1", 1))); err == nil ||
		!strings.Contains(err.Error(), "hub.retention_days") {
		t.Errorf("retention_days: -1: %v, want an error naming the field", err)
	}
}

// The audit trail is kept at least 180 days (default 365, 0: forever).
func TestAuditRetentionDaysAtLeast180(t *testing.T) {
	base, _ := os.ReadFile("example.yaml")
	with := func(v string) string {
		return strings.Replace(string(base), "  retention_days: 180\n", "  retention_days: 180\n  audit_retention_days: "+v+"\n", 1)
	}
	c, err := Parse("station.yaml", base)
	if err != nil || c.Hub.AuditRetention() != 365*24*time.Hour {
		t.Errorf("audit retention by default = %v, %v; want 365 days", c.Hub.AuditRetention(), err)
	}
	for v, want := range map[string]time.Duration{"180": 180 * 24 * time.Hour, "0": 0, "1000": 1000 * 24 * time.Hour} {
		c, err := Parse("station.yaml", []byte(with(v)))
		if err != nil || c.Hub.AuditRetention() != want {
			t.Errorf("audit_retention_days: %s = %v, %v; want %v", v, c.Hub.AuditRetention(), err, want)
		}
	}
	for _, v := range []string{"30", "179", "-1"} {
		if _, err := Parse("station.yaml", []byte(with(v))); err == nil || !strings.Contains(err.Error(), "hub.audit_retention_days") {
			t.Errorf("audit_retention_days: %s: %v, want an error naming the field", v, err)
		}
	}
}
