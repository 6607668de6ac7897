package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

func TestExploreCancelInBatch(t *testing.T) {
	s := openStore(t, sqliteBackend(t).opts)
	xcl, _, _ := twoStations(t, s)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var okIDs []uint
	innocentErrs := 0
	cancelledErrs := 0
	for i := range 400 {
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 0 {
				c, cancel := context.WithTimeout(ctx, time.Duration(i%13)*700*time.Microsecond)
				defer cancel()
				ctx = c
			}
			tl := make([]store.TicketEvent, 200)
			for j := range tl {
				tl[j] = store.TicketEvent{Kind: store.TLAsked, Detail: "x"}
			}
			tk, created, err := s.CreateTicket(ctx, question(xcl, fmt.Sprint("c", i)), tl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if i%2 == 1 {
					innocentErrs++
					if innocentErrs < 5 {
						t.Logf("innocent %d: %v", i, err)
					}
				} else {
					cancelledErrs++
				}
				return
			}
			if created {
				okIDs = append(okIDs, tk.ID)
			}
		})
	}
	wg.Wait()
	t.Logf("ok %d innocentErrs %d cancelledErrs %d", len(okIDs), innocentErrs, cancelledErrs)
	all, _ := s.TicketsCreated(context.Background(), 0, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	have := map[uint]bool{}
	nums := map[int64]int{}
	for _, tk := range all {
		have[tk.ID] = true
		nums[tk.Number]++
	}
	lost := 0
	for _, id := range okIDs {
		if !have[id] {
			lost++
		}
	}
	t.Logf("stored %d, lost %d", len(all), lost)
	for n, c := range nums {
		if c > 1 {
			t.Errorf("number %d used %d times", n, c)
		}
	}
	if lost > 0 {
		t.Errorf("lost %d acknowledged tickets", lost)
	}
}
