package main

// Station alerts to WeCom customer groups (客户群): the hub cannot post
// there, so each owner gets one mass-send task for their groups, which they
// confirm in WeCom. The report counts the groups awaiting their owners apart
// and never as delivered; owners who have not sent are reminded; a group
// takes one mass send a day.

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/store"
)

// adminSays writes as admin zhao to the app and returns the hub's answer.
func (h *wxHub) adminSays(msgID, text string) string {
	h.t.Helper()
	before := len(h.on("app", "zhao.g"))
	h.officer(msgID, "zhao.g", text)
	h.settle()
	got := h.on("app", "zhao.g")
	if len(got) == before {
		h.t.Fatalf("no answer to %q", text)
	}
	return got[len(got)-1].Text
}

// find is the latest app message to user containing s, "" when none.
func (h *wxHub) find(user, s string) string {
	msgs := h.on("app", user)
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i].Text, s) {
			return msgs[i].Text
		}
	}
	return ""
}

func (h *wxHub) counts(id uint) map[string]int {
	h.t.Helper()
	c, err := h.store.DeliveryCounts(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestWeChatAlertToCustomerGroupsWaitsForEachOwner(t *testing.T) {
	w := newKFWorld(t, at("2026-11-23 10:00"))
	h := w.start(t)

	mustContain(t, "draft", h.adminSays("mass-1", "广播 本所 近期有冒充公安民警的诈骗电话，请勿转账"), "B1", "共 8 个群")
	mustContain(t, "confirmation", h.adminSays("mass-2", "确认 B1"), "B1 已开始发送到 8 个群")

	// The report comes once the hub has done its part: the playground
	// groups and the ordinary WeChat group have it, each owner has a task,
	// and the three customer groups are counted apart as awaiting.
	waitFor(t, "the delivery report", func() bool { return h.find("zhao.g", "B1 送达报告") != "" })
	report := h.find("zhao.g", "B1 送达报告")
	mustContain(t, "report", report, "已送达 5/8 个群", "失败 0 个", "待群主确认 3 个群")
	tasks := h.api.MassSends()
	if len(tasks) != 2 {
		t.Fatalf("%d mass-send tasks, want one per owner (wang, li): %+v", len(tasks), tasks)
	}
	byOwner := map[string]wecomtest.MassSend{}
	for _, m := range tasks {
		byOwner[m.Sender] = m
	}
	if got := strings.Join(byOwner["wang.jg"].ChatIDs, ","); got != custB+","+custA && got != custA+","+custB {
		t.Errorf("wang's task covers %q, want his two customer groups", got)
	}
	if got := strings.Join(byOwner["li.m"].ChatIDs, ","); got != custC {
		t.Errorf("li's task covers %q, want %s", got, custC)
	}
	mustContain(t, "the alert in the task", byOwner["li.m"].Text, "冒充公安民警")
	if n := len(h.on("webhook", "xingfu")); n != 1 {
		t.Errorf("the ordinary WeChat group got %d alerts by its robot, want 1", n)
	}

	// Wang confirms in WeCom; li does not. Wang's groups count as delivered,
	// li's stays awaiting.
	if n := h.api.Confirm("wang.jg"); n != 1 {
		t.Fatalf("wang confirmed %d tasks, want 1", n)
	}
	waitFor(t, "wang's groups recorded as sent", func() bool { return h.counts(1)[store.DeliverySent] == 7 })
	c := h.counts(1)
	if c[store.DeliveryAwaitingOwner] != 1 || c[store.DeliveryFailed] != 0 {
		t.Errorf("deliveries = %v, want 7 sent and li's group awaiting", c)
	}
	mustContain(t, "status", h.adminSays("mass-3", "状态 B1"), "已送达 7/8 个群", "待群主确认 1 个群")

	// Past the reminder time, li (and only li) is reminded.
	h.advance(31 * time.Minute)
	waitFor(t, "li's reminder", func() bool { return len(h.on("app", "li.m")) > 0 })
	mustContain(t, "reminder", lastText(t, h.on("app", "li.m")), "B1", "1 个客户群", "发送")
	for _, m := range h.on("app", "wang.jg") {
		if strings.Contains(m.Text, "等您确认群发") {
			t.Errorf("wang, who sent, was reminded: %q", m.Text)
		}
	}

	// Li confirms at last, but WeCom refuses the group: it had a mass send
	// from elsewhere today. The refusal is the group's reason.
	h.api.MassSentToday(custC)
	if n := h.api.Confirm("li.m"); n != 1 {
		t.Fatalf("li confirmed %d tasks, want 1", n)
	}
	waitFor(t, "li's group recorded as refused", func() bool { return h.counts(1)[store.DeliveryFailed] == 1 })
	status := h.adminSays("mass-3b", "状态 B1")
	mustContain(t, "status after li", status, "已送达 7/8 个群", "失败 1 个", "今天已收到过其他群发")
	if strings.Contains(status, "待群主确认") {
		t.Errorf("the status still counts a group as awaiting its owner: %q", status)
	}

	// A second alert the same day: wang's groups had their one mass send
	// today, so they get no task and the report says why; li's group, which
	// WeCom refused, is asked again (the hub counts only what it sent).
	mustContain(t, "second draft", h.adminSays("mass-4", "广播 本所 另请注意防范冒充客服退款"), "B2")
	h.adminSays("mass-5", "确认 B2")
	waitFor(t, "the second report", func() bool { return h.find("zhao.g", "B2 送达报告") != "" })
	mustContain(t, "second report", h.find("zhao.g", "B2 送达报告"), "已送达 5/8 个群", "失败 2 个", "每天最多 1 次", "待群主确认 1 个群")
	if n := len(h.api.MassSends()); n != 3 {
		t.Errorf("%d mass-send tasks after the capped alert, want 3 (li's group asked again)", n)
	}

	// The owners' tasks are created side by side: in the order of their owners.
	var lines []string
	for _, r := range h.api.Requests("/cgi-bin/externalcontact/add_msg_template") {
		var v any
		_ = json.Unmarshal(r, &v)
		b, _ := json.Marshal(v)
		lines = append(lines, "/cgi-bin/externalcontact/add_msg_template "+string(b)+"\n")
	}
	sort.Strings(lines)
	golden.File(t, "testdata/wecom-mass-send-requests.golden", []byte(strings.Join(lines, "")))
}

func TestWeChatArchiveConsentListsWhoRefused(t *testing.T) {
	w := newKFWorld(t, at("2026-11-23 10:00"))
	admin, err := wechat.NewAdmin(w.wcfg, w.lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := w.start(t)
	changed := at("2026-11-20 09:30")
	h.api.SetRoomAgree(custA, wecomtest.Consent{ExternalUserID: "wmAgree1", Agree: true, At: changed},
		wecomtest.Consent{ExternalUserID: "wmRefuse1", Agree: false, At: changed})
	h.api.SetRoomAgree(custB, wecomtest.Consent{ExternalUserID: "wmRefuse2", Agree: false, At: changed.Add(time.Hour)})
	// custC is unknown to WeCom as a customer group: named, not fatal.
	var out bytes.Buffer
	if err := archiveConsent(context.Background(), h.store, admin, h.clock.Now(), &out); err != nil {
		t.Fatal(err)
	}
	golden.File(t, "testdata/wecom-consent.golden", out.Bytes())
	refused, err := h.store.ArchiveRefusals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || refused[0].ExternalUserID != "wmRefuse2" && refused[1].ExternalUserID != "wmRefuse2" {
		t.Errorf("refusals kept = %+v, want wmRefuse1 and wmRefuse2", refused)
	}
}
