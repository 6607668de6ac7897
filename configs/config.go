// Package configs loads the hub's YAML configuration: stations, groups,
// officers, roster, holidays, FAQ and message templates, plus where the hub
// keeps its data. The example deployment (example.yaml, holidays/) is embedded
// so `jingmin serve` runs with no file at all. Secrets never live here: they
// come from the environment (see Env).
package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

//go:embed example.yaml holidays/*.yaml
var embedded embed.FS

// loadHolidays reads the built-in calendars (every holidays/*.yaml compiled
// into the binary, so a config copied anywhere needs no calendar beside
// it), then each of files: an absolute path as it is, a relative one in
// fsys (the config's folder, or the embedded files for the example). A
// date listed again replaces the earlier entry.
func loadHolidays(name string, fsys fs.FS, files []string) ([]Holiday, error) {
	type source struct {
		label string
		read  func() ([]byte, error)
	}
	var sources []source
	builtin, _ := fs.Glob(embedded, "holidays/*.yaml")
	for _, b := range builtin {
		sources = append(sources, source{"built-in " + b, func() ([]byte, error) { return fs.ReadFile(embedded, b) }})
	}
	for _, hf := range files {
		if filepath.IsAbs(hf) {
			sources = append(sources, source{hf, func() ([]byte, error) { return os.ReadFile(hf) }})
			continue
		}
		sources = append(sources, source{hf, func() ([]byte, error) { return fs.ReadFile(fsys, filepath.ToSlash(filepath.Clean(hf))) }})
	}
	var out []Holiday
	at := map[string]int{}
	for _, src := range sources {
		b, err := src.read()
		if err != nil {
			return nil, fmt.Errorf("%s: holiday_files: %w", name, err)
		}
		var h holidayFile
		if err := strictUnmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("%s: %s", src.label, err)
		}
		for i, d := range h.Days {
			if !validDate(d.Date) {
				return nil, fmt.Errorf("%s: days[%d].date: %q is not a date (YYYY-MM-DD)", src.label, i, d.Date)
			}
			if d.Kind != "holiday" && d.Kind != "workday" {
				return nil, fmt.Errorf("%s: days[%d].kind: %q, want holiday or workday", src.label, i, d.Kind)
			}
			if j, ok := at[d.Date]; ok {
				out[j] = d
				continue
			}
			at[d.Date] = len(out)
			out = append(out, d)
		}
	}
	return out, nil
}

// validDate reports whether s is a real calendar date written YYYY-MM-DD
// (2026-11-31 is not).
func validDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil && dateRe.MatchString(s)
}

// DefaultName is how the embedded example is named in errors.
const DefaultName = "configs/example.yaml"

// Config is one deployment.
type Config struct {
	Hub        Hub        `yaml:"hub"`
	Database   Database   `yaml:"database"`
	Bus        Bus        `yaml:"bus"`
	Playground Playground `yaml:"playground"`
	Ops        Ops        `yaml:"ops"`
	Admin      Admin      `yaml:"admin"`
	Console    Console    `yaml:"console"`
	Broadcast  Broadcast  `yaml:"broadcast"`
	// WeChat turns the WeCom adapter on (nil: off); its secrets come from
	// the environment variables it names.
	WeChat *wechat.Config `yaml:"wechat"`
	// DingTalk turns the stream-mode robot on (nil: off); its app secret
	// comes from JINGMIN_DINGTALK_APP_SECRET.
	DingTalk *dingtalk.Config `yaml:"dingtalk"`
	// Budget is each platform app's monthly API call budget.
	Budget   Budget    `yaml:"budget"`
	Stations []Station `yaml:"stations"`
	Officers []Officer `yaml:"officers"`
	Groups   []Group   `yaml:"groups"`
	Roster   Roster    `yaml:"roster"`
	// HolidayFiles are calendar files beyond the built-in ones
	// (configs/holidays, compiled into the binary): absolute, or relative to
	// this file. A date in a later file replaces the same date before it.
	HolidayFiles []string          `yaml:"holiday_files"`
	FAQ          []FAQ             `yaml:"faq"`
	Templates    map[string]string `yaml:"templates"`

	// WeComArchive turns the conversation-archive reader of WeCom customer
	// groups on (nil: off), with its chat-toolbar page; its secrets come
	// from the environment and mounted files it names.
	WeComArchive *wecomarchive.Config `yaml:"wecom_archive"`

	// Holidays is filled by Load: the built-in calendars, then HolidayFiles.
	Holidays []Holiday `yaml:"-"`
	// Source names the file the config came from, for messages.
	Source string `yaml:"-"`
}

