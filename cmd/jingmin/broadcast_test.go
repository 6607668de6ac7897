package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

const alert = "【反诈提醒】近期有人冒充工商局发短信称“您的法人信息即将到期”，要求点链接填写银行卡信息，这是诈骗！"

// broadcastConfig is the example deployment plus a second station with its
// own admin and groups, a district admin, and extra playground groups of
// the first station.
func broadcastConfig(t *testing.T, extra int) *configs.Config {
	t.Helper()
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stations = append(cfg.Stations, configs.Station{Code: "juyuan", Name: "菊园派出所", SLAMinutes: 15, DutyAccount: "juyuan-duty"})
	cfg.Officers = append(cfg.Officers,
		configs.Officer{Code: "juyuan-duty", Station: "juyuan", Name: "菊园值班号", Roles: []string{"duty_account"}},
		configs.Officer{Code: "sun", Station: "juyuan", Name: "孙丽", Roles: []string{"admin"}, Identities: map[string]string{"playground": "sun"}},
		configs.Officer{Code: "qian", Station: "juyuan", Name: "钱分局", Roles: []string{"district_admin"}, Identities: map[string]string{"playground": "qian"}},
	)
	cfg.Groups = append(cfg.Groups,
		configs.Group{Platform: "playground", ChatID: "juyuan-1", Name: "菊园一村群", Station: "juyuan", Tags: []string{"菊园专属"}},
		configs.Group{Platform: "playground", ChatID: "juyuan-shops", Name: "菊园商户群", Station: "juyuan", Tags: []string{"企业群"}},
	)
	for i := range extra {
		cfg.Groups = append(cfg.Groups, configs.Group{Platform: "playground", ChatID: fmt.Sprintf("tp-%04d", i), Name: fmt.Sprintf("太平%d号群", i), Station: "taiping"})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func fastBroadcasts(o *hubOptions) { o.broadcastPoll = 20 * time.Millisecond }

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// alertsIn counts the broadcast alerts a group's transcript holds.
func (h *testHub) alertsIn(group string) int {
	n := 0
	for _, l := range h.botLines(bot.Group, group) {
		if strings.Contains(l.Text, "法人信息即将到期") {
			n++
		}
	}
	return n
}

func (h *testHub) dmAndSettle(user, text string) string {
	h.t.Helper()
	before := len(h.botLines(bot.Direct, user))
	h.dm(user, text)
	h.settle()
	// A broadcast's delivery report may arrive in the same moment (the
	// relay sends as soon as the confirmation commits): it is not an answer.
	var answers, reports []string
	for _, l := range h.botLines(bot.Direct, user)[before:] {
		if strings.Contains(l.Text, "送达报告\n") {
			reports = append(reports, l.Text)
		} else {
			answers = append(answers, l.Text)
		}
	}
	if len(answers) == 0 && len(reports) == 1 { // asked for: "状态 B1"
		answers = reports
	}
	if len(answers) != 1 {
		h.t.Fatalf("%s got %d answers to %q, want 1: %q", user, len(answers), text, answers)
	}
	return answers[0]
}

func TestStationAdminBroadcastsToOwnStationWithPreviewConfirmationAndReport(t *testing.T) {
	h := startHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), fastBroadcasts)
	preview := h.dmAndSettle("zhao", "广播 本所 "+alert+" @所有人")
	mustContain(t, "preview", preview, "B1", "共 4 个群", "演示平台 4 个", "法人信息即将到期", "确认 B1", "取消 B1")

	// Nothing goes out before confirmation, and only the author may confirm.
	time.Sleep(100 * time.Millisecond)
	if n := h.alertsIn("hexie"); n != 0 {
		t.Fatalf("alert sent before confirmation")
	}
	mustContain(t, "confirmation by another admin", h.dmAndSettle("sun", "确认 B1"), "不是您发起的")
	mustContain(t, "confirmation by an officer", h.dmAndSettle("wang", "确认 B1"), "不是您发起的")
	mustContain(t, "confirmation", h.dmAndSettle("zhao", "确认 B1"), "B1 已开始发送到 4 个群")

	waitFor(t, "the delivery report", func() bool {
		return strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "送达报告\n")
	})
	h.settle()
	mustContain(t, "report", h.lastBot(bot.Direct, "zhao").Text, "已送达 4/4 个群，失败 0 个")
	for _, g := range []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"} {
		if n := h.alertsIn(g); n != 1 {
			t.Errorf("group %s got the alert %d times, want once", g, n)
		}
		last := h.lastBot(bot.Group, g)
		if strings.Contains(last.Text, "@所有人") || len(last.At) != 0 {
			t.Errorf("group %s: the alert @-s everyone: %+v", g, last)
		}
	}
	for _, g := range []string{"juyuan-1", "juyuan-shops"} {
		if n := h.alertsIn(g); n != 0 {
			t.Errorf("another station's group %s got the alert", g)
		}
	}
	mustContain(t, "second confirmation", h.dmAndSettle("zhao", "确认 B1"), "已发送完毕", "不能再确认")
	mustContain(t, "cancel after completion", h.dmAndSettle("zhao", "取消 B1"), "已发送完毕", "不能再取消")
	mustContain(t, "status", h.dmAndSettle("zhao", "状态 B1"), "已送达 4/4")

	// The broadcast row is the audit record.
	b, err := h.store.BroadcastByID(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.Author != "赵刚" || b.Scope != "station:taiping" || b.Status != store.BroadcastDone || b.ConfirmedAt == nil || b.FinishedAt == nil || !strings.Contains(b.Text, "法人信息") {
		t.Errorf("audit row = %+v", b)
	}
	// Who made and confirmed it, through the chat, from which account.
	if b.CreatedVia != store.ViaChat || b.CreatedFrom != "playground:zhao" || b.ConfirmedBy != "赵刚" ||
		b.ConfirmedVia != store.ViaChat || b.ConfirmedFrom != "playground:zhao" || b.ConfirmedByID == nil || *b.ConfirmedByID != *b.AuthorID {
		t.Errorf("audit of the chat's actions = created %q from %q, confirmed by %q via %q from %q",
			b.CreatedVia, b.CreatedFrom, b.ConfirmedBy, b.ConfirmedVia, b.ConfirmedFrom)
	}
	// Alert text never reaches the logs.
	if strings.Contains(h.Logs.String(), "法人信息") {
		t.Error("alert text was logged")
	}
}

