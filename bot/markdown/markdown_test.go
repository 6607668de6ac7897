package markdown

import (
	"encoding/json"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

var dialects = map[string]func(string) string{"dingtalk": DingTalk, "wecom": WeCom, "playground": Playground}

// TestEscapeGolden: testdata/<platform>.json lists hostile inputs; the
// platform's function turns them into what <platform>.golden holds.
func TestEscapeGolden(t *testing.T) {
	golden.Run(t, "testdata/*.json", func(t *testing.T, raw []byte) []byte {
		escape := dialects[strings.TrimSuffix(path.Base(t.Name()), ".json")]
		if escape == nil {
			t.Fatalf("no dialect for %s", t.Name())
		}
		var inputs []string
		if err := json.Unmarshal(raw, &inputs); err != nil {
			t.Fatal(err)
		}
		type pair struct{ In, Out string }
		out := make([]pair, len(inputs))
		for i, in := range inputs {
			out[i] = pair{in, escape(in)}
		}
		return golden.JSON(out)
	})
}

// TestNothingHostileSurvives: whatever the input, no platform's output has
// a link, an image, a tag, an address a client would link, or a line a
// renderer would take for a heading, a quote or a list; the address stays
// readable; plain questions pass unchanged.
func TestNothingHostileSurvives(t *testing.T) {
	var inputs []string
	raw, _ := os.ReadFile("testdata/dingtalk.json")
	if err := json.Unmarshal(raw, &inputs); err != nil {
		t.Fatal(err)
	}
	for name, escape := range dialects {
		for _, in := range inputs {
			out := escape(in)
			for _, bad := range []string{"[", "]", "<", ">", "://", "dtmd:", "javascript:", "**", "`", "\u202e", "&lt;"} {
				if strings.Contains(out, bad) {
					t.Errorf("%s(%q) = %q keeps %q", name, in, out, bad)
				}
			}
			for _, line := range strings.Split(out, "\n") {
				l := strings.TrimLeft(line, " \t")
				if l != "" && strings.ContainsAny(l[:1], "#>-+*=") || orderedItem.MatchString(l) {
					t.Errorf("%s(%q): line %q still starts as markdown", name, in, line)
				}
			}
			if strings.Contains(in, "evil.example") && !strings.Contains(out, "evil") {
				t.Errorf("%s(%q) = %q hides the address", name, in, out)
			}
		}
		plain := "正常的问题：楼道有焦味，请问怎么办？电话13812345678。"
		if got := escape(plain); got != plain {
			t.Errorf("%s changed a plain question: %q", name, got)
		}
	}
}

func TestEscapeByPlatform(t *testing.T) {
	in := "[点此](http://evil.example) a_b |x|"
	for p, want := range map[bot.Platform]string{bot.DingTalk: DingTalk(in), bot.WeChat: WeCom(in), bot.Playground: Playground(in), "other": Playground(in)} {
		if got := Escape(p, in); got != want {
			t.Errorf("Escape(%s) = %q, want %q", p, got, want)
		}
	}
}
