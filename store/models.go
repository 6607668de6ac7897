package store

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Station is a police station (派出所): it owns groups, officers, a roster, an
// SLA and a duty account that covers whatever no officer is on shift for.
type Station struct {
	ID         uint   `gorm:"primaryKey"`
	Code       string `gorm:"size:64;uniqueIndex;not null"`
	Name       string `gorm:"size:128;not null"`
	SLAMinutes int    `gorm:"not null"`
	// DutyAccountID and LeaderID point at officers of this station.
	DutyAccountID *uint
	LeaderID      *uint
	// NextTicket is the end of the last block of ticket numbers a process
	// reserved on MySQL, bumped by a statement of its own so numbers never
	// repeat (see ticketNumbers; SQLite, with its single writer, numbers
	// from the ticket index instead).
	NextTicket int64 `gorm:"not null;default:0"`
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version int64 `gorm:"not null;default:0"`
	// MorningDigestDate remembers the day the after-hours digest was sent.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Group is one community group chat on one platform.
type Group struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_group_chat"`
	ChatID    string `gorm:"size:128;not null;uniqueIndex:ux_group_chat"`
	Name      string `gorm:"size:128;not null"`
	StationID uint   `gorm:"not null;index"`
	// OfficerID is the group's own community officer, if it has one.
	OfficerID *uint
	// Tags are comma-separated labels ("企业群,老年群") used to pick broadcast scopes.
	Tags string `gorm:"size:512"`
	// Kind is empty for a group the hub posts into itself, or
	// GroupKindCustomer for a WeCom customer group, read through the message
	// archive, where each post waits for its owner's (OfficerID's) tap.
	Kind string `gorm:"size:16;not null;default:''"`
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version   int64 `gorm:"not null;default:0"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// GroupKindCustomer marks a WeCom customer group (客户群): residents on
// personal WeChat, the hub reading through the archive and never posting
// by itself.
const GroupKindCustomer = "customer"

// Customer reports whether the hub can only prepare posts for this group.
func (g Group) Customer() bool { return g.Kind == GroupKindCustomer }

// TagList splits Tags.
func (g Group) TagList() []string { return splitList(g.Tags) }

// Officer roles. An officer may hold several.
const (
	RoleOfficer     = "officer"      // 社区民警
	RoleAuxiliary   = "auxiliary"    // 辅警
	RoleDutyOfficer = "duty_officer" // 值班民警
	RoleLeader      = "leader"       // 所领导
	RoleAdmin       = "admin"        // 管理员: broadcasts to their own station's groups
	// RoleDistrictAdmin broadcasts to every station's groups (分局管理员).
	RoleDistrictAdmin = "district_admin"
	RoleDutyAccount   = "duty_account" // 值班号
)

// Officer is a member of station staff, or the station's duty account.
type Officer struct {
	ID        uint   `gorm:"primaryKey"`
	Code      string `gorm:"size:64;uniqueIndex;not null"`
	StationID uint   `gorm:"not null;index"`
	Name      string `gorm:"size:64;not null"`
	// Roles and Aliases are comma-separated; aliases are the other names
	// residents @ an officer by ("老王", "王警官").
	Roles   string `gorm:"size:256"`
	Aliases string `gorm:"size:512"`
	// DutyOverride is set by "值班 开/关": true forces on duty, false forces off,
	// nil follows the roster; from DutySince until DutyUntil (the end the
	// officer gave or their shift's, for off their next shift's start).
	DutyOverride *bool
	DutySince    *time.Time
	DutyUntil    *time.Time
	// DigestFor is the start of the last shift for which the officer got the
	// list of what waited for them, so a restart never sends it twice.
	DigestFor *time.Time
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version   int64 `gorm:"not null;default:0"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// HasRole reports whether o holds role.
func (o *Officer) HasRole(role string) bool {
	// Routing asks this of every officer of a station for every question:
	// walk the list instead of splitting it.
	for rest := o.Roles; rest != ""; {
		i := strings.IndexAny(rest, ",，")
		item := rest
		if i < 0 {
			rest = ""
		} else {
			_, w := utf8.DecodeRuneInString(rest[i:])
			item, rest = rest[:i], rest[i+w:]
		}
		if strings.TrimSpace(item) == role {
			return true
		}
	}
	return false
}

// AliasList splits Aliases.
func (o Officer) AliasList() []string { return splitList(o.Aliases) }

// Identity ties an officer to a platform account, so a DM from that account
// is known to come from the officer and DMs to the officer can be addressed.
type Identity struct {
	ID        uint   `gorm:"primaryKey"`
	OfficerID uint   `gorm:"not null;index"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_identity"`
	UserID    string `gorm:"size:128;not null;uniqueIndex:ux_identity"`
}

// Shift is a recurring weekly shift. End before Start means it runs past
// midnight. Weekday is 0 (Sunday) to 6; DayKind restricts it to working days
// or rest days per the holiday calendar ("" = any day of that weekday).
type Shift struct {
	ID        uint   `gorm:"primaryKey"`
	StationID uint   `gorm:"not null;index"`
	OfficerID uint   `gorm:"not null;index"`
	Weekday   int    `gorm:"not null"`
	DayKind   string `gorm:"size:16"`
	Start     string `gorm:"size:5;not null"` // "08:30"
	End       string `gorm:"size:5;not null"`
	Kind      string `gorm:"size:16;not null"` // day | night
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version int64 `gorm:"not null;default:0"`
}

// Override changes the roster on one date: an extra shift, or (Off) leave.
type Override struct {
	ID        uint   `gorm:"primaryKey"`
	StationID uint   `gorm:"not null;index"`
	OfficerID uint   `gorm:"not null;index"`
	Date      string `gorm:"size:10;not null;index"` // 2026-10-01
	Start     string `gorm:"size:5"`
	End       string `gorm:"size:5"`
	Off       bool
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version int64 `gorm:"not null;default:0"`
}

// Holiday is one date of the official calendar: a public holiday (rest day)
// or a make-up working day (调休上班) that falls on a weekend.
type Holiday struct {
	Date string `gorm:"primaryKey;size:10"`
	Kind string `gorm:"size:16;not null"` // holiday | workday
	Name string `gorm:"size:64"`
}

// Ticket statuses.
const (
	StatusOpen     = "open"     // waiting for an officer
	StatusClaimed  = "claimed"  // an officer said they are on it
	StatusAnswered = "answered" // an answer reached the group
	StatusClosed   = "closed"
)

// Ticket is one resident question and everything that happened to it.
type Ticket struct {
	ID        uint  `gorm:"primaryKey"`
	StationID uint  `gorm:"not null;uniqueIndex:ux_ticket_number;index:ix_ticket_stats,priority:1"`
	Number    int64 `gorm:"not null;uniqueIndex:ux_ticket_number"`
	// SourceEventID is the bus event that created the ticket: unique, so a
	// redelivered platform message can never make a second ticket.
	SourceEventID string `gorm:"size:191;not null;uniqueIndex"`
	GroupID       *uint  `gorm:"index:ix_ticket_stats,priority:2"`
	Platform      string `gorm:"size:16;not null;index:ix_ticket_stats,priority:3"`
	ChatID        string `gorm:"size:128;not null;index:ix_ticket_stats,priority:5"`
	ChatType      string `gorm:"size:16;not null;index:ix_ticket_stats,priority:4"`
	ResidentID    string `gorm:"size:128;not null"`
	ResidentName  string `gorm:"size:128"`
	Question      string `gorm:"type:text;not null"`
	ReplyHandle   string `gorm:"type:text"`
	Status        string `gorm:"size:16;not null;index:ix_ticket_assignee,priority:2;index:ix_ticket_stats,priority:8"`
	Emergency     bool   `gorm:"index:ix_ticket_stats,priority:10"`
	AfterHours    bool   `gorm:"index:ix_ticket_stats,priority:12"`
	// AutoAnswered: the duty account answered from the FAQ.
	AutoAnswered bool `gorm:"index:ix_ticket_stats,priority:9"`
	// AssigneeID is who must answer now; Level counts escalations so far.
	AssigneeID *uint `gorm:"index:ix_ticket_assignee,priority:1"`
	// Routing says who first took the ticket and why ("own_officer：王建国").
	// A ticket filed with it has its first timeline lines (asked, assigned,
	// acknowledged, DM sent) derived from the row instead of stored.
	Routing string `gorm:"size:191"`
	Level   int    `gorm:"not null;default:0;index:ix_ticket_stats,priority:11"`
	// EscalateAt is the ticket's escalation timer; nil once answered. Fence
	// changes every time the timer fires or is reset, so a worker holding a
	// stale view cannot fire the same step twice.
	EscalateAt      *time.Time `gorm:"index"`
	Fence           int64      `gorm:"not null;default:0"`
	CreatedAt       time.Time  `gorm:"index:ix_ticket_created;index:ix_ticket_stats,priority:7"`
	FirstResponseAt *time.Time
	// ResponseBucket is FirstResponseAt - CreatedAt for a human answer, in
	// tenths of a minute rounded to its stats histogram bucket (see
	// responseBucket); nil otherwise. The store writes it with
	// FirstResponseAt, so stats read it from an index instead of
	// computing it from a million rows.
	ResponseBucket *int64 `gorm:"index:ix_ticket_stats,priority:6"`
	AnsweredBy     *uint
	ClosedAt       *time.Time
	UpdatedAt      time.Time
}

// Timeline entry kinds.
const (
	TLAsked        = "asked"
	TLAcknowledged = "acknowledged"
	TLAssigned     = "assigned"
	TLNotified     = "dm_sent"
	TLClaimed      = "claimed"
	TLAnswered     = "answered"
	TLEscalated    = "escalated"
	TLHandedOver   = "handed_over"
	TLClosed       = "closed"
	TLAutoAnswered = "faq_answered"
	TLFiled        = "filed_for_morning"
	TLPaged        = "paged"
	TLFollowUp     = "follow_up"     // a resident's further message, kept on the ticket
	TLUndelivered  = "undelivered"   // an answer the platform refused to deliver
	TLAlertDrafted = "alert_drafted" // the question was forwarded as a fraud alert
	TLReopened     = "reopened"      // the ticket was reopened from the console
)

// TicketEvent is one line of a ticket's timeline.
type TicketEvent struct {
	ID       uint      `gorm:"primaryKey"`
	TicketID uint      `gorm:"not null;index"`
	Kind     string    `gorm:"size:32;not null"`
	ActorID  *uint     // officer, when one acted
	Detail   string    `gorm:"type:text"`
	At       time.Time `gorm:"not null"`
}

// FAQ is an answer the duty account may give on its own after hours.
type FAQ struct {
	ID        uint   `gorm:"primaryKey"`
	StationID *uint  `gorm:"index"` // nil: every station
	Topic     string `gorm:"size:128;not null"`
	Keywords  string `gorm:"size:512;not null"` // comma-separated; any one matches
	Answer    string `gorm:"type:text;not null"`
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version int64 `gorm:"not null;default:0"`
}

// KeywordList splits Keywords.
func (f FAQ) KeywordList() []string { return splitList(f.Keywords) }

// UnknownChat records a group the bot was added to but nobody registered, so
// an admin can act on it.
type UnknownChat struct {
	ID        uint   `gorm:"primaryKey"`
	Platform  string `gorm:"size:16;not null;uniqueIndex:ux_unknown_chat"`
	ChatID    string `gorm:"size:128;not null;uniqueIndex:ux_unknown_chat"`
	Name      string `gorm:"size:128"`
	Messages  int64  `gorm:"not null;default:0"`
	FirstSeen time.Time
	LastSeen  time.Time
}

// ParkedMessage is a bus message that failed repeatedly or permanently, kept
// for an admin instead of blocking its topic or being dropped.
type ParkedMessage struct {
	ID        uint   `gorm:"primaryKey"`
	Topic     string `gorm:"size:128;not null;index"`
	MessageID string `gorm:"size:191"`
	Payload   []byte
	Cause     string    `gorm:"type:text"`
	At        time.Time `gorm:"not null"`
}

// ResidentErasure records one erasure of a resident's data on request:
// who ran it, when, and how much was redacted. The resident is named only
// by their keyed log hash, so the record keeps no personal data.
type ResidentErasure struct {
	ID       uint      `gorm:"primaryKey"`
	Platform string    `gorm:"size:16;not null"`
	Resident string    `gorm:"size:64"`
	By       string    `gorm:"size:128;not null"`
	At       time.Time `gorm:"not null"`
	Tickets  int64     `gorm:"not null;default:0"`
	Timeline int64     `gorm:"not null;default:0"`
	Messages int64     `gorm:"not null;default:0"`
	Parked   int64     `gorm:"not null;default:0"`
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// JoinList is the inverse of the list fields' split.
func JoinList(items []string) string { return strings.Join(items, ",") }

// Template is a message text with {placeholders}, editable per deployment.
type Template struct {
	Key  string `gorm:"primaryKey;size:64"`
	Text string `gorm:"type:text;not null"`
	// Version counts edits, so an edit made on a stale copy is refused
	// (ErrConflict) instead of overwriting another admin's change.
	Version int64 `gorm:"not null;default:0"`
}

// Broadcast states. A draft waits for its author's confirmation; sending
// broadcasts have their deliveries claimed by the engine; done and
// cancelled ones are finished (retry-failed puts a done one back to sending).
const (
	BroadcastDraft     = "draft"
	BroadcastSending   = "sending"
	BroadcastDone      = "done"
	BroadcastCancelled = "cancelled"
)

// Broadcast is one alert to many groups, and its audit record: who asked,
// when, the text, the scope and (through its deliveries) the result.
type Broadcast struct {
	ID uint `gorm:"primaryKey"`
	// AuthorID is the officer who asked; nil for the operator's CLI without --by.
	AuthorID *uint
	Author   string `gorm:"size:128;not null"`
	// StationID is the station a station admin's broadcast is confined to;
	// nil for a district-wide one.
	StationID *uint
	Scope     string `gorm:"size:512;not null"`
	Text      string `gorm:"type:text;not null"`
	Status    string `gorm:"size:16;not null;index"`
	Total     int    `gorm:"not null"`
	// ReportPlatform and ReportUser are where the delivery report goes (the
	// author's direct chat); empty when nobody is to be told in chat.
	ReportPlatform string `gorm:"size:16"`
	ReportUser     string `gorm:"size:128"`
	// Round counts sending rounds (1, then +1 per retry-failed), so each
	// round's report has an idempotency key of its own.
	Round int `gorm:"not null;default:0"`
	// CreatedVia and CreatedFrom say through which channel (chat, cli, api)
	// and from which address the draft was made; the Confirmed* and
	// Cancelled* fields say the same of who confirmed and who cancelled
	// it. The API's shared token does not tell people apart, so the
	// address is what ties an action to a console.
	CreatedVia    string `gorm:"size:8"`
	CreatedFrom   string `gorm:"size:191"`
	ConfirmedByID *uint
	ConfirmedBy   string `gorm:"size:128"`
	ConfirmedVia  string `gorm:"size:8"`
	ConfirmedFrom string `gorm:"size:191"`
	CancelledByID *uint
	CancelledBy   string `gorm:"size:128"`
	CancelledVia  string `gorm:"size:8"`
	CancelledFrom string `gorm:"size:191"`
	CreatedAt     time.Time
	ConfirmedAt   *time.Time
	CancelledAt   *time.Time
	FinishedAt    *time.Time
	ReportedAt    *time.Time
	UpdatedAt     time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySending   = "sending"
	DeliverySent      = "sent"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// Delivery is one broadcast's message to one group: unique per (broadcast,
// group), so a group can never be targeted twice by the same alert.
type Delivery struct {
	ID          uint   `gorm:"primaryKey"`
	BroadcastID uint   `gorm:"not null;uniqueIndex:ux_delivery_group;index:ix_delivery_due,priority:2;index:ix_delivery_state,priority:1"`
	GroupID     uint   `gorm:"not null;uniqueIndex:ux_delivery_group"`
	Platform    string `gorm:"size:16;not null;index:ix_delivery_due,priority:1"`
	ChatID      string `gorm:"size:128;not null"`
	Status      string `gorm:"size:16;not null;index:ix_delivery_due,priority:3;index:ix_delivery_state,priority:2"`
	// DueAt is when a pending delivery may be tried (later after a
	// transient failure); LeaseUntil is when a sending one's claim lapses,
	// after which another sender takes it over.
	DueAt      time.Time `gorm:"not null"`
	LeaseUntil *time.Time
	// Attempts counts claims; it is also the fence that stops a sender whose
	// lease lapsed from recording a result over its successor's.
	Attempts  int    `gorm:"not null;default:0"`
	MessageID string `gorm:"size:191"`
	Reason    string `gorm:"type:text"`
	SentAt    *time.Time
	UpdatedAt time.Time
}

// Outbound message states. A message is written pending in the same
// transaction as the change that causes it; a relay leases it (sending),
// sends it and records what became of it. awaiting_human is a message a
// person must send on the platform (a customer group the hub cannot post
// in): never reported as delivered.
const (
	OutboundPending       = "pending"
	OutboundSending       = "sending"
	OutboundSent          = "sent"
	OutboundFailed        = "failed"
	OutboundCancelled     = "cancelled"
	OutboundAwaitingHuman = "awaiting_human"
	// OutboundHeld is a notice kept for a digest (see Notice): never sent
	// by itself; GatherHeld turns the held notices of one person's window
	// into one message when the window closes, and marks them gathered.
	OutboundHeld     = "held"
	OutboundGathered = "gathered"
)

// OutboundMessage is one message the hub sends, and its record: what, to
// whom, why (typed references), and what became of it.
type OutboundMessage struct {
	ID uint `gorm:"primaryKey"`
	// Key is unique: a cause handled twice writes one message.
	Key         string `gorm:"size:191;not null;uniqueIndex:ux_outbound_key"`
	Purpose     string `gorm:"size:32;not null"`
	TicketID    *uint  `gorm:"index:ix_outbound_ticket"`
	BroadcastID *uint  `gorm:"index:ix_outbound_broadcast"`
	OfficerID   *uint
	Platform    string `gorm:"size:16;not null;index:ix_outbound_due,priority:1"`
	// ChatType and ChatID address a chat; ToUser a direct message.
	ChatType    string `gorm:"size:16"`
	ChatID      string `gorm:"size:128"`
	ChatName    string `gorm:"size:128"`
	ToUser      string `gorm:"size:128"`
	Format      string `gorm:"size:16;not null"`
	Title       string `gorm:"size:191"`
	Text        string `gorm:"type:text;not null"`
	AtUsers     string `gorm:"type:text"` // comma-separated platform ids
	ReplyHandle string `gorm:"type:text"`
	// Priority is always 0 today: broadcast deliveries, the bulk traffic,
	// are rows of their own table and a lane of their own in the relay.
	Priority int    `gorm:"not null;default:0"`
	State    string `gorm:"size:16;not null;index:ix_outbound_due,priority:2"`
	// DueAt is when a pending message may be sent (later after a transient
	// failure or a rate limit); LeaseUntil is when a sending one's claim
	// lapses, after which another relay takes it over.
	DueAt      time.Time `gorm:"not null;index:ix_outbound_due,priority:3"`
	LeaseUntil *time.Time
	// Fence changes with every claim: a relay whose lease lapsed records
	// nothing over its successor's result.
	Fence     int64  `gorm:"not null;default:0"`
	Attempts  int    `gorm:"not null;default:0"`
	MessageID string `gorm:"size:191"`
	Reason    string `gorm:"type:text"`
	// Card is the tap-to-act card the message carries (JSON of bot.Card),
	// empty for a plain message.
	Card      string `gorm:"type:text"`
	CreatedAt time.Time
	SentAt    *time.Time
	UpdatedAt time.Time
	// Cards are the card rows written with the message (a new card, or a
	// card's new state): not a column.
	Cards []Card `gorm:"-"`
}
