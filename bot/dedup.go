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

// MemoryDeduper is the in-process Deduper of the embedded default.
type MemoryDeduper struct {
	mu    sync.Mutex
	keys  map[string]dedupEntry
	now   func() time.Time
	sweep int
}

type dedupEntry struct {
	done    bool
	expires time.Time
}

var _ Deduper = (*MemoryDeduper)(nil)

// NewMemoryDeduper returns an empty deduper.
func NewMemoryDeduper() *MemoryDeduper {
	return &MemoryDeduper{keys: map[string]dedupEntry{}, now: time.Now}
}

func (d *MemoryDeduper) Claim(_ context.Context, key string, hold time.Duration) (Claim, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.sweep++
	if d.sweep%4096 == 0 {
		for k, e := range d.keys {
			if now.After(e.expires) {
				delete(d.keys, k)
			}
		}
	}
	if e, ok := d.keys[key]; ok && now.Before(e.expires) {
		if e.done {
			return ClaimDone, nil
		}
		return ClaimBusy, nil
	}
	d.keys[key] = dedupEntry{expires: now.Add(hold)}
	return ClaimNew, nil
}

func (d *MemoryDeduper) Done(_ context.Context, key string, keep time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys[key] = dedupEntry{done: true, expires: d.now().Add(keep)}
	return nil
}

func (d *MemoryDeduper) Release(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, key)
	return nil
}
