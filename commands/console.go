package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// The web console's rules: who may sign in and how, who sees which
// tickets, and what the console's ticket actions do. The console package
// is the HTTP face of these; nothing there decides.

// Sign-in codes and the lockout.
const (
	// SignInCodeTTL is how long a code DMed to an officer is valid.
	SignInCodeTTL = 5 * time.Minute
	// LockoutFailures failed codes within LockoutWindow, for one account
	// or from one address, refuse any further code from it until the
	// oldest of them leaves the window.
	LockoutFailures = 5
	LockoutWindow   = 15 * time.Minute
)

// Audit actions written by the console's rules.
const (
	AuditSignIn         = "signin"
	AuditSignInFailed   = "signin.failed"
	AuditSignInLocked   = "signin.locked"
	AuditSignInCodeSent = "signin.code_sent"
	AuditTicketView     = "ticket.view"
)

// Why a sign-in was refused: each says what to do.
var (
	ErrLockedOut    = errors.New("too many wrong codes for this account or from this address: wait 15 minutes, then ask for a new code")
	ErrTooManyCodes = errors.New("too many codes asked for this account: use the latest one, or wait 15 minutes")
	ErrNoAccount    = errors.New("no such officer, or they have no chat account to send a code to")
	ErrCodeExpired  = errors.New("this code has expired (codes are valid 5 minutes): ask for a new one")
	ErrCodeUsed     = errors.New("this code was used already (each code signs in once): ask for a new one")
	ErrCodeWrong    = errors.New("wrong code: check the latest code in your chat with the bot")
	// ErrNotVisible is a ticket of a station the account may not see. The
	// console answers it as "not found", so a URL tells nothing.
	ErrNotVisible = errors.New("no such ticket")
	// ErrNotAllowed is an action the account's role does not allow.
	ErrNotAllowed = errors.New("your role does not allow this")
)

// Account is who uses the console: an officer of the directory, or a
// break-glass local admin (district-wide).
type Account struct {
	Officer *store.Officer
	Admin   *store.ConsoleAdmin
	// Address is where the request came from (for the audit trail).
	Address string
	// Via is the channel (store.AuditConsole or store.AuditAPI).
	Via string
}

// Name is how the account is shown and audited.
func (a Account) Name() string {
	switch {
	case a.Officer != nil:
		return a.Officer.Code + " " + a.Officer.Name
	case a.Admin != nil:
		return "admin:" + a.Admin.Name
	}
	return "?"
}

// OfficerID is the officer's id (nil for a local admin).
func (a Account) OfficerID() *uint { return idOf(a.Officer) }

// DistrictWide accounts see every station: district admins and local admins.
func (a Account) DistrictWide() bool {
	return a.Admin != nil || (a.Officer != nil && a.Officer.HasRole(store.RoleDistrictAdmin))
}

// IsAdmin is a station admin, a district admin or a local admin: they act
// only after passing a second factor, and only they see the audit trail and
// assign tickets.
func (a Account) IsAdmin() bool {
	return a.DistrictWide() || (a.Officer != nil && a.Officer.HasRole(store.RoleAdmin))
}

// Stations is the stations the account sees; nil is every station.
func (a Account) Stations() []uint {
	if a.DistrictWide() || a.Officer == nil {
		return nil
	}
	return []uint{a.Officer.StationID}
}

// MaySee reports whether the account sees a station's tickets and trail.
func (a Account) MaySee(stationID uint) bool {
	return a.DistrictWide() || (a.Officer != nil && a.Officer.StationID == stationID)
}

// Audit is an audit row of the account doing action.
func (a Account) Audit(action string, at time.Time) store.AuditEntry {
	via := a.Via
	if via == "" {
		via = store.AuditConsole
	}
	e := store.AuditEntry{At: at, ActorOfficerID: a.OfficerID(), Actor: a.Name(), Via: via, Address: a.Address, Action: action}
	if a.Officer != nil {
		st := a.Officer.StationID
		e.StationID = &st
	}
	return e
}

