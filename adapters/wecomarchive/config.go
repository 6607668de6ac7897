package wecomarchive

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the YAML side of the conversation-archive reader
// (`wecom_archive:`). Secrets (the archive secret, the proxy password, the
// private keys) come from the environment or mounted files only.
type Config struct {
	// CorpID is the WeCom corp id (企业ID).
	CorpID string `yaml:"corp_id"`
	// Library is the path of libWeWorkFinanceSdk_C.so.
	Library string `yaml:"library"`
	// SecretEnv names the variable holding the archive secret (会话内容存档
	// Secret); default JINGMIN_WECOM_ARCHIVE_SECRET.
	SecretEnv string `yaml:"secret_env"`
	// Proxy is the HTTP proxy the library reaches WeCom through
	// ("http://10.0.0.1:3128"); empty: direct. Tests point it at the
	// stand-in.
	Proxy string `yaml:"proxy"`
	// ProxyPasswordEnv names the variable holding the proxy's "user:password".
	ProxyPasswordEnv string `yaml:"proxy_password_env"`
	// Keys are the corp's private keys by public key version: the archive
	// encrypts each message's key to the public key current when it was
	// archived, so every version still within the 5 days must be here.
	Keys []KeyConfig `yaml:"keys"`
	// Every is how often the reader pulls besides msgaudit_notify (15s).
	Every time.Duration `yaml:"every"`
	// Limit is how many messages one pull asks for (at most 1,000).
	Limit int `yaml:"limit"`
	// Timeout bounds one pull, in whole seconds (10s).
	Timeout time.Duration `yaml:"timeout"`
	// AlertAfter is how long pull errors may last before the admins are
	// told (30m): the archive keeps about 5 days.
	AlertAfter time.Duration `yaml:"alert_after"`
	// Toolbar is the chat-toolbar page officers send prepared messages from.
	Toolbar ToolbarConfig `yaml:"toolbar"`
	// APIBase is WeCom's API host, for residents' names (tests: the stand-in).
	APIBase string `yaml:"api_base"`
	// ContactsSecretEnv names the variable holding the secret of an app with
	// customer-contact permission: with it, residents' WeChat names are
	// looked up (externalcontact/get), so officers read names and an answer
	// that @s the resident is recognised. Unset: ids only.
	ContactsSecretEnv string `yaml:"contacts_secret_env"`
}

// KeyConfig is one private key: PEM (PKCS#1 or PKCS#8) in the variable Env
// or the mounted file File.
type KeyConfig struct {
	Version int    `yaml:"version"`
	Env     string `yaml:"env"`
	File    string `yaml:"file"`
}

// EnvSecret is the default variable of the archive secret.
const EnvSecret = "JINGMIN_WECOM_ARCHIVE_SECRET"

// WithDefaults fills what the config left out.
func (c Config) WithDefaults() Config {
	if c.SecretEnv == "" {
		c.SecretEnv = EnvSecret
	}
	if c.Every <= 0 {
		c.Every = 15 * time.Second
	}
	if c.Limit <= 0 || c.Limit > 1000 {
		c.Limit = 1000
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.AlertAfter <= 0 {
		c.AlertAfter = 30 * time.Minute
	}
	if c.Toolbar.SecretEnv == "" {
		c.Toolbar.SecretEnv = EnvToolbarSecret
	}
	return c
}

// Validate reports what makes the config unusable.
func (c Config) Validate() error {
	switch {
	case c.CorpID == "":
		return errors.New("wecom_archive.corp_id is required")
	case c.Library == "":
		return errors.New("wecom_archive.library is required: the path of libWeWorkFinanceSdk_C.so")
	case len(c.Keys) == 0:
		return errors.New("wecom_archive.keys: at least one private key (version and env or file) is required")
	}
	if c.Toolbar.Listen != "" && (c.Toolbar.AgentID == "" || c.Toolbar.URL == "") {
		return errors.New("wecom_archive.toolbar: agent_id and url are required with listen (the app the page belongs to, and the page's public address)")
	}
	seen := map[int]bool{}
	for i, k := range c.Keys {
		if (k.Env == "") == (k.File == "") {
			return fmt.Errorf("wecom_archive.keys[%d]: set exactly one of env and file", i)
		}
		if seen[k.Version] {
			return fmt.Errorf("wecom_archive.keys[%d]: version %d listed twice", i, k.Version)
		}
		seen[k.Version] = true
	}
	return nil
}

// Secrets are what the reader must not log.
type Secrets struct {
	Secret         string
	ProxyPassword  string
	ContactsSecret string
	Keys           map[int]*rsa.PrivateKey
}

// LoadSecrets reads the secret and the keys through lookup (os.LookupEnv
// in production) and the files named.
func (c Config) LoadSecrets(lookup func(string) (string, bool)) (Secrets, error) {
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	s := Secrets{Secret: get(c.SecretEnv), Keys: map[int]*rsa.PrivateKey{}}
	if s.Secret == "" {
		return s, fmt.Errorf("wecom_archive: the archive secret is not set (%s)", c.SecretEnv)
	}
	if c.ProxyPasswordEnv != "" {
		s.ProxyPassword = get(c.ProxyPasswordEnv)
	}
	if c.ContactsSecretEnv != "" {
		if s.ContactsSecret = get(c.ContactsSecretEnv); s.ContactsSecret == "" {
			return s, fmt.Errorf("wecom_archive: contacts_secret_env names %s, which is not set", c.ContactsSecretEnv)
		}
	}
	for _, k := range c.Keys {
		var raw []byte
		where := "$" + k.Env
		if k.File != "" {
			where = k.File
			b, err := os.ReadFile(k.File)
			if err != nil {
				return s, fmt.Errorf("wecom_archive: private key version %d: %w", k.Version, err)
			}
			raw = b
		} else {
			v, _ := lookup(k.Env)
			raw = []byte(v)
		}
		key, err := ParsePrivateKey(raw)
		if err != nil {
			// The error names where the key is, never what it holds.
			return s, fmt.Errorf("wecom_archive: private key version %d in %s: %w", k.Version, where, err)
		}
		s.Keys[k.Version] = key
	}
	return s, nil
}

// ParsePrivateKey reads an RSA private key in PEM, PKCS#1 or PKCS#8.
func ParsePrivateKey(raw []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("neither a PKCS#1 nor a PKCS#8 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}
