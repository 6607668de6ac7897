package main

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

func TestDaytimeQuestionReachesOwnOfficerAndAnswerLandsInGroup(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 10:00")) // Monday
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼下电动车被偷了怎么办")
	h.settle()
	ack := h.lastBot(bot.Group, "hexie")
	mustContain(t, "acknowledgement", ack.Text, "#1", "王建国警官")
	if len(ack.At) != 1 || ack.At[0] != "res-1" {
		t.Errorf("acknowledgement @ = %v, want the resident", ack.At)
	}
	dm := h.lastBot(bot.Direct, "wang")
	mustContain(t, "officer DM", dm.Text, "#1", "和谐小区业主群", "刘阿姨", "电动车被偷", "#1 内容")

	h.Clock.Add(3 * 60e9)
	h.dm("wang", "#1 马上到，请在楼下等我")
	h.settle()
	answer := h.lastBot(bot.Group, "hexie")
	mustContain(t, "answer in group", answer.Text, "马上到，请在楼下等我", "王建国", "#1")
	if len(answer.At) != 1 || answer.At[0] != "res-1" {
		t.Errorf("answer @ = %v, want the resident", answer.At)
	}
	mustContain(t, "confirmation to officer", h.lastBot(bot.Direct, "wang").Text, "已在“和谐小区业主群”答复工单 #1")
}
