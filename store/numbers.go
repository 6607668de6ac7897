package store

import (
	"context"
	"fmt"
	"sync"
)

// ticketNumberBlock is how many ticket numbers of a station one process
// reserves at a time on MySQL. Larger blocks mean fewer reservations (one
// short statement per block) and larger gaps when a process stops with part
// of a block unused; twenty keeps the gaps small for a station's residents,
// and a reservation per twenty tickets costs a twentieth of a round trip
// per ticket.
const ticketNumberBlock = 20

// ticketNumbers hands out ticket numbers on MySQL from blocks reserved per
// station. A block is reserved by one autocommitted UPDATE of the station's
// counter, in no ticket's transaction: the counter row is locked for that
// statement alone, never held through a ticket's commit, so tickets of one
// station are no longer serialised on it. Numbers stay unique per station
// (every block is the counter's own range); they are not gap-free across
// processes: a process that stops loses what is left of its blocks, and
// two processes hand out numbers from their blocks side by side, so a
// station's numbers are not in filing order across processes.
type ticketNumbers struct {
	mu       sync.Mutex
	stations map[uint]*stationNumbers
}

// stationNumbers is one station's block in this process. Its mutex is held
// across a reservation, so only that station's new tickets wait for it.
type stationNumbers struct {
	mu        sync.Mutex
	next, end int64   // next to hand out; end is the block's last
	returned  []int64 // numbers taken by tickets that were not written, handed out first
}

func (n *ticketNumbers) station(id uint) *stationNumbers {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stations == nil {
		n.stations = map[uint]*stationNumbers{}
	}
	sn := n.stations[id]
	if sn == nil {
		sn = &stationNumbers{}
		n.stations[id] = sn
	}
	return sn
}

// takeTicketNumber hands out the station's next number, reserving a block first when
// this process has none left.
func (s *Store) takeTicketNumber(ctx context.Context, stationID uint) (int64, error) {
	sn := s.numbers.station(stationID)
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if k := len(sn.returned); k > 0 {
		n := sn.returned[k-1]
		sn.returned = sn.returned[:k-1]
		return n, nil
	}
	if sn.next == 0 || sn.next > sn.end {
		pool, err := s.db.DB()
		if err != nil {
			return 0, fmt.Errorf("number ticket: %w", err)
		}
		// LAST_INSERT_ID(expr) hands the block's end back in the
		// UPDATE's own reply: one round trip, autocommitted, reserves it.
		res, err := pool.ExecContext(ctx, "UPDATE stations SET next_ticket = LAST_INSERT_ID(next_ticket + ?) WHERE id = ?", ticketNumberBlock, stationID)
		if err != nil {
			return 0, fmt.Errorf("number ticket: reserve numbers of station %d: %w", stationID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return 0, fmt.Errorf("number ticket: station %d does not exist", stationID)
		}
		end, err := res.LastInsertId()
		if err != nil {
			return 0, fmt.Errorf("number ticket: %w", err)
		}
		sn.next, sn.end = end-ticketNumberBlock+1, end
	}
	n := sn.next
	sn.next++
	return n, nil
}

// returnTicketNumber gives back a number whose ticket is known not to have
// been written (its transaction rolled back), so the next ticket of the
// station takes it instead of leaving a gap.
func (s *Store) returnTicketNumber(stationID uint, number int64) {
	sn := s.numbers.station(stationID)
	sn.mu.Lock()
	sn.returned = append(sn.returned, number)
	sn.mu.Unlock()
}