// FindOfficer finds the officer a person signing in named: their code, or
// a name or alias only one officer answers to. Duty accounts do not sign
// in: nobody in particular holds them.
func (h *Hub) FindOfficer(login string) *store.Officer {
	login = strings.TrimSpace(login)
	if login == "" {
		return nil
	}
	d := h.dir.Load()
	var found *store.Officer
	n := 0
	for _, o := range d.officers {
		if o.HasRole(store.RoleDutyAccount) {
			continue
		}
		if o.Code == login {
			return o
		}
		if o.Name == login || containsString(o.AliasList(), login) {
			found = o
			n++
		}
	}
	if n == 1 {
		return found
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// OfficerByID is an officer of the directory, or nil.
func (h *Hub) OfficerByID(id uint) *store.Officer { return h.dir.Load().officers[id] }

// StationName is a station's name ("" when unknown).
func (h *Hub) StationName(id uint) string {
	if st := h.dir.Load().stations[id]; st != nil {
		return st.Name
	}
	return ""
}

// Stations are the stations an account sees, by id.
func (h *Hub) Stations(a Account) []store.Station {
	d := h.dir.Load()
	var out []store.Station
	for _, st := range d.stations {
		if a.MaySee(st.ID) {
			out = append(out, *st)
		}
	}
	sortBy(out, func(s store.Station) uint { return s.ID })
	return out
}

// StaffOf lists the officers of the stations an account sees (duty accounts
// included: tickets can be theirs).
func (h *Hub) StaffOf(a Account) []store.Officer {
	d := h.dir.Load()
	var out []store.Officer
	for _, o := range d.officers {
		if a.MaySee(o.StationID) {
			out = append(out, *o)
		}
	}
	sortBy(out, func(o store.Officer) uint { return o.ID })
	return out
}

// GroupsOf lists the groups of the stations an account sees.
func (h *Hub) GroupsOf(a Account) []store.Group {
	d := h.dir.Load()
	var out []store.Group
	for _, g := range d.groupByID {
		if a.MaySee(g.StationID) {
			out = append(out, *g)
		}
	}
	sortBy(out, func(g store.Group) uint { return g.ID })
	return out
}

// ChatName is the name of a ticket's chat.
func (h *Hub) ChatName(t *store.Ticket) string { return chatName(h.dir.Load(), t) }

func sortBy[T any](s []T, key func(T) uint) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// lockedOut reports whether an officer (or, with nil, nobody in
// particular) or an address has failed LockoutFailures times within the
// window.
func (h *Hub) lockedOut(ctx context.Context, officerID *uint, address string) (bool, error) {
	since := h.now().Add(-LockoutWindow)
	if officerID != nil {
		n, err := h.store.CountAudit(ctx, AuditSignInFailed, since, officerID, "")
		if err != nil || n >= LockoutFailures {
			return n >= LockoutFailures, err
		}
	}
	if address == "" {
		return false, nil
	}
	n, err := h.store.CountAudit(ctx, AuditSignInFailed, since, nil, address)
	return n >= LockoutFailures, err
}

// RequestSignInCode DMs a one-time code to the officer named login, on
// their own platform: the code and its message are written together and
// the relay delivers the message. The answer does not say whether login
// named anyone (ErrNoAccount is returned for the caller's log and audit
// only: a page shows the same for both).
func (h *Hub) RequestSignInCode(ctx context.Context, login, address string) error {
	now := h.now()
	o := h.FindOfficer(login)
	if o == nil {
		return ErrNoAccount
	}
	if locked, err := h.lockedOut(ctx, idOf(o), address); err != nil {
		return err
	} else if locked {
		return ErrLockedOut
	}
	// Nobody floods an officer's chat with codes by asking again and
	// again: LockoutFailures codes in the window are enough for anyone.
	if n, err := h.store.CountAudit(ctx, AuditSignInCodeSent, now.Add(-LockoutWindow), idOf(o), ""); err != nil {
		return err
	} else if n >= LockoutFailures {
		return ErrTooManyCodes
	}
	d := h.dir.Load()
	platform, user, ok := d.address(o, "")
	if !ok {
		return ErrNoAccount
	}
	code, err := randomDigits(6)
	if err != nil {
		return err
	}
	salt, err := randomHex(16)
	if err != nil {
		return err
	}
	c := &store.ConsoleCode{OfficerID: o.ID, Salt: salt, Hash: codeHash(salt, code), CreatedAt: now, ExpiresAt: now.Add(SignInCodeTTL)}
	msg := bot.Outbound{
		Key:      "console-code:" + salt,
		Platform: bot.Platform(platform), ToUser: user, Format: bot.FormatText,
		Text: render(d.template("console_code"), "code", code, "minutes", fmt.Sprint(int(SignInCodeTTL/time.Minute))),
		Ref:  bot.Ref{Purpose: bot.PurposeNotice, OfficerID: o.ID},
	}
	a := Account{Officer: o, Address: address}
	audit := a.Audit(AuditSignInCodeSent, now)
	audit.Target = "验证码 → " + platform
	msgs := []bot.Outbound{msg}
	if err := h.store.CreateConsoleCode(ctx, c, rows(msgs), []store.AuditEntry{audit}); err != nil {
		return err
	}
	h.wake(ctx, msgs)
	return nil
}

// SignIn checks a code an officer typed. A wrong, expired or used code is
// audited as a failed sign-in (and counts towards the lockout); the
// LockoutFailures-th failure is logged. It returns the officer on success;
// the caller records the sign-in with the session it makes.
func (h *Hub) SignIn(ctx context.Context, login, code, address string) (*store.Officer, error) {
	now := h.now()
	o := h.FindOfficer(login)
	fail := func(reason error) error {
		a := Account{Officer: o, Address: address}
		e := a.Audit(AuditSignInFailed, now)
		if o == nil {
			e.Actor = bot.Truncate(strings.TrimSpace(login), 60)
		}
		e.Result, e.Reason = store.AuditFailed, reason.Error()
		if err := h.store.AppendAudit(ctx, e); err != nil {
			return err
		}
		if locked, err := h.lockedOut(ctx, idOf(o), address); err == nil && locked {
			h.opts.Log.Warn("console: sign-in locked out", "account", bot.Mask(e.Actor), "address", address)
		}
		return reason
	}
	if locked, err := h.lockedOut(ctx, idOf(o), address); err != nil {
		return nil, err
	} else if locked {
		a := Account{Officer: o, Address: address}
		e := a.Audit(AuditSignInLocked, now)
		if o == nil {
			e.Actor = bot.Truncate(strings.TrimSpace(login), 60)
		}
		e.Result, e.Reason = store.AuditDenied, "locked out"
		if err := h.store.AppendAudit(ctx, e); err != nil {
			return nil, err
		}
		h.opts.Log.Warn("console: sign-in refused, locked out", "account", bot.Mask(e.Actor), "address", address)
		return nil, ErrLockedOut
	}
	if o == nil {
		return nil, fail(ErrCodeWrong)
	}
	code = strings.TrimSpace(code)
	err := h.store.UseConsoleCode(ctx, o.ID, now, func(salt, hash string) bool {
		return subtle.ConstantTimeCompare([]byte(codeHash(salt, code)), []byte(hash)) == 1
	})
	switch {
	case errors.Is(err, store.ErrCodeExpired):
		return nil, fail(ErrCodeExpired)
	case errors.Is(err, store.ErrCodeUsed):
		return nil, fail(ErrCodeUsed)
	case errors.Is(err, store.ErrCodeWrong):
		return nil, fail(ErrCodeWrong)
	case err != nil:
		return nil, err
	}
	return o, nil
}

// CheckLocalAdmin records a local admin's failed password (the caller
// checks the hash) and tells whether their address is locked out.
func (h *Hub) LocalAdminLocked(ctx context.Context, address string) (bool, error) {
	return h.lockedOut(ctx, nil, address)
}

// LocalAdminFailed audits a failed local-admin sign-in.
func (h *Hub) LocalAdminFailed(ctx context.Context, name, address, reason string) error {
	e := Account{Address: address}.Audit(AuditSignInFailed, h.now())
	e.Actor = "admin:" + bot.Truncate(name, 60)
	e.Result, e.Reason = store.AuditFailed, reason
	return h.store.AppendAudit(ctx, e)
}

func codeHash(salt, code string) string {
	sum := sha256.Sum256([]byte(salt + ":" + code))
	return hex.EncodeToString(sum[:])
}

func randomDigits(n int) (string, error) {
	var b strings.Builder
	for range n {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", fmt.Errorf("make a code: %w", err)
		}
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String(), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a salt: %w", err)
	}
	return hex.EncodeToString(b)[:n*2], nil
}

// TicketView is a ticket as its page shows it: the ticket, its whole
// timeline, every message sent about it with its delivery state, and the
// names the page needs.
type TicketView struct {
	Ticket   *store.Ticket
	Timeline []store.TicketEvent
	Messages []store.OutboundMessage
	Station  string
	Chat     string
	Assignee string
	// Staff are who the ticket may be handed over or assigned to.
	Staff []store.Officer
}

// ViewTicket is a ticket's page for an account, audited: the page shows
// the resident's data in full. A ticket of a station the account does not
// see is ErrNotVisible, and the attempt is audited as denied.
func (h *Hub) ViewTicket(ctx context.Context, a Account, id uint) (*TicketView, error) {
	t, err := h.store.TicketByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotVisible
	}
	if err != nil {
		return nil, err
	}
	e := a.Audit(AuditTicketView, h.now())
	e.TicketID, e.Target = &t.ID, fmt.Sprintf("工单 #%d", t.Number)
	st := t.StationID
	e.StationID = &st
	if !a.MaySee(t.StationID) {
		e.Result, e.Reason = store.AuditDenied, "another station's ticket"
		if err := h.store.AppendAudit(ctx, e); err != nil {
			return nil, err
		}
		return nil, ErrNotVisible
	}
	tl, err := h.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	msgs, err := h.store.OutboundOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := h.store.AppendAudit(ctx, e); err != nil {
		return nil, err
	}
	d := h.dir.Load()
	v := &TicketView{Ticket: t, Timeline: tl, Messages: msgs, Station: h.StationName(t.StationID), Chat: chatName(d, t)}
	if t.AssigneeID != nil && d.officers[*t.AssigneeID] != nil {
		v.Assignee = d.officers[*t.AssigneeID].Name
	}
	for _, o := range d.staff[t.StationID] {
		v.Staff = append(v.Staff, *o)
	}
	return v, nil
}

