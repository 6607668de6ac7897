package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// On DingTalk, as in the playground, the leader gets the first breach of a
// window at once and the rest of it as one digest when it closes.
func TestDingTalkEscalationStormArrivesAsOneDigest(t *testing.T) {
	h := startDingTalkHub(t, at("2026-11-23 10:00"))
	for i := 1; i <= 5; i++ {
		h.Clock.Set(at("2026-11-23 10:00").Add(time.Duration(i) * 10 * time.Second))
		h.resident(askMsg(fmt.Sprintf("第%d件事：楼道堆物", i)))
	}
	h.settle()
	tick := func(when string) {
		h.Clock.Set(at(when))
		if err := h.rules.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tick("2026-11-23 10:16")
	if dms := h.dms("zhao"); len(dms) != 1 || !strings.Contains(dms[0].Text, "工单 #1 超时") {
		t.Fatalf("within the window 赵刚 got %d DMs, want the first breach alone: %+v", len(dms), dms)
	}
	tick("2026-11-23 10:20")
	dms := h.dms("zhao")
	if len(dms) != 2 {
		t.Fatalf("when the window closed 赵刚 had %d DMs, want 2 (the first and one digest): %+v", len(dms), dms)
	}
	if dms[1].Kind != "markdown" || dms[1].Title != "4 个工单超时未答复" {
		t.Errorf("the digest is %s titled %q", dms[1].Kind, dms[1].Title)
	}
	mustContain(t, "digest", dms[1].Text, "4 个工单超时未答复", "- #2 ", "- #5 ", dtGroupName, "原由王建国负责")
	tick("2026-11-23 10:21")
	if n := len(h.dms("zhao")); n != 2 {
		t.Errorf("after the digest 赵刚 got more: %d DMs", n)
	}
}
