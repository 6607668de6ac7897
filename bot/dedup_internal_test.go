package bot

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A platform's redelivery within the keep period is dropped; past it the
// key is forgotten, so a deduper under steady traffic holds the keys of one
// keep period, not of the process's life.
func TestMemoryDeduperKeepsKeysOnlyTheirPeriod(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	d := NewMemoryDeduper()
	d.now = func() time.Time { return now }
	const hold, keep = 15 * time.Second, time.Hour

	if c, _ := d.Claim(ctx, "m1", hold); c != ClaimNew {
		t.Fatalf("first delivery: %v, want ClaimNew", c)
	}
	if c, _ := d.Claim(ctx, "m1", hold); c != ClaimBusy {
		t.Fatalf("redelivery while the first is published: %v, want ClaimBusy", c)
	}
	_ = d.Done(ctx, "m1", keep)
	now = now.Add(59 * time.Minute)
	if c, _ := d.Claim(ctx, "m1", hold); c != ClaimDone {
		t.Fatalf("redelivery 59 minutes later: %v, want ClaimDone (dropped)", c)
	}
	// A claim whose holder died lapses after its hold.
	if c, _ := d.Claim(ctx, "m2", hold); c != ClaimNew {
		t.Fatalf("m2: %v", c)
	}
	now = now.Add(hold + time.Second)
	if c, _ := d.Claim(ctx, "m2", hold); c != ClaimNew {
		t.Fatalf("m2 after its holder's hold lapsed: %v, want ClaimNew", c)
	}
	_ = d.Release(ctx, "m2")

	// Ten hours of one message a second: the deduper holds about an hour.
	for i := range 10 * 3600 {
		key := fmt.Sprintf("s%d", i)
		if c, _ := d.Claim(ctx, key, hold); c != ClaimNew {
			t.Fatalf("%s: %v, want ClaimNew", key, c)
		}
		_ = d.Done(ctx, key, keep)
		now = now.Add(time.Second)
	}
	if n := d.Len(); n < 3600 || n > 3602 {
		t.Errorf("after ten hours at one message a second the deduper holds %d keys, want the last hour's (3600)", n)
	}
	if c, _ := d.Claim(ctx, "s0", hold); c != ClaimNew {
		t.Errorf("a key from ten hours ago: %v, want ClaimNew (forgotten)", c)
	}
	if c, _ := d.Claim(ctx, fmt.Sprintf("s%d", 10*3600-10), hold); c != ClaimDone {
		t.Errorf("a key from ten seconds ago: %v, want ClaimDone", c)
	}
	if len(d.written)-d.head > 2*3600+16 {
		t.Errorf("the expiry list holds %d entries for %d keys", len(d.written)-d.head, d.Len())
	}
}
