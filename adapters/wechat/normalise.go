package wechat

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// ErrIgnored marks a callback that is valid but carries nothing for the hub
// (entering a chat, a stream refresh, a subscription): it is answered 200 and
// not published.
var ErrIgnored = errors.New("callback carries no message for the hub")

// RobotMessage is the decrypted JSON of an intelligent-robot callback.
type RobotMessage struct {
	MsgID    string `json:"msgid"`
	AIBotID  string `json:"aibotid"`
	ChatID   string `json:"chatid,omitempty"`
	ChatType string `json:"chattype"` // group | single
	From     struct {
		UserID string `json:"userid"`
	} `json:"from"`
	ResponseURL string          `json:"response_url,omitempty"`
	CreateTime  int64           `json:"create_time,omitempty"`
	MsgType     string          `json:"msgtype"`
	Text        *robotText      `json:"text,omitempty"`
	Voice       *robotText      `json:"voice,omitempty"` // content is WeCom's transcription
	Mixed       *robotMixed     `json:"mixed,omitempty"`
	Quote       *robotQuote     `json:"quote,omitempty"`
	Event       json.RawMessage `json:"event,omitempty"`
}

type robotText struct {
	Content string `json:"content"`
}

type robotMixed struct {
	Items []struct {
		MsgType string     `json:"msgtype"`
		Text    *robotText `json:"text,omitempty"`
	} `json:"msg_item"`
}

type robotQuote struct {
	MsgType string      `json:"msgtype"`
	Text    *robotText  `json:"text,omitempty"`
	Voice   *robotText  `json:"voice,omitempty"`
	Mixed   *robotMixed `json:"mixed,omitempty"`
}

// responseURLTTL is how long WeCom honours a response_url.
const responseURLTTL = time.Hour

// Limits on identifiers, so a hostile payload cannot smuggle megabytes into
// ids that end up in keys and log lines.
const maxIDLen = 256

// NormaliseRobot turns a decrypted intelligent-robot message into the event
// the hub handles. names are the robot's display names; now stamps events
// that carry no time and dates the response_url.
func NormaliseRobot(m *RobotMessage, names []string, now time.Time) (*bot.Event, error) {
	switch m.MsgType {
	case "event", "stream", "":
		return nil, ErrIgnored
	}
	if m.MsgID == "" || m.From.UserID == "" {
		return nil, errors.New("robot message lacks msgid or from.userid")
	}
	if err := checkIDs(m.MsgID, m.From.UserID, m.ChatID, m.AIBotID); err != nil {
		return nil, err
	}
	e := &bot.Event{
		ID: bot.NewEventID(bot.WeChat, m.MsgID), Platform: bot.WeChat, MessageID: m.MsgID,
		Sender: bot.User{ID: m.From.UserID}, AddressedToBot: true, Time: now.UTC(),
	}
	if m.CreateTime > 0 {
		e.Time = time.Unix(m.CreateTime, 0).UTC()
	}
	switch m.ChatType {
	case "group":
		if m.ChatID == "" {
			return nil, errors.New("group message lacks chatid")
		}
		e.Chat = bot.ChatRef{Platform: bot.WeChat, ID: m.ChatID, Type: bot.Group}
	case "single":
		e.Chat = bot.ChatRef{Platform: bot.WeChat, ID: m.From.UserID, Type: bot.Direct}
	default:
		return nil, fmt.Errorf("chattype %q, want group or single", clip(m.ChatType, 20))
	}
	if m.ResponseURL != "" {
		if len(m.ResponseURL) > 2048 || !strings.HasPrefix(m.ResponseURL, "http") {
			return nil, errors.New("response_url is not an http(s) URL")
		}
		e.ReplyHandle = encodeReplyHandle(m.ResponseURL, now.Add(responseURLTTL))
	}
	content, ok := robotContent(m.MsgType, m.Text, m.Voice, m.Mixed)
	content = bot.CleanText(content)
	if !ok {
		e.Kind = bot.KindUnsupported
	} else {
		e.Kind = bot.KindText
		e.Text, e.Mentions = mentions(content, names, e.Chat.Type == bot.Group)
	}
	if m.Quote != nil {
		if q, ok := robotContent(m.Quote.MsgType, m.Quote.Text, m.Quote.Voice, m.Quote.Mixed); ok {
			e.Quote = &bot.Quote{Text: bot.Truncate(bot.CleanText(q), bot.MaxTextRunes)}
		}
	}
	return e, e.Validate()
}

// robotContent is the text of a message, when it has any.
func robotContent(msgType string, text, voice *robotText, mixed *robotMixed) (string, bool) {
	switch msgType {
	case "text":
		if text != nil {
			return text.Content, true
		}
	case "voice":
		if voice != nil && strings.TrimSpace(voice.Content) != "" {
			return voice.Content, true
		}
	case "mixed":
		if mixed == nil {
			return "", false
		}
		var parts []string
		for _, it := range mixed.Items {
			if it.MsgType == "text" && it.Text != nil {
				parts = append(parts, it.Text.Content)
			}
		}
		return strings.Join(parts, " "), len(parts) > 0
	}
	return "", false
}

// mentions strips the @s from text and says who each one was: one of the
// robot's names is the bot; failing that, in a group the leading @ is the
// robot's, as WeCom forwards only messages that @ it.
func mentions(content string, names []string, group bool) (string, []bot.Mention) {
	text, found := bot.ExtractMentions(bot.Truncate(content, bot.MaxTextRunes))
	var out []bot.Mention
	sawBot := false
	for _, n := range found {
		isBot := false
		for _, rn := range names {
			if n == rn {
				isBot = true
			}
		}
		sawBot = sawBot || isBot
		out = append(out, bot.Mention{Name: n, IsBot: isBot})
	}
	lead := strings.TrimLeft(content, " \t\r\n\u2005")
	if group && !sawBot && len(out) > 0 && (strings.HasPrefix(lead, "@") || strings.HasPrefix(lead, "＠")) {
		out[0].IsBot = true
	}
	return text, out
}

