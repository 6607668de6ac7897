package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// Two worker processes (two stores on one database) file questions of the
// same stations at once, some of them redelivered to the other process:
// every ticket gets a number no other ticket of its station has, one ticket
// per event. On MySQL the numbers come from blocks each process reserves
// outside the tickets' transactions; on SQLite from the ticket index.
func TestTicketNumbersUniquePerStationAcrossWorkers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		first := openStore(t, b.opts)
		xcl, jy, _ := twoStations(t, first)
		workers := []*store.Store{first, openStore(t, b.opts)}
		const perWorker, events = 4, 150 // goroutines per store; events per goroutine
		type filed struct {
			source  string
			ticket  *store.Ticket
			created bool
		}
		var (
			mu  sync.Mutex
			all []filed
			wg  sync.WaitGroup
		)
		start := make(chan struct{})
		for w, s := range workers {
			for g := range perWorker {
				wg.Go(func() {
					<-start
					for i := range events {
						// Every third event is also filed by the other
						// store: a platform redelivery landing elsewhere.
						src := fmt.Sprintf("evt-%d-%d-%d", w, g, i)
						if i%3 == 0 {
							src = fmt.Sprintf("evt-shared-%d-%d", g, i)
						}
						station := xcl
						if i%2 == 1 {
							station = jy
						}
						tk, created, err := s.CreateTicket(testContext(t), question(station, src), []store.TicketEvent{{Kind: store.TLAsked}}, nil)
						if err != nil {
							t.Errorf("worker %d: create %s: %v", w, src, err)
							return
						}
						mu.Lock()
						all = append(all, filed{src, tk, created})
						mu.Unlock()
					}
				})
			}
		}
		close(start)
		wg.Wait()

		bySource := map[string]uint{}
		byNumber := map[[2]int64]string{}
		created := 0
		for _, f := range all {
			if id, ok := bySource[f.source]; ok && id != f.ticket.ID {
				t.Errorf("event %s has tickets %d and %d, want one", f.source, id, f.ticket.ID)
			}
			bySource[f.source] = f.ticket.ID
			if !f.created {
				continue
			}
			created++
			k := [2]int64{int64(f.ticket.StationID), f.ticket.Number}
			if other, ok := byNumber[k]; ok {
				t.Errorf("station %d number %d given to %s and %s", f.ticket.StationID, f.ticket.Number, other, f.source)
			}
			if f.ticket.Number < 1 {
				t.Errorf("%s got number %d", f.source, f.ticket.Number)
			}
			byNumber[k] = f.source
		}
		if created != len(bySource) {
			t.Errorf("%d tickets created for %d events, want one each", created, len(bySource))
		}
		for _, station := range []uint{xcl, jy} {
			for _, s := range workers[:1] {
				// What the database holds agrees: one row per number.
				rows, err := s.TicketsCreated(testContext(t), station, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				seen := map[int64]bool{}
				for _, r := range rows {
					if seen[r.Number] {
						t.Errorf("station %d holds number %d twice", station, r.Number)
					}
					seen[r.Number] = true
				}
			}
		}
	})
}
