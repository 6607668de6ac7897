package commands

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
)

// templateFormats is the format every shipped template is sent in. Plain
// text reaches residents' groups and the platforms show it as written, so
// markdown syntax in it ("### 新工单", "- 群：…", "**") would show as those
// characters; markdown goes only to staff, in their direct chats.
var templateFormats = map[string]bot.Format{
	"ack":                             bot.FormatText,
	"ack_after_hours":                 bot.FormatText,
	"faq_answer":                      bot.FormatText,
	"emergency":                       bot.FormatText,
	"officer_dm":                      bot.FormatMarkdown,
	"page":                            bot.FormatMarkdown,
	"escalation_dm":                   bot.FormatMarkdown,
	"answer":                          bot.FormatText,
	"answered_ok":                     bot.FormatText,
	"claimed_ok":                      bot.FormatText,
	"handed_over_ok":                  bot.FormatText,
	"handed_over_dm":                  bot.FormatMarkdown,
	"closed_ok":                       bot.FormatText,
	"console_code":                    bot.FormatText,
	"duty_on":                         bot.FormatText,
	"duty_off":                        bot.FormatText,
	"digest":                          bot.FormatMarkdown, // the shift's digest and the 待办 reply
	"unknown_group":                   bot.FormatText,
	"throttled":                       bot.FormatText,
	"unsupported":                     bot.FormatText,
	"no_ticket":                       bot.FormatText,
	"ticket_closed":                   bot.FormatText,
	"other_station":                   bot.FormatText,
	"unknown_officer":                 bot.FormatText,
	"not_staff":                       bot.FormatText,
	"help":                            bot.FormatText,
	"resident_help":                   bot.FormatText,
	"customer_group_welcome":          bot.FormatText,
	"mass_send_capped":                bot.FormatText,     // a delivery's reason, quoted in the report
	"mass_send_awaiting":              bot.FormatMarkdown, // a line of the report
	"mass_send_remind":                bot.FormatMarkdown,
	"answer_undelivered":              bot.FormatMarkdown,
	"broadcast_alert":                 bot.FormatText,
	"broadcast_usage":                 bot.FormatText,
	"broadcast_not_admin":             bot.FormatText,
	"broadcast_own_station":           bot.FormatText,
	"broadcast_empty":                 bot.FormatText,
	"broadcast_too_long":              bot.FormatText,
	"broadcast_unknown_station":       bot.FormatText,
	"broadcast_unknown_tag":           bot.FormatText,
	"broadcast_unknown_groups":        bot.FormatText,
	"broadcast_no_groups":             bot.FormatText,
	"broadcast_preview":               bot.FormatMarkdown,
	"broadcast_started":               bot.FormatText,
	"broadcast_not_found":             bot.FormatText,
	"broadcast_not_author":            bot.FormatText,
	"broadcast_state":                 bot.FormatText,
	"broadcast_awaiting":              bot.FormatText,
	"broadcast_own_draft":             bot.FormatText,
	"broadcast_approver":              bot.FormatText,
	"broadcast_cancelled":             bot.FormatText,
	"broadcast_retrying":              bot.FormatText,
	"broadcast_progress":              bot.FormatMarkdown, // the 状态 B12 reply while sending
	"broadcast_report":                bot.FormatMarkdown, // the report, and the 状态 B12 reply after
	"alert_from_ticket":               bot.FormatText,     // the alert's own text, sent to groups
	"alert_draft_intro":               bot.FormatMarkdown, // heads the draft's preview
	"alert_forwarded":                 bot.FormatText,
	"alert_no_admin":                  bot.FormatText,
	"alert_not_draft":                 bot.FormatText,
	"alert_edited":                    bot.FormatMarkdown, // heads the new draft's preview
	"empty_answer":                    bot.FormatText,
	"ack_after_hours_urgent":          bot.FormatText,
	"broadcast_nothing_failed":        bot.FormatText,
	"claim_answered":                  bot.FormatText,
	"claimed_ok_later":                bot.FormatText,
	"duty_bad_end":                    bot.FormatText,
	"duty_off_no_shift":               bot.FormatText,
	"handover_same":                   bot.FormatText,
	"escalation_digest":               bot.FormatMarkdown,
	"escalation_digest_line":          bot.FormatMarkdown, // a line of the digest
	"todo_more":                       bot.FormatMarkdown, // ends a page of 待办
	"todo_last_page":                  bot.FormatMarkdown,
	"todo_no_page":                    bot.FormatText,
	"unknown_group_admin":             bot.FormatMarkdown,
	"card_claimed":                    bot.FormatText,
	"card_handed_over":                bot.FormatText,
	"card_answered":                   bot.FormatText,
	"card_closed":                     bot.FormatText,
	"card_pick_colleague":             bot.FormatMarkdown,
	"card_no_colleague":               bot.FormatText,
	"card_gone":                       bot.FormatText,
	"card_refused_admin":              bot.FormatText,
	"budget_warn_admin":               bot.FormatText,
	"budget_over_admin":               bot.FormatText,
	"customer_dm":                     bot.FormatMarkdown, // a customer-group ticket to its owner
	"customer_escalation_dm":          bot.FormatMarkdown, // escalation_dm for a customer-group ticket
	"customer_escalation_digest":      bot.FormatMarkdown, // escalation_digest holding a customer-group ticket
	"customer_escalation_digest_line": bot.FormatMarkdown, // a customer-group ticket's line of the digest
	"customer_handed_over_dm":         bot.FormatMarkdown, // handed_over_dm for a customer-group ticket
	"customer_page":                   bot.FormatMarkdown,
	"answer_prepared_ok":              bot.FormatText,
	"archive_trouble":                 bot.FormatMarkdown, // to admins
	"archive_undecryptable":           bot.FormatMarkdown,
	"swap_usage":                      bot.FormatText,
	"swap_refused":                    bot.FormatText,
	"swap_requested_ok":               bot.FormatText,
	"swap_requested":                  bot.FormatText,
	"swap_accepted_wait":              bot.FormatText,
	"swap_accepted_ok":                bot.FormatText,
	"swap_to_approve":                 bot.FormatText,
	"swap_approved":                   bot.FormatText,
	"swap_declined":                   bot.FormatText,
	"swap_decided_ok":                 bot.FormatText,
}

