package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
	"github.com/jingminhub/jingmin/store"
)

// TextLimit is how much text one platform's group message takes; a zero
// field is no limit of that kind.
type TextLimit struct {
	Runes int
	Bytes int
}

// Scope is where a broadcast goes, in its canonical form: Kind is all,
// station, tag or groups; Arg the station code, the tag, or the chat ids
// (or group names) separated by commas.
type Scope struct {
	Kind string
	Arg  string
}

func (s Scope) String() string {
	if s.Kind == "all" {
		return "all"
	}
	return s.Kind + ":" + s.Arg
}

// ParseScope reads the CLI's form: all, station:CODE, tag:NAME, groups:a,b.
func ParseScope(s string) (Scope, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(s), ":")
	arg = strings.TrimSpace(arg)
	switch kind {
	case "all":
		if arg == "" {
			return Scope{Kind: "all"}, nil
		}
	case "station", "tag", "groups":
		if arg != "" {
			return Scope{Kind: kind, Arg: arg}, nil
		}
	}
	return Scope{}, fmt.Errorf("unknown scope %q: use all, station:CODE, tag:NAME or groups:CHAT_ID,CHAT_ID", s)
}

// BroadcastRefusal is a broadcast request the rules turn down; Message
// says why, in words the requester can act on. Nothing was changed.
type BroadcastRefusal struct{ Message string }

func (r *BroadcastRefusal) Error() string { return r.Message }

// Origin is the channel an action on a broadcast came through (store.ViaChat,
// store.ViaCLI, store.ViaAPI) and the address it came from, kept on the
// broadcast's record with the officer who acted.
type Origin struct {
	Via  string
	From string
	// Audit (nil: none) derives the action's audit rows from the broadcast
	// as the change left it; they are written in the change's transaction.
	Audit func(b *store.Broadcast) []store.AuditEntry
}

// actor is the record of by acting through o; nil by is the operator's CLI.
func actor(by *store.Officer, o Origin) store.Actor {
	a := store.Actor{Name: operatorName, Via: o.Via, From: o.From, Audit: o.Audit}
	if by != nil {
		a.OfficerID, a.Name = &by.ID, by.Name
	}
	return a
}

// operatorName names the operator's CLI run without --by in the record.
const operatorName = "命令行"

// BroadcastPlan is a created draft and what it will reach.
type BroadcastPlan struct {
	Broadcast   *store.Broadcast
	PerPlatform map[string]int
}

// Preview is the draft as shown to its author before confirmation, in a
// markdown message on the author's platform: the text shows as written,
// links and markup plain, so what the author confirms is what they read.
func (h *Hub) Preview(p *BroadcastPlan) string {
	d := h.dir.Load()
	b := p.Broadcast
	return render(d.template("broadcast_preview"), "id", fmt.Sprint(b.ID), "scope", ScopeLabel(b.Scope),
		"total", fmt.Sprint(b.Total), "platforms", platformCounts(p.PerPlatform), "text", markdown.Escape(bot.Platform(b.ReportPlatform), b.Text))
}