func TestBroadcastRefusalsChangeNothing(t *testing.T) {
	h := startHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), fastBroadcasts)
	cases := []struct{ who, text, want string }{
		{"wang", "广播 本所 " + alert, "只有派出所管理员和分局管理员"},
		{"zhao", "广播 全部 " + alert, "只能向本所（太平派出所）的群广播"},
		{"zhao", "广播 本所", "预警内容不能为空"},
		{"zhao", "广播 本所    ", "预警内容不能为空"},
		{"zhao", "广播 本所 " + strings.Repeat("骗", 4001), "预警内容过长"},
		{"zhao", "广播 随便 " + alert, "预警广播的格式"},
		{"zhao", "广播", "预警广播的格式"},
		{"zhao", "广播 标签 不存在的标签 " + alert, "没有带“不存在的标签”标签的群"},
		{"zhao", "广播 标签 菊园专属 " + alert, "这个范围里没有任何群"},
		{"zhao", "广播 群 nosuch,hexie " + alert, "找不到这些群：nosuch"},
		{"zhao", "广播 群 juyuan-1 " + alert, "只能向本所"},
		{"zhao", "确认 B99", "没有找到预警广播 B99"},
		{"zhao", "取消 B99", "没有找到预警广播 B99"},
	}
	for _, c := range cases {
		mustContain(t, fmt.Sprintf("%s: %q", c.who, bot.Truncate(c.text, 30)), h.dmAndSettle(c.who, c.text), c.want)
	}
	if _, err := h.store.BroadcastByID(context.Background(), 1); err == nil {
		t.Error("a refused request created a broadcast")
	}
	// A resident writing the same words gets no broadcast either.
	h.dm("res-9", "广播 全部 "+alert)
	h.settle()
	if _, err := h.store.BroadcastByID(context.Background(), 1); err == nil {
		t.Error("a resident created a broadcast")
	}
}

func TestDistrictAdminReachesEveryStationByTagAndCanCancel(t *testing.T) {
	h := startHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), fastBroadcasts)
	mustContain(t, "district preview", h.dmAndSettle("qian", "广播 全部 "+alert), "B1", "共 6 个群")
	mustContain(t, "cancel a draft", h.dmAndSettle("qian", "取消 B1"), "B1 已取消", "6 个群不再发送")
	if b, err := h.store.BroadcastByID(context.Background(), 1); err != nil || b.CancelledBy != "钱分局" || b.CancelledVia != store.ViaChat || b.CancelledFrom != "playground:qian" {
		t.Errorf("the cancellation's record = %+v, %v", b, err)
	}
	mustContain(t, "confirm a cancelled draft", h.dmAndSettle("qian", "确认 B1"), "已取消", "不能再确认")

	mustContain(t, "tag preview", h.dmAndSettle("qian", "广播 标签 企业群 "+alert), "B2", "共 2 个群")
	mustContain(t, "confirm", h.dmAndSettle("qian", "确认 B2"), "开始发送到 2 个群")
	waitFor(t, "the report", func() bool { return strings.Contains(h.lastBot(bot.Direct, "qian").Text, "送达报告\n") })
	for g, want := range map[string]int{"hexie-shops": 1, "juyuan-shops": 1, "hexie": 0, "juyuan-1": 0} {
		if n := h.alertsIn(g); n != want {
			t.Errorf("group %s got %d alerts, want %d", g, n, want)
		}
	}
	// A station admin may not cancel the district admin's broadcast.
	mustContain(t, "cancel by another", h.dmAndSettle("zhao", "取消 B2"), "不是您发起的")
}

