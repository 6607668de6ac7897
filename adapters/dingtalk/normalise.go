package dingtalk

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"

	"github.com/jingminhub/jingmin/bot"
)

// DingTalk's conversationType values.
const (
	conversationDirect = "1"
	conversationGroup  = "2"
)

// Normalise turns one robot callback into the event the hub handles. It
// fails only on what makes the message unusable (no msgId to de-duplicate
// on, no chat, no sender); anything it does not understand (a picture, a
// voice message, a type DingTalk adds later) becomes an unsupported event the
// rules answer politely.
//
// A direct chat is identified by the sender, not by conversationId: the
// rules answer an officer in the chat the event came from, and when the
// session webhook has expired the only way to reach that chat is a direct
// message to the officer's staff id.
func Normalise(d *chatbot.BotCallbackDataModel, now time.Time) (*bot.Event, error) {
	if d == nil {
		return nil, errors.New("no bot message")
	}
	msgID := strings.TrimSpace(d.MsgId)
	if msgID == "" {
		return nil, errors.New("bot message has no msgId: nothing to de-duplicate redeliveries on")
	}
	sender := strings.TrimSpace(d.SenderStaffId)
	if sender == "" {
		// Residents outside the organisation have no staff id; their
		// DingTalk id still tells them apart and can be @-ed.
		sender = strings.TrimSpace(d.SenderId)
	}
	var chat bot.ChatRef
	switch d.ConversationType {
	case conversationGroup:
		chat = bot.ChatRef{Platform: bot.DingTalk, ID: strings.TrimSpace(d.ConversationId), Type: bot.Group, Name: bot.CleanText(d.ConversationTitle)}
	case conversationDirect:
		chat = bot.ChatRef{Platform: bot.DingTalk, ID: sender, Type: bot.Direct}
	default:
		return nil, fmt.Errorf("bot message %s has conversationType %q, want 1 (direct) or 2 (group)", msgID, d.ConversationType)
	}

	kind, raw := bot.KindText, bot.CleanText(d.Text.Content)
	switch d.Msgtype {
	case "text":
	case "":
		if strings.TrimSpace(raw) == "" {
			kind = bot.KindUnsupported
		}
	default: // picture, richText, audio, video, file, and whatever comes next
		kind, raw = bot.KindUnsupported, ""
	}
	text, names := bot.ExtractMentions(raw)
	text = bot.Truncate(text, bot.MaxTextRunes)

	at := time.UnixMilli(d.CreateAt).UTC()
	if d.CreateAt <= 0 {
		at = now.UTC()
	}
	e := &bot.Event{
		ID:        bot.NewEventID(bot.DingTalk, msgID),
		Platform:  bot.DingTalk,
		MessageID: msgID,
		Chat:      chat,
		Sender:    bot.User{ID: sender, Name: bot.CleanText(d.SenderNick)},
		Kind:      kind,
		Text:      text,
		Time:      at,
		// In a group DingTalk delivers only messages that @ the robot; the
		// flag says so explicitly, and a direct chat is always to the bot.
		AddressedToBot: chat.Type == bot.Direct || d.IsInAtList,
		Mentions:       mentions(d, names),
	}
	if d.SessionWebhook != "" {
		e.ReplyHandle = replyHandle{Webhook: d.SessionWebhook, Expires: d.SessionWebhookExpiredTime, User: sender, Nick: bot.CleanText(d.SenderNick)}.encode()
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("bot message %s: %w", msgID, err)
	}
	return e, nil
}

// mentions lists the structured @s (atUsers) with their ids: a staff id for
// members of the organisation, else the DingTalk id. The robot itself is
// marked IsBot so the rules never take it for an officer. DingTalk also writes
// "@nick" into the text for every other @; when the names and the structured
// @s line up one to one they are paired, otherwise the names are kept as
// name-only mentions, which is also what a typed "@王警官" (not picked from
// the member list, so with no structured @) becomes.
func mentions(d *chatbot.BotCallbackDataModel, names []string) []bot.Mention {
	var out []bot.Mention
	people := 0
	for _, u := range d.AtUsers {
		id := strings.TrimSpace(u.StaffId)
		if id == "" {
			id = strings.TrimSpace(u.DingtalkId)
		}
		switch {
		case id == "":
			continue
		case d.ChatbotUserId != "" && u.DingtalkId == d.ChatbotUserId:
			out = append(out, bot.Mention{UserID: u.DingtalkId, IsBot: true})
		default:
			out = append(out, bot.Mention{UserID: id})
			people++
		}
	}
	if people > 0 && people == len(names) {
		i := 0
		for j := range out {
			if !out[j].IsBot {
				out[j].Name = names[i]
				i++
			}
		}
		return out
	}
	for _, n := range names {
		out = append(out, bot.Mention{Name: n})
	}
	return out
}

// replyHandle is what the adapter keeps with an event to answer it later: the
// session webhook while it lives, and who asked, so that a fallback send
// that cannot @ them can at least name them.
type replyHandle struct {
	Webhook string `json:"w"`
	Expires int64  `json:"x,omitempty"` // unix ms; 0: unknown
	User    string `json:"u,omitempty"`
	Nick    string `json:"n,omitempty"`
}

// handlePrefix versions the encoding, so a handle stored with a ticket today
// still decodes after the format changes.
const handlePrefix = "dt1:"

func (h replyHandle) encode() string {
	b, _ := json.Marshal(h) // strings and an int: cannot fail
	return handlePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// decodeHandle reads a handle made by encode; anything else (another
// platform's handle, a damaged one) is reported, never trusted.
func decodeHandle(s string) (replyHandle, error) {
	var h replyHandle
	if !strings.HasPrefix(s, handlePrefix) {
		return h, errors.New("reply handle is not a DingTalk one")
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(handlePrefix):])
	if err != nil {
		return h, fmt.Errorf("reply handle: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("reply handle: %w", err)
	}
	if !strings.HasPrefix(h.Webhook, "https://") && !strings.HasPrefix(h.Webhook, "http://") {
		return h, errors.New("reply handle has no http(s) session webhook")
	}
	return h, nil
}

// usable says whether the session webhook can still be tried at now. A
// margin keeps a webhook about to expire from being tried and failing.
func (h replyHandle) usable(now time.Time) bool {
	return h.Webhook != "" && (h.Expires == 0 || now.Add(webhookMargin).Before(time.UnixMilli(h.Expires)))
}

const webhookMargin = 10 * time.Second