type Hub struct {
	Timezone          string   `yaml:"timezone"`
	EmergencyKeywords []string `yaml:"emergency_keywords"`
	// QuestionsPerMinute throttles one resident in one group.
	QuestionsPerMinute int `yaml:"questions_per_minute"`
	MaxTextRunes       int `yaml:"max_text_runes"`
	// Workers is how many events are handled at once (default: see
	// DefaultWorkers).
	Workers int `yaml:"workers"`
	// SenderWorkers is how many outbound messages each platform's relay
	// has in hand at once (default 32), which is also the most one claim
	// takes. A send is mostly waiting, for the platform and for the
	// database's claim and record; the platforms' rate limits are kept by
	// the adapters themselves, however many send.
	SenderWorkers int `yaml:"sender_workers"`
	// ConsultationStation (a station code) takes residents' one-to-one
	// messages to the bot (Official Account, direct chats) as tickets.
	ConsultationStation string `yaml:"consultation_station"`
	// TimerSeconds is how often escalation timers and shift starts are checked.
	TimerSeconds int `yaml:"timer_seconds"`
	// EscalationDigestMinutes gathers escalation notices to one person:
	// the first of each window goes at once, the rest of the window as one
	// digest when it closes (default 5).
	EscalationDigestMinutes int `yaml:"escalation_digest_minutes"`
	// UrgentKeywords mark a question the resident says is urgent: filed
	// after hours, its answer clock runs at once instead of from the next
	// shift (default 紧急, 急).
	UrgentKeywords []string `yaml:"urgent_keywords"`
	// DutyOnHours is how long "值班 开" lasts for an officer with no
	// rostered shift now or starting within it, unless they give an end
	// ("值班 开 到 23:00"); default 4.
	DutyOnHours int `yaml:"duty_on_hours"`
	// SwapApproval: an accepted shift swap waits for a station admin's
	// approval (the default); false puts it in force on the colleague's
	// acceptance.
	SwapApproval *bool `yaml:"swap_approval"`
	// RetentionDays is how long residents' words, names and ids are kept in
	// closed and answered tickets, their timelines, sent messages and
	// parked events after their last change (PIPL: no longer than needed);
	// then they are redacted, counts and times kept. Default 180; 0 keeps
	// them forever.
	RetentionDays *int `yaml:"retention_days"`
	// AuditRetentionDays is how long the audit trail is kept: at least
	// MinAuditRetentionDays, default DefaultAuditRetentionDays; 0 keeps
	// it forever.
	AuditRetentionDays *int `yaml:"audit_retention_days"`
}

// Audit trail retention, in days.
const (
	DefaultAuditRetentionDays = 365
	MinAuditRetentionDays     = 180
)

// AuditRetention is how long audit rows are kept; 0 is forever.
func (h Hub) AuditRetention() time.Duration {
	if h.AuditRetentionDays == nil {
		return DefaultAuditRetentionDays * 24 * time.Hour
	}
	return time.Duration(*h.AuditRetentionDays) * 24 * time.Hour
}

// Budget bounds each platform app's API calls a month (DingTalk counts
// robot pushes and card updates against a monthly quota). At 80% the
// admins are told; past 100%, or when the platform says the quota is used
// up, non-urgent sends degrade (cards go as plain messages, card updates
// are held back, escalation digests gather longer) while residents'
// answers and emergency pages go on.
type Budget struct {
	// MonthlyCalls per platform ("dingtalk", "wechat"); 0 or missing:
	// counted, not bounded.
	MonthlyCalls map[string]int64 `yaml:"monthly_calls"`
}

// DefaultRetentionDays is hub.retention_days when the config leaves it out.
const DefaultRetentionDays = 180

// Retention is how long residents' data is kept; 0 is forever.
func (h Hub) Retention() time.Duration {
	if h.RetentionDays == nil {
		return DefaultRetentionDays * 24 * time.Hour
	}
	return time.Duration(*h.RetentionDays) * 24 * time.Hour
}

