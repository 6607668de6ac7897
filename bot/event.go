// Package bot holds the normalised model every platform adapter speaks (Event,
// Outbound), the Bus that carries them between processes, and the Mux and
// middleware that dispatch them to handlers. It knows nothing of DingTalk or
// WeCom and nothing of tickets or rosters: platform details live in adapters/,
// business rules in commands/.
package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Platform names the chat system a message came from or goes to.
type Platform string

// The platforms the hub speaks. Playground is the local stand-in used to run
// the hub without any platform account and to drive end-to-end tests.
const (
	DingTalk   Platform = "dingtalk"
	WeChat     Platform = "wechat"
	Playground Platform = "playground"
)

// ChatType tells a group conversation from a one-to-one one; the rules differ
// (residents ask in groups, officers answer in direct chats).
type ChatType string

const (
	Group  ChatType = "group"
	Direct ChatType = "direct"
)

// ChatRef identifies one conversation on one platform.
type ChatRef struct {
	Platform Platform `json:"platform"`
	ID       string   `json:"id"`
	Type     ChatType `json:"type"`
	// Name is the platform's display title when the platform sends one; it is
	// informational only and never used to identify the chat.
	Name string `json:"name,omitempty"`
}

// Key is a stable string form used for lookups ("wechat:group:wr123").
func (c ChatRef) Key() string { return string(c.Platform) + ":" + string(c.Type) + ":" + c.ID }

// User is a person as the platform identifies them.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Mention is one @ in a message. Platforms differ: DingTalk sends structured
// ids, WeCom only writes "@名字" into the text, so a mention may carry an id,
// a display name, or both.
type Mention struct {
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
	IsBot  bool   `json:"is_bot,omitempty"`
}

// Kind says what sort of content an event carries. Non-text content is kept as
// an event rather than dropped so that handlers can answer politely.
type Kind string

const (
	KindText        Kind = "text"
	KindUnsupported Kind = "unsupported" // picture, voice, file, rich text...
	KindCardPress   Kind = "card_press"  // a card button an officer pressed
)

// Quote is the message an event replies to, when the platform says so.
type Quote struct {
	MessageID string `json:"message_id,omitempty"`
	SenderID  string `json:"sender_id,omitempty"`
	Text      string `json:"text,omitempty"`
}

// Event is one inbound message, normalised. Adapters build it; handlers read it.
type Event struct {
	// ID is stable across redeliveries of the same platform message: it is the
	// key for de-duplication, so adapters must derive it only from the
	// platform's own message id (see NewEventID).
	ID        string   `json:"id"`
	Platform  Platform `json:"platform"`
	MessageID string   `json:"message_id"`
	Chat      ChatRef  `json:"chat"`
	Sender    User     `json:"sender"`
	Kind      Kind     `json:"kind"`
	// Text is the message with @mentions taken out and spaces trimmed.
	Text string `json:"text"`
	// Mentions lists every @ in the message, the bot included.
	Mentions []Mention `json:"mentions,omitempty"`
	// AddressedToBot is true when the bot was @-mentioned or the chat is direct.
	AddressedToBot bool `json:"addressed_to_bot"`
	// SeesAllMessages is true where the platform delivers a group's messages
	// that @ no one (the playground): the rules then act on emergencies
	// there even without an @, and leave other chatter alone.
	SeesAllMessages bool `json:"sees_all_messages,omitempty"`
	// Archived is true for a message read from the platform's conversation
	// archive (a WeCom customer group): nobody addressed the hub, and it
	// cannot post into the chat; a person sends what it prepares.
	Archived bool `json:"archived,omitempty"`
	// FromStaff is true when the platform says the sender is a member of
	// the organisation (a WeCom employee), not a resident.
	FromStaff bool      `json:"from_staff,omitempty"`
	Quote     *Quote    `json:"quote,omitempty"`
	Time      time.Time `json:"time"`
	// ReplyHandle is opaque to everyone but the adapter that made it (a
	// DingTalk session webhook, a WeCom response_url...).
	ReplyHandle string `json:"reply_handle,omitempty"`
	// Press is a pressed card button (Kind KindCardPress).
	Press *CardPress `json:"press,omitempty"`
}

// NewEventID derives the event id from the platform and its message id.
func NewEventID(p Platform, messageID string) string { return string(p) + ":" + messageID }

