package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browserWait bounds every step in the page, so a broken page fails the test
// instead of hanging it.
const browserWait = 30 * time.Second

// chromiumPath is the browser the page tests drive: $JINGMIN_CHROMIUM, else
// /usr/bin/chromium, else chromium or chromium-browser on $PATH.
func chromiumPath() string {
	if p := os.Getenv("JINGMIN_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserPage is one headless Chromium tab.
type browserPage struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	thrown []string // uncaught exceptions in the page
}

// needChromium returns the browser to drive, or skips the test when there is
// none (fails it under JINGMIN_REQUIRE_SERVICES=1).
func needChromium(t *testing.T) string {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "!!! NO CHROMIUM: the playground page is NOT tested. Install it (apt-get install -y chromium) or set JINGMIN_CHROMIUM."
		if os.Getenv("JINGMIN_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// newBrowserPage starts a headless Chromium with a fresh profile. Start the
// hub first: cleanups run last-in first-out, so the browser and its open
// long-polls go away before the hub shuts down.
func newBrowserPage(t *testing.T, path string) *browserPage {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 820),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	p := &browserPage{t: t, ctx: ctx}
	start, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium %s: %v", path, err)
		}
	case <-start.Done():
		t.Fatalf("chromium %s did not start within %v", path, browserWait)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			p.mu.Lock()
			p.thrown = append(p.thrown, msg)
			p.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// do runs actions within browserWait, failing the test with what the page
// shows when they do not finish.
func (p *browserPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage shows:\n%s", what, err, p.shows())
	}
}

// eval evaluates a JavaScript expression within browserWait.
func evalIn[T any](p *browserPage, what, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.t.Fatalf("%s: %v\npage shows:\n%s", what, err, p.shows())
	}
	return v
}

