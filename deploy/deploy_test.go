// Package deploy_test checks the compose deployment and the Dockerfile
// without a container engine: that every file they mount exists or is made
// by a step the README gives, that each container gets only its own
// secrets, and that the image's build stages and sources are there.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jingminhub/jingmin/configs"
)

type compose struct {
	Services map[string]service `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     any               `yaml:"env_file"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

func (s service) hub() bool { return s.Build != nil || strings.HasPrefix(s.Image, "jingmin:") }

func (s service) envFiles() []string {
	switch v := s.EnvFile.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, f := range v {
			out = append(out, fmt.Sprint(f))
		}
		return out
	}
	return nil
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadCompose(t *testing.T) (compose, string) {
	t.Helper()
	text := read(t, "compose.yaml")
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	return c, text
}

// provided checks that a file compose needs (relative to deploy/) is in
// the repository, or has an .example beside it that the README copies.
func provided(t *testing.T, what, rel, readme string) {
	t.Helper()
	rel = filepath.Clean(rel)
	// A local copy (station.yaml, .env, secrets) does not count: a fresh
	// clone has only its example.
	if _, err := os.Stat(rel); err == nil && !gitIgnored(rel) {
		return
	}
	// The example is x.example, or name.example.ext for x = name.ext.
	example := rel + ".example"
	if ext := filepath.Ext(rel); ext != "" && ext != rel {
		if alt := strings.TrimSuffix(rel, ext) + ".example" + ext; fileExists(alt) {
			example = alt
		}
	}
	if !fileExists(example) {
		t.Errorf("%s: %s is neither in the repository nor has an example (%s)", what, rel, example)
		return
	}
	step := fmt.Sprintf("cp deploy/%s deploy/%s", example, rel)
	if !strings.Contains(readme, step) {
		t.Errorf("%s: the README does not say `%s`", what, step)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// gitIgnored reports the local, uncommitted files a deployment makes.
func gitIgnored(rel string) bool {
	return strings.HasSuffix(rel, ".env") || rel == "station.yaml" || strings.HasPrefix(rel, "secrets"+string(filepath.Separator))
}

func TestComposeMountsOnlyWhatExistsOrADocumentedStepMakes(t *testing.T) {
	c, _ := loadCompose(t)
	readme := read(t, "../README.md")
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				provided(t, "service "+name+" volume", src, readme)
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %q, which compose.yaml does not declare", name, src)
			}
		}
		for _, f := range s.envFiles() {
			provided(t, "service "+name+" env_file", f, readme)
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("service %s uses secret %q, which compose.yaml does not declare", name, sec)
			}
		}
	}
	for name, sec := range c.Secrets {
		provided(t, "secret "+name, sec.File, readme)
	}
	provided(t, "variables", ".env", readme)
}

