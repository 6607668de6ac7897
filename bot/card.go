package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// PurposeCardUpdate is a message that changes a card already delivered
// (a ticket claimed, handed over or closed by any route): one per card
// instance, whatever the number of its recipients, where the platform
// allows.
const PurposeCardUpdate Purpose = "card_update"

// Card is an officer's tap-to-act card, platform-neutral: the rules fill it,
// the adapters render it (a DingTalk interactive card, a WeCom template
// card). An outbound message with a Card still carries Text: the markdown
// an adapter sends instead where cards are not possible (no template, the
// template refused, the budget spent).
type Card struct {
	// Track names the card instance on the platform (DingTalk's outTrackId,
	// WeCom's task_id): one instance for all its recipients, so one update
	// changes it for everyone.
	Track string `json:"track"`
	// Recipients are the platform user ids the card goes to (at most 20);
	// the message's ToUser is the first.
	Recipients []string `json:"recipients"`
	// Station is the station's code (a DingTalk template may be per station).
	Station string     `json:"station,omitempty"`
	Title   string     `json:"title"`
	Items   []CardItem `json:"items"`
	// Update: this message changes the card Track delivered before.
	Update bool `json:"update,omitempty"`
	// Handle is what the platform needs to update the card besides Track
	// (WeCom's response_code); the relay fills it when it claims an update.
	Handle string `json:"handle,omitempty"`
	// Plain asks the adapter to send Text instead, to every recipient at
	// once through the cheapest channel (the budget is spent).
	Plain bool `json:"plain,omitempty"`
	// Urgent: an emergency's card, and its updates (who took it), go
	// whatever the budget.
	Urgent bool `json:"urgent,omitempty"`
}

// CardItem is one ticket on a card (a digest lists several).
type CardItem struct {
	TicketID uint   `json:"ticket_id"`
	Number   int64  `json:"number"`
	Lines    []Line `json:"lines"`
	// Status replaces the buttons once the ticket is taken or done
	// ("张伟 已认领 22:41"); Done makes its buttons inactive.
	Status  string       `json:"status,omitempty"`
	Done    bool         `json:"done,omitempty"`
	Actions []CardAction `json:"actions,omitempty"`
}

// Line is one labelled line of a card item (问题, 群, 居民, 已等待).
type Line struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// CardAction is one button. Its value comes back with the press.
type CardAction struct {
	Label string `json:"label"`
	Verb  string `json:"verb"`
	// Arg is the verb's argument (the colleague a 转办 choice hands to).
	Arg string `json:"arg,omitempty"`
}

// The verbs a card button carries.
const (
	VerbClaim      = "claim"
	VerbHandover   = "handover"    // asks for the colleagues on shift
	VerbHandoverTo = "handover_to" // Arg: the colleague's officer id
	VerbClose      = "close"
)

// Value is the button's value as it travels through the platform and back:
// "jm1.<ticket>.<verb>[.<arg>]": short (WeCom keys take 1024 bytes) and
// free of characters the platforms treat specially.
func (a CardAction) Value(ticketID uint) string {
	v := "jm1." + strconv.FormatUint(uint64(ticketID), 10) + "." + a.Verb
	if a.Arg != "" {
		v += "." + a.Arg
	}
	return v
}

// CardPress is a pressed card button, as the adapter verified it.
type CardPress struct {
	TicketID uint   `json:"ticket_id"`
	Verb     string `json:"verb"`
	Arg      string `json:"arg,omitempty"`
	Track    string `json:"track,omitempty"`
	// Handle is the platform's fresh handle to update the card with
	// (WeCom's ResponseCode); empty on DingTalk.
	Handle string `json:"handle,omitempty"`
}

// ParseCardValue reads a button value Value wrote. Anything else (a forged
// or foreign value) is an error, never a guess.
func ParseCardValue(v string) (CardPress, error) {
	parts := strings.Split(v, ".")
	if len(parts) < 3 || len(parts) > 4 || parts[0] != "jm1" {
		return CardPress{}, fmt.Errorf("card value %q is not one of the hub's buttons", Truncate(v, 40))
	}
	id, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || id == 0 {
		return CardPress{}, fmt.Errorf("card value names no ticket")
	}
	p := CardPress{TicketID: uint(id), Verb: parts[2]}
	switch p.Verb {
	case VerbClaim, VerbHandover, VerbClose:
		if len(parts) != 3 {
			return CardPress{}, fmt.Errorf("card verb %s takes no argument", p.Verb)
		}
	case VerbHandoverTo:
		if len(parts) != 4 {
			return CardPress{}, fmt.Errorf("card verb %s names nobody", p.Verb)
		}
		if _, err := strconv.ParseUint(parts[3], 10, 32); err != nil {
			return CardPress{}, fmt.Errorf("card verb %s names no officer", p.Verb)
		}
		p.Arg = parts[3]
	default:
		return CardPress{}, fmt.Errorf("unknown card verb %q", Truncate(p.Verb, 20))
	}
	return p, nil
}

// purposeKey carries a message's purpose into the adapter's platform calls,
// so the calls it makes are counted by purpose.
type purposeKey struct{}

// WithPurpose marks ctx as sending a message of purpose p.
func WithPurpose(ctx context.Context, p Purpose) context.Context {
	return context.WithValue(ctx, purposeKey{}, p)
}

// PurposeOf is the purpose WithPurpose set ("" outside a send).
func PurposeOf(ctx context.Context) Purpose {
	p, _ := ctx.Value(purposeKey{}).(Purpose)
	return p
}

// cardFellBack marks a receipt: the card went as a plain message instead
// (its template was refused), which the admin is told of once.
const cardFellBack = "fell-back:"

// FellBack is the receipt of a card sent as a plain message.
func FellBack(reason string) string { return cardFellBack + Truncate(Mask(reason), 200) }

// SentPlain is the receipt of a card sent as a plain message on purpose
// (Plain): no card exists to update.
const SentPlain = "plain"

// IsFellBack reports whether a receipt says the card fell back, and why.
func IsFellBack(receipt string) (string, bool) { return strings.CutPrefix(receipt, cardFellBack) }