// PlanBroadcast checks that by may send text to scope, resolves the target
// groups and stores the draft with one delivery per group. by is nil for
// the operator's CLI run without --by, which may reach every group; the
// report then goes nowhere in chat. reportTo is the author's direct chat.
// compose, when given, derives from the draft the messages written with it
// (the preview answered in chat): a request handled before then gives
// store.ErrDuplicate and no second draft. from is recorded as where the
// draft came from.
func (h *Hub) PlanBroadcast(ctx context.Context, by *store.Officer, from Origin, sc Scope, text string, reportPlatform, reportUser string, compose ...func(p *BroadcastPlan) []bot.Outbound) (*BroadcastPlan, error) {
	d := h.dir.Load()
	refuse := func(tmpl string, kv ...string) error {
		return &BroadcastRefusal{render(d.template(tmpl), kv...)}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, refuse("broadcast_empty")
	}
	if !utf8.ValidString(text) {
		return nil, refuse("broadcast_empty")
	}
	var own *store.Station // nil: every station
	author := operatorName
	if by != nil {
		author = by.Name
		switch {
		case by.HasRole(store.RoleDistrictAdmin):
		case by.HasRole(store.RoleAdmin):
			own = d.stations[by.StationID]
		default:
			return nil, refuse("broadcast_not_admin")
		}
	}
	ownName := ""
	if own != nil {
		ownName = own.Name
	}
	inScope := func(g *store.Group) bool { return own == nil || g.StationID == own.ID }
	var targets []store.Group
	switch sc.Kind {
	case "all":
		if own != nil {
			return nil, refuse("broadcast_own_station", "station", ownName)
		}
		for _, g := range d.groupByID {
			targets = append(targets, *g)
		}
	case "station":
		var st *store.Station
		for _, s := range d.stations {
			if s.Code == sc.Arg {
				st = s
			}
		}
		if st == nil {
			return nil, refuse("broadcast_unknown_station", "station", sc.Arg)
		}
		if own != nil && st.ID != own.ID {
			return nil, refuse("broadcast_own_station", "station", ownName)
		}
		for _, g := range d.groupByID {
			if g.StationID == st.ID {
				targets = append(targets, *g)
			}
		}
	case "tag":
		known := map[string]bool{}
		for _, g := range d.groupByID {
			for _, t := range g.TagList() {
				known[t] = true
				if t == sc.Arg && inScope(g) {
					targets = append(targets, *g)
				}
			}
		}
		if !known[sc.Arg] {
			tags := make([]string, 0, len(known))
			for t := range known {
				tags = append(tags, t)
			}
			sort.Strings(tags)
			return nil, refuse("broadcast_unknown_tag", "tag", sc.Arg, "tags", strings.Join(tags, "、"))
		}
	case "groups":
		var unknown, foreign []string
		seen := map[uint]bool{}
		for _, want := range splitNames(sc.Arg) {
			var found []*store.Group
			for _, g := range d.groupByID {
				if g.ChatID == want || g.Name == want {
					found = append(found, g)
				}
			}
			if len(found) == 0 {
				unknown = append(unknown, want)
			}
			for _, g := range found {
				switch {
				case !inScope(g):
					foreign = append(foreign, want)
				case !seen[g.ID]:
					seen[g.ID] = true
					targets = append(targets, *g)
				}
			}
		}
		if len(unknown) > 0 {
			return nil, refuse("broadcast_unknown_groups", "groups", strings.Join(unknown, "、"))
		}
		if len(foreign) > 0 {
			return nil, refuse("broadcast_own_station", "station", ownName)
		}
	default:
		return nil, refuse("broadcast_usage")
	}
	if len(targets) == 0 {
		return nil, refuse("broadcast_no_groups")
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].ID < targets[j].ID })
	per := map[string]int{}
	for _, g := range targets {
		per[g.Platform]++
	}
	alert := h.alertText(d, text)
	for p := range per {
		lim, ok := h.opts.AlertLimits[bot.Platform(p)]
		if !ok {
			lim = TextLimit{Runes: h.opts.MaxTextRunes}
		}
		if n := utf8.RuneCountInString(alert); lim.Runes > 0 && n > lim.Runes {
			return nil, refuse("broadcast_too_long", "platform", PlatformLabel(p), "limit", fmt.Sprintf("%d 字", lim.Runes), "size", fmt.Sprintf("%d 字", n))
		}
		if n := len(alert); lim.Bytes > 0 && n > lim.Bytes {
			return nil, refuse("broadcast_too_long", "platform", PlatformLabel(p), "limit", fmt.Sprintf("%d 字节（约 %d 个汉字）", lim.Bytes, lim.Bytes/3), "size", fmt.Sprintf("%d 字节", n))
		}
	}
	b := &store.Broadcast{AuthorID: idOf(by), Author: author, Scope: sc.String(), Text: text,
		ReportPlatform: reportPlatform, ReportUser: reportUser, CreatedVia: from.Via, CreatedFrom: from.From}
	if own != nil {
		b.StationID = &own.ID
	}
	plan := &BroadcastPlan{Broadcast: b, PerPlatform: per}
	var msgs []bot.Outbound
	var withDraft func(*store.Broadcast) []store.OutboundMessage
	if len(compose) > 0 {
		withDraft = func(*store.Broadcast) []store.OutboundMessage {
			msgs = nil
			for _, c := range compose {
				msgs = append(msgs, c(plan)...)
			}
			return rows(msgs)
		}
	}
	var audit []func(*store.Broadcast) []store.AuditEntry
	if from.Audit != nil {
		audit = append(audit, from.Audit)
	}
	if err := h.store.CreateBroadcast(ctx, b, targets, withDraft, audit...); err != nil {
		return nil, err
	}
	h.wake(ctx, msgs)
	h.opts.Log.Info("broadcast drafted", "broadcast", b.ID, "author", b.AuthorID, "scope_kind", sc.Kind, "targets", b.Total)
	return plan, nil
}