// shows is the visible text of the chat, for failure messages.
func (p *browserPage) shows() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#chat-name, #messages .msg, #error")].map(e => (e.classList.contains("bot") ? "[bot] " : "") + e.innerText).join("\n---\n")`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// choose picks an option in a <select> as a person does: the value changes
// and the page hears "change".
func (p *browserPage) choose(id, value string) {
	p.t.Helper()
	ok := evalIn[bool](p, "choose "+value+" in #"+id, fmt.Sprintf(`(() => {
		const s = document.getElementById(%s);
		if (!s || ![...s.options].some(o => o.value === %s)) return false;
		s.value = %s;
		s.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, jsString(id), jsString(value), jsString(value)))
	if !ok {
		p.t.Fatalf("#%s has no option %q\npage shows:\n%s", id, value, p.shows())
	}
}

// edit replaces the text of an input field and leaves it, as a person does.
func (p *browserPage) edit(id, value string) {
	p.t.Helper()
	evalIn[chromedp.Void](p, "select #"+id, fmt.Sprintf(`(e => { e.focus(); e.select(); })(document.getElementById(%s))`, jsString(id)))
	p.do("type into #"+id, chromedp.SendKeys(chromedp.ID(id), kb.Backspace+value))
	if got := evalIn[string](p, "read #"+id, fmt.Sprintf(`document.getElementById(%s).value`, jsString(id))); got != value {
		p.t.Fatalf("#%s = %q after editing, want %q", id, got, value)
	}
	evalIn[chromedp.Void](p, "leave #"+id, fmt.Sprintf(`document.getElementById(%s).dispatchEvent(new Event("change", {bubbles: true}))`, jsString(id)))
}

// waitFor waits until an element matching sel has text containing all wants.
func (p *browserPage) waitFor(what, sel string, wants ...string) {
	p.t.Helper()
	p.do(what, chromedp.PollFunction[chromedp.Void](`(sel, wants) => [...document.querySelectorAll(sel)].some(e => wants.every(w => e.textContent.includes(w)))`,
		chromedp.WithPollingArgs(sel, wants), chromedp.WithPollingTimeout(browserWait), chromedp.WithPollingInterval(50*time.Millisecond)))
}

// screenshot saves the page as NAME.png in $JINGMIN_SCREENSHOTS (for a
// person to look at) or the test's temp dir.
func (p *browserPage) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("JINGMIN_SCREENSHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(dir, name+".png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}

func (p *browserPage) checkNoExceptions() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.thrown {
		p.t.Errorf("uncaught exception in the page: %s", e)
	}
}

func TestBrowserResidentAsksOfficerAnswersInPage(t *testing.T) {
	chromium := needChromium(t)
	h := startHub(t, nil, at("2026-11-23 10:00")) // Monday, wang on shift for hexie
	p := newBrowserPage(t, chromium)

	p.do("open the page", chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	if got := evalIn[string](p, "persona", `document.getElementById("persona").value`); got != "resident" {
		t.Fatalf("persona = %q at start, want resident", got)
	}
	p.choose("chat", "group:hexie")
	p.waitFor("chat title", "#chat-name", "和谐小区业主群")

	// A resident asks through the @ button, sending with Enter.
	p.do("mention the bot", chromedp.Click(chromedp.ID("mention")), chromedp.SendKeys(chromedp.ID("text"), "楼道有焦味"))
	if got := evalIn[string](p, "input", `document.getElementById("text").value`); got != "@社区警务助手 楼道有焦味" {
		t.Fatalf("input = %q after the @ button, want %q", got, "@社区警务助手 楼道有焦味")
	}
	p.do("send with Enter", chromedp.SendKeys(chromedp.ID("text"), kb.Enter))
	p.waitFor("own message in the group", "#messages .msg.mine", "楼道有焦味")
	p.waitFor("110 guidance with a ticket number", "#messages .msg.bot", "110", "#1")
	if got := evalIn[string](p, "mention chip", `(document.querySelector('#messages .msg.bot .at[data-user="res-1"]') || {}).textContent || ""`); !strings.Contains(got, "@刘阿姨") {
		t.Errorf("bot reply @ chip = %q, want @刘阿姨\npage shows:\n%s", got, p.shows())
	}
	if got := evalIn[string](p, "input after send", `document.getElementById("text").value`); got != "" {
		t.Errorf("input = %q after sending, want it cleared", got)
	}

	// Message text is shown as text, never as markup.
	p.do("type markup", chromedp.SendKeys(chromedp.ID("text"), `<b id="bold">粗体</b><img src=x onerror="document.body.dataset.pwned=1">`+kb.Enter))
	p.waitFor("markup shown as text", "#messages .msg.mine", `<b id="bold">粗体</b>`)
	if n := evalIn[int](p, "markup", `document.querySelectorAll("#messages b, #messages img").length + (document.body.dataset.pwned ? 100 : 0)`); n != 0 {
		t.Errorf("message markup became %d elements in the page", n)
	}

	// The officer on shift sees the page in the direct chat and answers.
	p.choose("persona", "staff:wang")
	p.choose("chat", "direct")
	p.waitFor("chat title", "#chat-name", "私聊")
	p.waitFor("emergency page for the officer", "#messages .msg.bot", "#1", "楼道有焦味")
	if got := evalIn[string](p, "markdown heading", `(document.querySelector("#messages .msg.bot .body.md h3") || {}).textContent || ""`); !strings.Contains(got, "紧急工单 #1") {
		t.Errorf("the emergency page's heading = %q, want an h3 naming 紧急工单 #1\npage shows:\n%s", got, p.shows())
	}
	if hidden := evalIn[bool](p, "resident fields", `document.getElementById("resident-fields").hidden`); !hidden {
		t.Errorf("resident name and id are shown for an officer")
	}
	p.do("answer", chromedp.SendKeys(chromedp.ID("text"), "#1 马上到"), chromedp.Click(chromedp.ID("send")))
	p.waitFor("officer's own answer", "#messages .msg.mine", "#1 马上到")
	p.waitFor("confirmation to the officer", "#messages .msg.bot", "答复工单 #1")

	// Back in the group the resident sees the answer.
	p.choose("persona", "resident")
	p.choose("chat", "group:hexie")
	p.waitFor("answer in the group", "#messages .msg.bot", "马上到", "#1")
	if got := evalIn[string](p, "officer message", `[...document.querySelectorAll("#messages .msg")].map(m => m.textContent).join("\n")`); strings.Count(got, "马上到") != 1 {
		t.Errorf("group transcript shows the answer %d times, want once:\n%s", strings.Count(got, "马上到"), got)
	}

	p.screenshot("playground")

	// An API error reaches the person: no resident id.
	p.edit("resident-id", "")
	p.do("send without an id", chromedp.SendKeys(chromedp.ID("text"), "你好"), chromedp.Click(chromedp.ID("send")))
	p.waitFor("API error shown", "#error", "sender_id is required")
	if visible := evalIn[bool](p, "error", `!document.getElementById("error").hidden`); !visible {
		t.Errorf("#error is hidden")
	}
	p.edit("resident-id", "res-1")
	p.do("send again", chromedp.SendKeys(chromedp.ID("text"), "谢谢"+kb.Enter))
	p.waitFor("message after fixing the id", "#messages .msg.mine", "谢谢")
	if visible := evalIn[bool](p, "error", `!document.getElementById("error").hidden`); visible {
		t.Errorf("#error still shown after a successful send")
	}
	p.checkNoExceptions()
}

// An officer's DM is markdown and the page shows it as such: a heading, a
// list, line breaks, never the syntax characters; a resident's question
// inside it, markup and markdown alike, stays text and adds nothing to
// the page.
func TestBrowserMarkdownRenderedAndResidentMarkupInert(t *testing.T) {
	chromium := needChromium(t)
	h := startHub(t, nil, at("2026-11-23 10:00"))
	hostile := "路灯坏了 <img src=x onerror=\"document.body.dataset.pwned=1\"> **粗体** [点我](http://evil.example)\n### 标题\n- 列表\n> 引用"
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 "+hostile)
	h.settle()
	p := newBrowserPage(t, chromium)
	p.do("open the page", chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	p.choose("persona", "staff:wang")
	p.choose("chat", "direct")
	p.waitFor("the new ticket's DM", "#messages .msg.bot .body.md h3", "新工单 #1")
	got := evalIn[map[string]any](p, "the DM", `(() => {
		const dm = [...document.querySelectorAll("#messages .msg.bot")].find(m => m.querySelector("h3"));
		return {
			text: dm.querySelector(".body").innerText,
			items: [...dm.querySelectorAll("ul > li")].map(li => li.textContent),
			paragraphs: dm.querySelectorAll(".body > p").length,
			foreign: document.querySelectorAll("#messages img, #messages a, #messages script, #messages iframe").length,
			bold: [...dm.querySelectorAll("strong")].map(e => e.textContent),
			pwned: document.body.dataset.pwned || "",
		};
	})()`)
	text, _ := got["text"].(string)
	for _, syntax := range []string{"###", "- ", "**", "<img", "](http", "> "} {
		if strings.Contains(text, syntax) {
			t.Errorf("the DM shows markdown or markup %q as written:\n%s", syntax, text)
		}
	}
	mustContain(t, "DM", text, "新工单 #1", "群：和谐小区业主群", "居民：刘阿姨", "路灯坏了", "＜img src=x", "＊＊粗体＊＊", "＃＃＃ 标题", "－ 列表", "＞ 引用")
	if items, _ := got["items"].([]any); len(items) != 3 {
		t.Errorf("the DM's list = %q, want its three items (群, 居民, 问题)", items)
	}
	if n, _ := got["paragraphs"].(float64); n < 1 {
		t.Errorf("the DM's closing line is not a paragraph of its own:\n%s", text)
	}
	if n, _ := got["foreign"].(float64); n != 0 {
		t.Errorf("the resident's question added %v elements (img, a, script) to the page", n)
	}
	if b, _ := got["bold"].([]any); len(b) != 0 {
		t.Errorf("the resident's ** became bold: %q", b)
	}
	if pwned, _ := got["pwned"].(string); pwned != "" {
		t.Errorf("the resident's onerror handler ran")
	}
	p.screenshot("markdown-dm")

	// In the group the resident's words are shown as written, and the
	// acknowledgement (plain text) as text.
	p.choose("persona", "resident")
	p.choose("chat", "group:hexie")
	p.waitFor("the question as written", "#messages .msg.mine", "<img src=x", "### 标题", "> 引用")
	p.waitFor("the acknowledgement", "#messages .msg.bot", "#1")
	if n := evalIn[int](p, "markup in the group", `document.querySelectorAll("#messages img, #messages a, #messages .md").length + (document.body.dataset.pwned ? 100 : 0)`); n != 0 {
		t.Errorf("the group's messages became %d elements or markdown", n)
	}
	p.checkNoExceptions()
}

// An empty chat is live as soon as the page's first request is answered:
// the status does not wait for a long-poll to run out, and what is posted
// then arrives.
func TestBrowserEmptyChatIsLiveAtOnce(t *testing.T) {
	chromium := needChromium(t)
	h := startHub(t, nil, at("2026-11-23 10:00"))
	p := newBrowserPage(t, chromium)
	p.do("open the page", chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	p.choose("chat", "group:xincun-elders")
	p.waitFor("the chat is live", "#status.ok", "在线")
	// A long-poll (wait=20) that has ended is in the page's resource
	// timings: none may have ended for the page to be live.
	if ended := evalIn[[]string](p, "ended long-polls", `performance.getEntriesByType("resource").map(e => e.name).filter(n => n.includes("/api/chats/group/xincun-elders") && /[?&]wait=[1-9]/.test(n))`); len(ended) != 0 {
		t.Errorf("the page became live only after a long-poll ended: %q", ended)
	}
	if n := evalIn[int](p, "messages", `document.querySelectorAll("#messages .msg").length`); n != 0 {
		t.Errorf("the empty chat shows %d messages", n)
	}
	h.say("xincun-elders", "res-7", "李奶奶", "大家好")
	p.waitFor("a message posted meanwhile", "#messages .msg", "大家好", "李奶奶")
	p.checkNoExceptions()
}

// After a restart on the same database the page shows each chat's
// history: the residents' questions and what the hub sent, in order, once;
// and a reply button only on lines about a ticket the officer may still
// answer: not under the help text, not under "没有找到工单 #99", not under
// a closed ticket's lines.
func TestBrowserHistoryAfterRestartAndReplyButtons(t *testing.T) {
	chromium := needChromium(t)
	db := filepath.Join(t.TempDir(), "hub.db")
	first := startHubOn(t, nil, at("2026-11-23 10:00"), db)
	first.say("hexie", "res-1", "刘阿姨", "@社区警务助手 小区门口的路灯坏了")
	first.settle()
	first.dm("wang", "#1 明天安排人来修")
	first.settle()
	first.say("hexie", "res-2", "王大爷", "@社区警务助手 楼下停车位被占了")
	first.settle()
	for _, cmd := range []string{"#2 办结", "帮助", "#99 你好"} {
		first.dm("wang", cmd)
		first.settle()
	}
	first.Stop()

	h := startHubOn(t, nil, at("2026-11-23 10:30"), db)
	p := newBrowserPage(t, chromium)
	p.do("open the page", chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	p.choose("chat", "group:hexie")
	p.waitFor("the answer from before the restart", "#messages .msg.bot", "明天安排人来修")
	got := evalIn[[]string](p, "the group", `[...document.querySelectorAll("#messages .msg")].map(m => (m.classList.contains("bot") ? "bot: " : m.querySelector(".who").textContent + ": ") + m.querySelector(".body").textContent)`)
	want := []string{"刘阿姨: 小区门口的路灯坏了", "bot: @刘阿姨", "bot: @刘阿姨 明天安排人来修", "王大爷: 楼下停车位被占了", "bot: @王大爷"}
	if len(got) != len(want) {
		t.Fatalf("the group after a restart shows %d messages, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("message %d after the restart = %q, want it to start %q", i+1, got[i], want[i])
		}
	}
	p.screenshot("history-group")

	// What is said now follows, once.
	h.say("hexie", "res-1", "刘阿姨", "谢谢民警")
	p.waitFor("a message after the restart", "#messages .msg", "谢谢民警")
	if n := evalIn[int](p, "questions", `[...document.querySelectorAll("#messages .msg")].filter(m => m.textContent.includes("路灯坏了")).length`); n != 1 {
		t.Errorf("the question is shown %d times, want once", n)
	}

	p.choose("persona", "staff:wang")
	p.choose("chat", "direct")
	p.waitFor("the DMs from before the restart", "#messages .msg.bot", "新工单 #2")
	p.waitFor("the no-ticket reply", "#messages .msg.bot", "没有找到工单 #99")
	buttons := evalIn[map[string]string](p, "reply buttons", `Object.fromEntries([...document.querySelectorAll("#messages .msg.bot")].map(m => [m.querySelector(".body").textContent.slice(0, 24), [...m.querySelectorAll("button.reply")].map(b => b.textContent).join(",")]))`)
	withButton := 0
	for line, b := range buttons {
		switch {
		case strings.Contains(line, "#1") && !strings.Contains(line, "可用指令"):
			if b != "回复 #1" {
				t.Errorf("line %q about open ticket #1 has buttons %q, want 回复 #1", line, b)
			}
			withButton++
		case b != "":
			t.Errorf("line %q has a reply button %q", line, b)
		}
	}
	if withButton < 2 {
		t.Errorf("%d lines about ticket #1 (its DM, the answer's confirmation), want 2:\n%v", withButton, buttons)
	}
	p.screenshot("history-direct")

	// Closed, the ticket's lines offer no reply: at once, and when the chat
	// is shown again.
	h.dm("wang", "#1 办结")
	h.settle()
	p.waitFor("closed", "#messages .msg.bot", "工单 #1 已办结")
	if n := evalIn[int](p, "reply buttons", `document.querySelectorAll("#messages button.reply").length`); n != 0 {
		t.Errorf("%d reply buttons once ticket #1 was closed, want none\npage shows:\n%s", n, p.shows())
	}
	p.choose("chat", "group:hexie")
	p.choose("chat", "direct")
	p.waitFor("the chat again", "#messages .msg.bot", "工单 #1 已办结")
	if n := evalIn[int](p, "reply buttons", `document.querySelectorAll("#messages button.reply").length`); n != 0 {
		t.Errorf("%d reply buttons in the chat shown again after ticket #1 was closed, want none\npage shows:\n%s", n, p.shows())
	}
	p.checkNoExceptions()
}

// The browser's unprompted request for /favicon.ico gets an icon.
func TestBrowserFavicon(t *testing.T) {
	chromium := needChromium(t)
	h := startHub(t, nil, at("2026-11-23 10:00"))
	p := newBrowserPage(t, chromium)
	p.do("open the page", chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	for _, path := range []string{"/favicon.ico", "/favicon.svg"} {
		got := evalIn[string](p, path, `fetch(`+jsString(path)+`).then(r => r.status + " " + r.headers.get("content-type"))`, chromedp.EvalAwaitPromise)
		if !strings.HasPrefix(got, "200 image/") {
			t.Errorf("GET %s: %s, want 200 and an image", path, got)
		}
	}
	if n := evalIn[int](p, "icon links", `document.querySelectorAll('link[rel="icon"]').length`); n == 0 {
		t.Errorf("the page names no icon")
	}
}