func TestBroadcastToAnUnreachablePlatformReportsTheReason(t *testing.T) {
	cfg := broadcastConfig(t, 0)
	cfg.Groups = append(cfg.Groups, configs.Group{Platform: "dingtalk", ChatID: "cid-ding-1", Name: "钉钉测试群", Station: "taiping"})
	h := startHub(t, cfg, at("2026-11-23 10:00"), fastBroadcasts)
	mustContain(t, "preview", h.dmAndSettle("zhao", "广播 本所 "+alert), "共 5 个群", "钉钉 1 个", "演示平台 4 个")
	h.dmAndSettle("zhao", "确认 B1")
	waitFor(t, "the report", func() bool { return strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "送达报告\n") })
	mustContain(t, "report", h.lastBot(bot.Direct, "zhao").Text, "已送达 4/5 个群，失败 1 个（原因：", "no dingtalk adapter is configured")
	ds, err := h.store.Deliveries(context.Background(), 1, store.DeliverySent)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.MessageID == "" {
			t.Errorf("delivery to %s has no platform message id", d.ChatID)
		}
	}
	// retry-failed puts the failed group back and sends a second report.
	mustContain(t, "retry", h.dmAndSettle("zhao", "重发 B1"), "1 个发送失败的群已重新排队")
	waitFor(t, "the second report", func() bool {
		lines := h.botLines(bot.Direct, "zhao")
		n := 0
		for _, l := range lines {
			if strings.Contains(l.Text, "送达报告\n") {
				n++
			}
		}
		return n == 2
	})
	if n := h.alertsIn("hexie"); n != 1 {
		t.Errorf("retry-failed sent hexie the alert again: %d", n)
	}
}

// A hub stopped halfway through a broadcast leaves the rest to the next one
// on the same database: every group gets the alert exactly once.
func TestBroadcastResumesAfterRestart(t *testing.T) {
	const groups = 300
	cfg := broadcastConfig(t, groups-4)
	cfg.Broadcast.Rates["playground"] = 300 // about a second for the whole broadcast
	db := filepath.Join(t.TempDir(), "hub.db")
	first := startHubOn(t, cfg, at("2026-11-23 10:00"), db, fastBroadcasts)
	mustContain(t, "preview", first.dmAndSettle("zhao", "广播 本所 "+alert), fmt.Sprintf("共 %d 个群", groups))
	first.dmAndSettle("zhao", "确认 B1")
	ids := []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"}
	for i := range groups - 4 {
		ids = append(ids, fmt.Sprintf("tp-%04d", i))
	}
	sentBy := func(h *testHub) int {
		n := 0
		for _, id := range ids {
			n += h.alertsIn(id)
		}
		return n
	}
	waitFor(t, "a third of the groups", func() bool { return sentBy(first) >= groups/3 })
	first.Stop()
	before := sentBy(first)
	if before >= groups {
		t.Fatalf("the broadcast finished before the stop (%d sent); slow it down", before)
	}

	second := startHubOn(t, broadcastConfig(t, groups-4), at("2026-11-23 10:05"), db, fastBroadcasts)
	waitFor(t, "the report after the restart", func() bool {
		return len(second.botLines(bot.Direct, "zhao")) > 0 && strings.Contains(second.lastBot(bot.Direct, "zhao").Text, "送达报告\n")
	})
	mustContain(t, "report", second.lastBot(bot.Direct, "zhao").Text, fmt.Sprintf("已送达 %d/%d 个群，失败 0 个", groups, groups))
	for _, id := range ids {
		if n := first.alertsIn(id) + second.alertsIn(id); n != 1 {
			t.Errorf("group %s got the alert %d times, want exactly once", id, n)
		}
	}
	t.Logf("sent %d before the stop, %d after", before, sentBy(second))
}