// Broadcast tunes the fraud-alert sending engine.
type Broadcast struct {
	// Rates are broadcast messages per second per platform (dingtalk,
	// wechat, playground) in one process; 0 is no limit. Defaults: DingTalk
	// 20 (its OpenAPI allows 20 QPS per app and API), WeCom 20 (each group
	// robot's own 20 per minute is enforced by the adapter), playground 0.
	Rates map[string]float64 `yaml:"rates"`
	// Workers send at once per platform (default 4).
	Workers int `yaml:"workers"`
	// LeaseSeconds: a delivery claimed by a process that dies is retried
	// by another after this long (default 60).
	LeaseSeconds int `yaml:"lease_seconds"`
	// MaxAttempts before a transient failure counts as final (default 6).
	MaxAttempts int `yaml:"max_attempts"`
	// CustomerGroupDailyCap is how many alerts one WeCom customer group
	// takes a day through its owner's mass send (default 1, WeCom's limit).
	CustomerGroupDailyCap int `yaml:"customer_group_daily_cap"`
	// OwnerRemindMinutes: a customer group's owner who has not sent an
	// alert's mass send this long after it was confirmed is reminded by a
	// direct message (default 30).
	OwnerRemindMinutes int `yaml:"owner_remind_minutes"`
	// SecondApproval: an officer's confirmed broadcast waits until another
	// admin of its scope approves it on the console (default false).
	SecondApproval bool `yaml:"second_approval"`
}

type Database struct {
	Driver string `yaml:"driver"` // sqlite | mysql
	// DSN for SQLite is a file path; for MySQL it normally comes from
	// JINGMIN_DATABASE_DSN because it holds a password.
	DSN string `yaml:"dsn"`
}

type Bus struct {
	Kind string `yaml:"kind"` // memory | redis
	// Prefix namespaces the hub's Redis keys (default "jingmin:").
	Prefix string `yaml:"prefix"`
	// ClaimIdleSeconds: a message a dead consumer held is taken over by
	// another after this long; longer than any handler runs (default 60).
	ClaimIdleSeconds int `yaml:"claim_idle_seconds"`
	// DedupKeepSeconds is how long the adapters remember a platform message
	// id they published, to drop the platform's redelivery of it: longer
	// than any platform redelivers (DingTalk within a minute, WeCom within
	// seconds), and no longer, since the in-memory store holds every key
	// that long (default 3600). The database's unique ids are the final
	// guard against a redelivery later than that.
	DedupKeepSeconds int `yaml:"dedup_keep_seconds"`
	// RedisURL comes from JINGMIN_REDIS_URL: it may carry a password.
	RedisURL string `yaml:"-"`
}

// Ops is where a process serves /healthz and /readyz.
type Ops struct {
	Listen string `yaml:"listen"`
}