// AppMessage is the decrypted XML of a self-built app callback.
type AppMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
	Recognition  string   `xml:"Recognition"` // voice, when speech recognition is on
	MsgID        string   `xml:"MsgId"`
	AgentID      string   `xml:"AgentID"`
	Event        string   `xml:"Event"`
	// A template card's button press (Event template_card_event).
	EventKey     string `xml:"EventKey"`
	TaskID       string `xml:"TaskId"`
	CardType     string `xml:"CardType"`
	ResponseCode string `xml:"ResponseCode"`
}

// NormaliseApp turns a decrypted app message into a direct-chat event: an
// officer (or anyone in the corp who can see the app) writing to the bot.
func NormaliseApp(m *AppMessage, agentID string, now time.Time) (*bot.Event, error) {
	if m.MsgType == "event" && m.Event == "template_card_event" {
		if agentID != "" && m.AgentID != "" && m.AgentID != agentID {
			return nil, fmt.Errorf("card press for agent %s, this is agent %s", clip(m.AgentID, 20), agentID)
		}
		return cardPress(m, agentID, now)
	}
	if m.MsgType == "event" || m.MsgType == "" {
		return nil, ErrIgnored
	}
	if m.MsgID == "" || m.FromUserName == "" {
		return nil, errors.New("app message lacks MsgId or FromUserName")
	}
	if err := checkIDs(m.MsgID, m.FromUserName, m.AgentID); err != nil {
		return nil, err
	}
	if agentID != "" && m.AgentID != "" && m.AgentID != agentID {
		return nil, fmt.Errorf("app message for agent %s, this is agent %s", clip(m.AgentID, 20), agentID)
	}
	return directEvent("app:"+agentID+":"+m.MsgID, m.FromUserName, m.MsgType, m.Content, m.Recognition, m.CreateTime, now)
}

// OAPrefix marks Official Account users and chats: an openid is no WeCom
// userid, and the prefix (":" never occurs in a userid) keeps a resident's
// openid from ever being taken for an officer's account and tells Send to
// answer through the customer-service API.
const OAPrefix = "oa:"

// OAMessage is the part of an Official Account message the hub reads.
type OAMessage struct {
	OpenID      string
	MsgID       int64
	MsgType     string
	Content     string
	Recognition string
	CreateTime  int64
}

// NormaliseOA turns an Official Account message into a direct-chat event.
func NormaliseOA(m OAMessage, now time.Time) (*bot.Event, error) {
	if m.MsgType == "event" || m.MsgType == "" {
		return nil, ErrIgnored
	}
	if m.OpenID == "" || m.MsgID == 0 {
		return nil, errors.New("official account message lacks FromUserName or MsgId")
	}
	if err := checkIDs(m.OpenID); err != nil {
		return nil, err
	}
	return directEvent("oa:"+strconv.FormatInt(m.MsgID, 10), OAPrefix+m.OpenID, m.MsgType, m.Content, m.Recognition, m.CreateTime, now)
}

// directEvent is a one-to-one message to the bot (app or Official
// Account): text, or a voice message WeCom has turned into text; anything
// else is kept as unsupported so the hub can say so.
func directEvent(id, user, msgType, content, recognition string, created int64, now time.Time) (*bot.Event, error) {
	e := &bot.Event{
		ID: bot.NewEventID(bot.WeChat, id), Platform: bot.WeChat, MessageID: id,
		Chat:   bot.ChatRef{Platform: bot.WeChat, ID: user, Type: bot.Direct},
		Sender: bot.User{ID: user}, AddressedToBot: true, Time: unixOr(created, now),
	}
	switch {
	case msgType == "text":
		e.Kind, e.Text = bot.KindText, cleanDirect(content)
	case msgType == "voice" && strings.TrimSpace(recognition) != "":
		e.Kind, e.Text = bot.KindText, cleanDirect(recognition)
	default:
		e.Kind = bot.KindUnsupported
	}
	return e, e.Validate()
}

func cleanDirect(s string) string {
	return strings.TrimSpace(bot.Truncate(bot.CleanText(s), bot.MaxTextRunes))
}

func unixOr(ts int64, now time.Time) time.Time {
	if ts > 0 {
		return time.Unix(ts, 0).UTC()
	}
	return now.UTC()
}

func checkIDs(ids ...string) error {
	for _, id := range ids {
		if len(id) > maxIDLen {
			return fmt.Errorf("an id of %d bytes is longer than %d", len(id), maxIDLen)
		}
		if strings.ContainsAny(id, "\x00\r\n") {
			return errors.New("an id contains control characters")
		}
	}
	return nil
}

// clip shortens s for an error message, so that a hostile payload cannot
// fill a log line; it is applied only to protocol fields, never to text.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// replyHandle is how a response_url travels through the bus and the ticket:
// "ru:<unix expiry>:<url>".
func encodeReplyHandle(u string, expires time.Time) string {
	return "ru:" + strconv.FormatInt(expires.Unix(), 10) + ":" + u
}

func decodeReplyHandle(h string) (u string, expires time.Time, ok bool) {
	rest, found := strings.CutPrefix(h, "ru:")
	if !found {
		return "", time.Time{}, false
	}
	exp, u, found := strings.Cut(rest, ":")
	if !found {
		return "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || u == "" {
		return "", time.Time{}, false
	}
	return u, time.Unix(sec, 0), true
}