// Validate reports what makes an event unusable; adapters call it before
// publishing so a malformed payload is refused at the edge.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("event has no id")
	case e.Platform == "":
		return fmt.Errorf("event %s has no platform", e.ID)
	case e.Chat.ID == "":
		return fmt.Errorf("event %s has no chat id", e.ID)
	case e.Chat.Type != Group && e.Chat.Type != Direct:
		return fmt.Errorf("event %s has chat type %q, want group or direct", e.ID, e.Chat.Type)
	case e.Sender.ID == "":
		return fmt.Errorf("event %s has no sender id", e.ID)
	}
	return nil
}

// Format is how an outbound text should be rendered.
type Format string

const (
	FormatText     Format = "text"
	FormatMarkdown Format = "markdown"
)

// Outbound is one message the hub wants delivered. Exactly one of Chat and
// ToUser is set.
type Outbound struct {
	// Key makes the message unique: the rules derive it from what caused the
	// message (an event, a ticket's step), so a cause handled twice writes
	// one message. It is an identifier only; Ref says what it is about.
	Key      string   `json:"key"`
	Platform Platform `json:"platform"`
	// Chat is the conversation to post into (a group, usually).
	Chat *ChatRef `json:"chat,omitempty"`
	// ToUser is a platform user id for a direct message.
	ToUser string `json:"to_user,omitempty"`
	Format Format `json:"format"`
	// Title is used by platforms whose markdown cards need one.
	Title string `json:"title,omitempty"`
	Text  string `json:"text"`
	// AtUsers are platform user ids to @ in a group message.
	AtUsers []string `json:"at_users,omitempty"`
	// ReplyHandle, when set, is the inbound event's handle: the adapter may use
	// it to answer in place and fall back to a proactive send.
	ReplyHandle string `json:"reply_handle,omitempty"`
	// Ref ties the message to what it is about.
	Ref Ref `json:"ref,omitempty"`
	// Card, when set, makes the message a tap-to-act card; Text is what is
	// sent where a card cannot be.
	Card *Card `json:"card,omitempty"`
	// ByHand: the hub cannot post into Chat (a WeCom customer group); the
	// message is kept awaiting_human for a person to send with one tap,
	// and never reported as delivered.
	ByHand bool `json:"by_hand,omitempty"`
}

// Purpose says what an outbound message is for.
type Purpose string

// The purposes the rules send for.
const (
	PurposeReply      Purpose = "reply"      // an answer to whoever wrote to the bot
	PurposeAck        Purpose = "ack"        // a question's acknowledgement in its chat
	PurposeAssign     Purpose = "assign"     // a new or handed-over ticket to its officer
	PurposePage       Purpose = "page"       // an emergency to the officers paged
	PurposeAnswer     Purpose = "answer"     // an officer's answer in the resident's chat
	PurposeEscalation Purpose = "escalation" // an unanswered ticket to the next in the chain
	PurposeDigest     Purpose = "digest"     // what waited for an officer whose shift began
	PurposeNotice     Purpose = "notice"     // anything else told to staff (an undelivered answer, a draft)
	PurposeReport     Purpose = "report"     // a broadcast's delivery report
	PurposeAlert      Purpose = "alert"      // a broadcast's message to one group
)

// Ref is what an outbound message is about, typed: the ticket it belongs
// to, the broadcast it reports on, the officer who wrote or gets it. Nothing
// recovers these from the key.
type Ref struct {
	Purpose     Purpose `json:"purpose,omitempty"`
	TicketID    uint    `json:"ticket_id,omitempty"`
	BroadcastID uint    `json:"broadcast_id,omitempty"`
	// OfficerID is the officer who wrote the message (an answer) or, for a
	// direct message, the officer it goes to.
	OfficerID uint `json:"officer_id,omitempty"`
}

// Validate reports what makes an outbound message undeliverable.
func (o *Outbound) Validate() error {
	switch {
	case o.Key == "":
		return fmt.Errorf("outbound has no idempotency key")
	case o.Platform == "":
		return fmt.Errorf("outbound %s has no platform", o.Key)
	case (o.Chat == nil) == (o.ToUser == ""):
		return fmt.Errorf("outbound %s must have exactly one of chat and to_user", o.Key)
	case strings.TrimSpace(o.Text) == "":
		return fmt.Errorf("outbound %s has no text", o.Key)
	}
	return nil
}

// MaxTextRunes bounds every text the hub stores or sends; longer input is cut.
const MaxTextRunes = 4000

// Truncate cuts s to at most n runes, never inside a character, and marks the
// cut so a reader knows text is missing.
func Truncate(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	const mark = "…（已截断）"
	keep := n - utf8.RuneCountInString(mark)
	if keep < 0 {
		keep = 0
	}
	i := 0
	for pos := range s {
		if i == keep {
			return s[:pos] + mark
		}
		i++
	}
	return s
}
