package rosterpage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/console/rosterpage"
	"github.com/jingminhub/jingmin/store"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// access is the console's part as these tests play it: the signed-in
// officer is named by a cookie the test sets through /as?code=, and what
// they may do follows their roles (admins edit their own station, officers
// view, swap and keep their own feed).
type access struct {
	rules *commands.Hub
	st    *store.Store
}

func (a access) Viewer(r *http.Request) (rosterpage.Viewer, bool) {
	c, err := r.Cookie("who")
	if err != nil {
		return rosterpage.Viewer{}, false
	}
	o, _, _, err := a.rules.Officer(c.Value)
	if err != nil {
		return rosterpage.Viewer{}, false
	}
	return rosterpage.Viewer{OfficerID: o.ID, Name: o.Code + " " + o.Name, StationID: o.StationID}, true
}

func (a access) Allowed(r *http.Request, v rosterpage.Viewer, act rosterpage.Action, stationID uint) bool {
	o := a.rules.OfficerByID(v.OfficerID)
	if o == nil || o.StationID != stationID {
		return false
	}
	switch act {
	case rosterpage.EditRoster, rosterpage.ApproveSwap, rosterpage.EditDirectory:
		return o.HasRole(store.RoleAdmin)
	}
	return true
}

type site struct {
	t     *testing.T
	url   string
	rules *commands.Hub
	st    *store.Store
	now   time.Time
}