// The CLI drafts and confirms; the running hub sends; the CLI follows the
// progress and prints the report.
func TestBroadcastCLISendStatusCancelRetry(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	h := startHubOn(t, nil, at("2026-11-23 10:00"), db, fastBroadcasts)
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	textFile := filepath.Join(t.TempDir(), "alert.txt")
	if err := os.WriteFile(textFile, []byte(alert+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "broadcast", "send", "--scope", "tag:住宅", "--text-file", textFile, "--by", "zhao")
	if err != nil {
		t.Fatalf("broadcast send: %v\n%s", err, out)
	}
	mustContain(t, "send output", out, "B1", "共 2 个群", "已送达 2/2 个群，失败 0 个", "已处理 2/2：送达 2")
	if strings.Contains(out, "回复") {
		t.Errorf("send, which confirms by itself, asks for a chat reply:\n%s", out)
	}
	for g, want := range map[string]int{"hexie": 1, "yangguang": 1, "hexie-shops": 0} {
		if n := h.alertsIn(g); n != want {
			t.Errorf("group %s got %d alerts, want %d", g, n, want)
		}
	}
	out, err = runCLI(t, "broadcast", "status", "B1")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "status", out, "已送达 2/2 个群")
	b, err := h.store.BroadcastByID(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.CreatedVia != store.ViaCLI || b.ConfirmedVia != store.ViaCLI || !strings.HasPrefix(b.ConfirmedFrom, "cli") || b.ConfirmedBy != "赵刚" {
		t.Errorf("the CLI's record = created via %q, confirmed by %q via %q from %q", b.CreatedVia, b.ConfirmedBy, b.ConfirmedVia, b.ConfirmedFrom)
	}
	if _, err := runCLI(t, "broadcast", "cancel", "B1"); err == nil || !strings.Contains(err.Error(), "已发送完毕") {
		t.Errorf("cancel after completion: %v", err)
	}
	out, err = runCLI(t, "broadcast", "retry-failed", "B1")
	if err != nil || !strings.Contains(out, "没有发送失败的群，无需重发") {
		t.Errorf("retry-failed with nothing failed: %v %s", err, out)
	}
	for _, bad := range [][]string{
		{"broadcast", "send", "--scope", "everywhere", "--text-file", textFile},
		{"broadcast", "send", "--scope", "all", "--text-file", textFile, "--by", "wang"},
		{"broadcast", "send", "--scope", "tag:无此标签", "--text-file", textFile},
		{"broadcast", "send", "--scope", "all", "--text-file", filepath.Join(t.TempDir(), "missing.txt")},
		{"broadcast", "status", "B77"},
		{"broadcast", "status"},
	} {
		if out, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v succeeded:\n%s", bad, out)
		}
	}
	// The draft, the broadcast and the report to --by's direct chat.
	waitFor(t, "the report in zhao's chat", func() bool {
		return len(h.botLines(bot.Direct, "zhao")) > 0 && strings.Contains(h.lastBot(bot.Direct, "zhao").Text, "已送达 2/2")
	})
}

// The command line speaks its own language: refusals name flags, not chat
// commands; cancel answers in Chinese; and with no hub running, send says
// that the hub sends and seems not to run instead of waiting at 0 sent.
func TestBroadcastCLIWordsWithoutAHub(t *testing.T) {
	t.Setenv("JINGMIN_DATABASE_DSN", filepath.Join(t.TempDir(), "hub.db"))
	for _, step := range []string{"migrate", "sync"} {
		if out, err := runCLI(t, step); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
	}
	dir := t.TempDir()
	textFile := filepath.Join(dir, "alert.txt")
	emptyFile := filepath.Join(dir, "empty.txt")
	os.WriteFile(textFile, []byte(alert+"\n"), 0o600)
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	var transcript strings.Builder
	for _, args := range [][]string{
		{"broadcast", "send", "--scope", "tag:住宅", "--text-file", textFile, "--by", "zhao", "--hub-wait", "1s"},
		{"broadcast", "send", "--scope", "all", "--text-file", textFile, "--by", "wang"},
		{"broadcast", "send", "--scope", "all", "--text-file", emptyFile},
		{"broadcast", "cancel", "B1", "--by", "li"},
		{"broadcast", "cancel", "B1", "--by", "zhao"},
		{"broadcast", "retry-failed", "B1"},
	} {
		out, err := runCLI(t, args...)
		transcript.WriteString("$ jingmin " + strings.ReplaceAll(strings.ReplaceAll(strings.Join(args, " "), textFile, "alert.txt"), emptyFile, "empty.txt") + "\n")
		// A progress bar redraws its line: keep what it last showed.
		for _, line := range strings.SplitAfter(out, "\n") {
			if i := strings.LastIndex(line, "\r"); i >= 0 {
				line = line[i+1:]
			}
			transcript.WriteString(line)
		}
		if err != nil {
			transcript.WriteString("error: " + err.Error() + "\n")
		}
	}
	got := transcript.String()
	for _, chat := range []string{"回复", "请用“广播", "请发送“广播"} {
		if strings.Contains(got, chat) {
			t.Errorf("the command line tells the user to type chat syntax (%q)", chat)
		}
	}
	golden.File(t, "testdata/broadcast-cli.golden", []byte(got))
}