// alertText is what every group receives. An @ of everyone is never sent
// (the platforms would notify every member): "@所有人"/"@all" in the
// admin's text is kept readable but defused with a zero-width joiner.
// A text that opens with a label of its own ("【反诈预警】…", as an alert
// forwarded from a ticket does) is sent as it is, without the template's
// label in front of it.
func (h *Hub) alertText(d *directory, text string) string {
	text = atAll.ReplaceAllString(text, "$1\u200d$2")
	if labelled.MatchString(text) {
		return text
	}
	return render(d.template("broadcast_alert"), "text", text)
}

// labelled is a text that starts with a 【…】 label.
var labelled = regexp.MustCompile(`^\s*【[^】\n]{1,16}】`)

var atAll = regexp.MustCompile(`(?i)([@＠])(所有人|全体成员|all|everyone)`)

func splitNames(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == '、' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ConfirmBroadcast starts a draft. Only its author may, whatever the
// channel: an officer their own drafts, the operator's CLI (nil by) only
// the drafts it made itself, so nobody sends an alert someone else wrote
// and has not approved.
func (h *Hub) ConfirmBroadcast(ctx context.Context, by *store.Officer, from Origin, id uint) (*store.Broadcast, error) {
	d := h.dir.Load()
	b, err := h.broadcastFor(ctx, d, by, id, false)
	if err != nil {
		return nil, err
	}
	if h.opts.BroadcastSecondApproval && by != nil {
		return h.awaitApproval(ctx, d, by, from, b)
	}
	tasks, err := h.confirmWithOwners(ctx, d, id, h.now(), actor(by, from))
	if err != nil {
		return nil, h.stateRefusal(ctx, d, id, "确认", err)
	}
	h.wake(ctx, tasks)
	h.opts.Log.Info("broadcast confirmed", "broadcast", id, "targets", b.Total, "via", from.Via)
	return h.store.BroadcastByID(ctx, id)
}

// CancelBroadcast stops a draft or a broadcast being sent; its author, a
// district admin or the operator's CLI (nil by) may.
func (h *Hub) CancelBroadcast(ctx context.Context, by *store.Officer, from Origin, id uint) (map[string]int, error) {
	d := h.dir.Load()
	if _, err := h.broadcastFor(ctx, d, by, id, true); err != nil {
		return nil, err
	}
	var stops []bot.Outbound
	err := h.store.CancelBroadcastOwners(ctx, id, h.now(), actor(by, from), func(owners []store.MassSendOwner) []store.OutboundMessage {
		stops = massSendCancels(id, owners)
		return rows(stops)
	})
	if err != nil {
		return nil, h.stateRefusal(ctx, d, id, "取消", err)
	}
	h.wake(ctx, stops)
	h.opts.Log.Info("broadcast cancelled", "broadcast", id, "via", from.Via, "mass_send_tasks_stopped", len(stops))
	return h.store.DeliveryCounts(ctx, id)
}

// RetryFailedBroadcast requeues a finished broadcast's failed deliveries;
// from (optional) carries the retry's audit rows into its transaction.
func (h *Hub) RetryFailedBroadcast(ctx context.Context, by *store.Officer, id uint, from ...Origin) (int64, error) {
	d := h.dir.Load()
	if _, err := h.broadcastFor(ctx, d, by, id, true); err != nil {
		return 0, err
	}
	// The wall clock, not the rules' clock: deliveries are due by the
	// sending engine's time.
	var audit []func(*store.Broadcast) []store.AuditEntry
	for _, o := range from {
		if o.Audit != nil {
			audit = append(audit, o.Audit)
		}
	}
	n, err := h.store.RetryFailed(ctx, id, time.Now(), audit...)
	if err != nil {
		return 0, h.stateRefusal(ctx, d, id, "重发", err)
	}
	return n, nil
}

// broadcastFor loads broadcast id for by, refusing anyone but its author
// (and, when districtToo, a district admin or the operator). The operator
// (nil by) is the author of the drafts it made, those with no AuthorID.
func (h *Hub) broadcastFor(ctx context.Context, d *directory, by *store.Officer, id uint, districtToo bool) (*store.Broadcast, error) {
	b, err := h.store.BroadcastByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &BroadcastRefusal{render(d.template("broadcast_not_found"), "id", fmt.Sprint(id))}
	}
	if err != nil {
		return nil, err
	}
	if by == nil {
		if b.AuthorID == nil || districtToo {
			return b, nil
		}
		return nil, &BroadcastRefusal{render(d.template("broadcast_not_author"), "id", fmt.Sprint(id))}
	}
	author := b.AuthorID != nil && *b.AuthorID == by.ID
	if !author && !(districtToo && by.HasRole(store.RoleDistrictAdmin)) {
		return nil, &BroadcastRefusal{render(d.template("broadcast_not_author"), "id", fmt.Sprint(id))}
	}
	return b, nil
}