// startSite serves the pages over a SQLite store with the example station
// and a second one, at now.
func startSite(t *testing.T, now string) *site {
	t.Helper()
	clock, err := time.ParseInLocation("2006-01-02 15:04", now, shanghai)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stations = append(cfg.Stations, configs.Station{Code: "xincheng", Name: "新成派出所", SLAMinutes: 20, DutyAccount: "xc-duty"})
	cfg.Officers = append(cfg.Officers,
		configs.Officer{Code: "sun", Station: "xincheng", Name: "孙强", Roles: []string{"officer", "admin"}, Identities: map[string]string{"playground": "sun"}},
		configs.Officer{Code: "xc-duty", Station: "xincheng", Name: "新成值班号", Roles: []string{"duty_account"}})
	st, err := store.Open(ctx, store.Options{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Sync(ctx, cfg.Seed()); err != nil {
		t.Fatal(err)
	}
	opts := commands.Options{Location: shanghai, Now: func() time.Time { return clock }, SwapApproval: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rules, err := commands.New(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rosterpage.New(rules, st, access{rules, st}, rosterpage.Options{Prefix: "/console/", Location: shanghai, Now: opts.Now, Log: opts.Log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	mux.HandleFunc("/as", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: r.URL.Query().Get("code"), Path: "/"})
		http.Redirect(w, r, r.URL.Query().Get("then"), http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &site{t: t, url: srv.URL, rules: rules, st: st, now: clock}
}

func (s *site) id(code string) uint {
	o, _, _, err := s.rules.Officer(code)
	if err != nil {
		s.t.Fatal(err)
	}
	return o.ID
}

func (s *site) who(at string) string {
	when, _ := time.ParseInLocation("2006-01-02 15:04", at, shanghai)
	out, err := s.rules.Who("taiping", "hexie", when)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

const wait = 30 * time.Second

type page struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	err []string
}

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

func newPage(t *testing.T, width int) *page {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "!!! NO CHROMIUM: the roster pages are NOT tested. Install it (apt-get install -y chromium) or set JINGMIN_CHROMIUM."
		if os.Getenv("JINGMIN_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, 900))
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &page{t: t, ctx: ctx}
	// The first action starts the browser, which lives as long as the
	// context it is given: the tab's own, waited on with a deadline.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium %s: %v", path, err)
		}
	case <-time.After(wait):
		t.Fatalf("chromium %s did not start within %v", path, wait)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			p.mu.Lock()
			p.err = append(p.err, e.ExceptionDetails.Text)
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage shows:\n%s", what, err, p.text())
	}
}

func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

func (p *page) eval(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
		p.t.Fatalf("%s: %v\npage shows:\n%s", what, err, p.text())
	}
}

func (p *page) open(u string) { p.t.Helper(); p.do("open "+u, chromedp.Navigate(u)) }

// waitFor waits until an element matching sel has text containing all
// wants. It asks again and again rather than with one long poll in the
// page, since the page it asks may be replaced by a form's answer meanwhile.
func (p *page) waitFor(what, sel string, wants ...string) {
	p.t.Helper()
	check := fmt.Sprintf(`[...document.querySelectorAll(%s)].some(e => %s.every(w => e.textContent.includes(w)))`, js(sel), jsList(wants))
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](check))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-p.ctx.Done():
			p.t.Fatalf("%s: %v", what, p.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s: %s never showed %q (last error %v)\npage shows:\n%s", what, sel, wants, last, p.text())
}

func jsList(items []string) string {
	if items == nil {
		items = []string{}
	}
	b, _ := json.Marshal(items)
	return string(b)
}

func (p *page) count(sel string) int {
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%s).length`, js(sel))))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// fill sets the fields of the form sel (by name) and submits it with its
// button named button (or the first), as a person would.
func (p *page) fill(sel string, fields map[string]string, button string) {
	p.t.Helper()
	if fields == nil {
		fields = map[string]string{}
	}
	b, _ := json.Marshal(fields)
	p.eval("fill "+sel, fmt.Sprintf(`(() => {
		const f = document.querySelector(%s);
		if (!f) throw new Error("no form " + %s);
		const v = %s;
		for (const [k, val] of Object.entries(v)) {
			const els = [...f.elements].filter(e => e.name === k);
			if (!els.length) throw new Error("no field " + k);
			for (const e of els) { if (e.type === "radio") e.checked = e.value === val; else e.value = val; }
		}
		const btns = [...f.querySelectorAll("button"), ...document.querySelectorAll("button[form='" + f.id + "']")];
		const btn = btns.find(x => %s === "" || x.value === %s || x.textContent.includes(%s)) || btns[0];
		btn.click();
		return true;
	})()`, js(sel), js(sel), b, js(button), js(button), js(button)))
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("JINGMIN_SCREENSHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

func (p *page) as(s *site, code, then string) {
	p.t.Helper()
	p.open(s.url + "/as?code=" + code + "&then=" + url.QueryEscape(then))
}

func (p *page) noExceptions() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.err {
		p.t.Errorf("uncaught exception in the page: %s", e)
	}
}

func auditRows(t *testing.T, st *store.Store, action string) []store.AuditEntry {
	t.Helper()
	rows, err := st.ListAudit(t.Context(), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// The calendar marks holidays and make-up working days, and shows the
// shifts routing uses; an admin adds a shift and routing follows at once;
// a zero-length shift is refused with its reason.
func TestRosterCalendarAndShifts(t *testing.T) {
	s := startSite(t, "2026-09-28 10:00") // a Monday before the National Day holidays
	p := newPage(t, 1200)
	st := fmt.Sprint(s.rules.AllStations()[0].ID)
	p.as(s, "zhao", "/console/roster?station="+st+"&view=month&date=2026-10-01")
	p.waitFor("the month", "#title", "2026年10月")
	p.waitFor("National Day marked", `[data-date="2026-10-01"] .mark.holiday`, "休", "国庆节")
	p.waitFor("the make-up day marked", `[data-date="2026-10-10"] .mark.makeup`, "班")
	p.waitFor("wang works the make-up Saturday", `[data-date="2026-10-10"] .entry`, "王建国", "08:30–17:30")
	p.waitFor("chen works the holiday", `[data-date="2026-10-01"] .entry`, "陈晓")
	if n := p.count(`[data-date="2026-10-01"] .entry[data-officer="王建国"]`); n != 0 {
		t.Errorf("wang shown working on National Day (%d entries)", n)
	}
	p.screenshot("roster-month")
	// The calendar agrees with roster who: 10-10 at 10:00 goes to wang.
	if w := s.who("2026-10-10 10:00"); !strings.Contains(w, "答复人：王建国") {
		t.Errorf("roster who disagrees with the calendar on the make-up day:\n%s", w)
	}

	p.open(s.url + "/console/roster?station=" + st + "&view=week&date=2026-11-23")
	p.waitFor("the week", "#title", "2026年11月23日")
	if w := s.who("2026-11-28 19:00"); strings.Contains(w, "答复人：王建国") {
		t.Fatalf("wang already routed on Saturday evening:\n%s", w)
	}
	p.fill("#add-shift", map[string]string{"officer": fmt.Sprint(s.id("wang")), "day": "6", "start": "09:00", "end": "09:00"}, "")
	p.waitFor("a zero-length shift refused", "#err", "长度为零")
	// A Saturday morning shift would overlap wang's workday shift on the
	// make-up Saturday 10-10: refused, naming it.
	p.fill("#add-shift", map[string]string{"officer": fmt.Sprint(s.id("wang")), "day": "6", "start": "09:00", "end": "12:00"}, "")
	p.waitFor("an overlap on the make-up day refused", "#err", "班次重叠", "10-10 08:30–17:30")
	p.fill("#add-shift", map[string]string{"officer": fmt.Sprint(s.id("wang")), "day": "6", "start": "18:00", "end": "20:00"}, "")
	p.waitFor("saved", "#msg", "排班已保存")
	p.waitFor("the new shift on Saturday", `[data-date="2026-11-28"] .entry`, "王建国", "18:00–20:00")
	if w := s.who("2026-11-28 19:00"); !strings.Contains(w, "答复人：王建国") {
		t.Errorf("routing does not follow the shift added in the page:\n%s", w)
	}
	if rows := auditRows(t, s.st, "roster.shift.create"); len(rows) != 1 || rows[0].Via != store.AuditConsole || rows[0].Address == "" {
		t.Errorf("audit rows: %+v", rows)
	}
	p.screenshot("roster-week")
	p.noExceptions()
}

// Clicking a shift gives an override: a colleague covers it.
func TestRosterOverrideByClickingAShift(t *testing.T) {
	s := startSite(t, "2026-11-23 10:00")
	p := newPage(t, 1200)
	st := fmt.Sprint(s.rules.AllStations()[0].ID)
	p.as(s, "zhao", "/console/roster?station="+st+"&date=2026-11-23")
	p.waitFor("li on Tuesday", `[data-date="2026-11-24"] .entry`, "李明")
	p.eval("click li's Tuesday shift", `document.querySelector('[data-date="2026-11-24"] .entry[data-officer="李明"]').click() || true`)
	p.waitFor("the override page", "#title", "李明", "2026-11-24", "08:30–17:30")
	p.screenshot("roster-override")
	p.fill("#override", map[string]string{"mode": "cover", "cover": fmt.Sprint(s.id("chen"))}, "")
	p.waitFor("saved", "#msg", "调班已保存")
	p.waitFor("chen covers", `[data-date="2026-11-24"] .entry`, "陈晓", "08:30–17:30", "调班")
	p.waitFor("li off", `[data-date="2026-11-24"] .off`, "李明 休")
	if w, _ := s.rules.Who("taiping", "yangguang", time.Date(2026, 11, 24, 10, 0, 0, 0, shanghai)); strings.Contains(w, "答复人：李明") {
		t.Errorf("li still routed on the day covered:\n%s", w)
	}
	p.noExceptions()
}

// A swap asked in the page by an officer, accepted by the colleague and
// approved by the admin; each step is audited and the roster follows; an
// officer gets no edit controls and a direct post is refused.
func TestRosterSwapApproved(t *testing.T) {
	s := startSite(t, "2026-11-23 10:00")
	p := newPage(t, 420) // a phone
	st := fmt.Sprint(s.rules.AllStations()[0].ID)
	p.as(s, "wang", "/console/roster?station="+st+"&date=2026-11-23")
	p.waitFor("the roster", "#title", "2026年11月23日")
	if p.count("#add-shift") != 0 {
		t.Error("an officer is shown the add-shift form")
	}
	p.fill("#request-swap form", map[string]string{"date": "2026-11-25", "colleague": fmt.Sprint(s.id("chen"))}, "")
	p.waitFor("asked", "#msg", "换班请求已发出")
	p.waitFor("listed", `[data-swap="S1"] .state`, "在等同事同意")
	p.screenshot("roster-phone-swap-asked")

	p.as(s, "chen", "/console/roster?station="+st+"&date=2026-11-23")
	p.fill(`[data-swap="S1"] form`, nil, "accept")
	p.waitFor("accepted", `[data-swap="S1"] .state`, "在等管理员批准")

	p.as(s, "zhao", "/console/roster?station="+st+"&date=2026-11-23")
	p.fill(`[data-swap="S1"] form`, nil, "approve")
	p.waitFor("approved", `[data-swap="S1"] .state`, "生效")
	p.waitFor("chen on wang's Wednesday", `[data-date="2026-11-25"] .entry`, "陈晓", "08:30–17:30")
	p.screenshot("roster-phone-swap-approved")
	if w := s.who("2026-11-25 10:00"); strings.Contains(w, "答复人：王建国") {
		t.Errorf("wang still routed on the swapped day:\n%s", w)
	}
	rows := auditRows(t, s.st, "roster.swap.")
	if len(rows) != 3 {
		t.Fatalf("%d swap audit rows, want 3", len(rows))
	}
	for _, r := range rows {
		if r.Via != store.AuditConsole || r.ActorOfficerID == nil {
			t.Errorf("swap audit row not from the console: %+v", r)
		}
	}
	// wang posting a shift straight to the handler is refused.
	form := url.Values{"station": {st}, "officer": {fmt.Sprint(s.id("wang"))}, "day": {"6"}, "start": {"09:00"}, "end": {"12:00"}}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/console/roster/shifts", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "who", Value: "wang"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an officer's post of a shift: %d, want 403", resp.StatusCode)
	}
	// Nor may they open another station's roster by its URL.
	other := fmt.Sprint(s.rules.AllStations()[1].ID)
	req, _ = http.NewRequest(http.MethodGet, s.url+"/console/roster?station="+other, nil)
	req.AddCookie(&http.Cookie{Name: "who", Value: "wang"})
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another station's roster: %d, want 403", resp.StatusCode)
	}
	if got := len(auditRows(t, s.st, "roster.shift.")); got != 0 {
		t.Errorf("refused posts left %d audit rows", got)
	}
	p.noExceptions()
}

// An officer's own calendar feed: made in the page, served as iCalendar
// at the secret address, dead once revoked.
func TestRosterCalendarFeed(t *testing.T) {
	s := startSite(t, "2026-11-23 10:00")
	p := newPage(t, 1200)
	st := fmt.Sprint(s.rules.AllStations()[0].ID)
	p.as(s, "li", "/console/roster?station="+st)
	p.fill("#feed form", nil, "")
	p.waitFor("the address", "#feed-url code", "/console/ical/")
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	feedURL, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#feed-url code").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		resp, err := http.Get(feedURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get()
	if code != 200 || !strings.Contains(body, "BEGIN:VCALENDAR") || !strings.Contains(body, "DTSTART;TZID=Asia/Shanghai:20261124T083000") {
		t.Fatalf("feed: %d\n%s", code, body)
	}
	p.open(s.url + "/console/roster?station=" + st)
	p.fill("#feed form:nth-of-type(2)", nil, "作废")
	p.waitFor("revoked", "#msg", "作废")
	if code, _ := get(); code != http.StatusNotFound {
		t.Errorf("revoked feed answers %d", code)
	}
	p.noExceptions()
}

// The directory page: try a question, register an unknown chat in one
// click, and an edit of a group someone else changed meanwhile is refused
// as a conflict with the other edit kept.
func TestDirectoryPage(t *testing.T) {
	s := startSite(t, "2026-11-23 10:00")
	p := newPage(t, 1200)
	st := fmt.Sprint(s.rules.AllStations()[0].ID)
	if _, err := s.st.RecordUnknownChat(t.Context(), "playground", "new-chat", "幸福里业主群", nil, nil); err != nil {
		t.Fatal(err)
	}
	p.as(s, "zhao", "/console/directory?station="+st)
	p.fill("#try", map[string]string{"try": "居住证到期了怎么续"}, "")
	p.waitFor("the FAQ that answers", "#try-result", "居住证")
	p.fill(`[data-unknown="new-chat"] form`, map[string]string{"officer": fmt.Sprint(s.id("li"))}, "")
	p.waitFor("registered", "#msg", "群已保存")
	p.waitFor("listed", `[data-group="new-chat"]`, "new-chat")
	if n := p.count(`[data-unknown="new-chat"]`); n != 0 {
		t.Error("the registered chat is still listed as unknown")
	}
	// Another admin renames hexie while this page is open.
	var hexie *store.Group
	for _, g := range s.rules.Groups(s.rules.AllStations()[0].ID) {
		if g.ChatID == "hexie" {
			hexie = g
		}
	}
	other := commands.Actor{Name: "cli", Via: store.AuditCLI}
	if _, err := s.rules.SaveGroup(t.Context(), other, commands.GroupInput{ID: hexie.ID, Version: hexie.Version, Name: "和谐小区一期业主群", StationID: hexie.StationID, OfficerID: hexie.OfficerID}); err != nil {
		t.Fatal(err)
	}
	p.fill(`[data-group="hexie"] form`, map[string]string{"tags": "住宅,重点"}, "保存")
	p.waitFor("conflict", "#err", "刚被其他人修改")
	p.waitFor("the other edit shown", `[data-group="hexie"]`, "hexie")
	for _, g := range s.rules.Groups(s.rules.AllStations()[0].ID) {
		if g.ChatID == "hexie" && (g.Name != "和谐小区一期业主群" || strings.Contains(g.Tags, "重点")) {
			t.Errorf("hexie now %q tags %q: the other admin's edit was lost or the stale one written", g.Name, g.Tags)
		}
	}
	p.eval("preview ack", `document.querySelector('[data-template="ack"] button[name="preview"]').click() || true`)
	p.waitFor("preview", "#preview", "工单 #128")
	p.screenshot("directory")
	p.noExceptions()
}
