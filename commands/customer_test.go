package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// customerRig is the example station with WeCom accounts and one customer
// group, 和谐小区居民群 (wrHexie), owned by 王建国.
func customerRig(t *testing.T, start time.Time) *rig {
	return newRig(t, start, func(cfg *configs.Config, o *Options) {
		ids := map[string]string{"wang": "wangjg", "li": "lim", "zhang": "zhangw", "zhao": "zhaog", "taiping-duty": "taiping-duty-wx"}
		for i := range cfg.Officers {
			if id, ok := ids[cfg.Officers[i].Code]; ok {
				cfg.Officers[i].Identities["wechat"] = id
			}
			if cfg.Officers[i].Code == "zhao" {
				cfg.Officers[i].Identities["dingtalk"] = "zhao-staff"
			}
		}
		cfg.Groups = append(cfg.Groups,
			configs.Group{Platform: "wechat", ChatID: "wrHexie", Name: "和谐小区居民群", Station: "taiping", Officer: "wang", Kind: store.GroupKindCustomer},
			configs.Group{Platform: "wechat", ChatID: "wrStaff", Name: "太平所内部群", Station: "taiping", Officer: "wang"})
		o.ToolbarURL = "https://hub.example.cn/wecom/toolbar"
	})
}

// archived hands the rules a message read from the archive, normalised by
// the archive reader's own normaliser.
func (r *rig) archived(chat, from, text string) *bot.Event {
	r.t.Helper()
	n := r.seq.Add(1)
	plain := fmt.Sprintf(`{"msgid":"am%d","action":"send","from":%q,"roomid":%q,"msgtime":%d,"msgtype":"text","text":{"content":%q}}`,
		n, from, chat, r.clock.Now().UnixMilli(), text)
	e, err := wecomarchive.Decode([]byte(plain), []string{"王建国", "王警官", "老王", "李明", "太平警务值班号"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.handle(e)
	return e
}

// awaiting is what waits for a tap in chat.
func (r *rig) awaiting(chat string) []store.OutboundMessage {
	r.t.Helper()
	msgs, _, err := r.st.AwaitingHuman(r.ctx, "wechat", chat)
	if err != nil {
		r.t.Fatal(err)
	}
	return msgs
}

func (r *rig) openTicket(number int64) *store.Ticket {
	r.t.Helper()
	st := r.h.dir.Load().stationByCode("taiping")
	t, err := r.st.TicketByNumber(r.ctx, st.ID, number)
	if err != nil {
		r.t.Fatal(err)
	}
	return t
}

// In a customer group the hub cannot post: a resident's @ of the officer
// becomes a ticket whose acknowledgement waits for the owner's tap, the
// owner's direct message carries the prepared text and the toolbar link;
// the prepared acknowledgement sent as it is does not stop the clock, the
// officer's own answer naming the ticket does, and is recorded on it.
func TestCustomerGroupQuestionAnsweredInGroup(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	r.archived("wrHexie", "wmResident1", "@王警官 楼道的灯坏了好几天，找谁修？")
	sent := r.sent(bot.WeChat)
	if len(sent) != 1 || sent[0].ToUser != "wangjg" || sent[0].Ref.Purpose != bot.PurposeAssign {
		t.Fatalf("sent %s, want one direct message to the owner 王建国", texts(sent))
	}
	dm := sent[0].Text
	for _, want := range []string{"客户群", "楼道的灯坏了好几天", "收到，已登记为工单 #1", "聊天工具栏", "(https://hub.example.cn/wecom/toolbar)"} {
		if !strings.Contains(dm, want) {
			t.Errorf("owner's message lacks %q:\n%s", want, dm)
		}
	}
	waiting := r.awaiting("wrHexie")
	if len(waiting) != 1 || waiting[0].Purpose != string(bot.PurposeAck) || waiting[0].State != store.OutboundAwaitingHuman {
		t.Fatalf("awaiting a tap: %+v, want the acknowledgement", waiting)
	}
	// The owner taps: the acknowledgement appears in the group as prepared.
	r.archived("wrHexie", "wangjg", waiting[0].Text)
	if got := r.awaiting("wrHexie"); len(got) != 0 {
		t.Fatalf("after the tap still awaiting: %+v", got)
	}
	if tk := r.openTicket(1); tk.Status != store.StatusOpen || tk.EscalateAt == nil {
		t.Fatalf("ticket after the acknowledgement: %s, escalate at %v; want open with its clock running", tk.Status, tk.EscalateAt)
	}
	// A resident's chatter and a colleague's word that names no ticket change nothing.
	r.archived("wrHexie", "wmResident2", "今天天气不错")
	r.archived("wrHexie", "lim", "大家好")
	r.clock.Add(4 * time.Minute)
	r.archived("wrHexie", "wangjg", "已经联系物业，今天下午来修（工单 #1）")
	tk := r.openTicket(1)
	if tk.Status != store.StatusAnswered || tk.FirstResponseAt == nil || tk.EscalateAt != nil || tk.AnsweredBy == nil {
		t.Fatalf("ticket after the answer: %+v, want answered with the first response recorded and no escalation", tk)
	}
	if got := tk.FirstResponseAt.Sub(tk.CreatedAt); got != 4*time.Minute {
		t.Errorf("first response after %v, want 4m", got)
	}
	if got := r.sent(bot.WeChat); len(got) != 0 {
		t.Errorf("the answer sent %s, want nothing", texts(got))
	}
}

// Nobody answers in the group: escalation runs on the answer clock; a
// reply by direct message is prepared, not delivered, and the ticket is
// answered only when the answer is seen in the group.
func TestCustomerGroupEscalatesUntilAnswerSeen(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	r.archived("wrHexie", "wmResident1", "@太平警务值班号 电动车被偷了怎么报案")
	if got := r.sent(bot.WeChat); len(to(got, "wangjg")) != 1 {
		t.Fatalf("sent %s, want the owner told", texts(got))
	}
	r.clock.Add(16 * time.Minute)
	r.tick()
	esc := r.sent(bot.WeChat)
	if len(esc) == 0 {
		t.Fatal("no escalation after the SLA")
	}
	for _, m := range esc {
		if m.Ref.Purpose != bot.PurposeEscalation {
			t.Errorf("after the SLA sent %s", texts(esc))
		}
		if strings.Contains(m.Text, "即在群里答复") || !strings.Contains(m.Text, "聊天工具栏") {
			t.Errorf("escalation of a customer-group ticket does not send the officer to the chat toolbar:\n%s", m.Text)
		}
	}
	r.direct2("wangjg", "#1 请带身份证到派出所报案，我们会调取监控")
	reply := r.sent(bot.WeChat)
	if len(reply) != 1 || !strings.Contains(reply[0].Text, "一键发送") {
		t.Fatalf("reply to the officer: %s, want the prepared-answer note", texts(reply))
	}
	if tk := r.openTicket(1); tk.Status == store.StatusAnswered {
		t.Fatal("a prepared answer counted as answered")
	}
	var answer *store.OutboundMessage
	for _, m := range r.awaiting("wrHexie") {
		if m.Purpose == string(bot.PurposeAnswer) {
			answer = &m
		}
	}
	if answer == nil || !strings.Contains(answer.Text, "请带身份证到派出所报案") {
		t.Fatalf("the prepared answer is not waiting for a tap: %+v", r.awaiting("wrHexie"))
	}
	r.archived("wrHexie", "wangjg", answer.Text)
	if tk := r.openTicket(1); tk.Status != store.StatusAnswered || tk.EscalateAt != nil {
		t.Fatalf("after the answer was seen: %s", tk.Status)
	}
	if got, err := r.st.OutboundByKey(r.ctx, answer.Key); err != nil || got.State != store.OutboundSent {
		t.Fatalf("prepared answer after it was seen: %+v %v, want sent", got, err)
	}
}

// An emergency without any @ in a customer group: the owner, the duty
// officer on shift and the leader are paged at once, and the 110 guidance
// waits for a tap.
func TestCustomerGroupEmergencyWithoutMention(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 19, 0, 0, 0, sh))
	r.archived("wrHexie", "wmResident1", "楼下着火了，好大的烟")
	pages := r.sent(bot.WeChat)
	got := map[string]bool{}
	for _, m := range pages {
		if m.Ref.Purpose == bot.PurposePage && strings.Contains(m.Text, "110 提示已备好") {
			got[m.ToUser] = true
		}
	}
	for _, who := range []string{"wangjg", "zhangw", "zhaog"} {
		if !got[who] {
			t.Errorf("%s not paged; sent %s", who, texts(pages))
		}
	}
	waiting := r.awaiting("wrHexie")
	if len(waiting) != 1 || !strings.Contains(waiting[0].Text, "110") {
		t.Fatalf("awaiting a tap: %+v, want the 110 guidance", waiting)
	}
	ding := r.sent(bot.DingTalk)
	if len(to(ding, "zhao-staff")) != 1 || len(ding) != 1 {
		t.Fatalf("DingTalk pages %s, want the leader's (the one with a DingTalk account)", texts(ding))
	}
}

