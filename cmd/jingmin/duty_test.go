package main

import (
	"path/filepath"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// An officer's "值班 关" and "值班 开" through the running hub: the replies
// say until when, the questions go to the colleague on shift, and
// `roster who` run beside the data shows both switches and the chain the
// escalation timer follows.
func TestDutySwitchesShowInRosterWho(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	h := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	h.dm("wang", "值班 关")
	h.settle()
	mustContain(t, "值班 关 reply", h.lastBot(bot.Direct, "wang").Text, "明天（周二）08:30")
	h.dm("zhang", "值班 开 到 13:00")
	h.settle()
	mustContain(t, "值班 开 reply", h.lastBot(bot.Direct, "zhang").Text, "到今天13:00为止")
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 小区门口的共享单车堆满了人行道")
	h.settle()
	mustContain(t, "acknowledgement", h.lastBot(bot.Group, "hexie").Text, "值班民警张伟")
	h.Stop()

	t.Setenv("JINGMIN_DATABASE_DSN", db)
	var out string
	for _, when := range []string{"2026-11-23 10:30", "2026-11-23 14:00"} {
		got, err := runCLI(t, "roster", "who", "--station", "taiping", "--group", "和谐小区业主群", "--at", when)
		if err != nil {
			t.Fatal(err)
		}
		out += got + "\n"
	}
	golden.File(t, "testdata/roster-who-duty.golden", []byte(out))
}