// Ticket actions from the console.
const (
	ActAssign   = "assign"   // an admin gives the ticket to an officer
	ActHandover = "handover" // whoever works on it passes it on
	ActClose    = "close"
	ActReopen   = "reopen"
)

// ActOnTicket assigns, hands over, closes or reopens a ticket for an
// account, through the same transition as the chat commands, with its
// audit row in the same transaction. target is the officer (by id) for
// assign and hand over. A refusal is a *BroadcastRefusal-like error with a
// message for people (ActRefusal).
func (h *Hub) ActOnTicket(ctx context.Context, a Account, id uint, verb string, target uint) (*store.Ticket, error) {
	now := h.now()
	d := h.dir.Load()
	read, err := h.store.TicketByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotVisible
	}
	if err != nil {
		return nil, err
	}
	deny := func(why error) (*store.Ticket, error) {
		e := a.Audit("ticket."+verb, now)
		st := read.StationID
		e.StationID, e.TicketID, e.Target = &st, &read.ID, fmt.Sprintf("工单 #%d", read.Number)
		e.Result, e.Reason = store.AuditDenied, why.Error()
		if err := h.store.AppendAudit(ctx, e); err != nil {
			return nil, err
		}
		return nil, why
	}
	if !a.MaySee(read.StationID) {
		return deny(ErrNotVisible)
	}
	st := d.stations[read.StationID]
	if st == nil {
		return nil, fmt.Errorf("ticket %d: station %d is not in the directory", id, read.StationID)
	}
	var to *store.Officer
	switch verb {
	case ActAssign, ActHandover:
		if verb == ActAssign && !a.IsAdmin() {
			return deny(ErrNotAllowed)
		}
		to = d.officers[target]
		if to == nil || to.StationID != read.StationID {
			return nil, &ActRefusal{"请选择本所的一名民警。"}
		}
	case ActClose, ActReopen:
	default:
		return nil, &ActRefusal{fmt.Sprintf("不认识的操作 %q。", verb)}
	}
	var msgs []bot.Outbound
	sla := time.Duration(st.SLAMinutes) * time.Minute
	number := fmt.Sprint(read.Number)
	t, err := h.store.TransitionFrom(ctx, read, func(t *store.Ticket) (store.Change, error) {
		before := ticketState(d, t)
		var line store.TicketEvent
		switch verb {
		case ActAssign, ActHandover:
			if t.Status == store.StatusClosed {
				return store.Change{}, &ActRefusal{"工单已办结，请先重新打开。"}
			}
			if t.AssigneeID != nil && *t.AssigneeID == to.ID {
				return store.Change{}, &ActRefusal{fmt.Sprintf("工单已由%s负责。", to.Name)}
			}
			t.AssigneeID = idOf(to)
			if t.Status != store.StatusAnswered {
				due := h.clockFrom(d, st, to, t, now).Add(sla)
				t.EscalateAt = &due
			}
			detail := "→ " + to.Name
			if verb == ActAssign {
				detail = "分派 → " + to.Name
			}
			line = store.TicketEvent{Kind: store.TLHandedOver, ActorID: a.OfficerID(), Detail: detail + "（控制台）", At: now}
			from := a.Name()
			if a.Officer != nil {
				from = a.Officer.Name
			}
			group := chatName(d, t)
			if m, ok := d.dm(to, t.Platform, fmt.Sprintf("t%d:console-%s:%d", t.ID, verb, now.UnixNano()), "转交工单 #"+number,
				func(esc func(string) string) string {
					return renderEsc(esc, d.template(d.customerVariant("handed_over_dm", t)), "number", number, "from", from, "group", group, "resident", residentLabel(t), "question", t.Question)
				},
				bot.Ref{Purpose: bot.PurposeAssign, TicketID: t.ID}); ok {
				msgs = append(msgs, m)
			}
		case ActClose:
			if t.Status == store.StatusClosed {
				return store.Change{}, &ActRefusal{"工单已经办结。"}
			}
			t.Status, t.ClosedAt, t.EscalateAt = store.StatusClosed, &now, nil
			line = store.TicketEvent{Kind: store.TLClosed, ActorID: a.OfficerID(), Detail: "控制台", At: now}
		case ActReopen:
			if t.Status != store.StatusClosed {
				return store.Change{}, &ActRefusal{"只有已办结的工单可以重新打开。"}
			}
			t.ClosedAt = nil
			if t.FirstResponseAt != nil {
				t.Status = store.StatusAnswered
			} else {
				t.Status = store.StatusOpen
				due := now.Add(sla)
				t.EscalateAt = &due
			}
			line = store.TicketEvent{Kind: store.TLReopened, ActorID: a.OfficerID(), Detail: "控制台", At: now}
		}
		e := a.Audit("ticket."+verb, now)
		st := t.StationID
		e.StationID, e.TicketID, e.Target = &st, &t.ID, "工单 #"+number
		e.Before, e.After = before, ticketState(d, t)
		c := changed([]store.TicketEvent{line}, msgs)
		c.Audit = []store.AuditEntry{e}
		return c, nil
	})
	var refusal *ActRefusal
	if errors.As(err, &refusal) {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	h.wake(ctx, msgs)
	return t, nil
}

