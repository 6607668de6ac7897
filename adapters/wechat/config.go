package wechat

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the YAML side of the WeChat adapter. It names the accounts and
// where things are; every secret (tokens, EncodingAESKeys, the app secret,
// webhook keys) comes from the environment, so a config file can be kept in
// git. The *Env fields say which variable holds which secret; they default to
// the Env* names below, and differ only when one host runs several
// deployments.
type Config struct {
	// Listen is where the callback server binds, e.g. "0.0.0.0:8090".
	Listen string `yaml:"listen"`
	// CorpID is the WeCom corp id (企业ID): the receive id of the app
	// callbacks and the owner of the access tokens.
	CorpID string `yaml:"corp_id"`
	// APIBase is WeCom's API host. Private clouds and proxies change it; tests
	// point it at a stand-in server.
	APIBase string `yaml:"api_base"`
	// OAAPIBase is the Official Account API host.
	OAAPIBase string `yaml:"oa_api_base"`

	Robot           RobotConfig           `yaml:"robot"`
	App             AppConfig             `yaml:"app"`
	OfficialAccount OfficialAccountConfig `yaml:"official_account"`

	// WebhookPerMinute caps messages per group webhook robot; WeCom allows
	// 20 a minute and answers 45009 past that.
	WebhookPerMinute int `yaml:"webhook_per_minute"`
	// WebhookKeysEnv and WebhookKeysFileEnv name where the group webhook
	// keys are: inline "chatid=key" pairs, or a file of such lines (a mounted
	// secret; thousands of groups do not fit in one variable).
	WebhookKeysEnv     string `yaml:"webhook_keys_env"`
	WebhookKeysFileEnv string `yaml:"webhook_keys_file_env"`

	// ReplayWindow is how far a callback's timestamp may be from now; a nonce
	// is remembered for twice as long. WeCom's own servers stay well inside
	// five minutes.
	ReplayWindow time.Duration `yaml:"replay_window"`
	// RedisPrefix starts every key the adapter keeps in Redis (nonces, access
	// tokens), so deployments sharing a Redis do not collide.
	RedisPrefix string `yaml:"redis_prefix"`
}

// RobotConfig is the WeCom intelligent robot (智能机器人) that sits in the
// community groups and receives residents' @-messages.
type RobotConfig struct {
	// Names are the robot's display names in groups ("太平警务"); an @ of one
	// of them is the @ of the bot. When empty, the leading @ of a group
	// message is taken for the robot, as WeCom only forwards messages that @ it.
	Names []string `yaml:"names"`
	// ReceiveID is the receive id inside the robot's ciphertext: "" for a
	// robot created inside the corp.
	ReceiveID string `yaml:"receive_id"`
	TokenEnv  string `yaml:"token_env"`
	AESKeyEnv string `yaml:"aes_key_env"`
}

// AppConfig is the self-built app (自建应用) officers talk to on their phones.
type AppConfig struct {
	// AgentID is the app's AgentId; empty turns the app off.
	AgentID   string `yaml:"agent_id"`
	SecretEnv string `yaml:"secret_env"`
	TokenEnv  string `yaml:"token_env"`
	AESKeyEnv string `yaml:"aes_key_env"`
	// Cards sends officers tap-to-act template cards instead of markdown
	// messages (WeCom needs nothing else for them).
	Cards bool `yaml:"cards"`
}

// OfficialAccountConfig is the station's Official Account (公众号) where
// residents ask one to one.
type OfficialAccountConfig struct {
	// AppID is the account's AppID; empty turns it off.
	AppID     string `yaml:"app_id"`
	SecretEnv string `yaml:"secret_env"`
	TokenEnv  string `yaml:"token_env"`
	AESKeyEnv string `yaml:"aes_key_env"`
}

// Environment variables read for secrets, unless the config names others.
const (
	EnvRobotToken      = "JINGMIN_WECHAT_ROBOT_TOKEN"
	EnvRobotAESKey     = "JINGMIN_WECHAT_ROBOT_AES_KEY"
	EnvAppSecret       = "JINGMIN_WECHAT_APP_SECRET"
	EnvAppToken        = "JINGMIN_WECHAT_APP_TOKEN"
	EnvAppAESKey       = "JINGMIN_WECHAT_APP_AES_KEY"
	EnvOASecret        = "JINGMIN_WECHAT_OA_SECRET"
	EnvOAToken         = "JINGMIN_WECHAT_OA_TOKEN"
	EnvOAAESKey        = "JINGMIN_WECHAT_OA_AES_KEY"
	EnvWebhookKeys     = "JINGMIN_WECHAT_WEBHOOK_KEYS"
	EnvWebhookKeysFile = "JINGMIN_WECHAT_WEBHOOK_KEYS_FILE"
)

// Defaults.
const (
	DefaultAPIBase          = "https://qyapi.weixin.qq.com"
	DefaultOAAPIBase        = "https://api.weixin.qq.com"
	DefaultWebhookPerMinute = 20
	DefaultReplayWindow     = 5 * time.Minute
	DefaultRedisPrefix      = "jingmin:wechat:"
	DefaultListen           = "127.0.0.1:8090"
)

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, DefaultListen)
	def(&c.APIBase, DefaultAPIBase)
	def(&c.OAAPIBase, DefaultOAAPIBase)
	def(&c.RedisPrefix, DefaultRedisPrefix)
	def(&c.WebhookKeysEnv, EnvWebhookKeys)
	def(&c.WebhookKeysFileEnv, EnvWebhookKeysFile)
	def(&c.Robot.TokenEnv, EnvRobotToken)
	def(&c.Robot.AESKeyEnv, EnvRobotAESKey)
	def(&c.App.SecretEnv, EnvAppSecret)
	def(&c.App.TokenEnv, EnvAppToken)
	def(&c.App.AESKeyEnv, EnvAppAESKey)
	def(&c.OfficialAccount.SecretEnv, EnvOASecret)
	def(&c.OfficialAccount.TokenEnv, EnvOAToken)
	def(&c.OfficialAccount.AESKeyEnv, EnvOAAESKey)
	if c.WebhookPerMinute == 0 {
		c.WebhookPerMinute = DefaultWebhookPerMinute
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	c.OAAPIBase = strings.TrimRight(c.OAAPIBase, "/")
	return c
}