// markdownSyntax finds what a markdown renderer would take for syntax: a
// heading, list item, block quote or rule at the start of a line, and
// emphasis, code, links, images, strikethrough and HTML tags anywhere.
var markdownSyntax = regexp.MustCompile("(?m)^\\s*(#{1,6}\\s|[-*+]\\s|\\d+[.)]\\s|>|(-{3,}|\\*{3,}|_{3,}|={3,})\\s*$)|\\*\\*|__|`|~~|!?\\[[^\\]\\n]*\\]\\(|</?[A-Za-z]")

// Every plain-text template, filled in, is free of markdown syntax; every
// shipped template says in which format it is sent.
func TestPlainTextTemplatesHaveNoMarkdown(t *testing.T) {
	sample := []string{"number", "12", "assignee", "王警官", "next", "明天08:30", "answer", "带上身份证到警务室办理", "group", "和谐小区业主群",
		"resident", "刘阿姨", "question", "楼道有焦味", "waited", "30", "officer", "王建国", "minutes", "15", "from", "李明", "count", "3",
		"list", "#1 和谐小区业主群：楼道有焦味", "reason", "群已解散", "text", "近期有冒充客服的诈骗电话", "station", "东城派出所", "name", "李警官",
		"platform", "企业微信", "limit", "2048 字节", "size", "3000 字节", "tag", "企业群", "tags", "企业群、学校群", "groups", "hexie",
		"scope", "本所", "total", "10", "platforms", "企业微信 4 个、钉钉 6 个", "id", "7", "state", "已发送完毕", "action", "取消",
		"sent", "9", "cancelled", "1", "failed", "0", "waiting", "0", "reasons", "", "admin", "赵刚", "old", "6",
		"until", "今天23:00", "due", "明天08:45", "end", "25:99", "page", "2", "pages", "3", "to", "40", "next", "3", "had", "王建国",
		"time", "22:41", "app", "dingtestappkey", "used", "800", "budget", "1000", "held", "12",
		"link", "https://work.weixin.qq.com/kf/kfc123", "unconfirmed", "12", "owner", "王建国",
		"code", "493027",
		"requester", "王建国", "colleague", "李明", "date", "12月5日（周六）", "hours", "08:30–17:30", "who", "李明"}
	var keys []string
	for key := range configs.DefaultTemplates {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		format, ok := templateFormats[key]
		if !ok {
			t.Errorf("template %q: say in templateFormats whether it is sent as text or markdown", key)
			continue
		}
		if format != bot.FormatText {
			continue
		}
		text := render(configs.DefaultTemplates[key], sample...)
		if m := markdownSyntax.FindString(text); m != "" {
			t.Errorf("template %q is sent as plain text but holds markdown syntax %q:\n%s", key, strings.TrimSpace(m), text)
		}
		if strings.Contains(text, "{") {
			t.Errorf("template %q: a placeholder the sample does not fill:\n%s", key, text)
		}
	}
	for key := range templateFormats {
		if _, ok := configs.DefaultTemplates[key]; !ok {
			t.Errorf("templateFormats names %q, which is no template", key)
		}
	}
}