// Admin is the token-authenticated HTTP admin API (broadcasts), off unless
// Listen is set; the token comes from JINGMIN_ADMIN_TOKEN only.
type Admin struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"-"`
}

// Console is the web console for officers and admins (see console/), off
// unless Listen is set.
type Console struct {
	Listen string `yaml:"listen"`
	// IdleMinutes ends a session unused this long (default 30); a session
	// ends 12 hours after sign-in whatever its use.
	IdleMinutes int `yaml:"idle_minutes"`
	// Insecure drops the Secure flag from the session cookie, for a console
	// reached over plain HTTP on another host than localhost (behind a
	// TLS proxy leave it off).
	Insecure bool `yaml:"insecure_cookies"`
}

// DefaultConsoleIdleMinutes is console.idle_minutes when left out.
const DefaultConsoleIdleMinutes = 30

// Playground is the local stand-in platform. It cannot be enabled beside a
// wechat: or dingtalk: block: anyone who reaches it acts as any officer.
type Playground struct {
	Enabled bool `yaml:"enabled"`
	// Listen defaults to 127.0.0.1:8080; any non-loopback address is
	// warned about at start.
	Listen string `yaml:"listen"`
}

type Station struct {
	Code        string `yaml:"code"`
	Name        string `yaml:"name"`
	SLAMinutes  int    `yaml:"sla_minutes"`
	DutyAccount string `yaml:"duty_account"`
	Leader      string `yaml:"leader"`
}

type Officer struct {
	Code       string            `yaml:"code"`
	Station    string            `yaml:"station"`
	Name       string            `yaml:"name"`
	Roles      []string          `yaml:"roles"`
	Aliases    []string          `yaml:"aliases"`
	Identities map[string]string `yaml:"identities"`
}

type Group struct {
	Platform string   `yaml:"platform"`
	ChatID   string   `yaml:"chat_id"`
	Name     string   `yaml:"name"`
	Station  string   `yaml:"station"`
	Officer  string   `yaml:"officer"`
	Tags     []string `yaml:"tags"`
	// Kind is empty for a group the hub can post into, or "customer" for a
	// WeCom customer group (客户群) of residents on personal WeChat: the hub
	// reads it through the message archive, and every post into it needs
	// its owner's tap, so Officer (the owner) is required.
	Kind string `yaml:"kind"`
}

type Roster struct {
	Shifts    []Shift    `yaml:"shifts"`
	Overrides []Override `yaml:"overrides"`
}

// Shift days: mon..sun, or workdays / restdays (by the holiday calendar,
// make-up working days included), or daily.
type Shift struct {
	Officer string   `yaml:"officer"`
	Days    []string `yaml:"days"`
	Start   string   `yaml:"start"`
	End     string   `yaml:"end"`
	Kind    string   `yaml:"kind"` // day | night
}

type Override struct {
	Officer string `yaml:"officer"`
	Date    string `yaml:"date"`
	Start   string `yaml:"start"`
	End     string `yaml:"end"`
	Off     bool   `yaml:"off"`
}

type FAQ struct {
	Station  string   `yaml:"station"`
	Topic    string   `yaml:"topic"`
	Keywords []string `yaml:"keywords"`
	Answer   string   `yaml:"answer"`
}

type Holiday struct {
	Date string `yaml:"date"`
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
}

type holidayFile struct {
	Year int       `yaml:"year"`
	Days []Holiday `yaml:"days"`
}

// Load reads path, or the embedded example when path is empty, applies the
// environment (Env) and validates. Errors name the file, the field and the
// problem.
func Load(path string) (*Config, error) { return load(path, true) }

// LoadForTools is Load for the command-line tools that read or write the
// database (stats, parked, roster who, broadcast, sync): they build no
// platform adapter, serve nothing and dial no Redis, so the platforms'
// secrets, the admin token and the Redis URL are not required.
func LoadForTools(path string) (*Config, error) { return load(path, false) }

func load(path string, serving bool) (*Config, error) {
	var (
		data []byte
		err  error
		fsys fs.FS
		name = path
	)
	if path == "" {
		name = DefaultName
		fsys = embedded
		data, err = fs.ReadFile(embedded, "example.yaml")
	} else {
		fsys = os.DirFS(filepath.Dir(path))
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	c, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	if c.Holidays, err = loadHolidays(name, fsys, c.HolidayFiles); err != nil {
		return nil, err
	}
	if err := c.applyEnv(os.LookupEnv, serving); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates one config document; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{Source: name}
	if err := strictUnmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%s: %s", name, err)
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func strictUnmarshal(data []byte, v any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return err
	}
	// Unknown keys are reported by their place in the YAML, with the
	// nearest known key, instead of by Go type names.
	if errs := unknownKeys(&root, reflect.TypeOf(v), ""); len(errs) > 0 {
		return errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key must not be silently ignored
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return errors.New(strings.Join(te.Errors, "; "))
		}
		return err
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownKeys walks the YAML beside the type it decodes into and reports
// every mapping key that names no field, as "line N: a.b[0].key: unknown
// key (did you mean ...?)". It reads only the config types' yaml tags.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return unknownKeys(n.Content[0], t, path)
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // decodes itself
	}
	join := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("line %d: %s: unknown key", k.Line, join(k.Value))
				if near := nearest(k.Value, fields); near != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", near)
				}
				errs = append(errs, errors.New(msg))
				continue
			}
			errs = append(errs, unknownKeys(val, ft, join(k.Value))...)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, unknownKeys(n.Content[i+1], t.Elem(), join(n.Content[i].Value))...)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			errs = append(errs, unknownKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return errs
}

// yamlFields lists the keys a struct decodes, as yaml.v3 names them.
func yamlFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				yamlFields(ft, into)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

// nearest is the known key closest to key by edit distance, if close
// enough to be a likely slip.
func nearest(key string, known map[string]reflect.Type) string {
	best, bestD := "", len(key)/3+2
	for k := range known {
		if d := editDistance(key, k); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// DefaultWorkers is how many events a hub handles at once unless hub.workers
// says otherwise. A handler spends most of its time waiting for its commit.
// SQLite's writer commits whatever transactions are waiting together, so
// more events in hand make fewer, larger commits. On MySQL each handler
// holds a connection and, while it files a ticket, its station's counter
// row: more handlers there mostly wait on each other.
func DefaultWorkers(driver string) int {
	if driver == "mysql" {
		return 8
	}
	return 16
}

// HandlerWorkers is hub.workers, or the store's default when it is 0 (the
// store may come from the environment, after the file's defaults).
func (c *Config) HandlerWorkers() int {
	if c.Hub.Workers > 0 {
		return c.Hub.Workers
	}
	return DefaultWorkers(c.Database.Driver)
}

func (c *Config) defaults() {
	if c.Hub.Timezone == "" {
		c.Hub.Timezone = "Asia/Shanghai"
	}
	if c.Hub.QuestionsPerMinute == 0 {
		c.Hub.QuestionsPerMinute = 5
	}
	if c.Hub.MaxTextRunes == 0 {
		c.Hub.MaxTextRunes = 4000
	}
	if c.Hub.SenderWorkers == 0 {
		c.Hub.SenderWorkers = 32
	}
	if c.Hub.TimerSeconds == 0 {
		c.Hub.TimerSeconds = 15
	}
	if c.Hub.EscalationDigestMinutes == 0 {
		c.Hub.EscalationDigestMinutes = 5
	}
	if c.Hub.UrgentKeywords == nil {
		c.Hub.UrgentKeywords = []string{"紧急", "急"}
	}
	if c.Hub.DutyOnHours == 0 {
		c.Hub.DutyOnHours = 4
	}
	if c.Hub.RetentionDays == nil {
		days := DefaultRetentionDays
		c.Hub.RetentionDays = &days
	}
	if c.Broadcast.Rates == nil {
		c.Broadcast.Rates = map[string]float64{}
	}
	for p, r := range map[string]float64{"dingtalk": 20, "wechat": 20, "playground": 0} {
		if _, ok := c.Broadcast.Rates[p]; !ok {
			c.Broadcast.Rates[p] = r
		}
	}
	if c.Broadcast.Workers == 0 {
		c.Broadcast.Workers = 4
	}
	if c.Broadcast.LeaseSeconds == 0 {
		c.Broadcast.LeaseSeconds = 60
	}
	if c.Broadcast.MaxAttempts == 0 {
		c.Broadcast.MaxAttempts = 6
	}
	if c.Database.Driver == "" {
		c.Database.Driver = "sqlite"
	}
	if c.Bus.Kind == "" {
		c.Bus.Kind = "memory"
	}
	if c.Bus.Prefix == "" {
		c.Bus.Prefix = "jingmin:"
	}
	if c.Bus.ClaimIdleSeconds == 0 {
		c.Bus.ClaimIdleSeconds = 60
	}
	if c.Bus.DedupKeepSeconds == 0 {
		c.Bus.DedupKeepSeconds = 3600 // bot.DefaultKeep
	}
	if c.Playground.Listen == "" {
		c.Playground.Listen = "127.0.0.1:8080"
	}
	if c.WeChat != nil {
		w := c.WeChat.WithDefaults()
		c.WeChat = &w
	}
	if c.WeComArchive != nil {
		a := c.WeComArchive.WithDefaults()
		c.WeComArchive = &a
	}
}

// Env variables read by Load; secrets belong here, not in YAML.
const (
	EnvDatabaseDriver = "JINGMIN_DATABASE_DRIVER"
	EnvDatabaseDSN    = "JINGMIN_DATABASE_DSN"
	EnvPlaygroundAddr = "JINGMIN_PLAYGROUND_LISTEN"
	EnvBus            = "JINGMIN_BUS"
	EnvRedisURL       = "JINGMIN_REDIS_URL"
	EnvOpsListen      = "JINGMIN_OPS_LISTEN"
	EnvAdminListen    = "JINGMIN_ADMIN_LISTEN"
	EnvAdminToken     = "JINGMIN_ADMIN_TOKEN"
	EnvConsoleListen  = "JINGMIN_CONSOLE_LISTEN"
)

// applyEnv reads the environment over the file. serving: also require what
// a serving process needs from it (secrets, the Redis URL).
func (c *Config) applyEnv(lookup func(string) (string, bool), serving bool) error {
	for _, env := range []struct {
		name string
		into *string
	}{
		{EnvDatabaseDriver, &c.Database.Driver}, {EnvDatabaseDSN, &c.Database.DSN},
		{EnvPlaygroundAddr, &c.Playground.Listen}, {EnvBus, &c.Bus.Kind}, {EnvRedisURL, &c.Bus.RedisURL},
		{EnvOpsListen, &c.Ops.Listen}, {EnvAdminListen, &c.Admin.Listen}, {EnvAdminToken, &c.Admin.Token},
		{EnvConsoleListen, &c.Console.Listen},
	} {
		if v, ok := lookup(env.name); ok && v != "" {
			*env.into = v
		}
	}
	if c.DingTalk != nil {
		c.DingTalk.ApplyEnv(lookup)
		// The block is checked now; its secret only by the adapter, in the
		// one process that holds the DingTalk connection: the others (workers,
		// the WeCom adapter, the tools) are not given it.
		v := *c.DingTalk
		if v.AppSecret == "" {
			v.AppSecret = "set by the environment of the DingTalk adapter"
		}
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s: %w", c.Source, err)
		}
	}
	if c.Database.Driver != "sqlite" && c.Database.Driver != "mysql" {
		return fmt.Errorf("%s: database.driver: %q, want sqlite or mysql", c.Source, c.Database.Driver)
	}
	if c.Bus.Kind != "memory" && c.Bus.Kind != "redis" {
		return fmt.Errorf("%s: bus.kind: %q, want memory or redis", c.Source, c.Bus.Kind)
	}
	if c.Bus.DedupKeepSeconds < 60 {
		return fmt.Errorf("%s: bus.dedup_keep_seconds: %d, want at least 60 (DingTalk redelivers within a minute)", c.Source, c.Bus.DedupKeepSeconds)
	}
	if !serving {
		return nil
	}
	// Without the shared token the admin API takes the per-account tokens
	// made in the console only; the shared one, deprecated, still works
	// when set, and must then be beyond guessing.
	if c.Admin.Listen != "" && c.Admin.Token != "" {
		if bits := TokenBits(c.Admin.Token); bits < MinTokenBits {
			return fmt.Errorf("%s: admin.listen is set: %s must carry at least %d bits of entropy (this one about %.0f): "+
				"generate one with `openssl rand -base64 32` or `head -c 32 /dev/urandom | base64`", c.Source, EnvAdminToken, MinTokenBits, bits)
		}
	}
	if c.Bus.Kind == "redis" && c.Bus.RedisURL == "" {
		return fmt.Errorf("%s: bus.kind: redis needs %s (redis://host:6379/0)", c.Source, EnvRedisURL)
	}
	return nil
}

// MinTokenBits is the least entropy the admin API's token may carry: the
// token is all that stands between the network and posting into every
// group, so it must be beyond guessing, not merely long.
const MinTokenBits = 128

// TokenBits estimates the entropy of a token as its length times log2 of
// the alphabet its characters are drawn from: 16 when it is all hex digits,
// else the sum of the classes it uses (26 lower case, 26 upper case, 10
// digits, 2 for "-" and "_" or "+" and "/", 32 for other ASCII
// punctuation and space; 128 for anything beyond ASCII). It is an upper
// bound for a random token and flatters a chosen one, so repetition counts
// once: a token made of one block repeated counts as the block, and one
// whose most frequent character makes up over a quarter of it counts by
// its distinct characters alone. 32 hex digits or 22 base64 characters
// pass.
func TokenBits(token string) float64 {
	if token == "" {
		return 0
	}
	rs := []rune(token)
	for p := 1; p <= len(rs)/2; p++ {
		if len(rs)%p == 0 && slices.Equal(rs[p:], rs[:len(rs)-p]) {
			rs = rs[:p]
			break
		}
	}
	token = string(rs)
	var lower, upper, digit, b64, punct, other, hexOnly = false, false, false, false, false, false, true
	counts := map[rune]int{}
	n := 0
	for _, r := range token {
		n++
		counts[r]++
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case r == '-' || r == '_' || r == '+' || r == '/' || r == '=':
			b64 = true
		case r < 0x80:
			punct = true
		default:
			other = true
		}
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			hexOnly = false
		}
	}
	alphabet := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {b64, 2}, {punct, 32}, {other, 128}} {
		if c.used {
			alphabet += c.size
		}
	}
	if hexOnly {
		alphabet = 16
	}
	most := 0
	for _, k := range counts {
		most = max(most, k)
	}
	if most*4 > n {
		n = len(counts)
	}
	return float64(n) * math.Log2(float64(alphabet))
}

var (
	dateRe  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	clockRe = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
	dayRe   = regexp.MustCompile(`^(mon|tue|wed|thu|fri|sat|sun|workdays|restdays|daily)$`)
	roles   = map[string]bool{"officer": true, "auxiliary": true, "duty_officer": true, "leader": true, "admin": true, "district_admin": true, "duty_account": true}
	kinds   = map[string]bool{"day": true, "night": true}
)

// Validate checks references and values; the error names the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Database.Driver != "sqlite" && c.Database.Driver != "mysql" {
		bad("database.driver", "%q, want sqlite or mysql", c.Database.Driver)
	}
	if c.Bus.Kind != "memory" && c.Bus.Kind != "redis" {
		bad("bus.kind", "%q, want memory or redis", c.Bus.Kind)
	}
	if c.Hub.QuestionsPerMinute < 0 || c.Hub.MaxTextRunes < 100 || c.Hub.Workers < 0 || c.Hub.SenderWorkers < 1 || c.Hub.TimerSeconds < 1 {
		bad("hub", "questions_per_minute must be ≥ 0, max_text_runes ≥ 100, workers ≥ 0 (0: by store), sender_workers and timer_seconds ≥ 1")
	}
	if c.Hub.EscalationDigestMinutes < 1 || c.Hub.EscalationDigestMinutes > 24*60 {
		bad("hub.escalation_digest_minutes", "%d, want 1 to 1440 minutes", c.Hub.EscalationDigestMinutes)
	}
	for platform, n := range c.Budget.MonthlyCalls {
		if (platform != "dingtalk" && platform != "wechat") || n < 0 {
			bad("budget.monthly_calls."+platform, "%d: want a platform (dingtalk, wechat) and calls ≥ 0", n)
		}
	}
	if c.Hub.DutyOnHours < 1 || c.Hub.DutyOnHours > 24 {
		bad("hub.duty_on_hours", "%d, want 1 to 24 hours", c.Hub.DutyOnHours)
	}
	if c.Hub.AuditRetentionDays != nil && *c.Hub.AuditRetentionDays != 0 && (*c.Hub.AuditRetentionDays < MinAuditRetentionDays || *c.Hub.AuditRetentionDays > 36500) {
		bad("hub.audit_retention_days", "must be a number of days from %d to 36500, or 0 to keep the audit trail forever, got %d", MinAuditRetentionDays, *c.Hub.AuditRetentionDays)
	}
	if c.Console.IdleMinutes < 0 || c.Console.IdleMinutes > 720 {
		bad("console.idle_minutes", "must be a number of minutes from 1 to 720 (0: the default, 30), got %d", c.Console.IdleMinutes)
	}
	if c.Hub.RetentionDays != nil && (*c.Hub.RetentionDays < 0 || *c.Hub.RetentionDays > 36500) {
		bad("hub.retention_days", "must be a number of days from 1 to 36500, or 0 to keep residents' data forever, got %d", *c.Hub.RetentionDays)
	}
	for p, r := range c.Broadcast.Rates {
		if !knownPlatform(p) {
			bad("broadcast.rates", "unknown platform %q (dingtalk, wechat, playground)", p)
		}
		if r < 0 {
			bad("broadcast.rates."+p, "must be ≥ 0 messages per second (0: no limit), got %v", r)
		}
	}
	if c.Playground.Enabled && (c.WeChat != nil || c.DingTalk != nil || c.WeComArchive != nil) {
		// Whoever reaches the playground speaks as any officer or admin;
		// beside a real platform that is a way to post into real groups.
		bad("playground.enabled", "the playground lets anyone who reaches it act as any officer or admin, so it cannot run beside a real platform (%s): set playground.enabled: false", strings.Join(c.realPlatforms(), " and "))
	}
	if c.Broadcast.Workers < 1 || c.Broadcast.LeaseSeconds < 10 || c.Broadcast.MaxAttempts < 1 {
		bad("broadcast", "workers and max_attempts must be ≥ 1 and lease_seconds ≥ 10")
	}
	if len(c.Stations) == 0 {
		bad("stations", "at least one station is needed")
	}
	stations := map[string]bool{}
	for i, s := range c.Stations {
		f := fmt.Sprintf("stations[%d]", i)
		if s.Code == "" || s.Name == "" {
			bad(f, "code and name are required")
		}
		if stations[s.Code] {
			bad(f+".code", "%q is used twice", s.Code)
		}
		stations[s.Code] = true
		if s.SLAMinutes <= 0 {
			bad(f+".sla_minutes", "must be a positive number of minutes, got %d", s.SLAMinutes)
		}
	}
	officers := map[string]Officer{}
	if c.Hub.ConsultationStation != "" && !stations[c.Hub.ConsultationStation] {
		bad("hub.consultation_station", "unknown station %q", c.Hub.ConsultationStation)
	}
	for i, o := range c.Officers {
		f := fmt.Sprintf("officers[%d]", i)
		if o.Code == "" || o.Name == "" {
			bad(f, "code and name are required")
		}
		if _, dup := officers[o.Code]; dup {
			bad(f+".code", "%q is used twice", o.Code)
		}
		officers[o.Code] = o
		if !stations[o.Station] {
			bad(f+".station", "unknown station %q", o.Station)
		}
		if len(o.Roles) == 0 {
			bad(f+".roles", "at least one role is needed")
		}
		for _, r := range o.Roles {
			if !roles[r] {
				bad(f+".roles", "unknown role %q (officer, auxiliary, duty_officer, leader, admin, district_admin, duty_account)", r)
			}
		}
		for p := range o.Identities {
			if !knownPlatform(p) {
				bad(f+".identities", "unknown platform %q", p)
			}
		}
	}
	for i, s := range c.Stations {
		f := fmt.Sprintf("stations[%d]", i)
		if o, ok := officers[s.DutyAccount]; !ok || o.Station != s.Code {
			bad(f+".duty_account", "%q is not an officer of station %s", s.DutyAccount, s.Code)
		}
		if s.Leader != "" {
			if o, ok := officers[s.Leader]; !ok || o.Station != s.Code {
				bad(f+".leader", "%q is not an officer of station %s", s.Leader, s.Code)
			}
		}
	}
	chats := map[string]bool{}
	for i, g := range c.Groups {
		f := fmt.Sprintf("groups[%d]", i)
		if !knownPlatform(g.Platform) {
			bad(f+".platform", "unknown platform %q (dingtalk, wechat, playground)", g.Platform)
		}
		if g.ChatID == "" || g.Name == "" {
			bad(f, "chat_id and name are required")
		}
		if chats[g.Platform+"/"+g.ChatID] {
			bad(f+".chat_id", "%q is listed twice", g.ChatID)
		}
		chats[g.Platform+"/"+g.ChatID] = true
		if !stations[g.Station] {
			bad(f+".station", "unknown station %q", g.Station)
		}
		if g.Officer != "" {
			if _, ok := officers[g.Officer]; !ok {
				bad(f+".officer", "unknown officer %q", g.Officer)
			}
		}
		switch g.Kind {
		case "":
		case store.GroupKindCustomer:
			if g.Platform != string(bot.WeChat) {
				bad(f+".kind", "customer groups are WeCom groups: platform must be wechat, not %q", g.Platform)
			}
			if g.Officer == "" {
				bad(f+".officer", "a customer group needs its owner: the officer who owns it in WeCom")
			}
		default:
			bad(f+".kind", "unknown kind %q (empty, or customer for a WeCom customer group)", g.Kind)
		}
	}
	for i, s := range c.Roster.Shifts {
		f := fmt.Sprintf("roster.shifts[%d]", i)
		if _, ok := officers[s.Officer]; !ok {
			bad(f+".officer", "unknown officer %q", s.Officer)
		}
		if len(s.Days) == 0 {
			bad(f+".days", "list the days (mon..sun, workdays, restdays or daily)")
		}
		for _, d := range s.Days {
			if !dayRe.MatchString(d) {
				bad(f+".days", "unknown day %q (mon..sun, workdays, restdays, daily)", d)
			}
		}
		if !clockRe.MatchString(s.Start) || !clockRe.MatchString(s.End) || s.Start == s.End {
			bad(f, "start and end must be different HH:MM times, got %q-%q", s.Start, s.End)
		}
		if !kinds[s.Kind] {
			bad(f+".kind", "%q, want day or night", s.Kind)
		}
	}
	for i, o := range c.Roster.Overrides {
		f := fmt.Sprintf("roster.overrides[%d]", i)
		if _, ok := officers[o.Officer]; !ok {
			bad(f+".officer", "unknown officer %q", o.Officer)
		}
		if !validDate(o.Date) {
			bad(f+".date", "%q is not a date (YYYY-MM-DD)", o.Date)
		}
		if !o.Off && (!clockRe.MatchString(o.Start) || !clockRe.MatchString(o.End) || o.Start == o.End) {
			bad(f, "an override is either off: true or has start and end HH:MM")
		}
	}
	for i, q := range c.FAQ {
		f := fmt.Sprintf("faq[%d]", i)
		if q.Topic == "" || q.Answer == "" || len(q.Keywords) == 0 {
			bad(f, "topic, keywords and answer are required")
		}
		if q.Station != "" && !stations[q.Station] {
			bad(f+".station", "unknown station %q", q.Station)
		}
	}
	if c.WeChat != nil {
		if err := c.WeChat.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.WeComArchive != nil {
		if err := c.WeComArchive.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for k := range c.Templates {
		if _, ok := DefaultTemplates[k]; !ok {
			bad("templates."+k, "unknown template")
		}
	}
	return errors.Join(errs...)
}

// realPlatforms names the configured platform blocks, for messages.
func (c *Config) realPlatforms() []string {
	var out []string
	if c.WeChat != nil {
		out = append(out, "the wechat: block")
	}
	if c.DingTalk != nil {
		out = append(out, "the dingtalk: block")
	}
	if c.WeComArchive != nil {
		out = append(out, "the wecom_archive: block")
	}
	return out
}

func knownPlatform(p string) bool { return p == "dingtalk" || p == "wechat" || p == "playground" }

// SwapsNeedApproval is hub.swap_approval, true when left out.
func (h Hub) SwapsNeedApproval() bool { return h.SwapApproval == nil || *h.SwapApproval }
