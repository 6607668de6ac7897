package bot

import (
	"context"
	"sync"
	"time"
)

// Claim is the answer of a Deduper to "may I process this key?".
type Claim int

const (
	// ClaimNew: nobody has processed the key; go ahead, then call Done or Release.
	ClaimNew Claim = iota
	// ClaimDone: the key was processed already; drop the duplicate.
	ClaimDone
	// ClaimBusy: someone is processing the key right now; try again later
	// rather than drop it, because that someone may yet fail.
	ClaimBusy
)

// Deduper remembers which keys (event ids, outbound keys) were processed. A key
// moves from claimed (short TTL, so a crashed holder does not block it
// forever) to done (long TTL, longer than any platform's redelivery window).
type Deduper interface {
	Claim(ctx context.Context, key string, hold time.Duration) (Claim, error)
	Done(ctx context.Context, key string, keep time.Duration) error
	Release(ctx context.Context, key string) error
}

// MemoryDeduper is the in-process Deduper of the embedded default. It
// holds each key only as long as it was asked to (a claim's hold, a done
// key's keep) and forgets it then, a few at a time, on later calls: its
// size follows the traffic of the last keep period, never the traffic of
// the process's life.
type MemoryDeduper struct {
	mu   sync.Mutex
	keys map[string]dedupEntry
	// written lists every key as it was written, with the expiry written,
	// oldest first (written[head:] is live). Expiries are kept in the order
	// they were written: each call forgets the expired keys at the front,
	// so it costs a constant amount of work on average, where a periodic
	// sweep of the whole map cost as much as the map held.
	written []dedupExpiry
	head    int
	now     func() time.Time
}

type dedupEntry struct {
	done    bool
	expires time.Time
}

type dedupExpiry struct {
	key     string
	expires time.Time
}

var _ Deduper = (*MemoryDeduper)(nil)

// NewMemoryDeduper returns an empty deduper.
func NewMemoryDeduper() *MemoryDeduper {
	return &MemoryDeduper{keys: map[string]dedupEntry{}, now: time.Now}
}

// Len says how many keys the deduper holds.
func (d *MemoryDeduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

func (d *MemoryDeduper) Claim(_ context.Context, key string, hold time.Duration) (Claim, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.forget(now)
	if e, ok := d.keys[key]; ok && now.Before(e.expires) {
		if e.done {
			return ClaimDone, nil
		}
		return ClaimBusy, nil
	}
	d.write(key, dedupEntry{expires: now.Add(hold)})
	return ClaimNew, nil
}

func (d *MemoryDeduper) Done(_ context.Context, key string, keep time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.forget(now)
	d.write(key, dedupEntry{done: true, expires: now.Add(keep)})
	return nil
}

func (d *MemoryDeduper) Release(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, key)
	return nil
}

func (d *MemoryDeduper) write(key string, e dedupEntry) {
	d.keys[key] = e
	d.written = append(d.written, dedupExpiry{key: key, expires: e.expires})
}

// forget drops the keys at the front of the write order that expired by
// now. A key written again later (a claim made done) or released is left
// alone here: its map entry no longer has this expiry. A short hold behind
// a long keep waits for it, so the list holds at most the writes of the
// longest keep period.
func (d *MemoryDeduper) forget(now time.Time) {
	for d.head < len(d.written) && now.After(d.written[d.head].expires) {
		w := d.written[d.head]
		if e, ok := d.keys[w.key]; ok && e.expires.Equal(w.expires) {
			delete(d.keys, w.key)
		}
		d.written[d.head] = dedupExpiry{}
		d.head++
	}
	// Reuse the array once the forgotten front is half of it.
	if d.head > 1024 && d.head*2 >= len(d.written) {
		n := copy(d.written, d.written[d.head:])
		clear(d.written[n:])
		d.written, d.head = d.written[:n], 0
	}
}
