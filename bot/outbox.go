package bot

import (
	"context"
	"fmt"
	"time"
)

// BusOutbox publishes outbound messages to the topic of their platform, where
// the process that owns that platform's connection picks them up.
type BusOutbox struct{ Publisher Publisher }

// Send validates and publishes each message; it stops at the first failure so
// the caller can retry the whole event (keys make the retry idempotent).
func (o BusOutbox) Send(ctx context.Context, msgs ...Outbound) error {
	for i := range msgs {
		m := &msgs[i]
		if m.Format == "" {
			m.Format = FormatText
		}
		m.Text = Truncate(m.Text, MaxTextRunes)
		if err := m.Validate(); err != nil {
			return err
		}
		b, err := EncodeOutbound(m)
		if err != nil {
			return fmt.Errorf("encode outbound %s: %w", m.Key, err)
		}
		if err := o.Publisher.Publish(ctx, OutboundTopic(m.Platform), Message{ID: m.Key, Payload: b}); err != nil {
			return fmt.Errorf("publish outbound %s: %w", m.Key, err)
		}
	}
	return nil
}

// Sender delivers one outbound message on its platform. Adapters implement it.
type Sender interface {
	Send(ctx context.Context, o *Outbound) error
}

// ReceiptSender is a Sender that can also say what id the platform gave
// the message (DingTalk's processQueryKey, a transcript's sequence number),
// so a broadcast's delivery rows can name the platform's message.
type ReceiptSender interface {
	Sender
	SendReceipt(ctx context.Context, o *Outbound) (messageID string, err error)
}

// SendReceipt sends o through s and returns the platform's message id when
// s can tell it, "" otherwise.
func SendReceipt(ctx context.Context, s Sender, o *Outbound) (string, error) {
	if r, ok := s.(ReceiptSender); ok {
		return r.SendReceipt(ctx, o)
	}
	return "", s.Send(ctx, o)
}

// DeliveryProcessor turns bus messages into Sender calls, at most once per
// idempotency key: a handler that ran twice, or a redelivered bus message,
// does not post the same reply twice. hold is how long a message being sent
// stays claimed, so how long its redelivery waits when the sending process
// died (<= 0: DefaultHold).
func DeliveryProcessor(s Sender, d Deduper, hold time.Duration) func(ctx context.Context, m Message) error {
	if hold <= 0 {
		hold = DefaultHold
	}
	return func(ctx context.Context, m Message) error {
		o, err := DecodeOutbound(m.Payload)
		if err != nil {
			return Permanent(err)
		}
		return Once(ctx, d, "outbound:"+o.Key, hold, DefaultKeep, func() error {
			if err := s.Send(ctx, o); err != nil {
				return fmt.Errorf("send %s on %s: %w", o.Key, o.Platform, err)
			}
			return nil
		})
	}
}

// Dedup windows: a claim outlives any single handler run (the runner's
// timeout) but not by much, since a process that died holding one makes the
// redelivered message wait for it to expire; a done key outlives every
// platform's redelivery window (DingTalk redelivers within a minute, WeCom
// within seconds, the bus's own redelivery within the hour).
const (
	DefaultHold = 45 * time.Second
	DefaultKeep = 24 * time.Hour
)
