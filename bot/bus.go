package bot

import (
	"context"
	"errors"
	"sync"
)

// Message is what the bus carries: an opaque payload plus string metadata.
type Message struct {
	// ID is assigned by the publisher (for tracing); the bus does not use it
	// for de-duplication, which belongs to the Deduper.
	ID       string            `json:"id"`
	Payload  []byte            `json:"payload"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Delivery is one delivery of a message to one consumer. Until it is acked the
// bus considers the message in flight; Nack, or the consumer going away, makes
// it deliverable again, so a crash loses nothing (at-least-once).
type Delivery struct {
	Message
	// Attempt counts deliveries of this message to its group, starting at 1.
	Attempt int

	once sync.Once
	ack  func(ctx context.Context) error
	nack func(ctx context.Context) error
}

// NewDelivery is for Subscriber implementations.
func NewDelivery(m Message, attempt int, ack, nack func(ctx context.Context) error) *Delivery {
	return &Delivery{Message: m, Attempt: attempt, ack: ack, nack: nack}
}

// ErrSettled is returned when a delivery is acked or nacked a second time.
var ErrSettled = errors.New("delivery already acked or nacked")

// Ack marks the message as handled; it will not be delivered to this group again.
func (d *Delivery) Ack(ctx context.Context) error { return d.settle(ctx, d.ack) }

// Nack hands the message back for redelivery.
func (d *Delivery) Nack(ctx context.Context) error { return d.settle(ctx, d.nack) }

func (d *Delivery) settle(ctx context.Context, f func(context.Context) error) error {
	err := ErrSettled
	d.once.Do(func() { err = f(ctx) })
	return err
}

// Publisher stores messages durably before returning: once Publish returns nil
// the message will be delivered to every consumer group of the topic.
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs ...Message) error
}

// Subscriber delivers a topic's messages to a consumer group: each message goes
// to one consumer of each group. A subscription hands out one delivery at a
// time and waits for it to be settled before the next, so a handler that runs
// N subscriptions processes N messages at once. The channel closes when ctx
// ends or the bus closes; a delivery still unsettled then is redelivered.
type Subscriber interface {
	Subscribe(ctx context.Context, topic, group string) (<-chan *Delivery, error)
}

// Bus is the one interface every transport (in-memory, Redis Streams)
// implements, and the one the contract suite in bot/bustest checks.
type Bus interface {
	Publisher
	Subscriber
	// Ping reports whether the bus can take messages now (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// PendingCounter is a bus that can tell how many messages of a topic a
// consumer group has not acked yet (bus lag; draining before shutdown).
type PendingCounter interface {
	Pending(ctx context.Context, topic, group string) (int64, error)
}

// ErrClosed is returned by a bus used after Close.
var ErrClosed = errors.New("bus closed")

// Topics used by the hub.
const (
	TopicEvents = "events"
)