// Validate reports every problem of a config (after WithDefaults), each
// naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("wechat.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	}
	for field, base := range map[string]string{"api_base": c.APIBase, "oa_api_base": c.OAAPIBase} {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(field, "%q is not an http(s) URL", base)
		}
	}
	if c.CorpID == "" && c.App.AgentID != "" {
		bad("corp_id", "is required for the app (the corp owns its tokens and callbacks)")
	}
	if c.App.AgentID != "" {
		if _, err := strconv.ParseInt(c.App.AgentID, 10, 64); err != nil {
			bad("app.agent_id", "%q is not a number", c.App.AgentID)
		}
	}
	if c.WebhookPerMinute < 1 || c.WebhookPerMinute > 600 {
		bad("webhook_per_minute", "%d, want 1..600 (WeCom allows 20)", c.WebhookPerMinute)
	}
	if c.ReplayWindow < 30*time.Second || c.ReplayWindow > time.Hour {
		bad("replay_window", "%s, want between 30s and 1h", c.ReplayWindow)
	}
	for i, n := range c.Robot.Names {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, " \u2005@") {
			bad(fmt.Sprintf("robot.names[%d]", i), "%q: a name has no spaces and no @", n)
		}
	}
	if c.RedisPrefix == "" {
		bad("redis_prefix", "must not be empty")
	}
	return errors.Join(errs...)
}

// Secrets are what the environment holds for the adapter.
type Secrets struct {
	RobotToken, RobotAESKey        string
	AppSecret, AppToken, AppAESKey string
	OASecret, OAToken, OAAESKey    string
	// WebhookKeys maps a group's chat id to its webhook robot key.
	WebhookKeys map[string]string
}

// LoadSecrets reads the secrets c names through lookup (os.LookupEnv in
// production). Which parts are on follows from what is set: the robot when
// its token is, the app and the Official Account when their ids are; a part
// that is on with a secret missing is an error naming the variable.
func (c Config) LoadSecrets(lookup func(string) (string, bool)) (Secrets, error) {
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	s := Secrets{
		RobotToken: get(c.Robot.TokenEnv), RobotAESKey: get(c.Robot.AESKeyEnv),
		AppSecret: get(c.App.SecretEnv), AppToken: get(c.App.TokenEnv), AppAESKey: get(c.App.AESKeyEnv),
		OASecret: get(c.OfficialAccount.SecretEnv), OAToken: get(c.OfficialAccount.TokenEnv), OAAESKey: get(c.OfficialAccount.AESKeyEnv),
		WebhookKeys: map[string]string{},
	}
	var errs []error
	need := func(part, env, v string, aes bool) {
		switch {
		case v == "":
			errs = append(errs, fmt.Errorf("wechat %s: set %s", part, env))
		case aes && len(v) != 43:
			errs = append(errs, fmt.Errorf("wechat %s: %s must be the 43-character EncodingAESKey", part, env))
		}
	}
	if s.RobotToken != "" || s.RobotAESKey != "" {
		need("robot", c.Robot.TokenEnv, s.RobotToken, false)
		need("robot", c.Robot.AESKeyEnv, s.RobotAESKey, true)
	}
	if c.App.AgentID != "" {
		need("app", c.App.SecretEnv, s.AppSecret, false)
		need("app", c.App.TokenEnv, s.AppToken, false)
		need("app", c.App.AESKeyEnv, s.AppAESKey, true)
	}
	if c.OfficialAccount.AppID != "" {
		need("official account", c.OfficialAccount.SecretEnv, s.OASecret, false)
		need("official account", c.OfficialAccount.TokenEnv, s.OAToken, false)
		if s.OAAESKey != "" {
			need("official account", c.OfficialAccount.AESKeyEnv, s.OAAESKey, true)
		}
	}
	if v := get(c.WebhookKeysEnv); v != "" {
		if err := parseWebhookKeys(c.WebhookKeysEnv, v, s.WebhookKeys); err != nil {
			errs = append(errs, err)
		}
	}
	if path := get(c.WebhookKeysFileEnv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("wechat webhook keys: read the file named by %s: %w", c.WebhookKeysFileEnv, err))
		} else if err := parseWebhookKeys(path, string(b), s.WebhookKeys); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// parseWebhookKeys reads "chatid=key" pairs separated by newlines, commas or
// semicolons; "#" starts a comment line. Errors name the line, never the key.
func parseWebhookKeys(source, text string, into map[string]string) error {
	sc := bufio.NewScanner(strings.NewReader(strings.NewReplacer(",", "\n", ";", "\n").Replace(text)))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		chat, key, ok := strings.Cut(l, "=")
		chat, key = strings.TrimSpace(chat), strings.TrimSpace(key)
		if !ok || chat == "" || key == "" {
			return fmt.Errorf("wechat webhook keys in %s: entry %d is not chatid=key", source, line)
		}
		into[chat] = key
	}
	return nil
}
