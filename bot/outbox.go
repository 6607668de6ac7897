package bot

import (
	"context"
	"sync"
	"time"
)

// Sender delivers one outbound message on its platform. Adapters implement
// it, and say what became of the message through the error: nil (sent),
// RetryAfter (send again later), Permanent (refused for good, with the
// reason), or any other error (transient: the relay backs off and retries).
type Sender interface {
	Send(ctx context.Context, o *Outbound) error
}

// ReceiptSender is a Sender that can also say what id the platform gave
// the message (DingTalk's processQueryKey, a transcript's sequence number),
// so the message's row can name the platform's message.
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

// Dedup windows of the adapters' edge de-duplication: a claim outlives
// one publish but not by much, since a process that died holding one makes
// the platform's redelivery wait for it to expire; a done key outlives every
// platform's redelivery window (DingTalk redelivers within a minute, WeCom
// within seconds). The database's unique ids are the final guard.
const (
	DefaultHold = 45 * time.Second
	DefaultKeep = time.Hour
)

// Waker carries "outbound messages were committed" from the processes that
// write them to the relays that send them: a nudge, never the message.
type Waker interface {
	// Wake nudges p's relays; best effort (the relays also poll).
	Wake(ctx context.Context, p Platform)
	// Wakeups returns p's nudges until ctx ends.
	Wakeups(ctx context.Context, p Platform) (<-chan struct{}, error)
}

// MemoryWaker is the Waker inside one process.
type MemoryWaker struct {
	mu sync.Mutex
	ch map[Platform][]chan struct{}
}

var _ Waker = (*MemoryWaker)(nil)

// Wake nudges every listener of p without blocking.
func (w *MemoryWaker) Wake(_ context.Context, p Platform) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.ch[p] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Wakeups registers a listener of p, dropped when ctx ends.
func (w *MemoryWaker) Wakeups(ctx context.Context, p Platform) (<-chan struct{}, error) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	if w.ch == nil {
		w.ch = map[Platform][]chan struct{}{}
	}
	w.ch[p] = append(w.ch[p], c)
	w.mu.Unlock()
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.ch[p]
		for i, x := range list {
			if x == c {
				w.ch[p] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	})
	return c, nil
}
