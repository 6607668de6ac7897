package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// A swap (换班) hands one officer's shifts of one date to a colleague of
// the same station: the requester asks (DM "换班 12-05 李警官" or the
// console), the colleague accepts, a station admin approves when the
// deployment wants approval (Options.SwapApproval); approved, it becomes
// overrides and routes at once. Each step tells the people concerned by
// DM, as outbound rows in the step's transaction, and leaves an audit row.

// swapCommand is "换班 12-05 李警官" (also 12/05, 12月5日).
var swapCommand = regexp.MustCompile(`^换班\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(\S*)$`)

// swapReply is "同意换班 S7", "拒绝换班 7", "批准换班 S7", "驳回换班 S7".
var swapReply = regexp.MustCompile(`^(同意|接受|拒绝|批准|驳回)\s*换班\s*[Ss]?(\d{1,9})$`)

// SwapRequest asks colleague to work requester's shifts of date.
type SwapRequest struct {
	RequesterID uint
	ColleagueID uint
	Date        string // 2026-12-05
}

// RequestSwap files a swap request, checked: the requester has shifts that
// day, the colleague is of the same station and free at those hours.
func (h *Hub) RequestSwap(ctx context.Context, a Actor, in SwapRequest) (*store.ShiftSwap, error) {
	d := h.dir.Load()
	loc := h.opts.Location
	req := d.officers[in.RequesterID]
	if req == nil {
		return nil, invalid("没有编号为 %d 的民警", in.RequesterID)
	}
	if a.OfficerID != 0 && a.OfficerID != req.ID && !d.mayEdit(a, req.StationID) {
		return nil, fmt.Errorf("request a swap for %s: %w", req.Name, ErrForbidden)
	}
	col := d.officers[in.ColleagueID]
	if col == nil {
		return nil, invalid("没有这位同事")
	}
	if col.StationID != req.StationID {
		other := "另一个派出所"
		if st := d.stations[col.StationID]; st != nil {
			other = st.Name
		}
		return nil, invalid("%s属于%s，只能和本所的同事换班", col.Name, other)
	}
	if col.ID == req.ID {
		return nil, invalid("不能和自己换班")
	}
	if d.has(col, roleDutyAccount) {
		return nil, invalid("值班号不能替班，请找一位同事")
	}
	day, err := time.ParseInLocation("2006-01-02", in.Date, loc)
	if err != nil {
		return nil, invalid("日期 %q 看不懂：请写成 12-05", in.Date)
	}
	if day.AddDate(0, 0, 1).Before(h.now()) {
		return nil, invalid("%s 已经过去了", in.Date)
	}
	if _, _, err := d.overridesFor(OverrideInput{StationID: req.StationID, OfficerID: req.ID, Date: in.Date, Mode: OverrideCover, CoverID: col.ID}, loc); err != nil {
		return nil, err
	}
	sw := &store.ShiftSwap{StationID: req.StationID, RequesterID: req.ID, ColleagueID: col.ID, Date: in.Date}
	hours := d.hoursOf(req, day, loc)
	when := humanDate(day)
	// The swap's number is known only once it is written: its messages
	// are made inside CreateSwap's transaction.
	var msgs []bot.Outbound
	compose := func(sw *store.ShiftSwap) []store.OutboundMessage {
		id := fmt.Sprint(sw.ID)
		msgs = msgs[:0]
		if m, ok := d.dm(col, "", fmt.Sprintf("swap:%d:requested", sw.ID), "换班请求", func(func(string) string) string {
			return render(d.template("swap_requested"), "requester", req.Name, "date", when, "hours", hours, "id", id)
		}, bot.Ref{Purpose: bot.PurposeNotice}); ok {
			msgs = append(msgs, m)
		}
		if a.Via != store.AuditDM {
			if m, ok := d.dm(req, "", fmt.Sprintf("swap:%d:requested_ok", sw.ID), "换班请求", func(func(string) string) string {
				return render(d.template("swap_requested_ok"), "colleague", col.Name, "date", when, "hours", hours, "id", id)
			}, bot.Ref{Purpose: bot.PurposeNotice}); ok {
				msgs = append(msgs, m)
			}
		}
		for i := range msgs {
			msgs[i].Format = bot.FormatText
		}
		return rows(msgs)
	}
	c := store.Edit{Audit: []store.AuditEntry{a.audit("roster.swap.request", req.StationID, fmt.Sprintf("%s→%s %s", req.Name, col.Name, in.Date), "", "requested")}}
	if err := h.store.CreateSwap(ctx, sw, c, compose); err != nil {
		return nil, h.storeErr(err)
	}
	h.wake(ctx, msgs)
	return sw, nil
}

