// Package markdown makes text from residents (and anyone else who is not
// the hub) safe to place inside a markdown message, one function per
// platform's dialect. A resident's "[点此领取补贴](http://evil)" must reach an
// officer as those characters, the address readable and not a link; a
// "### 新工单" line must not pass for a heading of the hub's own; a <font>
// tag or a DingTalk dtmd:// link (which makes the reader's client send a
// message when clicked) must not render.
//
// The platforms document no escape character (a backslash shows as a
// backslash in DingTalk and WeCom), so the functions neutralise by
// replacing each syntax character with its full-width form (＃ ＞ ［ ］ ＜
// ＊ …), which reads the same to a Chinese reader and which no renderer
// takes for syntax, and by breaking "://" into "：//" so no client
// recognises an address to link. Apply the function to each piece of
// outside text, never to a whole message: the hub's own markdown around it
// must stay markdown.
//
// What each dialect renders (and so what each function neutralises):
//
//   - DingTalk (robot and work-notice markdown): headings, block quotes,
//     bold and italic (* and _), links and images, ordered and unordered
//     lists, <font color> and other HTML tags, dtmd:// links.
//   - WeCom (app and group-robot markdown): headings, bold (**), links,
//     inline code, block quotes, <font color>, <@userid> mentions; lists
//     and italic in markdown_v2.
//   - Playground: CommonMark as the page renders it: everything above plus
//     strikethrough, tables and code fences.
package markdown

import (
	"regexp"
	"strings"

	"github.com/jingminhub/jingmin/bot"
)

// Escape escapes s for a markdown message on platform p: the rules call it
// on each piece of outside text placed into a bot.FormatMarkdown message.
// A platform without a markdown dialect of its own gets the strictest
// (Playground's).
func Escape(p bot.Platform, s string) string {
	switch p {
	case bot.DingTalk:
		return DingTalk(s)
	case bot.WeChat:
		return WeCom(s)
	}
	return Playground(s)
}

// DingTalk escapes s for a DingTalk markdown message.
func DingTalk(s string) string { return escape(s, dingtalkInline) }

// WeCom escapes s for a WeCom markdown message (app or group robot).
func WeCom(s string) string { return escape(s, wecomInline) }

// Playground escapes s for a markdown line in the playground.
func Playground(s string) string { return escape(s, playgroundInline) }

// Characters that are syntax anywhere in a line, per dialect. "<" and ">"
// open and close HTML tags (<font>, <a>) and autolinks, "[" and "]" links
// and images, "*" "_" "~" emphasis, "`" code.
const (
	dingtalkInline   = "[]<>*_~`"
	wecomInline      = "[]<>*_~`"
	playgroundInline = "[]<>*_~`|"
)

var (
	// scheme matches the "://" of any address, and the colon of schemes
	// that link without slashes.
	scheme = regexp.MustCompile(`(?i)://|\b(javascript|data|vbscript|mailto|tel|sms|dtmd|dingtalk|weixin|wxwork):`)
	www    = regexp.MustCompile(`(?i)\bwww\.`)
	// entity is an HTML character reference, which a renderer that takes
	// HTML could turn back into "<".
	entity = regexp.MustCompile(`&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});`)
	// listItem is an ordered list item's number and its "." or ")".
	orderedItem = regexp.MustCompile(`^(\s*\d+)([.)])(\s|$)`)
)

func escape(s, inline string) string {
	s = bot.CleanText(s)
	s = scheme.ReplaceAllStringFunc(s, func(m string) string { return strings.Replace(m, ":", "：", 1) })
	s = www.ReplaceAllStringFunc(s, func(m string) string { return m[:3] + "．" })
	s = entity.ReplaceAllStringFunc(s, func(m string) string { return "＆" + m[1:] })
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = escapeLine(l, inline)
	}
	return strings.Join(lines, "\n")
}

// escapeLine neutralises what is syntax at the start of a line (headings,
// quotes, list items, rules and setext underlines), then inline syntax.
func escapeLine(l, inline string) string {
	body := strings.TrimLeft(l, " \t")
	indent := l[:len(l)-len(body)]
	if body != "" {
		switch c := body[0]; c {
		case '#', '>', '-', '+', '*', '=':
			run := len(body) - len(strings.TrimLeft(body, string(c)))
			body = fullWidth(body[:run]) + body[run:]
		}
		if m := orderedItem.FindStringSubmatchIndex(body); m != nil {
			body = body[:m[4]] + fullWidth(body[m[4]:m[5]]) + body[m[5]:]
		}
	}
	var b strings.Builder
	b.Grow(len(indent) + len(body) + 8)
	b.WriteString(indent)
	for _, r := range body {
		if r < 0x80 && strings.ContainsRune(inline, r) {
			b.WriteRune(r + 0xFEE0)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fullWidth maps printable ASCII to the full-width forms (U+FF01–U+FF5E).
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r <= '~' {
			return r + 0xFEE0
		}
		return r
	}, s)
}