// ActRefusal is a ticket action the ticket's state does not allow, with
// what to tell the person.
type ActRefusal struct{ Message string }

func (r *ActRefusal) Error() string { return r.Message }

// ticketState is what an action changes of a ticket, for the audit's
// before and after.
func ticketState(d *directory, t *store.Ticket) string {
	who := "无"
	if t.AssigneeID != nil && d.officers[*t.AssigneeID] != nil {
		who = d.officers[*t.AssigneeID].Name
	}
	return fmt.Sprintf("status=%s assignee=%s", t.Status, who)
}

// StationNow is one station on the Now page.
type StationNow struct {
	Station store.Station
	// OnDuty answers a question asked now, and why (own_officer, on_duty,
	// next_in_line, duty_account); Until is the end of their shift.
	OnDuty, Reason string
	Until          time.Time
	// Next is who is on at NextAt, the next shift start (zero when none).
	Next   string
	NextAt time.Time
	// Open are the unanswered tickets; Overdue those past their deadline;
	// Escalated those escalated at least once.
	Open, Overdue, Escalated []store.Ticket
}

// Now is the Now page: for each station the account sees, who is on duty
// now and next and what is open, overdue and escalated; and the broadcasts
// being sent with their deliveries per state.
func (h *Hub) Now(ctx context.Context, a Account) ([]StationNow, []store.BroadcastCount, error) {
	now := h.now()
	loc := h.opts.Location
	d := h.dir.Load()
	var out []StationNow
	for _, st := range h.Stations(a) {
		s := d.stations[st.ID]
		r := d.route(s, nil, nil, now, loc)
		n := StationNow{Station: st, OnDuty: officerName(r.Officer), Reason: r.Reason}
		if !r.AfterHours() {
			n.Until = r.Shift.end
		}
		if next, ok := d.nextStart(s, now.Add(time.Second), loc); ok {
			n.NextAt = next
			n.Next = officerName(d.route(s, nil, nil, next, loc).Officer)
		}
		open, err := h.store.OpenTicketsOfStation(ctx, st.ID)
		if err != nil {
			return nil, nil, err
		}
		n.Open = open
		for _, t := range open {
			if t.EscalateAt != nil && !now.Before(*t.EscalateAt) {
				n.Overdue = append(n.Overdue, t)
			}
			if t.Level > 0 {
				n.Escalated = append(n.Escalated, t)
			}
		}
		out = append(out, n)
	}
	casts, err := h.store.BroadcastProgress(ctx, now.Add(-15*time.Minute))
	if err != nil {
		return nil, nil, err
	}
	var mine []store.BroadcastCount
	for _, c := range casts {
		if a.DistrictWide() {
			mine = append(mine, c)
			continue
		}
		b, err := h.store.BroadcastByID(ctx, c.BroadcastID)
		if err == nil && b.StationID != nil && a.MaySee(*b.StationID) {
			mine = append(mine, c)
		}
	}
	return out, mine, nil
}

