package wecomarchive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
)

// A config says clearly what it lacks; secrets come from variables and
// mounted files, and a bad key is named by where it is, never by what it holds.
func TestConfigAndSecrets(t *testing.T) {
	ok := wecomarchive.Config{CorpID: "ww", Library: "/opt/lib.so", Keys: []wecomarchive.KeyConfig{{Version: 1, Env: "K1"}}}
	for _, c := range []struct {
		edit func(*wecomarchive.Config)
		want string
	}{
		{func(c *wecomarchive.Config) { c.CorpID = "" }, "corp_id is required"},
		{func(c *wecomarchive.Config) { c.Library = "" }, "library is required"},
		{func(c *wecomarchive.Config) { c.Keys = nil }, "at least one private key"},
		{func(c *wecomarchive.Config) { c.Keys[0].File = "/k.pem" }, "exactly one of env and file"},
		{func(c *wecomarchive.Config) { c.Keys = append(c.Keys, wecomarchive.KeyConfig{Version: 1, File: "/k"}) }, "version 1 listed twice"},
		{func(c *wecomarchive.Config) { c.Toolbar.Listen = ":8091" }, "agent_id and url are required"},
	} {
		cfg := ok
		cfg.Keys = append([]wecomarchive.KeyConfig(nil), ok.Keys...)
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := wecomtest.NewServer()
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "v2.pem")
	if err := os.WriteFile(file, srv.ArchiveKeyPEM(2), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ok.WithDefaults()
	cfg.Keys = append(cfg.Keys, wecomarchive.KeyConfig{Version: 2, File: file})
	env := map[string]string{wecomarchive.EnvSecret: "s3cret", "K1": string(srv.ArchiveKeyPEM(1))}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	sec, err := cfg.LoadSecrets(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Secret != "s3cret" || sec.Keys[1] == nil || sec.Keys[2] == nil {
		t.Fatalf("secrets %+v", sec)
	}
	env["K1"] = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key-but-secret-bytes\n-----END RSA PRIVATE KEY-----\n"
	if _, err := cfg.LoadSecrets(lookup); err == nil || !strings.Contains(err.Error(), "$K1") || strings.Contains(err.Error(), "secret-bytes") {
		t.Fatalf("bad key: %v, want an error naming $K1 and not its content", err)
	}
	delete(env, wecomarchive.EnvSecret)
	if _, err := cfg.LoadSecrets(lookup); err == nil || !strings.Contains(err.Error(), wecomarchive.EnvSecret) {
		t.Fatalf("no secret: %v", err)
	}
}
