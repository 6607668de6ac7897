package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// consoleHub is a whole hub with the web console on a free loopback port.
type consoleHub struct {
	*testHub
	ConsoleURL string
}

func startConsoleHub(t *testing.T, cfg *configs.Config, start time.Time, opts ...func(*hubOptions)) *consoleHub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, cfg, start, append(opts, func(o *hubOptions) { o.console = ln })...)
	return &consoleHub{testHub: h, ConsoleURL: "http://" + ln.Addr().String()}
}

// consoleClient is one browser-less visitor of the console: its own
// cookies, redirects not followed (the tests read where they lead).
type consoleClient struct {
	t    *testing.T
	h    *consoleHub
	http *http.Client
}

func (h *consoleHub) client(t *testing.T) *consoleClient { return h.clientFrom(t, "") }

// clientFrom is a visitor from another loopback address (127.0.0.2, ...),
// as a person at another machine.
func (h *consoleHub) clientFrom(t *testing.T, addr string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if addr != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &consoleClient{t: t, h: h, http: &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type consoleResponse struct {
	code     int
	body     string
	location string
}

func (c *consoleClient) do(req *http.Request) consoleResponse {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return consoleResponse{code: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func (c *consoleClient) get(path string) consoleResponse {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.h.ConsoleURL+path, nil)
	return c.do(req)
}

// post submits a form as the console's own page does (same origin).
func (c *consoleClient) post(path string, form url.Values, header ...string) consoleResponse {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.h.ConsoleURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.h.ConsoleURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

var codeInDM = regexp.MustCompile(`控制台登录验证码：(\d{6})`)

// codes are the sign-in codes the bot DMed to a playground user so far.
func (h *consoleHub) codes(user string) []string {
	var out []string
	for _, l := range h.botLines(bot.Direct, user) {
		if m := codeInDM.FindStringSubmatch(l.Text); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// askCode asks for a code as login and returns the one DMed to user.
func (c *consoleClient) askCode(login, user string) string {
	c.t.Helper()
	before := len(c.h.codes(user))
	if r := c.post("/signin", url.Values{"login": {login}}); r.code != http.StatusOK || !strings.Contains(r.body, "输入验证码") {
		c.t.Fatalf("ask for a code as %s: HTTP %d\n%s", login, r.code, r.body)
	}
	var code string
	waitFor(c.t, "the code in "+user+"'s chat", func() bool {
		cs := c.h.codes(user)
		if len(cs) > before {
			code = cs[len(cs)-1]
			return true
		}
		return false
	})
	return code
}

// signIn signs an officer in with the code DMed to them.
func (c *consoleClient) signIn(login, user string) {
	c.t.Helper()
	code := c.askCode(login, user)
	r := c.post("/signin/code", url.Values{"login": {login}, "code": {code}})
	if r.code != http.StatusSeeOther {
		c.t.Fatalf("sign in as %s: HTTP %d\n%s", login, r.code, r.body)
	}
}

// passTOTP enrols (or uses) an authenticator for an admin signed in.
func (c *consoleClient) passTOTP(secret string) string {
	c.t.Helper()
	if secret == "" {
		r := c.get("/signin/totp")
		m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(r.body)
		if m == nil {
			c.t.Fatalf("no authenticator secret on the enrolment page: HTTP %d\n%s", r.code, r.body)
		}
		secret = m[1]
	}
	code, err := totp.GenerateCode(secret, c.h.Clock.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.post("/signin/totp", url.Values{"secret": {secret}, "code": {code}})
	if r.code != http.StatusSeeOther || r.location != "/now" {
		c.t.Fatalf("pass TOTP: HTTP %d → %q\n%s", r.code, r.location, r.body)
	}
	return secret
}

func auditRows(t *testing.T, h *consoleHub, f store.AuditFilter) []store.AuditEntry {
	t.Helper()
	rows, err := h.store.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Expired, reused and wrong codes are each refused with what to do, and
// audited; the fifth failure within 15 minutes locks the account out (a
// right code too) and is logged, masked; another account from another
// address signs in meanwhile.
func TestConsoleSignInCodesAndLockout(t *testing.T) {
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"))
	c := h.client(t)

	// Expired: 5 minutes is the limit.
	code := c.askCode("王建国", "wang")
	h.Clock.Add(commands.SignInCodeTTL + time.Second)
	if r := c.post("/signin/code", url.Values{"login": {"王建国"}, "code": {code}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "验证码已过期") {
		t.Errorf("expired code: HTTP %d, want 401 saying it expired\n%s", r.code, r.body)
	}
	// Used: a code signs in once.
	code = c.askCode("wang", "wang")
	if r := c.post("/signin/code", url.Values{"login": {"wang"}, "code": {code}}); r.code != http.StatusSeeOther {
		t.Fatalf("right code: HTTP %d\n%s", r.code, r.body)
	}
	other := h.client(t)
	if r := other.post("/signin/code", url.Values{"login": {"wang"}, "code": {code}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "已经用过") {
		t.Errorf("reused code: HTTP %d, want 401 saying it was used\n%s", r.code, r.body)
	}
	// Wrong, until locked out.
	fresh := c.askCode("wang", "wang")
	wrong := "000000"
	if fresh == wrong {
		wrong = "111111"
	}
	for i := 0; i < 3; i++ {
		if r := other.post("/signin/code", url.Values{"login": {"wang"}, "code": {wrong}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "验证码不正确") {
			t.Errorf("wrong code %d: HTTP %d, want 401 saying it is wrong\n%s", i+1, r.code, r.body)
		}
	}
	if r := other.post("/signin/code", url.Values{"login": {"wang"}, "code": {fresh}}); r.code != http.StatusTooManyRequests || !strings.Contains(r.body, "错误次数过多") {
		t.Errorf("right code after 5 failures: HTTP %d, want 429 locked out\n%s", r.code, r.body)
	}
	if r := other.post("/signin", url.Values{"login": {"wang"}}); r.code != http.StatusTooManyRequests {
		t.Errorf("asking for a code while locked out: HTTP %d, want 429", r.code)
	}
	failed := auditRows(t, h, store.AuditFilter{Action: commands.AuditSignInFailed})
	if len(failed) != 5 {
		t.Errorf("%d failed sign-ins in the audit trail, want 5 (expired, used, 3 wrong)", len(failed))
	}
	reasons := ""
	for _, f := range failed {
		reasons += f.Reason + "\n"
		if f.Address != "127.0.0.1" || f.ActorOfficerID == nil || f.Result != store.AuditFailed {
			t.Errorf("failed sign-in row %+v: want the address, the officer and result failed", f)
		}
	}
	mustContain(t, "failure reasons", reasons, "expired", "used already", "wrong code")
	if n := len(auditRows(t, h, store.AuditFilter{Action: commands.AuditSignInLocked})); n == 0 {
		t.Error("the refused sign-in while locked out is not audited")
	}
	waitFor(t, "the lockout in the log", func() bool { return strings.Contains(h.Logs.String(), "console: sign-in") })
	if strings.Contains(h.Logs.String(), fresh) {
		t.Error("a sign-in code reached the log")
	}
	// The lockout is per address too: from this one nobody signs in now,
	// from another address another officer does.
	if r := h.client(t).post("/signin", url.Values{"login": {"李明"}}); r.code != http.StatusTooManyRequests {
		t.Errorf("another officer from the locked-out address: HTTP %d, want 429", r.code)
	}
	li := h.clientFrom(t, "127.0.0.2")
	li.signIn("李明", "li")
	if r := li.get("/now"); r.code != http.StatusOK || !strings.Contains(r.body, "李明") {
		t.Errorf("another officer during wang's lockout: HTTP %d", r.code)
	}
	// After the window wang signs in again.
	h.Clock.Add(commands.LockoutWindow + time.Second)
	c.signIn("wang", "wang")
	// Asking for codes again and again does not flood the officer's chat.
	for i := 0; i < 5; i++ {
		li.post("/signin", url.Values{"login": {"陈晓"}})
	}
	h.settle()
	before := len(h.codes("chen"))
	if r := li.post("/signin", url.Values{"login": {"陈晓"}}); r.code != http.StatusTooManyRequests || !strings.Contains(r.body, "最新收到的验证码") {
		t.Errorf("a sixth code within 15 minutes: HTTP %d, want 429 pointing to the latest code", r.code)
	}
	h.settle()
	if n := len(h.codes("chen")); n != before {
		t.Errorf("the sixth request sent a code (%d → %d)", before, n)
	}
	// A name nobody has gets the same page as a real one (the form does
	// not tell who works here), and no code is sent anywhere.
	if r := h.client(t).post("/signin", url.Values{"login": {"不存在的人"}}); r.code != http.StatusOK || !strings.Contains(r.body, "输入验证码") {
		t.Errorf("unknown name: HTTP %d, want the same code page", r.code)
	}
}

// A session unused for the idle timeout ends: the next request is sent to
// sign in, told why, and the end is audited; the absolute limit ends a
// busy one.
func TestConsoleSessionIdleAndAbsoluteTimeout(t *testing.T) {
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"))
	c := h.client(t)
	c.signIn("wang", "wang")
	if r := c.get("/tickets"); r.code != http.StatusOK {
		t.Fatalf("tickets after sign-in: HTTP %d", r.code)
	}
	h.Clock.Add(29 * time.Minute)
	if r := c.get("/tickets"); r.code != http.StatusOK {
		t.Fatalf("tickets 29 minutes later: HTTP %d → %s", r.code, r.location)
	}
	h.Clock.Add(31 * time.Minute)
	r := c.get("/tickets")
	if r.code != http.StatusSeeOther || r.location != "/signin?why=idle" {
		t.Fatalf("after 31 idle minutes: HTTP %d → %q, want a redirect to sign in (idle)", r.code, r.location)
	}
	if page := c.get(r.location); !strings.Contains(page.body, "闲置超时") {
		t.Errorf("the sign-in page does not say the session timed out:\n%s", page.body)
	}
	if r := c.get("/tickets"); r.location != "/signin?why=ended" {
		t.Errorf("the ended session came back: HTTP %d → %q", r.code, r.location)
	}
	if n := len(auditRows(t, h, store.AuditFilter{Action: "session.idle"})); n != 1 {
		t.Errorf("%d idle timeouts audited, want 1", n)
	}

	c.signIn("wang", "wang")
	for i := 0; i < 25; i++ { // busy every 29 minutes, past 12 hours
		h.Clock.Add(29 * time.Minute)
		if r := c.get("/tickets"); r.code != http.StatusOK {
			if got := h.Clock.Now().Sub(at("2026-11-23 11:00")); r.location != "/signin?why=expired" || got < 12*time.Hour-time.Hour {
				t.Fatalf("after %v: HTTP %d → %q, want only the 12-hour limit to end it", got, r.code, r.location)
			}
			return
		}
	}
	t.Error("a session in use lasted past 12 hours")
}

// A request another site's page makes through the officer's browser is
// refused and changes nothing.
func TestConsoleRefusesCrossOriginRequests(t *testing.T) {
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道灯坏了")
	h.settle()
	c := h.client(t)
	c.signIn("wang", "wang")
	ticket := firstTicket(t, h)
	r := c.post(fmt.Sprintf("/tickets/%d/act", ticket.ID), url.Values{"verb": {"close"}},
		"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.code != http.StatusForbidden || !strings.Contains(r.body, "来自别的网站") {
		t.Errorf("cross-origin close: HTTP %d, want 403 saying why\n%s", r.code, r.body)
	}
	if got, _ := h.store.TicketByID(context.Background(), ticket.ID); got.Status == store.StatusClosed {
		t.Error("a cross-origin request closed the ticket")
	}
	if r := c.post(fmt.Sprintf("/tickets/%d/act", ticket.ID), url.Values{"verb": {"close"}}); r.code != http.StatusSeeOther {
		t.Errorf("the same request from the console's page: HTTP %d\n%s", r.code, r.body)
	}
}

func firstTicket(t *testing.T, h *consoleHub) store.Ticket {
	t.Helper()
	ts, err := h.store.ListTickets(context.Background(), store.TicketFilter{})
	if err != nil || len(ts) == 0 {
		t.Fatalf("no ticket: %v", err)
	}
	return ts[len(ts)-1]
}

// An officer sees their own station's tickets only: another station's
// ticket by URL is "not found" (audited as denied) and cannot be acted on;
// a district admin sees both.
func TestConsoleOtherStationsTicketByURL(t *testing.T) {
	h := startConsoleHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"))
	h.say("juyuan-1", "res-9", "周先生", "@社区警务助手 小区门禁坏了，电话13812345678")
	h.settle()
	ticket := firstTicket(t, h)
	c := h.client(t)
	c.signIn("wang", "wang")
	if r := c.get("/tickets"); strings.Contains(r.body, "门禁") {
		t.Error("the ticket list shows another station's ticket")
	}
	r := c.get(fmt.Sprintf("/tickets/%d", ticket.ID))
	if r.code != http.StatusNotFound || strings.Contains(r.body, "门禁") || strings.Contains(r.body, "周先生") {
		t.Errorf("another station's ticket by URL: HTTP %d, want 404 without its content\n%s", r.code, r.body)
	}
	if r := c.post(fmt.Sprintf("/tickets/%d/act", ticket.ID), url.Values{"verb": {"close"}}); r.code != http.StatusNotFound {
		t.Errorf("closing another station's ticket: HTTP %d, want 404", r.code)
	}
	if got, _ := h.store.TicketByID(context.Background(), ticket.ID); got.Status == store.StatusClosed {
		t.Error("an officer closed another station's ticket")
	}
	if r := c.get("/tickets?station=" + fmt.Sprint(ticket.StationID)); r.code != http.StatusNotFound {
		t.Errorf("filtering by another station: HTTP %d, want 404", r.code)
	}
	denied := auditRows(t, h, store.AuditFilter{Action: "ticket."})
	if len(denied) != 2 || denied[0].Result != store.AuditDenied || denied[1].Result != store.AuditDenied {
		t.Errorf("audit rows %+v, want the view and the close, both denied", denied)
	}
	if r := c.get("/audit"); r.code != http.StatusForbidden {
		t.Errorf("an officer opens the audit trail: HTTP %d, want 403", r.code)
	}

	// The district admin sees it, once past the second factor.
	q := h.client(t)
	q.signIn("qian", "qian")
	if r := q.get(fmt.Sprintf("/tickets/%d", ticket.ID)); r.code != http.StatusSeeOther || r.location != "/signin/totp" {
		t.Errorf("an admin before TOTP: HTTP %d → %q, want the second factor first", r.code, r.location)
	}
	q.passTOTP("")
	r = q.get(fmt.Sprintf("/tickets/%d", ticket.ID))
	if r.code != http.StatusOK {
		t.Fatalf("district admin opens the ticket: HTTP %d", r.code)
	}
	// The ticket's own page shows the resident in full; the list masks them.
	mustContain(t, "ticket page", r.body, "周先生", "13812345678")
	list := q.get("/tickets").body
	mustContain(t, "ticket list", list, "周**", "138****5678")
	if strings.Contains(list, "周先生") || strings.Contains(list, "13812345678") {
		t.Error("the ticket list shows the resident's name or phone number in full")
	}
}

// Every change through the console leaves an audit row with who, from
// where, what, before and after; sign-ins, token creation and use too.
func TestConsoleEveryChangeLeavesAnAuditRow(t *testing.T) {
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道灯坏了")
	h.settle()
	ticket := firstTicket(t, h)
	z := h.client(t)
	z.signIn("zhao", "zhao")
	z.passTOTP("")
	act := func(verb string, officer uint) {
		t.Helper()
		form := url.Values{"verb": {verb}}
		if officer != 0 {
			form.Set("officer", fmt.Sprint(officer))
		}
		if r := z.post(fmt.Sprintf("/tickets/%d/act", ticket.ID), form); r.code != http.StatusSeeOther {
			t.Fatalf("%s: HTTP %d\n%s", verb, r.code, r.body)
		}
	}
	li, _, _, _ := h.rules.Officer("li")
	chen, _, _, _ := h.rules.Officer("chen")
	act(commands.ActHandover, li.ID)
	act(commands.ActAssign, chen.ID)
	act(commands.ActClose, 0)
	act(commands.ActReopen, 0)
	// A refused action (closing twice) changes nothing and says why.
	act(commands.ActClose, 0)
	if r := z.post(fmt.Sprintf("/tickets/%d/act", ticket.ID), url.Values{"verb": {"close"}}); r.code != http.StatusConflict || !strings.Contains(r.body, "已经办结") {
		t.Errorf("closing a closed ticket: HTTP %d, want 409 saying so", r.code)
	}
	rows := auditRows(t, h, store.AuditFilter{Action: "ticket."})
	var got []string
	for i := len(rows) - 1; i >= 0; i-- {
		e := rows[i]
		if e.Action == commands.AuditTicketView {
			continue
		}
		got = append(got, fmt.Sprintf("%s %s %s | %s → %s", e.Action, e.Actor, e.Result, e.Before, e.After))
		if e.Address != "127.0.0.1" || e.Via != store.AuditConsole || e.TicketID == nil || *e.TicketID != ticket.ID {
			t.Errorf("audit row %+v: want the address, the console and the ticket", e)
		}
	}
	want := []string{
		"ticket.handover zhao 赵刚 ok | status=open assignee=王建国 → status=open assignee=李明",
		"ticket.assign zhao 赵刚 ok | status=open assignee=李明 → status=open assignee=陈晓",
		"ticket.close zhao 赵刚 ok | status=open assignee=陈晓 → status=closed assignee=陈晓",
		"ticket.reopen zhao 赵刚 ok | status=closed assignee=陈晓 → status=open assignee=陈晓",
		"ticket.close zhao 赵刚 ok | status=open assignee=陈晓 → status=closed assignee=陈晓",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail of the actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The handover and the assignment reached the new holders.
	h.settle()
	mustContain(t, "li's DM", h.lastBot(bot.Direct, "li").Text, "由赵刚转交给您")
	mustContain(t, "chen's DM", h.lastBot(bot.Direct, "chen").Text, "由赵刚转交给您")
	// The timeline says so too.
	tl, err := h.rules.Timeline(context.Background(), ticket.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range tl {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); !strings.HasSuffix(got, "handed_over,handed_over,closed,reopened,closed") {
		t.Errorf("timeline %s, want it to end with the console's actions", got)
	}
	for _, action := range []string{commands.AuditSignIn, "signin.code_sent", "totp.enrol", commands.AuditTicketView} {
		if n := len(auditRows(t, h, store.AuditFilter{Action: action})); n == 0 {
			t.Errorf("no %s row in the audit trail", action)
		}
	}
	// The Audit page finds them, and exports them as CSV (audited).
	if r := z.get("/audit?action=ticket.&q=" + url.QueryEscape("李明")); r.code != http.StatusOK || !strings.Contains(r.body, "ticket.handover") || strings.Contains(r.body, "ticket.reopen") {
		t.Errorf("audit search: HTTP %d, want the handover to 李明 only\n%s", r.code, r.body)
	}
	csv := z.get("/audit.csv?action=ticket.close")
	if csv.code != http.StatusOK || strings.Count(csv.body, "ticket.close") != 2 || !strings.HasPrefix(csv.body, "\ufeffid,at,actor") {
		t.Errorf("audit CSV: HTTP %d\n%s", csv.code, csv.body)
	}
	if n := len(auditRows(t, h, store.AuditFilter{Action: "audit.export"})); n != 1 {
		t.Errorf("%d exports audited, want 1", n)
	}
	if r := z.get("/audit?from=yesterday"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "2026-11-23") {
		t.Errorf("a bad date in the audit filter: HTTP %d, want 400 with the format", r.code)
	}
}

// A per-account API token made in the console acts as its officer on the
// admin API (by may be left out, never names another), each use audited;
// a revoked token is refused; the shared token still works and is logged
// as deprecated.
func TestConsoleAPITokenActsAsItsOfficer(t *testing.T) {
	h := startConsoleHub(t, nil, at("2026-11-23 10:00"))
	z := h.client(t)
	z.signIn("zhao", "zhao")
	z.passTOTP("")
	r := z.post("/tokens", url.Values{"name": {"值班台脚本"}})
	m := regexp.MustCompile(`id="new-token">(jm_[A-Za-z0-9_-]+)<`).FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		t.Fatalf("create a token: HTTP %d\n%s", r.code, r.body)
	}
	token := m[1]
	if again := z.get("/tokens"); strings.Contains(again.body, token) {
		t.Error("the token is shown again after its creation")
	}
	api := newAdminServer(t, h)
	call := func(bearer, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", api+"/api/admin/broadcasts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := call(token, `{"scope":"station:taiping","text":"反诈提醒：不要点陌生链接"}`); code != http.StatusCreated {
		t.Fatalf("a draft with the officer's token: HTTP %d %v", code, out)
	}
	b, err := h.store.BroadcastByID(context.Background(), 1)
	if err != nil || b.AuthorID == nil || b.Author != "赵刚" {
		t.Fatalf("broadcast %+v (%v), want it authored by 赵刚", b, err)
	}
	if code, out := call(token, `{"scope":"station:taiping","text":"x","by":"wang"}`); code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(out["error"]), "这个令牌属于 zhao") {
		t.Errorf("a token acting as someone else: HTTP %d %v, want 422", code, out)
	}
	uses := auditRows(t, h, store.AuditFilter{Action: "token.use"})
	if len(uses) != 2 || uses[0].Via != store.AuditAPI || !strings.Contains(uses[0].Target, "值班台脚本") {
		t.Errorf("token uses audited: %+v, want 2 through the API naming the token", uses)
	}
	var id string
	if m := regexp.MustCompile(`action="/tokens/(\d+)/revoke"`).FindStringSubmatch(z.get("/tokens").body); m != nil {
		id = m[1]
	}
	if r := z.post("/tokens/"+id+"/revoke", nil); r.code != http.StatusSeeOther {
		t.Fatalf("revoke: HTTP %d\n%s", r.code, r.body)
	}
	if code, _ := call(token, `{"scope":"station:taiping","text":"x"}`); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: HTTP %d, want 401", code)
	}
	if code, _ := call(testAdminToken, `{"scope":"station:taiping","text":"反诈提醒","by":"zhao"}`); code != http.StatusCreated {
		t.Errorf("the shared token: HTTP %d, want it to keep working", code)
	}
	waitFor(t, "the deprecation warning", func() bool { return strings.Contains(h.Logs.String(), "JINGMIN_ADMIN_TOKEN is deprecated") })
	if strings.Contains(h.Logs.String(), token) {
		t.Error("the token reached the log")
	}
}

// newAdminServer serves the admin API of h on a free port, with the shared
// token set.
func newAdminServer(t *testing.T, h *consoleHub) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: adminAPI{h: h.hub, token: testAdminToken}.handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// The retention job purges audit rows past hub.audit_retention_days and
// keeps the rest.
func TestAuditRetentionPurgesOldRows(t *testing.T) {
	cfg, err := configs.Load("")
	if err != nil {
		t.Fatal(err)
	}
	days := 180
	cfg.Hub.AuditRetentionDays = &days
	h := startConsoleHub(t, cfg, at("2026-11-23 10:00"))
	ctx := context.Background()
	old := store.AuditEntry{At: at("2026-05-20 10:00"), Actor: "cli", Via: store.AuditCLI, Action: "test.old"}
	recent := store.AuditEntry{At: at("2026-05-30 10:00"), Actor: "cli", Via: store.AuditCLI, Action: "test.recent"}
	if err := h.store.AppendAudit(ctx, old, recent); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.rules.RunRetention(rctx, h.cfg.Hub.Retention(), time.Hour) }()
	waitFor(t, "the old audit row purged", func() bool { return len(auditRows(t, h, store.AuditFilter{Action: "test.old"})) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(auditRows(t, h, store.AuditFilter{Action: "test.recent"})); n != 1 {
		t.Errorf("a row within 180 days was purged")
	}
}

// Broadcasts from the console follow the broadcast rules (admins only,
// their own station's groups, only the author confirms) and each action
// is audited, refusals too.
func TestConsoleBroadcastsFollowTheRulesAndAreAudited(t *testing.T) {
	h := startConsoleHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), fastBroadcasts)
	w := h.client(t)
	w.signIn("wang", "wang")
	if r := w.get("/broadcasts"); r.code != http.StatusForbidden {
		t.Errorf("an officer opens broadcasts: HTTP %d, want 403", r.code)
	}
	if r := w.post("/broadcasts", url.Values{"scope": {"station:taiping"}, "text": {"反诈提醒"}}); r.code != http.StatusForbidden {
		t.Errorf("an officer posts a broadcast: HTTP %d, want 403", r.code)
	}
	z := h.client(t)
	z.signIn("zhao", "zhao")
	z.passTOTP("")
	if r := z.post("/broadcasts", url.Values{"scope": {"all"}, "text": {"反诈提醒"}}); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "只能向本所") {
		t.Errorf("a station admin to every station: HTTP %d, want 422 with the rule\n%s", r.code, r.body)
	}
	r := z.post("/broadcasts", url.Values{"scope": {"station:taiping"}, "text": {"反诈提醒：勿点陌生链接"}})
	if r.code != http.StatusSeeOther || r.location != "/broadcasts/1" {
		t.Fatalf("draft: HTTP %d → %q\n%s", r.code, r.location, r.body)
	}
	// Another admin can neither see nor confirm zhao's draft of another station.
	s := h.client(t)
	s.signIn("sun", "sun")
	s.passTOTP("")
	if r := s.get("/broadcasts/1"); r.code != http.StatusNotFound {
		t.Errorf("another station's admin opens the draft: HTTP %d, want 404", r.code)
	}
	if r := s.post("/broadcasts/1/confirm", nil); r.code != http.StatusConflict {
		t.Errorf("another station's admin confirms the draft: HTTP %d, want 409 (only the author confirms)", r.code)
	}
	if r := z.post("/broadcasts/1/confirm", nil); r.code != http.StatusSeeOther {
		t.Fatalf("confirm: HTTP %d\n%s", r.code, r.body)
	}
	waitFor(t, "the broadcast done", func() bool {
		b, err := h.store.BroadcastByID(context.Background(), 1)
		return err == nil && b.Status == store.BroadcastDone
	})
	if b, _ := h.store.BroadcastByID(context.Background(), 1); b.CreatedVia != store.ViaConsole || b.ConfirmedFrom != "127.0.0.1" {
		t.Errorf("broadcast record: via %q from %q, want the console and the address", b.CreatedVia, b.ConfirmedFrom)
	}
	var got []string
	rows := auditRows(t, h, store.AuditFilter{Action: "broadcast."})
	for i := len(rows) - 1; i >= 0; i-- {
		got = append(got, rows[i].Actor+" "+rows[i].Action+" "+rows[i].Result)
	}
	want := "zhao 赵刚 broadcast.create denied|zhao 赵刚 broadcast.create ok|sun 孙丽 broadcast.confirm denied|zhao 赵刚 broadcast.confirm ok"
	if strings.Join(got, "|") != want {
		t.Errorf("broadcast audit rows:\n%s\nwant:\n%s", strings.Join(got, "|"), want)
	}
}

// The Stats page draws the questions per day and per hour, says the
// after-hours and FAQ shares, exports its tables as CSV, answers an empty
// range with an empty chart that says so, and refuses a bad range and
// another station.
func TestConsoleStatsChartsAndCSV(t *testing.T) {
	h := startConsoleHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 楼道灯坏了")
	h.say("yangguang", "res-2", "王大爷", "@社区警务助手 车位被占了")
	h.settle()
	h.Clock.Set(at("2026-11-24 23:30")) // after hours
	h.say("hexie", "res-3", "李先生", "@社区警务助手 户口怎么迁")
	h.settle()
	h.say("juyuan-1", "res-9", "周先生", "@社区警务助手 别的派出所")
	h.settle()
	c := h.client(t)
	c.signIn("wang", "wang")
	r := c.get("/stats?from=2026-11-22&to=2026-11-24")
	if r.code != http.StatusOK {
		t.Fatalf("stats: HTTP %d\n%s", r.code, r.body)
	}
	bars := regexp.MustCompile(`<rect [^>]*class="bar" data-n="(\d+)"><title>([^<]+)</title>`).FindAllStringSubmatch(r.body, -1)
	var days []string
	for _, b := range bars[:3] {
		days = append(days, b[2])
	}
	if got := strings.Join(days, " "); got != "11-22：0 11-23：2 11-24：1" {
		t.Errorf("day bars %q, want 0, 2 and 1 questions on the three days (wang's station only)", got)
	}
	mustContain(t, "stats page", r.body, `id="stats-total">3<`, "33%（1/3）", "太平派出所", "和谐小区业主群")
	if strings.Contains(r.body, "菊园") {
		t.Error("an officer's stats show another station")
	}
	csv := c.get("/stats.csv?table=days&from=2026-11-22&to=2026-11-24")
	if csv.code != http.StatusOK || !strings.Contains(csv.body, "2026-11-23,2") {
		t.Errorf("days CSV: HTTP %d\n%s", csv.code, csv.body)
	}
	groups := c.get("/stats.csv?table=groups&from=2026-11-22&to=2026-11-24")
	if !strings.Contains(groups.body, "太平派出所,和谐小区业主群,2") {
		t.Errorf("groups CSV:\n%s", groups.body)
	}
	empty := c.get("/stats?from=2026-10-01&to=2026-10-07")
	if empty.code != http.StatusOK || strings.Count(empty.body, "该时段没有提问") != 2 || !strings.Contains(empty.body, "该时段没有工单") {
		t.Errorf("an empty range: HTTP %d, want both charts and the table to say there is nothing\n%s", empty.code, empty.body)
	}
	if r := c.get("/stats?from=2026-11-24&to=2026-11-01"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "时间范围") {
		t.Errorf("a range ending before it starts: HTTP %d, want 400 saying so", r.code)
	}
	if r := c.get("/stats?station=juyuan"); r.code != http.StatusNotFound {
		t.Errorf("another station's stats: HTTP %d, want 404", r.code)
	}
	if n := len(auditRows(t, h, store.AuditFilter{Action: "stats.export"})); n != 2 {
		t.Errorf("%d exports audited, want 2", n)
	}
}

// The break-glass local admin is made on the command line (password from
// stdin, hashed), signs in with it, must enrol an authenticator, then sees
// every station; a wrong password is refused and audited.
func TestConsoleLocalAdmin(t *testing.T) {
	db := t.TempDir() + "/hub.db"
	hh := startHubOn(t, broadcastConfig(t, 0), at("2026-11-23 10:00"), db)
	t.Setenv("JINGMIN_DATABASE_DSN", db)
	var out, errOut strings.Builder
	if err := cmdConsole(context.Background(), []string{"admin", "create", "--name", "ops"}, strings.NewReader("short\n"), &out, &errOut); err == nil || !strings.Contains(err.Error(), "12 characters") {
		t.Errorf("a short password: %v, want a refusal naming the length", err)
	}
	if err := cmdConsole(context.Background(), []string{"admin", "create", "--name", "ops"}, strings.NewReader("correct horse battery staple\n"), &out, &errOut); err != nil {
		t.Fatalf("console admin create: %v\n%s", err, errOut.String())
	}
	mustContain(t, "create's output", out.String(), "本地管理员 ops 已创建")
	adm, err := hh.store.ConsoleAdminByName(context.Background(), "ops")
	if err != nil || strings.Contains(adm.PasswordHash, "horse") || !strings.HasPrefix(adm.PasswordHash, "$2") {
		t.Fatalf("stored admin %+v (%v), want a bcrypt hash", adm, err)
	}
	// Sign in through the console of a hub on the same database.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run, err := hh.consoleServer(ln)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := &consoleHub{testHub: hh, ConsoleURL: "http://" + ln.Addr().String()}
	c := h.client(t)
	if r := c.post("/signin/admin", url.Values{"name": {"ops"}, "password": {"wrong password!"}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "用户名或密码不正确") {
		t.Errorf("a wrong password: HTTP %d, want 401", r.code)
	}
	if r := c.post("/signin/admin", url.Values{"name": {"ops"}, "password": {"correct horse battery staple"}}); r.code != http.StatusSeeOther || r.location != "/signin/totp" {
		t.Fatalf("the right password: HTTP %d → %q, want the second factor next", r.code, r.location)
	}
	if r := c.get("/tickets"); r.location != "/signin/totp" {
		t.Errorf("tickets before TOTP: HTTP %d → %q, want the second factor first", r.code, r.location)
	}
	secret := c.passTOTP("")
	if r := c.get("/tickets"); r.code != http.StatusOK || !strings.Contains(r.body, "菊园派出所") || !strings.Contains(r.body, "太平派出所") {
		t.Errorf("the local admin's ticket filter: HTTP %d, want every station", r.code)
	}
	// The next sign-in asks for the enrolled authenticator, not a new one.
	c2 := h.client(t)
	c2.post("/signin/admin", url.Values{"name": {"ops"}, "password": {"correct horse battery staple"}})
	if r := c2.get("/signin/totp"); strings.Contains(r.body, "totp-secret") {
		t.Error("an enrolled admin is offered a new authenticator")
	}
	c2.passTOTP(secret)
	failed := auditRows(t, h, store.AuditFilter{Action: commands.AuditSignInFailed})
	if len(failed) != 1 || failed[0].Actor != "admin:ops" {
		t.Errorf("failed local sign-ins audited: %+v, want one for admin:ops", failed)
	}
	if n := len(auditRows(t, h, store.AuditFilter{Action: "console.admin.create"})); n != 1 {
		t.Errorf("%d admin creations audited, want 1", n)
	}
}

// The roster and directory pages sit behind the console's own sign-in: a
// stranger is sent to sign in, an officer reads their station's roster but
// cannot change it or open another station's, and a station admin (past the
// second factor) changes it, audited as theirs.
func TestConsoleRosterPagesFollowTheConsoleAccounts(t *testing.T) {
	h := startConsoleHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"))
	wang, _, _, _ := h.rules.Officer("wang")
	li, _, _, _ := h.rules.Officer("li")
	var other uint
	for _, st := range h.rules.AllStations() {
		if st.ID != wang.StationID {
			other = st.ID
		}
	}
	if other == 0 {
		t.Fatal("the config has one station; the test needs two")
	}
	shifts := func() int { return len(h.rules.Shifts(wang.StationID)) }
	before := shifts()
	add := url.Values{"station": {fmt.Sprint(wang.StationID)}, "officer": {fmt.Sprint(li.ID)}, "day": {"6"},
		"start": {"09:00"}, "end": {"12:00"}, "kind": {"day"}}

	if r := h.client(t).get("/roster"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/signin") {
		t.Errorf("the roster signed out: HTTP %d → %q, want the sign-in page", r.code, r.location)
	}

	c := h.client(t)
	c.signIn("wang", "wang")
	if r := c.get("/roster"); r.code != http.StatusOK || !strings.Contains(r.body, "王建国") {
		t.Errorf("an officer's own roster: HTTP %d", r.code)
	}
	if r := c.post("/roster/shifts", add); r.code != http.StatusForbidden {
		t.Errorf("an officer adds a shift: HTTP %d, want 403", r.code)
	}
	if r := c.get(fmt.Sprintf("/roster?station=%d", other)); r.code != http.StatusForbidden {
		t.Errorf("an officer opens another station's roster: HTTP %d, want 403", r.code)
	}
	if n := shifts(); n != before {
		t.Fatalf("shifts %d → %d after refused requests", before, n)
	}

	z := h.client(t)
	z.signIn("zhao", "zhao")
	if r := z.post("/roster/shifts", add); r.code != http.StatusSeeOther || r.location != "/signin/totp" {
		t.Errorf("an admin before TOTP: HTTP %d → %q, want the second factor first", r.code, r.location)
	}
	z.passTOTP("")
	if r := z.post("/roster/shifts", add); r.code != http.StatusSeeOther {
		t.Fatalf("the admin adds a shift: HTTP %d\n%s", r.code, r.body)
	}
	if n := shifts(); n != before+1 {
		t.Fatalf("shifts %d → %d, want one more", before, n)
	}
	rows := auditRows(t, h, store.AuditFilter{Action: "roster.shift.create"})
	if len(rows) != 1 || !strings.Contains(rows[0].Actor, "赵刚") || rows[0].Via != store.AuditConsole || rows[0].Address == "" {
		t.Errorf("audit rows %+v, want the admin's shift, from the console, with the address", rows)
	}
}