// Clock is the rules' clock.
func (h *Hub) Clock() time.Time { return h.now() }

// AlertText is what each group is sent for a broadcast of text: the
// console's preview shows exactly this.
func (h *Hub) AlertText(text string) string {
	return h.alertText(h.dir.Load(), strings.TrimSpace(text))
}

// AlertLimit says, in words, how long an alert may be on a platform.
func (h *Hub) AlertLimit(platform string) string {
	lim, ok := h.opts.AlertLimits[bot.Platform(platform)]
	if !ok {
		lim = TextLimit{Runes: h.opts.MaxTextRunes}
	}
	if lim.Bytes > 0 {
		return fmt.Sprintf("%d 字节（约 %d 个汉字）", lim.Bytes, lim.Bytes/3)
	}
	return fmt.Sprintf("%d 字", lim.Runes)
}

// Series is what the Stats page draws: questions per day and per hour of
// day (in the hub's time zone), and the shares asked after hours and
// answered from the FAQ.
type Series struct {
	Days        []DayCount
	Hours       [24]int
	Total       int
	AfterHours  int
	FAQAnswered int
	// ByDay are the figures per day that had tickets (first-response median
	// and p90 over time); ByOfficer per officer who answered or holds them
	// (SLA breaches per officer). Both come from Series, the store's one
	// query layer.
	ByDay     []SeriesStats
	ByOfficer []SeriesStats
}