// Messages from groups that are not customer groups (an internal group the
// robot serves, a room nobody registered) are not the archive's to handle.
func TestArchivedOutsideCustomerGroupsIgnored(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	r.archived("wrStaff", "wmResident1", "@王警官 着火了")
	r.archived("wrNobody", "wmResident1", "@王警官 着火了")
	if got := r.sent(bot.WeChat); len(got) != 0 {
		t.Fatalf("sent %s, want nothing", texts(got))
	}
	if got := r.awaiting("wrStaff"); len(got) != 0 {
		t.Fatalf("awaiting %+v", got)
	}
}

// direct2 is an officer's direct message to the app on WeCom.
func (r *rig) direct2(user, text string) {
	r.t.Helper()
	e := &bot.Event{ID: fmt.Sprintf("wechat:d%d", r.seq.Add(1)), Platform: bot.WeChat,
		Chat:   bot.ChatRef{Platform: bot.WeChat, ID: user, Type: bot.Direct},
		Sender: bot.User{ID: user}, Kind: bot.KindText, Text: text, AddressedToBot: true, Time: r.clock.Now()}
	r.handle(e)
}

// What people read around customer groups, in full: the owner's message,
// the pages, what waits for a tap, the officer's prepared-answer note and
// the admins' archive alerts. `go test ./commands -run
// TestCustomerGroupMessagesGolden -update` rewrites the file.
func TestCustomerGroupMessagesGolden(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	var b strings.Builder
	seen := map[uint]bool{}
	dump := func(what string) {
		fmt.Fprintf(&b, "## %s %s\n", r.clock.Now().In(sh).Format("15:04"), what)
		for _, m := range r.sent(bot.WeChat) {
			fmt.Fprintf(&b, "%s → %s [%s] %s\n%s\n\n", m.Ref.Purpose, m.ToUser, m.Format, m.Title, m.Text)
		}
		for _, m := range r.awaiting("wrHexie") {
			if !seen[m.ID] {
				seen[m.ID] = true
				fmt.Fprintf(&b, "%s → group %s, awaiting a tap\n%s\n\n", m.Purpose, m.ChatID, m.Text)
			}
		}
	}
	r.archived("wrHexie", "wmResident1", "@王警官 楼道的灯坏了好几天，找谁修？")
	dump("a resident @王警官 in 和谐小区居民群")
	r.clock.Add(time.Minute)
	r.archived("wrHexie", "wmResident2", "3号楼着火了")
	dump("an emergency without @")
	r.clock.Add(time.Minute)
	r.direct2("wangjg", "#1 已报物业，今天下午来修")
	dump("王建国 answers #1 from the app")
	if err := r.h.ArchiveTrouble(r.ctx, "wwtaiping", "pull archive from 42: errcode 10001 (network error)", time.Date(2026, 11, 30, 9, 30, 0, 0, sh)); err != nil {
		t.Fatal(err)
	}
	if err := r.h.ArchiveUndecryptable(r.ctx, "wwtaiping", "msg-8812", "wrHexie", "no private key for publickey_ver 3"); err != nil {
		t.Fatal(err)
	}
	dump("the archive reader's alerts")
	golden.File(t, "testdata/customer_messages.golden", []byte(b.String()))
}

