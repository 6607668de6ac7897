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
func evalIn[T any](p *browserPage, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
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
	if n := evalIn[int](p, "markdown", `document.querySelectorAll("#messages .msg.bot pre.body").length`); n == 0 {
		t.Errorf("the markdown page is not shown preformatted\npage shows:\n%s", p.shows())
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

	shot := filepath.Join(t.TempDir(), "playground.png")
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	cancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

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
