package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/jingminhub/jingmin/bot"
)

// signInInBrowser signs in through the console's pages as a person does:
// name, the code from the bot's DM in the playground, and for an admin
// the authenticator (enrolled on the spot).
func (h *consoleHub) signInInBrowser(t *testing.T, p *browserPage, login, user string) {
	t.Helper()
	before := len(h.codes(user))
	p.do("open the sign-in page", chromedp.Navigate(h.ConsoleURL+"/now"), chromedp.WaitVisible(chromedp.ID("login")))
	p.do("ask for a code", chromedp.SendKeys(chromedp.ID("login"), login), chromedp.Click(chromedp.ID("send-code")),
		chromedp.WaitVisible(chromedp.ID("code")))
	var code string
	waitFor(t, "the code in the playground DM", func() bool {
		cs := h.codes(user)
		if len(cs) > before {
			code = cs[len(cs)-1]
			return true
		}
		return false
	})
	p.do("type the code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.ID("sign-in")))
}

// The console in a real browser: an officer signs in with the code the bot
// DMed them in the playground, watches Now update live, finds a ticket in
// the list (masked), opens its timeline (in full: what was sent and
// whether it arrived) and hands it over; an admin enrols an authenticator
// and finds all of it in the audit trail. Each page is screenshotted.
func TestBrowserConsoleOfficerAndAdmin(t *testing.T) {
	chromium := needChromium(t)
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"), fastBroadcasts) // Monday: wang on shift
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道灯坏了，我电话13812345678")
	h.settle()
	p := newBrowserPage(t, chromium)

	h.signInInBrowser(t, p, "王建国", "wang")
	p.do("the Now page", chromedp.WaitVisible(chromedp.CSS(`body[data-page="now"]`)))
	p.waitFor("who is on duty", ".station .on-duty", "王建国")
	p.waitFor("the open ticket", ".station .open-list", "#1")
	p.waitFor("the stream connected", "#live.ok", "实时")
	p.screenshot("console-now")

	// Live: a new question shows up without a reload.
	evalIn[chromedp.Void](p, "mark the page", `window.sameDocument = true`)
	h.say("yangguang", "res-2", "王大爷", "@社区警务助手 楼下车位被占了")
	p.waitFor("the new ticket on the board", ".station .open-list", "#2")
	p.waitFor("the count", ".station .open-count", "2")
	if !evalIn[bool](p, "same document", `window.sameDocument === true`) {
		t.Error("the Now page reloaded instead of updating in place")
	}

	// The list masks the resident.
	p.do("the ticket list", chromedp.Navigate(h.ConsoleURL+"/tickets"), chromedp.WaitVisible(chromedp.ID("tickets")))
	p.waitFor("ticket #1 in the list", "#tickets tr", "#1", "刘**", "138****5678", "和谐小区业主群")
	if text := evalIn[string](p, "list text", `document.body.innerText`); strings.Contains(text, "刘阿姨") || strings.Contains(text, "13812345678") {
		t.Errorf("the list shows the resident in full:\n%s", text)
	}
	p.screenshot("console-tickets")

	// The ticket's page: the whole timeline and what was sent.
	p.do("open ticket #1", chromedp.Click(chromedp.CSS(`tr[data-ticket="1"] a`)), chromedp.WaitVisible(chromedp.ID("timeline")))
	p.waitFor("the timeline", "#timeline", "居民提问", "分派", "群内回执", "私信民警")
	p.screenshot("console-ticket")
	p.waitFor("what the group was sent", "#messages li", "群内回执", "和谐小区业主群", "已送达", "已登记为工单 #1")
	p.waitFor("what the officer was sent", "#messages li", "派单私信", "王建国", "已送达", "楼道灯坏了")
	p.waitFor("why it went to wang", "#timeline li", "分派", "王建国（本群民警）")
	p.waitFor("the resident in full", "#resident", "刘阿姨", "res-1")
	p.waitFor("the question in full", "#question", "13812345678")
	p.screenshot("console-ticket")

	// Hand it over to 李明.
	li, _, _, _ := h.rules.Officer("li")
	p.choose("handover-to", fmt.Sprint(li.ID))
	p.do("hand over", chromedp.Click(chromedp.ID("handover")), chromedp.WaitVisible(chromedp.ID("notice")))
	p.waitFor("the handover in the timeline", "#timeline li", "转交", "李明")
	p.waitFor("the new holder", "#assignee", "李明")
	h.settle()
	mustContain(t, "李明's DM", h.lastBot(bot.Direct, "li").Text, "工单 #1 由王建国转交给您")
	p.do("a phone-sized screen", chromedp.EmulateViewport(390, 844))
	p.screenshot("console-ticket-phone")
	p.do("back to the desktop", chromedp.EmulateViewport(1100, 820))

	// The roster from the console's nav: the officer sees the station's
	// calendar with the console's own sign-in, and no form to change it.
	p.do("the roster page", chromedp.Click(chromedp.CSS(`nav a[href="/roster"]`)), chromedp.WaitVisible(chromedp.ID("calendar")))
	p.waitFor("the week's shifts", "#calendar", "王建国")
	if n := evalIn[int](p, "shift form", `document.querySelectorAll("#add-shift").length`); n != 0 {
		t.Error("an officer is offered the form that changes the roster")
	}
	if bg := evalIn[string](p, "styled", `getComputedStyle(document.querySelector("header")).backgroundColor`); bg != "rgb(31, 78, 140)" {
		t.Errorf("the roster page is unstyled under the console's content policy (header background %q)", bg)
	}
	p.screenshot("console-roster-officer")

	// An officer has no audit page.
	if n := evalIn[int](p, "nav", `document.querySelectorAll('nav a[href="/audit"]').length`); n != 0 {
		t.Error("an officer's nav links to the audit trail")
	}
	p.checkNoExceptions()

	// The station admin: code, then the authenticator, then the audit trail.
	a := newBrowserPage(t, chromium)
	h.signInInBrowser(t, a, "zhao", "zhao")
	a.do("the enrolment page", chromedp.WaitVisible(chromedp.ID("totp-secret")))
	a.do("the QR code drawn", chromedp.PollFunction[chromedp.Void](`() => { const i = document.querySelector("img.qr"); return i && i.complete && i.naturalWidth > 100; }`,
		chromedp.WithPollingTimeout(browserWait)))
	a.screenshot("console-totp")
	secret := evalIn[string](a, "secret", `document.getElementById("totp-secret").textContent`)
	code, err := totp.GenerateCode(secret, h.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.do("enrol", chromedp.SendKeys(chromedp.ID("totp"), code), chromedp.Click(chromedp.ID("totp-submit")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="now"]`)))
	a.do("the audit page", chromedp.Navigate(h.ConsoleURL+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	a.do("search the trail", chromedp.SendKeys(chromedp.ID("audit-action"), "ticket."), chromedp.SendKeys(chromedp.ID("audit-q"), "李明"),
		chromedp.Click(chromedp.ID("audit-search")), chromedp.WaitVisible(chromedp.CSS(`#audit[data-action="ticket."]`)))
	a.waitFor("the handover in the trail", `#audit tr[data-action="ticket.handover"]`, "wang 王建国", "127.0.0.1", "assignee=王建国", "assignee=李明")
	if n := evalIn[int](a, "rows", `document.querySelectorAll("#audit tbody tr[data-action]").length`); n != 1 {
		t.Errorf("the search found %d rows, want the handover alone", n)
	}
	a.do("the whole trail", chromedp.Navigate(h.ConsoleURL+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	a.waitFor("sign-ins and views", "#audit", "signin", "ticket.view", "totp.enrol", "signin.code_sent")
	a.screenshot("console-audit")
	csv := evalIn[string](a, "CSV export", `fetch(document.getElementById("audit-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	mustContain(t, "CSV", csv, "id,at,actor,via,address,action", "ticket.handover")

	// The station admin changes the roster and the directory from the console.
	a.do("the admin's roster page", chromedp.Navigate(h.ConsoleURL+"/roster"), chromedp.WaitVisible(chromedp.ID("add-shift")))
	a.screenshot("console-roster-admin")
	a.do("the directory page", chromedp.Click(chromedp.CSS(`header a[href^="/directory"]`)), chromedp.WaitVisible(chromedp.CSS("body")))
	a.waitFor("the station's officers", "body", "王建国", "李明")
	a.screenshot("console-directory")

	// A fraud alert: compose, preview per platform, confirm, watch it go out.
	a.do("the broadcasts page", chromedp.Navigate(h.ConsoleURL+"/broadcasts"), chromedp.WaitVisible(chromedp.ID("compose")))
	a.do("compose", chromedp.SendKeys(chromedp.ID("text"), "近期有人冒充客服要求退款，请勿点击陌生链接 @所有人"),
		chromedp.Click(chromedp.ID("draft")), chromedp.WaitVisible(chromedp.ID("preview")))
	a.waitFor("the preview as the groups get it", `#preview .platform[data-platform="playground"]`, "4 个群", "冒充客服")
	if got := evalIn[string](a, "preview text", `document.querySelector("#preview .bubble").textContent`); strings.Contains(got, "@所有人") {
		t.Errorf("the preview shows an @所有人 that would @ everyone: %q", got)
	}
	a.screenshot("console-broadcast-draft")
	a.do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	a.waitFor("the report", "#report", "送达报告", "已送达 4/4")
	a.screenshot("console-broadcast-done")
	for _, g := range []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"} {
		if lines := h.botLines(bot.Group, g); len(lines) == 0 || !strings.Contains(lines[len(lines)-1].Text, "冒充客服") {
			t.Errorf("group %s did not get the alert", g)
		}
	}
	a.do("the history", chromedp.Navigate(h.ConsoleURL+"/broadcasts"), chromedp.WaitVisible(chromedp.ID("history")))
	a.waitFor("the broadcast in the history", "#history tr", "B1", "赵刚", "done")

	// A chart: today's two questions.
	a.do("the stats page", chromedp.Navigate(h.ConsoleURL+"/stats"), chromedp.WaitVisible(chromedp.CSS("#chart-days svg")))
	if got := evalIn[[]string](a, "day bars", `[...document.querySelectorAll("#chart-days rect.bar")].map(r => r.querySelector("title").textContent)`); len(got) != 7 || got[6] != "11-23：2" {
		t.Errorf("the last 7 days' bars read %q, want today's 2 questions last", got)
	}
	if h := evalIn[float64](a, "today's bar", `document.querySelectorAll("#chart-days rect.bar")[6].getBoundingClientRect().height`); h < 50 {
		t.Errorf("today's bar is %.0f px high, want it drawn to the top of the chart", h)
	}
	a.waitFor("the hour chart", "#chart-hours", "各时段提问数")
	a.waitFor("the response-time chart", "#chart-response", "首次答复用时")
	a.waitFor("the officers' breach chart", "#chart-breach-officers", "各民警超时升级数")
	a.screenshot("console-stats")
	a.checkNoExceptions()
}
