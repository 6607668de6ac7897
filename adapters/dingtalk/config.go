package dingtalk

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config is one DingTalk enterprise-internal robot: the app it belongs to and
// where its endpoints are. It is read from the deployment's YAML, except the
// app secret, which comes from the environment so that it never sits in a
// file kept in git.
type Config struct {
	// AppKey is the app's key (the stream protocol calls it clientId).
	AppKey string `yaml:"app_key"`
	// RobotCode names the robot in OpenAPI sends. For an enterprise-internal
	// robot it equals the AppKey, which is the default.
	RobotCode string `yaml:"robot_code"`
	// AppSecret is never read from YAML: ApplyEnv fills it from
	// JINGMIN_DINGTALK_APP_SECRET.
	AppSecret string `yaml:"-"`
	// OpenAPIHost is where token and send calls go; private deployments
	// (专属钉钉), proxies and tests change it. Default https://api.dingtalk.com.
	OpenAPIHost string `yaml:"openapi_host"`
	// StreamHost is where the stream connection is opened
	// (POST {host}/v1.0/gateway/connections/open). Default: OpenAPIHost.
	StreamHost string `yaml:"stream_host"`
	// QPS bounds calls per second to each OpenAPI endpoint for this app
	// (DingTalk allows 20 per app and API). Default 20.
	QPS int `yaml:"qps"`
	// CardTemplateID is the interactive card template officers' ticket
	// cards use (built in DingTalk's card builder from
	// docs/dingtalk-card-template.md); CardTemplates overrides it per
	// station code. Without either, officers get markdown messages.
	CardTemplateID string            `yaml:"card_template_id"`
	CardTemplates  map[string]string `yaml:"card_templates"`
}

// CardsOn reports whether any station has a card template.
func (c Config) CardsOn() bool { return c.CardTemplateID != "" || len(c.CardTemplates) > 0 }

// cardTemplate is the template a station's cards use ("" for none).
func (c Config) cardTemplate(station string) string {
	if t, ok := c.CardTemplates[station]; ok && t != "" {
		return t
	}
	return c.CardTemplateID
}

// Environment variables read by ApplyEnv.
const (
	EnvAppSecret = "JINGMIN_DINGTALK_APP_SECRET"
)

// DefaultOpenAPIHost is DingTalk's public OpenAPI and stream gateway.
const DefaultOpenAPIHost = "https://api.dingtalk.com"

// DefaultQPS is DingTalk's documented per-app, per-API limit.
const DefaultQPS = 20

// ApplyEnv takes the secrets from the environment (lookup is os.LookupEnv in
// production); a value set in the environment wins.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup(EnvAppSecret); ok && strings.TrimSpace(v) != "" {
		c.AppSecret = strings.TrimSpace(v)
	}
}

// withDefaults returns c with empty fields filled in.
func (c Config) withDefaults() Config {
	c.AppKey = strings.TrimSpace(c.AppKey)
	c.RobotCode = strings.TrimSpace(c.RobotCode)
	if c.RobotCode == "" {
		c.RobotCode = c.AppKey
	}
	if c.OpenAPIHost == "" {
		c.OpenAPIHost = DefaultOpenAPIHost
	}
	c.OpenAPIHost = strings.TrimRight(c.OpenAPIHost, "/")
	if c.StreamHost == "" {
		c.StreamHost = c.OpenAPIHost
	}
	c.StreamHost = strings.TrimRight(c.StreamHost, "/")
	if c.QPS == 0 {
		c.QPS = DefaultQPS
	}
	return c
}

// Validate reports every problem with the config, each naming its field and
// what to do about it. Defaults are applied first, so a zero QPS or an empty
// host is not a problem.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("dingtalk.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.AppKey == "" {
		bad("app_key", "empty: copy the app's AppKey from the DingTalk developer console")
	}
	if c.AppSecret == "" {
		bad("app_secret", "empty: set %s in the environment (never in YAML)", EnvAppSecret)
	}
	for _, h := range []struct{ field, host string }{{"openapi_host", c.OpenAPIHost}, {"stream_host", c.StreamHost}} {
		field, host := h.field, h.host
		u, err := url.Parse(host)
		switch {
		case err != nil:
			bad(field, "%q is not a URL: %v", host, err)
		case u.Scheme != "https" && u.Scheme != "http":
			bad(field, "%q: want an http:// or https:// base URL", host)
		case u.Host == "":
			bad(field, "%q has no host", host)
		case u.RawQuery != "" || u.Fragment != "":
			bad(field, "%q: a base URL takes no query or fragment", host)
		}
	}
	if c.QPS < 1 || c.QPS > 1000 {
		bad("qps", "%d: want 1 to 1000 calls per second per API", c.QPS)
	}
	return errors.Join(errs...)
}
