package commands

import (
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/configs"
)

// render fills templates exactly as a strings.Replacer of the same pairs
// would: every shipped template, and the odd cases a station's own
// templates may hold.
func TestRenderFillsPlaceholdersInOnePass(t *testing.T) {
	kv := []string{"number", "12", "assignee", "王警官", "group", "和谐小区{number}群", "resident", "张阿姨", "question", "门口{有人}吵架",
		"answer", "带身份证", "next", "明天 08:30", "id", "3", "sent", "9", "total", "10", "failed", "1", "reasons", "：群已解散", "name", "李警官"}
	want := func(tmpl string) string {
		pairs := make([]string, 0, len(kv))
		for i := 0; i+1 < len(kv); i += 2 {
			pairs = append(pairs, "{"+kv[i]+"}", kv[i+1])
		}
		return strings.NewReplacer(pairs...).Replace(tmpl)
	}
	cases := []string{"", "没有占位", "{number}", "#{number}{assignee}", "{{number}}", "{unknown} #{number}", "{number", "}{number}{",
		"{ number }", "群：{group}", "{question}{answer}", "{numbe{number}}"}
	for _, tmpl := range configs.DefaultTemplates {
		cases = append(cases, tmpl)
	}
	for _, tmpl := range cases {
		if got, w := render(tmpl, kv...), want(tmpl); got != w {
			t.Errorf("render(%q) = %q, want %q", tmpl, got, w)
		}
	}
}
