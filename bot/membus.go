package bot

import (
	"context"
	"fmt"
	"sync"
)

// MemoryBus is the embedded default: a Bus inside one process. It keeps each
// topic as an append-only log with a cursor and an in-flight table per
// consumer group, the same model as Redis Streams, so code written against it
// behaves the same when the hub is distributed. It does not survive a restart;
// the database is the record of truth for anything that must (tickets, timers).
type MemoryBus struct {
	mu     sync.Mutex
	topics map[string]*memTopic
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
	maxLen int
}

var _ Bus = (*MemoryBus)(nil)

type memTopic struct {
	log    []Message
	base   int64 // offset of log[0]
	groups map[string]*memGroup
	wake   chan struct{} // closed and replaced on every publish
	acks   int
}

type memGroup struct {
	next     int64
	retry    []int64
	inflight map[int64]*memEntry // delivered or waiting for redelivery, not acked
}

type memEntry struct {
	attempts int
	out      bool // held by a consumer now
}

// NewMemoryBus returns a bus that keeps at most maxLen messages per topic that
// some group still has to read (0 means 1,000,000), dropping the oldest past
// that, like a capped Redis stream.
func NewMemoryBus(maxLen int) *MemoryBus {
	if maxLen <= 0 {
		maxLen = 1_000_000
	}
	return &MemoryBus{topics: map[string]*memTopic{}, done: make(chan struct{}), maxLen: maxLen}
}

func (b *MemoryBus) topic(name string) *memTopic {
	t, ok := b.topics[name]
	if !ok {
		t = &memTopic{groups: map[string]*memGroup{}, wake: make(chan struct{})}
		b.topics[name] = t
	}
	return t
}

// Publish appends to the topic's log; it is durable for the life of the process.
func (b *MemoryBus) Publish(ctx context.Context, topic string, msgs ...Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("publish to %s: %w", topic, ErrClosed)
	}
	t := b.topic(topic)
	for _, m := range msgs {
		m.Payload = append([]byte(nil), m.Payload...)
		t.log = append(t.log, m)
	}
	if over := len(t.log) - b.maxLen; over > 0 {
		t.log = append([]Message(nil), t.log[over:]...)
		t.base += int64(over)
	}
	close(t.wake)
	t.wake = make(chan struct{})
	return nil
}

// Subscribe joins group on topic. A group created now reads the topic from its
// oldest retained message, so nothing published before the first consumer
// started is lost.
func (b *MemoryBus) Subscribe(ctx context.Context, topic, group string) (<-chan *Delivery, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
	}
	t := b.topic(topic)
	g, ok := t.groups[group]
	if !ok {
		g = &memGroup{next: t.base, inflight: map[int64]*memEntry{}}
		t.groups[group] = g
	}
	ch := make(chan *Delivery)
	b.wg.Add(1)
	go b.serve(ctx, t, g, ch)
	return ch, nil
}

// serve feeds one subscription until ctx ends or the bus closes.
func (b *MemoryBus) serve(ctx context.Context, t *memTopic, g *memGroup, ch chan<- *Delivery) {
	defer b.wg.Done()
	defer close(ch)
	for {
		b.mu.Lock()
		off, msg, attempt, ok := b.take(t, g)
		wake := t.wake
		b.mu.Unlock()
		if !ok {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			case <-b.done:
				return
			}
		}
		settled := make(chan struct{})
		d := NewDelivery(msg, attempt,
			func(context.Context) error { b.ack(t, g, off); close(settled); return nil },
			func(context.Context) error { b.requeue(t, g, off); close(settled); return nil })
		select {
		case ch <- d:
		case <-ctx.Done():
			b.requeue(t, g, off)
			return
		case <-b.done:
			return
		}
		select {
		case <-settled:
		case <-ctx.Done():
			// The consumer is going away with the message unsettled: hand it
			// to another consumer of the group, as Redis would after idling.
			_ = d.Nack(context.Background())
			return
		case <-b.done:
			return
		}
	}
}

// take picks the next message for g: redeliveries first, then new ones.
func (b *MemoryBus) take(t *memTopic, g *memGroup) (int64, Message, int, bool) {
	for len(g.retry) > 0 {
		off := g.retry[0]
		g.retry = g.retry[1:]
		e, ok := g.inflight[off]
		if !ok || e.out {
			continue
		}
		if off < t.base { // trimmed by maxLen while waiting
			delete(g.inflight, off)
			continue
		}
		e.out = true
		e.attempts++
		return off, t.log[off-t.base], e.attempts, true
	}
	if g.next < t.base {
		g.next = t.base
	}
	if g.next < t.base+int64(len(t.log)) {
		off := g.next
		g.next++
		g.inflight[off] = &memEntry{attempts: 1, out: true}
		return off, t.log[off-t.base], 1, true
	}
	return 0, Message{}, 0, false
}

func (b *MemoryBus) ack(t *memTopic, g *memGroup, off int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(g.inflight, off)
	t.acks++
	if t.acks%256 == 0 {
		b.trim(t)
	}
}

func (b *MemoryBus) requeue(t *memTopic, g *memGroup, off int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := g.inflight[off]; ok && e.out {
		e.out = false
		g.retry = append(g.retry, off)
		close(t.wake)
		t.wake = make(chan struct{})
	}
}

// trim drops the prefix of the log every group has read and acked.
func (b *MemoryBus) trim(t *memTopic) {
	if len(t.groups) == 0 {
		return
	}
	low := t.base + int64(len(t.log))
	for _, g := range t.groups {
		if g.next < low {
			low = g.next
		}
		for off := range g.inflight {
			if off < low {
				low = off
			}
		}
	}
	if n := low - t.base; n > 0 {
		t.log = append([]Message(nil), t.log[n:]...)
		t.base = low
	}
}

// Pending reports how many messages of topic group has not yet acked; it feeds
// lag metrics and lets shutdown wait for a quiet bus.
func (b *MemoryBus) Pending(_ context.Context, topic, group string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[topic]
	if !ok {
		return 0, nil
	}
	g, ok := t.groups[group]
	if !ok {
		return int64(len(t.log)), nil
	}
	return t.base + int64(len(t.log)) - g.next + int64(len(g.inflight)), nil
}

// Ping reports ErrClosed after Close.
func (b *MemoryBus) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close stops every subscription and waits for their goroutines.
func (b *MemoryBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}