// stateRefusal turns the store's "not in that state" into words.
func (h *Hub) stateRefusal(ctx context.Context, d *directory, id uint, action string, err error) error {
	if !errors.Is(err, store.ErrBroadcastState) {
		return err
	}
	b, lerr := h.store.BroadcastByID(ctx, id)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	return &BroadcastRefusal{render(d.template("broadcast_state"), "id", fmt.Sprint(id), "state", stateLabel(b.Status), "action", action)}
}

// BroadcastReport is the delivery report of a broadcast as it stands.
func (h *Hub) BroadcastReport(ctx context.Context, id uint) (string, error) {
	d := h.dir.Load()
	b, err := h.store.BroadcastByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", &BroadcastRefusal{render(d.template("broadcast_not_found"), "id", fmt.Sprint(id))}
	}
	if err != nil {
		return "", err
	}
	counts, err := h.store.DeliveryCounts(ctx, id)
	if err != nil {
		return "", err
	}
	reasons := ""
	if counts[store.DeliveryFailed] > 0 {
		rs, err := h.store.FailureReasons(ctx, id, 3)
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, len(rs))
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%s %d 个", markdown.Escape(bot.Platform(b.ReportPlatform), bot.Truncate(bot.Mask(r.Reason), 80)), r.N))
		}
		reasons = "（原因：" + strings.Join(parts, "；") + "）"
	}
	tmpl := "broadcast_report"
	if b.Status != store.BroadcastDone {
		tmpl = "broadcast_progress"
	}
	return render(d.template(tmpl), "id", fmt.Sprint(id), "sent", fmt.Sprint(counts[store.DeliverySent]),
		"total", fmt.Sprint(b.Total), "failed", fmt.Sprint(counts[store.DeliveryFailed]), "reasons", reasons,
		"state", stateLabel(b.Status), "waiting", fmt.Sprint(counts[store.DeliveryPending]+counts[store.DeliverySending]),
		"cancelled", fmt.Sprint(counts[store.DeliveryCancelled])) + h.awaitingLine(d, counts), nil
}

// broadcastCommand is "广播 ..." in an officer's direct chat.
var (
	broadcastWord  = regexp.MustCompile(`^广播(?:\s+|$)`)
	broadcastReply = regexp.MustCompile(`^(确认|取消|状态|重发)\s*[Bb](\d{1,9})$`)
)

// handleBroadcast takes "广播 范围 内容" and answers with the draft's
// preview, or the reason it was refused.
func (h *Hub) handleBroadcast(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, rest string) error {
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	if !o.HasRole(store.RoleAdmin) && !o.HasRole(store.RoleDistrictAdmin) {
		return reply(d.template("broadcast_not_admin"))
	}
	word, after, _ := strings.Cut(strings.TrimSpace(rest), " ")
	after = strings.TrimSpace(after)
	var sc Scope
	switch word {
	case "全部":
		sc = Scope{Kind: "all"}
	case "本所":
		sc = Scope{Kind: "station", Arg: d.stations[o.StationID].Code}
	case "标签", "群":
		arg, text, _ := strings.Cut(after, " ")
		if strings.TrimSpace(arg) == "" {
			return reply(d.template("broadcast_usage"))
		}
		sc = Scope{Kind: map[string]string{"标签": "tag", "群": "groups"}[word], Arg: arg}
		after = strings.TrimSpace(text)
	default:
		return reply(d.template("broadcast_usage"))
	}
	_, err := h.PlanBroadcast(ctx, o, chatOrigin(e), sc, after, string(e.Platform), e.Sender.ID, func(plan *BroadcastPlan) []bot.Outbound {
		m := replyTo(e, "r:"+e.ID, h.Preview(plan))
		m.Format, m.Title = bot.FormatMarkdown, "预警广播草稿 B"+fmt.Sprint(plan.Broadcast.ID)
		m.Ref.BroadcastID = plan.Broadcast.ID
		return []bot.Outbound{m}
	})
	var refusal *BroadcastRefusal
	switch {
	case errors.As(err, &refusal):
		return reply(refusal.Message)
	case errors.Is(err, store.ErrDuplicate):
		return nil
	}
	return err
}

