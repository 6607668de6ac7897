package main

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

// In the playground, which shows the hub every message, a resident's
// emergency draws the guidance and the pages without an @.
func TestPlaygroundEmergencyWithoutAnAt(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 23:00"))
	h.say("hexie", "res-1", "刘阿姨", "楼下有人打架了！快来人")
	h.settle()
	mustContain(t, "emergency guidance", h.lastBot(bot.Group, "hexie").Text, "110")
	mustContain(t, "the leader's page", h.lastBot(bot.Direct, "zhao").Text, "紧急工单", "打架")
}