// DayCount is the questions of one day.
type DayCount struct {
	Day time.Time
	N   int
}

// MaxStatsDays bounds a Stats range.
const MaxStatsDays = 366

// StatsFor is the Stats page's table and series for an account: its
// stations only (a station code it may not see is refused), tickets asked
// in [from, to).
func (h *Hub) StatsFor(ctx context.Context, a Account, stationCode string, from, to time.Time) ([]Stats, *Series, error) {
	d := h.dir.Load()
	ids := a.Stations()
	if stationCode != "" {
		st := d.stationByCode(stationCode)
		if st == nil || !a.MaySee(st.ID) {
			return nil, nil, ErrNotVisible
		}
		ids = []uint{st.ID}
	} else if ids != nil {
		st := d.stations[ids[0]]
		if st == nil {
			return nil, nil, ErrNotVisible
		}
		stationCode = st.Code
	}
	if !to.After(from) || to.Sub(from) > MaxStatsDays*24*time.Hour {
		return nil, nil, &ActRefusal{fmt.Sprintf("请选择 1 到 %d 天的时间范围。", MaxStatsDays)}
	}
	table, err := h.Stats(ctx, stationCode, from, to)
	if err != nil {
		return nil, nil, err
	}
	times, err := h.store.TicketTimes(ctx, ids, from, to)
	if err != nil {
		return nil, nil, err
	}
	loc := h.opts.Location
	s := &Series{}
	byDay := map[string]int{}
	for _, t := range times {
		local := t.CreatedAt.In(loc)
		byDay[local.Format(time.DateOnly)]++
		s.Hours[local.Hour()]++
		s.Total++
		if t.AfterHours {
			s.AfterHours++
		}
		if t.AutoAnswered {
			s.FAQAnswered++
		}
	}
	for day := from.In(loc); day.Before(to); day = day.AddDate(0, 0, 1) {
		y, m, dd := day.Date()
		start := time.Date(y, m, dd, 0, 0, 0, 0, loc)
		s.Days = append(s.Days, DayCount{Day: start, N: byDay[start.Format(time.DateOnly)]})
	}
	if s.ByDay, err = h.Series(ctx, stationCode, from, to, store.ByDay); err != nil {
		return nil, nil, err
	}
	if s.ByOfficer, err = h.Series(ctx, stationCode, from, to, store.ByOfficer); err != nil {
		return nil, nil, err
	}
	return table, s, nil
}
