package wecomarchive

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jingminhub/jingmin/bot"
)

// Message is one archived message as DecryptData returns it: the archive's
// plaintext JSON (only the fields the hub reads).
type Message struct {
	MsgID   string   `json:"msgid"`
	Action  string   `json:"action"` // send, recall, switch
	From    string   `json:"from"`
	ToList  []string `json:"tolist"`
	RoomID  string   `json:"roomid"`
	MsgTime int64    `json:"msgtime"` // milliseconds
	MsgType string   `json:"msgtype"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text,omitempty"`
	Mixed *struct {
		Item []struct {
			Type    string `json:"type"`
			Content string `json:"content"`
		} `json:"item"`
	} `json:"mixed,omitempty"`
}

// ErrIgnored marks an archived message that carries nothing for the rules:
// a one-to-one chat, a recall, a chat-switch marker. It is recorded as
// skipped.
var ErrIgnored = errors.New("archived message carries nothing for the hub")

// maxIDLen bounds identifiers taken from the archive.
const maxIDLen = 256

// IsResident reports whether a sender id is an external contact (a resident
// on personal WeChat, external_userid "wm…" or "wo…") rather than a WeCom
// member.
func IsResident(from string) bool {
	return strings.HasPrefix(from, "wm") || strings.HasPrefix(from, "wo")
}

// Decode parses and normalises one decrypted archived message.
func Decode(plain []byte, names []string) (*bot.Event, error) {
	var m Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("archived message is not JSON: %w", err)
	}
	return Normalise(&m, names)
}

// Normalise turns an archived group message into the event the rules take.
// roomid is the group, from a resident (external_userid) or an officer
// (internal userid), msgtime the time. The archive has no structured @
// list: "@名字" in the text is matched to names (officers, aliases and the
// duty accounts, as configured), longest first, so "@王警官楼道有焦味"
// reads as a mention of 王警官 even without WeChat's separator. WeChat's
// quote ("「名字：原话」" above a dashed line) becomes the event's Quote;
// other message types become unsupported events the rules can answer
// politely.
func Normalise(m *Message, names []string) (*bot.Event, error) {
	switch m.Action {
	case "recall", "switch":
		return nil, ErrIgnored
	}
	if m.RoomID == "" {
		return nil, ErrIgnored // a one-to-one chat: not a group the hub serves
	}
	if m.MsgID == "" || m.From == "" {
		return nil, errors.New("archived message lacks msgid or from")
	}
	for _, id := range []string{m.MsgID, m.From, m.RoomID} {
		if len(id) > maxIDLen || !utf8.ValidString(id) {
			return nil, fmt.Errorf("identifier too long or not UTF-8 (%d bytes)", len(id))
		}
	}
	e := &bot.Event{
		ID: bot.NewEventID(bot.WeChat, "archive:"+m.MsgID), Platform: bot.WeChat, MessageID: m.MsgID,
		Chat:   bot.ChatRef{Platform: bot.WeChat, ID: m.RoomID, Type: bot.Group},
		Sender: bot.User{ID: m.From}, FromStaff: !IsResident(m.From),
		SeesAllMessages: true, Archived: true,
		Time: time.UnixMilli(m.MsgTime).UTC(),
	}
	content, ok := textOf(m)
	if !ok {
		e.Kind = bot.KindUnsupported
		return e, e.Validate()
	}
	e.Kind = bot.KindText
	content = bot.CleanText(bot.Truncate(content, bot.MaxTextRunes))
	if q, rest, ok := splitQuote(content); ok {
		e.Quote = &bot.Quote{Text: q}
		content = rest
	}
	text, found := bot.ExtractMentions(separateNames(content, names))
	e.Text = text
	for _, n := range found {
		e.Mentions = append(e.Mentions, bot.Mention{Name: n})
	}
	return e, e.Validate()
}

// textOf is the words of a message, when it has any.
func textOf(m *Message) (string, bool) {
	switch m.MsgType {
	case "text":
		if m.Text != nil {
			return m.Text.Content, true
		}
	case "mixed":
		if m.Mixed == nil {
			return "", false
		}
		var parts []string
		for _, it := range m.Mixed.Item {
			if it.Type != "text" {
				continue
			}
			// An item's content is itself JSON: {"content":"..."}.
			var c struct {
				Content string `json:"content"`
			}
			if json.Unmarshal([]byte(it.Content), &c) == nil && c.Content != "" {
				parts = append(parts, c.Content)
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, "\n"), true
		}
	}
	return "", false
}

// quoteRule is the dashed line WeChat puts between a quote and the reply.
const quoteRule = "- - - - - - - - - - - - - - -"

// splitQuote takes WeChat's quote off a reply: "「名字：原话」\n- - - …\n回复".
func splitQuote(s string) (quote, rest string, ok bool) {
	if !strings.HasPrefix(s, "「") {
		return "", s, false
	}
	end := strings.Index(s, "」\n"+quoteRule)
	if end < 0 {
		return "", s, false
	}
	quote = s[len("「"):end]
	if i := strings.Index(quote, "："); i >= 0 {
		quote = quote[i+len("："):]
	}
	rest = strings.TrimLeft(s[end+len("」\n"+quoteRule):], "\n ")
	return strings.TrimSpace(quote), rest, true
}

// separateNames puts WeChat's separator (U+2005) after a known name that
// follows "@" directly with more text, so "@王警官楼道有焦味" mentions 王警官.
func separateNames(s string, names []string) string {
	if !strings.ContainsAny(s, "@＠") || len(names) == 0 {
		return s
	}
	sorted := append([]string(nil), names...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+w])
		i += w
		if r != '@' && r != '＠' {
			continue
		}
		for _, n := range sorted {
			if n == "" || !strings.HasPrefix(s[i:], n) {
				continue
			}
			b.WriteString(n)
			i += len(n)
			if next, _ := utf8.DecodeRuneInString(s[i:]); i < len(s) && next != '\u2005' && next != ' ' && next != '\n' {
				b.WriteRune('\u2005')
			}
			break
		}
	}
	return b.String()
}