// hoursOf is o's rostered hours on day, as people read them.
func (d *directory) hoursOf(o *store.Officer, day time.Time, loc *time.Location) string {
	var parts []string
	for _, s := range d.shiftsOn(o, day, loc) {
		parts = append(parts, s.start.In(loc).Format("15:04")+"–"+s.end.In(loc).Format("15:04"))
	}
	return strings.Join(parts, "、")
}

func humanDate(day time.Time) string {
	return fmt.Sprintf("%d月%d日（%s）", day.Month(), day.Day(), weekdayNames[day.Weekday()])
}

// Swap decisions.
const (
	SwapAccept  = "accept"  // the colleague agrees
	SwapDecline = "decline" // the colleague says no
	SwapApprove = "approve" // an admin approves
	SwapReject  = "reject"  // an admin says no
)

// DecideSwap moves a swap on: the colleague accepts or declines, an admin
// approves or rejects. version is the swap's as read (the console's), or
// -1 for a DM, which acts on the swap as it is.
func (h *Hub) DecideSwap(ctx context.Context, a Actor, swapID uint, decision string, version int64) (*store.ShiftSwap, error) {
	d := h.dir.Load()
	loc := h.opts.Location
	sw, err := h.store.Swap(ctx, swapID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid("没有换班 S%d", swapID)
	}
	if err != nil {
		return nil, err
	}
	if version >= 0 && sw.Version != version {
		return nil, fmt.Errorf("swap S%d: %w", swapID, store.ErrConflict)
	}
	req, col := d.officers[sw.RequesterID], d.officers[sw.ColleagueID]
	if req == nil || col == nil {
		return nil, invalid("换班 S%d 的民警已不在名录中", swapID)
	}
	day, err := time.ParseInLocation("2006-01-02", sw.Date, loc)
	if err != nil {
		return nil, fmt.Errorf("swap S%d has a bad date %q: %w", swapID, sw.Date, err)
	}
	var (
		next  string
		ovs   []store.Override
		msgs  []bot.Outbound
		actor = a.OfficerID
	)
	when, hours, id := humanDate(day), d.hoursOf(req, day, loc), fmt.Sprint(sw.ID)
	tell := func(o *store.Officer, step, tmpl string, kv ...string) {
		if m, ok := d.dm(o, "", fmt.Sprintf("swap:%d:%s:%d", sw.ID, step, o.ID), "换班", func(func(string) string) string {
			return render(d.template(tmpl), append([]string{"requester", req.Name, "colleague", col.Name, "date", when, "hours", hours, "id", id}, kv...)...)
		}, bot.Ref{Purpose: bot.PurposeNotice}); ok {
			m.Format = bot.FormatText
			msgs = append(msgs, m)
		}
	}
	approve := func() error {
		var err error
		ovs, _, err = d.overridesFor(OverrideInput{StationID: sw.StationID, OfficerID: req.ID, Date: sw.Date, Mode: OverrideCover, CoverID: col.ID}, loc)
		if err != nil {
			return err
		}
		next = store.SwapApproved
		tell(req, "approved", "swap_approved")
		tell(col, "approved", "swap_approved")
		return nil
	}
	switch decision {
	case SwapAccept, SwapDecline:
		if a.OfficerID != 0 && a.OfficerID != col.ID {
			return nil, invalid("只有被请求替班的%s可以同意或拒绝换班 S%d", col.Name, sw.ID)
		}
		if sw.Status != store.SwapRequested {
			return nil, invalid("换班 S%d 已%s，不能再%s", sw.ID, swapStateName(sw.Status), map[string]string{SwapAccept: "同意", SwapDecline: "拒绝"}[decision])
		}
		if decision == SwapDecline {
			next = store.SwapDeclined
			tell(req, "declined", "swap_declined", "who", col.Name)
			break
		}
		if !h.opts.SwapApproval {
			if err := approve(); err != nil {
				return nil, err
			}
			break
		}
		next, actor = store.SwapAccepted, 0
		tell(req, "accepted", "swap_accepted_wait")
		for _, adm := range d.staff[sw.StationID] {
			if d.has(adm, roleAdmin) {
				tell(adm, "to_approve", "swap_to_approve")
			}
		}
	case SwapApprove, SwapReject:
		if !d.mayEdit(a, sw.StationID) {
			return nil, invalid("只有本所管理员可以批准或驳回换班")
		}
		if sw.Status != store.SwapAccepted && !(sw.Status == store.SwapRequested && decision == SwapReject) {
			return nil, invalid("换班 S%d 现在%s，不能%s", sw.ID, swapStateName(sw.Status), map[string]string{SwapApprove: "批准", SwapReject: "驳回"}[decision])
		}
		if decision == SwapReject {
			next = store.SwapRejected
			who := a.Name
			if who == "" {
				who = "管理员"
			}
			tell(req, "rejected", "swap_declined", "who", who)
			tell(col, "rejected", "swap_declined", "who", who)
			break
		}
		if err := approve(); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("换班的处理 %q 不认识", decision)
	}
	for i := range msgs {
		if err := msgs[i].Validate(); err != nil {
			return nil, bot.Permanent(err)
		}
	}
	c := store.Edit{Outbound: rows(msgs), Audit: []store.AuditEntry{a.audit("roster.swap."+decision, sw.StationID,
		fmt.Sprintf("换班 S%d %s→%s %s", sw.ID, req.Name, col.Name, sw.Date), sw.Status, next)}}
	if err := h.store.MoveSwap(ctx, sw, next, ref(actor), ovs, c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		return nil, h.storeErr(err)
	}
	if len(ovs) > 0 {
		if err := h.Reload(ctx); err != nil {
			return nil, err
		}
	}
	h.wake(ctx, msgs)
	return sw, nil
}