// handleBroadcastReply is "确认 B12", "取消 B12", "状态 B12" or "重发 B12".
func (h *Hub) handleBroadcastReply(ctx context.Context, d *directory, e *bot.Event, o *store.Officer, verb string, id uint) error {
	reply := func(msg string) error { return h.send(ctx, replyTo(e, "r:"+e.ID, msg)) }
	var (
		msg string
		err error
	)
	switch verb {
	case "确认":
		var b *store.Broadcast
		if b, err = h.ConfirmBroadcast(ctx, o, chatOrigin(e), id); err == nil {
			msg = render(d.template("broadcast_started"), "id", fmt.Sprint(id), "total", fmt.Sprint(b.Total))
			if b.Status == store.BroadcastAwaitingApproval {
				msg = render(d.template("broadcast_awaiting"), "id", fmt.Sprint(id), "total", fmt.Sprint(b.Total))
			}
		}
	case "取消":
		var counts map[string]int
		if counts, err = h.CancelBroadcast(ctx, o, chatOrigin(e), id); err == nil {
			msg = render(d.template("broadcast_cancelled"), "id", fmt.Sprint(id), "sent", fmt.Sprint(counts[store.DeliverySent]),
				"cancelled", fmt.Sprint(counts[store.DeliveryCancelled]))
		}
	case "状态":
		if _, err = h.broadcastFor(ctx, d, o, id, true); err == nil {
			msg, err = h.BroadcastReport(ctx, id)
		}
	case "重发":
		var n int64
		if n, err = h.RetryFailedBroadcast(ctx, o, id); err == nil {
			tmpl := "broadcast_retrying"
			if n == 0 {
				tmpl = "broadcast_nothing_failed"
			}
			msg = render(d.template(tmpl), "id", fmt.Sprint(id), "count", fmt.Sprint(n))
		}
	}
	var refusal *BroadcastRefusal
	if errors.As(err, &refusal) {
		return reply(refusal.Message)
	}
	if err != nil {
		return err
	}
	m := replyTo(e, "r:"+e.ID, msg)
	if verb == "状态" {
		// The report the author also gets when sending ends: markdown, with
		// its outside text escaped as such.
		m.Format, m.Title = bot.FormatMarkdown, fmt.Sprintf("预警广播 B%d", id)
	}
	return h.send(ctx, m)
}

// chatOrigin is a chat command's origin: the platform account it came from.
func chatOrigin(e *bot.Event) Origin {
	return Origin{Via: store.ViaChat, From: string(e.Platform) + ":" + e.Sender.ID}
}

// parseBroadcastReply recognises "确认 B12" and its siblings.
func parseBroadcastReply(text string) (verb string, id uint, ok bool) {
	m := broadcastReply.FindStringSubmatch(text)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(m[2], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return m[1], uint(n), true
}

// ScopeLabel names a broadcast's scope as people read it.
func ScopeLabel(scope string) string {
	kind, arg, _ := strings.Cut(scope, ":")
	switch kind {
	case "all":
		return "全部群"
	case "station":
		return "派出所 " + arg
	case "tag":
		return "标签“" + arg + "”"
	case "groups":
		return "指定群 " + arg
	}
	return scope
}

// PlatformLabel names a platform as people read it.
func PlatformLabel(p string) string {
	switch bot.Platform(p) {
	case bot.DingTalk:
		return "钉钉"
	case bot.WeChat:
		return "企业微信"
	case bot.Playground:
		return "演示平台"
	}
	return p
}

func platformCounts(per map[string]int) string {
	ps := make([]string, 0, len(per))
	for p := range per {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %d 个", PlatformLabel(p), per[p]))
	}
	return strings.Join(parts, "，")
}

func stateLabel(status string) string {
	switch status {
	case store.BroadcastDraft:
		return "还是草稿"
	case store.BroadcastAwaitingApproval:
		return "正在等待另一位管理员批准"
	case store.BroadcastSending:
		return "正在发送"
	case store.BroadcastDone:
		return "已发送完毕"
	case store.BroadcastCancelled:
		return "已取消"
	}
	return status
}

// Officer finds an officer by code, with the platform account a direct
// message to them goes to (empty when they have none).
func (h *Hub) Officer(code string) (o *store.Officer, platform, userID string, err error) {
	d := h.dir.Load()
	for _, off := range d.officers {
		if off.Code == code {
			p, u, _ := d.address(off, "")
			return off, p, u, nil
		}
	}
	return nil, "", "", fmt.Errorf("no officer with code %q in the directory: %w", code, store.ErrNotFound)
}

// BroadcastProgress is where a broadcast stands, for progress displays.
func (h *Hub) BroadcastProgress(ctx context.Context, id uint) (*store.Broadcast, map[string]int, error) {
	b, err := h.store.BroadcastByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	counts, err := h.store.DeliveryCounts(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return b, counts, nil
}