func TestComposeHandsEachContainerOnlyItsOwnSecrets(t *testing.T) {
	c, text := loadCompose(t)
	root := regexp.MustCompile(`(?i)root`)
	db, ok := c.Services["db"]
	if !ok {
		t.Fatal("no db service")
	}
	for k := range db.Environment {
		if root.MatchString(k) && !strings.HasSuffix(k, "_FILE") {
			t.Errorf("db: the root password is in the environment (%s), not a secret file", k)
		}
	}
	for name, s := range c.Services {
		if !s.hub() {
			continue
		}
		for k, v := range s.Environment {
			if root.MatchString(k) || root.MatchString(v) {
				t.Errorf("hub service %s gets %s=%s", name, k, v)
			}
		}
		for _, sec := range s.Secrets {
			if root.MatchString(sec) {
				t.Errorf("hub service %s gets secret %s", name, sec)
			}
		}
		for _, f := range s.envFiles() {
			body := read(t, f+".example")
			if root.MatchString(body) {
				t.Errorf("hub service %s's env_file %s names a root password", name, f)
			}
			if strings.Contains(body, "JINGMIN_DINGTALK") && name != "adapter-dingtalk" ||
				strings.Contains(body, "JINGMIN_WECHAT") && name != "adapter-wechat" {
				t.Errorf("service %s gets another platform's secrets from %s", name, f)
			}
		}
		if slices.Contains(s.Secrets, "wechat_webhook_keys") != (name == "adapter-wechat") {
			t.Errorf("service %s: the webhook keys go to the WeCom adapter only (has them: %v)", name, slices.Contains(s.Secrets, "wechat_webhook_keys"))
		}
		if strings.Contains(s.Environment["JINGMIN_WECHAT_WEBHOOK_KEYS_FILE"], "/") && !slices.Contains(s.Secrets, "wechat_webhook_keys") {
			t.Errorf("service %s names a webhook keys file it is not given", name)
		}
	}
	if w := c.Services["adapter-wechat"]; w.Environment["JINGMIN_WECHAT_WEBHOOK_KEYS_FILE"] != "/run/secrets/wechat_webhook_keys" {
		t.Errorf("adapter-wechat reads its webhook keys from %q, want the mounted secret", w.Environment["JINGMIN_WECHAT_WEBHOOK_KEYS_FILE"])
	}
	// Every ${VAR} compose fills in is one the .env example lists.
	env := read(t, ".env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)`).FindAllStringSubmatch(text, -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(env) {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not list", m[1])
		}
	}
	if root.MatchString(env) && regexp.MustCompile(`(?mi)^[a-z_]*root[a-z_]*=`).MatchString(env) {
		t.Error(".env.example holds a root password: it fills in every service's variables")
	}
}