// An officer's message that @s the resident by name answers their ticket,
// even without its number; one that @s somebody else does not.
func TestCustomerGroupAnswerByMention(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 10, 0, 0, 0, sh))
	e, err := wecomarchive.Decode([]byte(`{"msgid":"q1","action":"send","from":"wmResident1","roomid":"wrHexie","msgtime":1764468000000,"msgtype":"text","text":{"content":"@王警官 楼道的灯坏了"}}`), []string{"王警官"})
	if err != nil {
		t.Fatal(err)
	}
	e.Sender.Name = "张阿姨" // as the reader looks it up
	r.handle(e)
	r.sent(bot.WeChat)
	r.archived("wrHexie", "wangjg", "@李大爷 您的快递到了")
	if tk := r.openTicket(1); tk.Status != store.StatusOpen {
		t.Fatalf("an @ of somebody else answered #1: %s", tk.Status)
	}
	r.archived("wrHexie", "wangjg", "@张阿姨 已经报给物业了")
	if tk := r.openTicket(1); tk.Status != store.StatusAnswered || tk.ResidentName != "张阿姨" {
		t.Fatalf("#1 after 王建国 @张阿姨: %s (%q), want answered", tk.Status, tk.ResidentName)
	}
}

// After hours the FAQ answer is prepared in a customer group, not sent:
// the ticket is filed for the morning, never counted answered by itself.
func TestCustomerGroupFAQWaitsForATap(t *testing.T) {
	r := customerRig(t, time.Date(2026, 11, 30, 23, 0, 0, 0, sh))
	r.archived("wrHexie", "wmResident1", "@太平警务值班号 身份证丢了怎么补办")
	tk := r.openTicket(1)
	if tk.Status != store.StatusOpen || tk.AutoAnswered || tk.FirstResponseAt != nil || tk.EscalateAt == nil {
		t.Fatalf("after-hours FAQ question in a customer group: %+v, want filed and unanswered", tk)
	}
	waiting := r.awaiting("wrHexie")
	if len(waiting) != 1 || !strings.Contains(waiting[0].Text, "补换身份证") {
		t.Fatalf("awaiting a tap: %+v, want the FAQ answer", waiting)
	}
	if got := to(r.sent(bot.WeChat), "wangjg"); len(got) != 1 || !strings.Contains(got[0].Text, "补换身份证") {
		t.Fatalf("owner told: %s, want the prepared FAQ answer", texts(got))
	}
}
