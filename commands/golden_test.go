package commands_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
)

// Every message of one scripted day, in full, as residents and officers
// read them: the tables check who gets what; this file shows the words.
// `go test ./commands -run TestMessagesOfADay -update` rewrites it; review
// the diff before committing it.
func TestMessagesOfADay(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 09:00")
	var b strings.Builder
	say := func(at, what string) {
		r.setClock(at)
		fmt.Fprintf(&b, "## %s %s\n", at[11:], what)
	}
	dump := func() {
		for _, m := range r.written() {
			fmt.Fprintf(&b, "%s → %s [%s]", m.Purpose, where(&m), m.Format)
			if m.Title != "" {
				fmt.Fprintf(&b, " %s", m.Title)
			}
			fmt.Fprintf(&b, "\n%s\n\n", m.Text)
		}
	}
	ask := func(at, chat, resident, name, text string) {
		say(at, name+" in "+chat+": "+text)
		r.handle(r.ask(chat, resident, name, text))
		dump()
	}
	dm := func(at, from, text string) {
		say(at, from+" to the bot: "+text)
		r.handle(r.dm(from, text))
		dump()
	}
	tick := func(at string) {
		say(at, "timers")
		r.tick()
		dump()
	}

	ask("2026-11-23 09:00", "hexie", "res-1", "刘阿姨", "门口有人发小广告")
	dm("2026-11-23 09:05", "wang", "#1 我马上过去看看")
	ask("2026-11-23 09:10", "yangguang", "res-2", "张先生", "楼道有焦味")
	dm("2026-11-23 09:12", "li", "#2 已联系物业和消防，正在处理")
	ask("2026-11-23 10:00", "hexie-shops", "res-3", "王老板", "店门口的共享单车太多了")
	dm("2026-11-23 10:02", "wang", "#3 认领")
	dm("2026-11-23 10:03", "wang", "#3 转 李警官")
	tick("2026-11-23 10:18")
	dm("2026-11-23 10:20", "li", "#3 已通知运营公司清理")
	dm("2026-11-23 10:21", "li", "#3 办结")
	dm("2026-11-23 10:22", "li", "#3 还有问题吗")
	dm("2026-11-23 10:23", "sun", "#1 我来")
	dm("2026-11-23 10:24", "wang", "#99 好的")
	dm("2026-11-23 10:25", "wang", "#1")
	dm("2026-11-23 10:26", "res-1", "#1 谢谢")
	ask("2026-11-23 10:30", "weizhi", "res-4", "赵大爷", "有人在小区里发传单")
	dm("2026-11-23 17:00", "wang", "值班 关")
	ask("2026-11-23 17:05", "hexie", "res-1", "刘阿姨", "快递柜旁边有可疑的人")
	dm("2026-11-23 17:10", "li", "#4 马上过去")
	ask("2026-11-23 19:00", "xincun-elders", "res-5", "孙奶奶", "晚上广场舞音乐太吵")
	dm("2026-11-23 19:05", "zhang", "#5 已联系社区协调，音乐九点前结束")
	ask("2026-11-23 23:00", "hexie", "res-1", "刘阿姨", "身份证丢了怎么补办")
	ask("2026-11-23 23:10", "yangguang", "res-2", "张先生", "小区门口的路灯坏了")
	dm("2026-11-23 23:20", "zhang", "值班 开")
	tick("2026-11-24 08:30")
	dm("2026-11-24 08:31", "li", "待办")
	tick("2026-11-24 08:45")
	tick("2026-11-24 09:00")

	golden.File(t, "testdata/day.golden", []byte(b.String()))
}