func TestComposeImagesAndHealthchecksAreSane(t *testing.T) {
	c, _ := loadCompose(t)
	if img := c.Services["db"].Image; img != "mariadb:10.11" {
		t.Errorf("db image %q, want mariadb:10.11 (what the tests run against)", img)
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if !s.hub() && !strings.Contains(s.Image, ":") {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		if strings.HasPrefix(s.Image, "mysql:") {
			t.Errorf("service %s runs MySQL, which the tests do not cover", name)
		}
		healthy := s.Healthcheck != nil && !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 1 && s.Healthcheck.Test[0] == "CMD"
		if name != "migrate" && !healthy {
			t.Errorf("service %s has no healthcheck", name)
		}
		if s.hub() && name != "migrate" && len(s.Command) > 0 {
			if !slices.Contains(s.Healthcheck.Test, "healthcheck") || c.Services[name].Environment["JINGMIN_OPS_LISTEN"] == "" {
				t.Errorf("hub service %s: its healthcheck must ask its own ops endpoint", name)
			}
			if s.DependsOn["migrate"].Condition != "service_completed_successfully" {
				t.Errorf("hub service %s does not wait for the migration", name)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			if d.Condition == "service_healthy" && (target.Healthcheck == nil || target.Healthcheck.Disable) {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
			if d.Condition == "service_completed_successfully" && target.Restart != "no" {
				t.Errorf("service %s waits for %s to complete, which restarts", name, dep)
			}
		}
		if s.hub() && len(s.Command) > 0 {
			switch s.Command[0] {
			case "migrate", "worker", "adapter", "serve", "sync":
			default:
				t.Errorf("service %s runs unknown command %q", name, s.Command[0])
			}
			if !slices.Contains(s.Command, "/etc/jingmin/station.yaml") {
				t.Errorf("service %s does not read the mounted station config", name)
			}
		}
	}
}

// The example station is what the README tells a newcomer to copy: it must
// load where compose mounts it, alone, with its calendar built in.
func TestStationExampleLoadsAloneWithItsCalendar(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "station.yaml")
	if err := os.WriteFile(path, []byte(read(t, "station.example.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JINGMIN_DINGTALK_APP_SECRET", "test-secret")
	t.Setenv("JINGMIN_REDIS_URL", "redis://:pw@redis:6379/0")
	t.Setenv("JINGMIN_DATABASE_DSN", "jingmin:pw@tcp(db:3306)/jingmin")
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatalf("station.example.yaml copied alone: %v", err)
	}
	if len(cfg.Holidays) == 0 {
		t.Error("no holidays: the built-in calendar did not apply")
	}
	if cfg.WeChat == nil || cfg.DingTalk == nil {
		t.Fatal("the example turns on neither WeCom nor DingTalk")
	}
	c, _ := loadCompose(t)
	_, port, _ := strings.Cut(cfg.WeChat.Listen, ":")
	if !slices.Contains(c.Services["adapter-wechat"].Ports, port+":"+port) {
		t.Errorf("adapter-wechat publishes %v, the example listens on %s", c.Services["adapter-wechat"].Ports, cfg.WeChat.Listen)
	}
}

// dockerfile is the Dockerfile as instructions, continuation lines joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	var out [][2]string
	sc := bufio.NewScanner(strings.NewReader(read(t, "../Dockerfile")))
	var cur string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		cur += line
		instr, args, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur = ""
	}
	if cur != "" {
		t.Fatal("Dockerfile ends in a continuation line")
	}
	return out
}

func TestDockerfileStagesAndSourcesExist(t *testing.T) {
	known := map[string]bool{"FROM": true, "RUN": true, "COPY": true, "ADD": true, "WORKDIR": true, "USER": true, "ENV": true,
		"EXPOSE": true, "HEALTHCHECK": true, "ENTRYPOINT": true, "CMD": true, "ARG": true, "LABEL": true, "VOLUME": true}
	stages := map[string]bool{}
	var finalCopies []string
	var entry []string
	for _, in := range dockerfile(t) {
		instr, args := in[0], in[1]
		if !known[instr] {
			t.Errorf("unknown instruction %s", instr)
		}
		switch instr {
		case "FROM":
			f := strings.Fields(args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			}
			finalCopies = nil
			if strings.HasPrefix(f[0], "golang:") {
				goMod := read(t, "../go.mod")
				want := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
				if want == nil || !strings.HasPrefix(strings.TrimPrefix(f[0], "golang:"), want[1]) {
					t.Errorf("build image %s does not match go.mod's go %v", f[0], want)
				}
			}
		case "COPY", "ADD":
			f := strings.Fields(args)
			from := ""
			var rest []string
			for _, a := range f {
				if v, ok := strings.CutPrefix(a, "--from="); ok {
					from = v
				} else if !strings.HasPrefix(a, "--") {
					rest = append(rest, a)
				}
			}
			if len(rest) < 2 {
				t.Errorf("%s %s: want sources and a destination", instr, args)
				continue
			}
			finalCopies = append(finalCopies, rest[len(rest)-1])
			if from != "" {
				if !stages[from] {
					t.Errorf("%s --from=%s: no earlier stage of that name", instr, from)
				}
				continue
			}
			for _, src := range rest[:len(rest)-1] {
				if m, _ := filepath.Glob(filepath.Join("..", src)); len(m) == 0 {
					t.Errorf("%s source %s is not in the repository", instr, src)
				}
			}
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(args), &v); err != nil {
				t.Errorf("%s %s: not the exec (JSON) form: %v", instr, args, err)
			}
			if instr == "ENTRYPOINT" {
				entry = v
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(args, "CMD ")
			var v []string
			if !ok || json.Unmarshal([]byte(cmd), &v) != nil || len(v) == 0 {
				t.Errorf("HEALTHCHECK %s: want CMD in the exec form", args)
			} else if !slices.Contains(finalCopies, v[0]) {
				t.Errorf("HEALTHCHECK runs %s, which the final stage does not copy in", v[0])
			}
		}
	}
	if len(entry) == 0 || !slices.Contains(finalCopies, entry[0]) {
		t.Errorf("ENTRYPOINT %v is not a file the final stage copies in (%v)", entry, finalCopies)
	}
}