func swapStateName(s string) string {
	switch s {
	case store.SwapRequested:
		return "在等同事同意"
	case store.SwapAccepted:
		return "在等管理员批准"
	case store.SwapApproved:
		return "生效"
	case store.SwapDeclined:
		return "被同事拒绝"
	case store.SwapRejected:
		return "被驳回"
	}
	return s
}

// Swaps lists a station's swaps, newest first.
func (h *Hub) Swaps(ctx context.Context, stationID uint) ([]store.ShiftSwap, error) {
	return h.store.Swaps(ctx, stationID)
}

// SwapStateName is a swap's status as people read it.
func SwapStateName(s string) string { return swapStateName(s) }

// handleSwapDM takes an officer's swap commands by DM; handled is false
// when text is none of them.
func (h *Hub) handleSwapDM(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, text string) (handled bool, err error) {
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	a := Actor{OfficerID: o.ID, Name: o.Code + " " + o.Name, Via: store.AuditDM}
	compact := strings.Join(strings.Fields(text), " ")
	if m := swapReply.FindStringSubmatch(compact); m != nil {
		id, _ := strconv.ParseUint(m[2], 10, 32)
		decision := map[string]string{"同意": SwapAccept, "接受": SwapAccept, "拒绝": SwapDecline, "批准": SwapApprove, "驳回": SwapReject}[m[1]]
		if decision == SwapDecline {
			// An admin's "拒绝" on a swap waiting for them is a rejection.
			if sw, err := h.store.Swap(ctx, uint(id)); err == nil && sw.ColleagueID != o.ID && d.mayEdit(a, sw.StationID) {
				decision = SwapReject
			}
		}
		sw, err := h.DecideSwap(ctx, a, uint(id), decision, -1)
		var bad *InvalidError
		switch {
		case errors.As(err, &bad):
			return true, reply(render(d.template("swap_refused"), "reason", bad.Msg))
		case err != nil:
			return true, err
		}
		return true, reply(render(d.template("swap_decided_ok"), "id", fmt.Sprint(sw.ID), "state", swapStateName(sw.Status)))
	}
	if !strings.HasPrefix(compact, "换班") {
		return false, nil
	}
	m := swapCommand.FindStringSubmatch(compact)
	if m == nil || m[3] == "" {
		return true, reply(d.template("swap_usage"))
	}
	month, _ := strconv.Atoi(m[1])
	dd, _ := strconv.Atoi(m[2])
	loc := h.opts.Location
	now := h.now().In(loc)
	date := time.Date(now.Year(), time.Month(month), dd, 0, 0, 0, 0, loc)
	if month < 1 || month > 12 || date.Day() != dd {
		return true, reply(d.template("swap_usage"))
	}
	if date.Before(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)) {
		date = date.AddDate(1, 0, 0) // "01-05" asked in December is next year's
	}
	col := d.officerByName(o.StationID, m[3])
	if col == nil {
		// Someone of another station by that name is refused by name.
		for sid := range d.names {
			if sid == o.StationID {
				continue
			}
			if other := d.officerByName(sid, m[3]); other != nil {
				col = other
			}
		}
	}
	if col == nil {
		return true, reply(render(d.template("unknown_officer"), "name", m[3]))
	}
	sw, err := h.RequestSwap(ctx, a, SwapRequest{RequesterID: o.ID, ColleagueID: col.ID, Date: date.Format("2006-01-02")})
	var bad *InvalidError
	switch {
	case errors.As(err, &bad):
		return true, reply(render(d.template("swap_refused"), "reason", bad.Msg))
	case err != nil:
		return true, err
	}
	return true, reply(render(d.template("swap_requested_ok"), "colleague", col.Name, "date", humanDate(date),
		"hours", d.hoursOf(o, date, loc), "id", fmt.Sprint(sw.ID)))
}
