package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// twoStations syncs the district seed and returns the ids of its stations.
func twoStations(t *testing.T, s *store.Store) (xcl, jy uint, d *store.Directory) {
	t.Helper()
	d = syncSeed(t, s, districtSeed())
	return stationByCode(t, d, "xcl").ID, stationByCode(t, d, "jy").ID, d
}

// question is a resident's @-question as the ask handler files it.
func question(stationID uint, source string) *store.Ticket {
	return &store.Ticket{
		StationID:     stationID,
		SourceEventID: source,
		Platform:      "dingtalk",
		ChatID:        "cid-xcl-001",
		ChatType:      "group",
		ResidentID:    "resident-" + source,
		ResidentName:  "张阿姨",
		Question:      "楼道有焦味，请民警来看看",
		Status:        store.StatusOpen,
	}
}

func createTicket(t *testing.T, s *store.Store, tk *store.Ticket, timeline ...store.TicketEvent) *store.Ticket {
	t.Helper()
	got, created, err := s.CreateTicket(testContext(t), tk, timeline, nil)
	if err != nil {
		t.Fatalf("create ticket %s: %v", tk.SourceEventID, err)
	}
	if !created {
		t.Fatalf("create ticket %s: an existing ticket was returned", tk.SourceEventID)
	}
	return got
}

func timelineKinds(t *testing.T, s *store.Store, id uint) []string {
	t.Helper()
	tl, err := s.Timeline(testContext(t), id)
	if err != nil {
		t.Fatalf("timeline of ticket %d: %v", id, err)
	}
	var kinds []string
	for _, e := range tl {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

func reload(t *testing.T, s *store.Store, tk *store.Ticket) *store.Ticket {
	t.Helper()
	got, err := s.TicketBySource(testContext(t), tk.SourceEventID)
	if err != nil {
		t.Fatalf("reload ticket %s: %v", tk.SourceEventID, err)
	}
	return got
}

func TestCreateTicketNumbersEachStationFromOne(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, _ := twoStations(t, s)
		steps := []struct {
			station uint
			source  string
			want    int64
		}{
			{xcl, "e1", 1}, {jy, "e2", 1}, {xcl, "e3", 2}, {xcl, "e4", 3}, {jy, "e5", 2},
		}
		for _, st := range steps {
			got := createTicket(t, s, question(st.station, st.source))
			if got.Number != st.want || got.ID == 0 || got.StationID != st.station {
				t.Errorf("ticket %s = #%d (id %d, station %d), want #%d of station %d", st.source, got.Number, got.ID, got.StationID, st.want, st.station)
			}
		}
		for _, st := range steps {
			got, err := s.TicketByNumber(testContext(t), st.station, st.want)
			if err != nil || got.SourceEventID != st.source {
				t.Errorf("ticket #%d of station %d = %+v, %v; want %s", st.want, st.station, got, err, st.source)
			}
		}
	})
}

func TestCreateTicketStoresTimelineInOrder(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, d := twoStations(t, s)
		wang := officerByCode(t, d, "xcl-wang")
		asked := time.Date(2026, 11, 23, 9, 12, 0, 0, cst)
		tk := createTicket(t, s, question(xcl, "e1"),
			store.TicketEvent{Kind: store.TLAsked, At: asked},
			store.TicketEvent{Kind: store.TLAssigned, ActorID: &wang.ID, Detail: "本群民警在班：王建国", At: asked},
			store.TicketEvent{Kind: store.TLAcknowledged, At: asked},
			store.TicketEvent{Kind: store.TLNotified, ActorID: &wang.ID}, // no time: stamped now
		)
		tl, err := s.Timeline(testContext(t), tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{store.TLAsked, store.TLAssigned, store.TLAcknowledged, store.TLNotified}
		if len(tl) != len(want) {
			t.Fatalf("timeline has %d entries, want %d: %+v", len(tl), len(want), tl)
		}
		for i, e := range tl {
			if e.Kind != want[i] || e.TicketID != tk.ID {
				t.Errorf("timeline[%d] = %s of ticket %d, want %s of ticket %d", i, e.Kind, e.TicketID, want[i], tk.ID)
			}
		}
		if !tl[0].At.Equal(asked) {
			t.Errorf("asked at %v, want %v", tl[0].At, asked)
		}
		if tl[1].ActorID == nil || *tl[1].ActorID != wang.ID || tl[1].Detail != "本群民警在班：王建国" {
			t.Errorf("assigned entry = %+v, want actor %d with detail", tl[1], wang.ID)
		}
		if since := time.Since(tl[3].At); tl[3].At.IsZero() || since < -time.Minute || since > time.Minute {
			t.Errorf("entry without a time was stamped %v, want now", tl[3].At)
		}
	})
}

func TestCreateTicketForRedeliveredEventReturnsExistingTicket(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		first := createTicket(t, s, question(xcl, "dingtalk:msg-1"), store.TicketEvent{Kind: store.TLAsked})

		again := question(xcl, "dingtalk:msg-1")
		again.Question = "redelivered copy"
		got, created, err := s.CreateTicket(testContext(t), again, []store.TicketEvent{{Kind: store.TLAsked}, {Kind: store.TLAcknowledged}}, nil)
		if err != nil {
			t.Fatalf("create redelivered ticket: %v", err)
		}
		if created {
			t.Error("redelivered event made a new ticket, want created == false")
		}
		if got.ID != first.ID || got.Number != 1 || got.Question != "楼道有焦味，请民警来看看" {
			t.Errorf("redelivered event returned %+v, want ticket %d #1 with the original question", got, first.ID)
		}
		if kinds := timelineKinds(t, s, first.ID); !slices.Equal(kinds, []string{store.TLAsked}) {
			t.Errorf("timeline after redelivery = %q, want only the first delivery's entry", kinds)
		}

		next := createTicket(t, s, question(xcl, "dingtalk:msg-2"))
		if next.Number != 2 {
			t.Errorf("next ticket after a redelivery = #%d, want #2 (no number consumed)", next.Number)
		}
	})
}

func TestCreateTicketConcurrentlyNumbersWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, _ := twoStations(t, s)
		const callers, sources = 24, 16 // 8 callers repeat another's event
		type result struct {
			source  string
			station uint
			ticket  *store.Ticket
			created bool
			err     error
		}
		results := make([]result, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			src := i % sources
			station := xcl
			if src%2 == 1 {
				station = jy
			}
			source := fmt.Sprintf("evt-%02d", src)
			wg.Go(func() {
				<-start
				tk, created, err := s.CreateTicket(testContext(t), question(station, source),
					[]store.TicketEvent{{Kind: store.TLAsked}, {Kind: store.TLAcknowledged}}, nil)
				results[i] = result{source, station, tk, created, err}
			})
		}
		close(start)
		wg.Wait()

		bySource := map[string]uint{}
		numbers := map[uint][]int64{}
		created := 0
		for _, r := range results {
			if r.err != nil {
				t.Errorf("create %s: %v", r.source, r.err)
				continue
			}
			if r.ticket.SourceEventID != r.source || r.ticket.StationID != r.station {
				t.Errorf("create %s returned ticket of %s at station %d", r.source, r.ticket.SourceEventID, r.ticket.StationID)
			}
			if id, ok := bySource[r.source]; ok && id != r.ticket.ID {
				t.Errorf("event %s has tickets %d and %d, want one", r.source, id, r.ticket.ID)
			}
			bySource[r.source] = r.ticket.ID
			if r.created {
				created++
				numbers[r.station] = append(numbers[r.station], r.ticket.Number)
			}
		}
		if created != sources {
			t.Errorf("%d tickets created, want %d (one per event)", created, sources)
		}
		for _, station := range []uint{xcl, jy} {
			got := numbers[station]
			want := []int64{1, 2, 3, 4, 5, 6, 7, 8}
			if s.Driver() == store.MySQL {
				// Numbers come from the process's block: a caller that lost
				// the race for its event gives its number back, and the
				// station's next tickets take those first, so the four
				// after the race close every gap.
				for i := range callers - sources {
					if i%2 == 0 == (station == xcl) {
						got = append(got, createTicket(t, s, question(station, fmt.Sprintf("evt-after-%d", i))).Number)
					}
				}
				want = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("station %d numbers = %v, want %v", station, got, want)
			}
		}
		for _, id := range bySource {
			if kinds := timelineKinds(t, s, id); len(kinds) != 2 {
				t.Errorf("ticket %d timeline = %q, want the two entries of one delivery", id, kinds)
			}
		}
		if s.Driver() == store.MySQL { // SQLite numbers from the ticket index, no counter
			// The counter is the end of the blocks this process reserved:
			// every number handed out is within it.
			d := loadDirectory(t, s)
			if n := stationByCode(t, d, "xcl").NextTicket; n < 12 {
				t.Errorf("station xcl reserved numbers up to %d, want at least the 12 handed out", n)
			}
		}
		stored := sources
		if s.Driver() == store.MySQL {
			stored += callers - sources // the ones filed after the race
		}
		all, err := s.TicketsCreated(testContext(t), 0, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil || len(all) != stored {
			t.Errorf("tickets stored = %d (%v), want %d", len(all), err, stored)
		}
	})
}

func TestTransitionSavesChangesAndAppendsTimeline(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, d := twoStations(t, s)
		wang := officerByCode(t, d, "xcl-wang")
		due := time.Date(2026, 11, 23, 9, 22, 0, 0, time.UTC)
		tk := question(xcl, "e1")
		tk.AssigneeID, tk.EscalateAt = &wang.ID, &due
		tk = createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked})
		before := reload(t, s, tk)

		answered := time.Date(2026, 11, 23, 9, 15, 0, 0, time.UTC)
		got, err := s.Transition(testContext(t), tk.ID, func(cur *store.Ticket) (store.Change, error) {
			if cur.Status != store.StatusOpen || cur.Question != tk.Question {
				t.Errorf("decide saw %+v, want the stored open ticket", cur)
			}
			cur.Status, cur.EscalateAt, cur.FirstResponseAt, cur.AnsweredBy = store.StatusAnswered, nil, &answered, &wang.ID
			return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLAnswered, ActorID: &wang.ID, Detail: "马上到", At: answered}}}, nil
		})
		if err != nil {
			t.Fatalf("transition: %v", err)
		}
		if got.Status != store.StatusAnswered || got.Fence != tk.Fence+1 {
			t.Errorf("transition returned status %s fence %d, want answered, fence %d", got.Status, got.Fence, tk.Fence+1)
		}
		stored := reload(t, s, tk)
		if stored.Status != store.StatusAnswered || stored.EscalateAt != nil || stored.AnsweredBy == nil || *stored.AnsweredBy != wang.ID ||
			stored.FirstResponseAt == nil || !stored.FirstResponseAt.Equal(answered) || stored.Fence != tk.Fence+1 {
			t.Errorf("stored ticket = %+v, want answered by %d at %v, no timer, fence %d", stored, wang.ID, answered, tk.Fence+1)
		}
		if stored.Number != before.Number || !stored.CreatedAt.Equal(before.CreatedAt) || stored.Question != before.Question {
			t.Errorf("transition changed what decide left alone: before %+v, after %+v", before, stored)
		}
		if kinds := timelineKinds(t, s, tk.ID); !slices.Equal(kinds, []string{store.TLAsked, store.TLAnswered}) {
			t.Errorf("timeline = %q, want asked, answered", kinds)
		}

		again, err := s.Transition(testContext(t), tk.ID, func(cur *store.Ticket) (store.Change, error) {
			cur.Status = store.StatusClosed
			return store.Change{}, nil
		})
		if err != nil || again.Fence != tk.Fence+2 || reload(t, s, tk).Status != store.StatusClosed {
			t.Errorf("second transition = %+v, %v; want closed, fence %d", again, err, tk.Fence+2)
		}
	})
}

// A command handled twice (a platform redelivery) finds its first message
// written: the second transition is ErrDuplicate and changes nothing, on
// both databases (MariaDB would otherwise hand the existing row back
// through INSERT ... RETURNING as if it were new).
func TestTransitionWhoseFirstMessageExistsChangesNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, d := twoStations(t, s)
		wang, li := officerByCode(t, d, "xcl-wang"), officerByCode(t, d, "xcl-li")
		tk := question(xcl, "e1")
		tk.AssigneeID = &wang.ID
		tk = createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked})
		handOver := func(cur *store.Ticket) (store.Change, error) {
			cur.AssigneeID = &li.ID
			return store.Change{
				Timeline: []store.TicketEvent{{Kind: store.TLHandedOver, ActorID: &wang.ID, At: time.Now()}},
				Outbound: []store.OutboundMessage{
					{Key: "r:dingtalk:m7", Purpose: "reply", TicketID: &tk.ID, Platform: "dingtalk", ChatType: "direct", ChatID: "wang", Format: "text", Text: "已转交"},
					{Key: "t1:handover:dingtalk:m7", Purpose: "assign", TicketID: &tk.ID, Platform: "dingtalk", ToUser: "li", Format: "markdown", Text: "转交给您"},
				},
			}, nil
		}
		first, err := s.Transition(testContext(t), tk.ID, handOver)
		if err != nil {
			t.Fatalf("first delivery: %v", err)
		}
		if _, err := s.Transition(testContext(t), tk.ID, handOver); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("second delivery: %v, want ErrDuplicate", err)
		}
		if err := s.Enqueue(testContext(t), store.OutboundMessage{Key: "r:dingtalk:m7", Purpose: "reply", Platform: "dingtalk", ChatType: "direct", ChatID: "wang", Format: "text", Text: "x"}); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("enqueue of an existing key: %v, want ErrDuplicate", err)
		}
		if stored := reload(t, s, tk); stored.Fence != first.Fence {
			t.Errorf("the second delivery saved the ticket again: fence %d, want %d", stored.Fence, first.Fence)
		}
		if kinds := timelineKinds(t, s, tk.ID); !slices.Equal(kinds, []string{store.TLAsked, store.TLHandedOver}) {
			t.Errorf("timeline = %q, want asked, handed_over once", kinds)
		}
		msgs, err := s.OutboundOf(testContext(t), tk.ID)
		if err != nil || len(msgs) != 2 {
			t.Errorf("ticket's messages = %d, %v; want the two of the first delivery", len(msgs), err)
		}
	})
}

func TestTransitionDeclinedByDecideChangesNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		tk := createTicket(t, s, question(xcl, "e1"), store.TicketEvent{Kind: store.TLAsked})
		before := reload(t, s, tk)

		errNotYours := errors.New("ticket belongs to another officer")
		got, err := s.Transition(testContext(t), tk.ID, func(cur *store.Ticket) (store.Change, error) {
			cur.Status, cur.Level = store.StatusClosed, 7
			return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLClosed}}}, errNotYours
		})
		if !errors.Is(err, errNotYours) || got != nil {
			t.Fatalf("declined transition = %v, %v; want nil and the decide error", got, err)
		}
		after := reload(t, s, tk)
		if after.Status != before.Status || after.Level != before.Level || after.Fence != before.Fence || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("declined transition changed the ticket: before %+v, after %+v", before, after)
		}
		if kinds := timelineKinds(t, s, tk.ID); !slices.Equal(kinds, []string{store.TLAsked}) {
			t.Errorf("timeline after declined transition = %q, want only asked", kinds)
		}
	})
}

func TestTransitionOfMissingTicketIsNotFound(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		twoStations(t, s)
		called := false
		_, err := s.Transition(testContext(t), 4242, func(*store.Ticket) (store.Change, error) {
			called = true
			return store.Change{}, nil
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("transition of a missing ticket = %v, want ErrNotFound", err)
		}
		if called {
			t.Error("decide was called for a missing ticket")
		}
	})
}

// escalateBy is a fire func like the escalation handler's: next level, timer
// reset one SLA later, one timeline entry.
func escalateBy(now time.Time, sla time.Duration, fired func(*store.Ticket)) func(*store.Ticket) (store.Change, error) {
	return func(t *store.Ticket) (store.Change, error) {
		fired(t)
		t.Level++
		next := now.Add(sla)
		t.EscalateAt = &next
		return store.Change{Timeline: []store.TicketEvent{{Kind: store.TLEscalated, Detail: fmt.Sprintf("第%d次升级", t.Level), At: now}}}, nil
	}
}

func TestFireDueFiresOnlyDueUnansweredTickets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	cases := []struct {
		source string
		status string
		due    *time.Time
		fires  bool
	}{
		{"open-overdue", store.StatusOpen, at(-10 * time.Minute), true},
		{"claimed-overdue", store.StatusClaimed, at(-time.Second), true},
		{"open-due-now", store.StatusOpen, at(0), true},
		{"open-not-yet", store.StatusOpen, at(time.Second), false},
		{"claimed-not-yet", store.StatusClaimed, at(time.Hour), false},
		{"answered-overdue", store.StatusAnswered, at(-time.Hour), false},
		{"closed-overdue", store.StatusClosed, at(-time.Hour), false},
		{"open-no-timer", store.StatusOpen, nil, false},
	}
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		for _, c := range cases {
			tk := question(xcl, c.source)
			tk.Status, tk.EscalateAt = c.status, c.due
			createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked})
		}

		var fired []string
		n, err := s.FireDue(testContext(t), now, 100, escalateBy(now, 10*time.Minute, func(tk *store.Ticket) {
			fired = append(fired, tk.SourceEventID)
		}))
		if err != nil {
			t.Fatalf("fire due: %v", err)
		}
		var want []string
		for _, c := range cases {
			if c.fires {
				want = append(want, c.source)
			}
		}
		sort.Strings(fired)
		sort.Strings(want)
		if n != len(want) || !slices.Equal(fired, want) {
			t.Errorf("fired %d %q, want %d %q", n, fired, len(want), want)
		}

		for _, c := range cases {
			got := reload(t, s, &store.Ticket{SourceEventID: c.source})
			kinds := timelineKinds(t, s, got.ID)
			if c.fires {
				if got.Level != 1 || got.Fence != 1 || got.EscalateAt == nil || !got.EscalateAt.Equal(now.Add(10*time.Minute)) ||
					!slices.Equal(kinds, []string{store.TLAsked, store.TLEscalated}) {
					t.Errorf("%s after firing: level %d, fence %d, timer %v, timeline %q; want level 1, fence 1, timer %v, asked+escalated",
						c.source, got.Level, got.Fence, deref(got.EscalateAt), kinds, now.Add(10*time.Minute))
				}
			} else if got.Level != 0 || got.Fence != 0 || len(kinds) != 1 {
				t.Errorf("%s should not fire but has level %d, fence %d, timeline %q", c.source, got.Level, got.Fence, kinds)
			}
		}

		n, err = s.FireDue(testContext(t), now, 100, escalateBy(now, 10*time.Minute, func(tk *store.Ticket) {
			t.Errorf("ticket %s fired again before its new timer", tk.SourceEventID)
		}))
		if err != nil || n != 0 {
			t.Errorf("second round at the same time fired %d (%v), want 0", n, err)
		}
		later := now.Add(10 * time.Minute) // the new timers, and open-not-yet
		n, err = s.FireDue(testContext(t), later, 100, escalateBy(later, 10*time.Minute, func(*store.Ticket) {}))
		if err != nil || n != len(want)+1 {
			t.Errorf("round at the new timer fired %d (%v), want %d", n, err, len(want)+1)
		}
	})
}

func TestFireDueTakesMostOverdueFirstUpToLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		for i, late := range []time.Duration{time.Minute, 30 * time.Minute, 5 * time.Minute, 60 * time.Minute} {
			tk := question(xcl, fmt.Sprintf("late-%dm", int(late.Minutes())))
			due := now.Add(-late)
			tk.EscalateAt = &due
			tk.ResidentID = fmt.Sprint("r", i)
			createTicket(t, s, tk)
		}
		var fired []string
		n, err := s.FireDue(testContext(t), now, 2, escalateBy(now, time.Hour, func(tk *store.Ticket) {
			fired = append(fired, tk.SourceEventID)
		}))
		if err != nil || n != 2 || !slices.Equal(fired, []string{"late-60m", "late-30m"}) {
			t.Errorf("fire with limit 2 = %d %q (%v), want the two most overdue: late-60m, late-30m", n, fired, err)
		}
	})
}

func TestFireDueFailingFireKeepsTicketDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		due := now.Add(-time.Minute)
		tk := question(xcl, "e1")
		tk.EscalateAt = &due
		createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked})

		errOutbox := errors.New("outbox unavailable")
		_, err := s.FireDue(testContext(t), now, 100, func(cur *store.Ticket) (store.Change, error) {
			cur.Level++
			return store.Change{}, errOutbox
		})
		if !errors.Is(err, errOutbox) {
			t.Errorf("fire due with a failing fire = %v, want the fire error", err)
		}
		got := reload(t, s, tk)
		if got.Level != 0 || got.Fence != 0 {
			t.Errorf("failed fire was saved: level %d, fence %d", got.Level, got.Fence)
		}
		n, err := s.FireDue(testContext(t), now, 100, escalateBy(now, time.Hour, func(*store.Ticket) {}))
		if err != nil || n != 1 {
			t.Errorf("retry fired %d (%v), want 1", n, err)
		}
	})
}

func TestFireDueConcurrentWorkersFireEachTicketOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, _ := twoStations(t, s)
		const tickets, workers = 40, 4
		var ids []uint
		for i := range tickets {
			station := xcl
			if i%2 == 1 {
				station = jy
			}
			due := now.Add(-time.Duration(i+1) * time.Second)
			tk := question(station, fmt.Sprintf("due-%02d", i))
			tk.EscalateAt = &due
			ids = append(ids, createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked}).ID)
		}

		var mu sync.Mutex
		fires := map[uint]int{}
		total := 0
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				<-start
				n, err := s.FireDue(testContext(t), now, 100, escalateBy(now, 10*time.Minute, func(tk *store.Ticket) {
					mu.Lock()
					fires[tk.ID]++
					mu.Unlock()
				}))
				if err != nil {
					t.Errorf("worker: %v", err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()

		if total != tickets {
			t.Errorf("workers reported %d fired in total, want %d", total, tickets)
		}
		for _, id := range ids {
			if fires[id] != 1 {
				t.Errorf("ticket %d fired %d times, want once", id, fires[id])
			}
		}
		d := loadDirectory(t, s)
		for _, station := range []uint{stationByCode(t, d, "xcl").ID, stationByCode(t, d, "jy").ID} {
			open, err := s.OpenTicketsOfStation(testContext(t), station)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range open {
				escalations := 0
				for _, k := range timelineKinds(t, s, tk.ID) {
					if k == store.TLEscalated {
						escalations++
					}
				}
				if tk.Level != 1 || tk.Fence != 1 || escalations != 1 {
					t.Errorf("ticket %s: level %d, fence %d, %d escalation entries; want 1, 1, 1", tk.SourceEventID, tk.Level, tk.Fence, escalations)
				}
			}
		}
	})
}

func TestFireDueComparesInstantsAcrossTimeZones(t *testing.T) {
	t.Parallel()
	// 08:30 UTC is 16:30 in Shanghai.
	dueUTC := time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)
	dueCST := dueUTC.In(cst)
	cases := []struct {
		name   string
		due    time.Time
		now    time.Time
		fires  bool
		detail string
	}{
		{"UTC timer, earlier Shanghai clock", dueUTC, time.Date(2026, 11, 23, 16, 0, 0, 0, cst), false, "16:00 CST is before 16:30 CST"},
		{"UTC timer, later Shanghai clock", dueUTC, time.Date(2026, 11, 23, 16, 31, 0, 0, cst), true, "16:31 CST is after 16:30 CST"},
		{"Shanghai timer, earlier UTC clock", dueCST, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), false, "08:00 UTC is before 08:30 UTC"},
		{"Shanghai timer, later UTC clock", dueCST, time.Date(2026, 11, 23, 8, 31, 0, 0, time.UTC), true, "08:31 UTC is after 08:30 UTC"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, s *store.Store) {
				xcl, _, _ := twoStations(t, s)
				tk := question(xcl, "e1")
				tk.EscalateAt = &c.due
				createTicket(t, s, tk)
				n, err := s.FireDue(testContext(t), c.now, 100, escalateBy(c.now, time.Hour, func(*store.Ticket) {}))
				if err != nil {
					t.Fatal(err)
				}
				if fired := n == 1; fired != c.fires {
					t.Errorf("timer due %v, now %v: fired = %v, want %v (%s)", c.due, c.now, fired, c.fires, c.detail)
				}
			})
		})
	}
}

func TestTicketsCreatedFiltersByTimeAndStation(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, cst) // a day in Shanghai
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, _ := twoStations(t, s)
		for _, c := range []struct {
			source  string
			station uint
			at      time.Time
		}{
			{"xcl-yesterday-late", xcl, day.Add(-time.Minute)},
			{"xcl-midnight", xcl, day},
			{"xcl-morning", xcl, day.Add(9 * time.Hour).In(time.UTC)},
			{"jy-noon", jy, day.Add(12 * time.Hour)},
			{"xcl-last-minute", xcl, day.Add(24*time.Hour - time.Minute)},
			{"jy-tomorrow", jy, day.Add(24 * time.Hour)},
		} {
			tk := question(c.station, c.source)
			tk.CreatedAt = c.at
			createTicket(t, s, tk)
		}
		for _, q := range []struct {
			name     string
			station  uint
			from, to time.Time
			want     []string
		}{
			{"whole day, all stations", 0, day, day.Add(24 * time.Hour),
				[]string{"xcl-midnight", "xcl-morning", "jy-noon", "xcl-last-minute"}},
			{"whole day given in UTC", 0, day.UTC(), day.Add(24 * time.Hour).UTC(),
				[]string{"xcl-midnight", "xcl-morning", "jy-noon", "xcl-last-minute"}},
			{"whole day, one station", xcl, day, day.Add(24 * time.Hour),
				[]string{"xcl-midnight", "xcl-morning", "xcl-last-minute"}},
			{"other station", jy, day, day.Add(24 * time.Hour), []string{"jy-noon"}},
			{"morning only", 0, day.Add(6 * time.Hour), day.Add(12 * time.Hour), []string{"xcl-morning"}},
			{"end is exclusive", 0, day.Add(12 * time.Hour), day.Add(24 * time.Hour),
				[]string{"jy-noon", "xcl-last-minute"}},
			{"empty range", 0, day.Add(time.Hour), day.Add(2 * time.Hour), nil},
		} {
			got, err := s.TicketsCreated(testContext(t), q.station, q.from, q.to)
			if err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			var sources []string
			for _, tk := range got {
				sources = append(sources, tk.SourceEventID)
			}
			if !slices.Equal(sources, q.want) {
				t.Errorf("%s: got %q, want %q", q.name, sources, q.want)
			}
		}
	})
}

func TestTicketQueries(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, d := twoStations(t, s)
		wang, li := officerByCode(t, d, "xcl-wang"), officerByCode(t, d, "xcl-li")
		zhao := officerByCode(t, d, "jy-zhao")
		mk := func(source string, station uint, assignee *uint, status, chat, resident string) *store.Ticket {
			tk := question(station, source)
			tk.AssigneeID, tk.Status, tk.ChatID, tk.ResidentID = assignee, status, chat, resident
			return createTicket(t, s, tk)
		}
		a := mk("a", xcl, &wang.ID, store.StatusOpen, "cid-1", "r-1")
		b := mk("b", xcl, &wang.ID, store.StatusClaimed, "cid-1", "r-2")
		mk("c", xcl, &wang.ID, store.StatusAnswered, "cid-1", "r-1")
		mk("d", xcl, &wang.ID, store.StatusClosed, "cid-2", "r-1")
		mk("e", xcl, &li.ID, store.StatusOpen, "cid-2", "r-1")
		mk("f", jy, &zhao.ID, store.StatusOpen, "cid-1", "r-1")
		g := mk("g", xcl, nil, store.StatusOpen, "cid-1", "r-3")

		sourcesOf := func(ts []store.Ticket, err error) []string {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, tk := range ts {
				out = append(out, tk.SourceEventID)
			}
			return out
		}
		ctx := testContext(t)
		if got := sourcesOf(s.OpenTicketsFor(ctx, wang.ID)); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("open tickets of wang = %q, want a, b", got)
		}
		if got := sourcesOf(s.OpenTicketsFor(ctx, li.ID)); !slices.Equal(got, []string{"e"}) {
			t.Errorf("open tickets of li = %q, want e", got)
		}
		if got := sourcesOf(s.OpenTicketsFor(ctx, officerByCode(t, d, "xcl-zhang").ID)); len(got) != 0 {
			t.Errorf("open tickets of an officer with none = %q", got)
		}
		if got := sourcesOf(s.OpenTicketsOfStation(ctx, xcl)); !slices.Equal(got, []string{"a", "b", "e", "g"}) {
			t.Errorf("open tickets of xcl = %q, want a, b, e, g", got)
		}
		if got := sourcesOf(s.OpenTicketsOfStation(ctx, jy)); !slices.Equal(got, []string{"f"}) {
			t.Errorf("open tickets of jy = %q, want f", got)
		}

		// #1 exists in both stations: a and f.
		if got := sourcesOf(s.TicketsByNumber(ctx, 1)); len(got) != 2 || !slices.Contains(got, "a") || !slices.Contains(got, "f") {
			t.Errorf("tickets #1 = %q, want a and f", got)
		}
		if got := sourcesOf(s.TicketsByNumber(ctx, g.Number)); !slices.Equal(got, []string{"g"}) {
			t.Errorf("tickets #%d = %q, want g", g.Number, got)
		}
		if got := sourcesOf(s.TicketsByNumber(ctx, 999)); len(got) != 0 {
			t.Errorf("tickets #999 = %q, want none", got)
		}

		if got, err := s.TicketByNumber(ctx, xcl, b.Number); err != nil || got.ID != b.ID {
			t.Errorf("ticket #%d of xcl = %v, %v; want b", b.Number, got, err)
		}
		if _, err := s.TicketByNumber(ctx, jy, 999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing ticket number = %v, want ErrNotFound", err)
		}
		if got, err := s.TicketBySource(ctx, "a"); err != nil || got.ID != a.ID {
			t.Errorf("ticket from event a = %v, %v", got, err)
		}
		if _, err := s.TicketBySource(ctx, "never-seen"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ticket from an unknown event = %v, want ErrNotFound", err)
		}
	})
}

func TestChineseAndEmojiRoundTrip(t *testing.T) {
	t.Parallel()
	texts := []string{
		"楼道有焦味，请民警来看看 @社区民警",
		"孩子走丢了😭😭 穿红色外套，在嘉定新城地铁站附近 🚇",
		"电动车🛵被偷了，监控能查吗？𠮷野家门口",
		"👨‍👩‍👧 家里老人接到“公检法”电话要转账💰，怎么办",
	}
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		for i, text := range texts {
			tk := question(xcl, fmt.Sprint("u", i))
			tk.Question, tk.ResidentName = text, "李阿姨🌸"
			createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked, Detail: text})
			got := reload(t, s, tk)
			if got.Question != text || got.ResidentName != "李阿姨🌸" {
				t.Errorf("question %q came back as %q (resident %q)", text, got.Question, got.ResidentName)
			}
			tl, err := s.Timeline(testContext(t), got.ID)
			if err != nil || len(tl) != 1 || tl[0].Detail != text {
				t.Errorf("timeline detail of %q = %+v, %v", text, tl, err)
			}
		}
	})
}

func TestCreateTicketForUnknownStationFails(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, _, _ := twoStations(t, s)
		for _, station := range []uint{0, 4242} {
			got, created, err := s.CreateTicket(testContext(t), question(station, fmt.Sprint("lost-", station)), nil, nil)
			if err == nil || created {
				t.Errorf("ticket for station %d = %+v, created %v, err %v; want an error", station, got, created, err)
			}
			if _, err := s.TicketBySource(testContext(t), fmt.Sprint("lost-", station)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a ticket for station %d was stored: %v", station, err)
			}
		}
		if tk := createTicket(t, s, question(xcl, "e1")); tk.Number != 1 {
			t.Errorf("first ticket of a real station = #%d, want #1", tk.Number)
		}
	})
}

// Every column a ticket has comes back as it was written, through each way
// of finding one, on both databases (the lookups and the hot writes are
// written out by hand, not left to the ORM).
func TestTicketLookupsReadBackEveryColumn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := testContext(t)
		xcl, _, d := twoStations(t, s)
		officer := d.Officers[0].ID
		created := time.Date(2026, 11, 23, 21, 5, 9, 0, time.UTC)
		due := created.Add(15 * time.Minute)
		group := uint(7)
		tk := question(xcl, "every-column")
		tk.GroupID, tk.ReplyHandle, tk.Routing = &group, "session-webhook-1", "own_officer：王建国"
		tk.Emergency, tk.AfterHours, tk.AutoAnswered = true, true, true
		tk.AssigneeID, tk.EscalateAt, tk.CreatedAt = &officer, &due, created
		createTicket(t, s, tk)
		answered := created.Add(3 * time.Minute)
		closed := created.Add(time.Hour)
		want, err := s.Transition(ctx, tk.ID, func(t *store.Ticket) (store.Change, error) {
			t.Status, t.Level, t.EscalateAt = store.StatusClosed, 2, nil
			t.FirstResponseAt, t.AnsweredBy, t.ClosedAt = &answered, &officer, &closed
			return store.Change{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		byNumber, err1 := s.TicketByNumber(ctx, xcl, tk.Number)
		byID, err2 := s.TicketByID(ctx, tk.ID)
		bySource, err3 := s.TicketBySource(ctx, tk.SourceEventID)
		listed, err4 := s.TicketsCreated(ctx, xcl, created.Add(-time.Minute), created.Add(time.Minute))
		if err := errors.Join(err1, err2, err3, err4); err != nil || len(listed) != 1 {
			t.Fatalf("lookups: %v (%d listed)", err, len(listed))
		}
		norm := func(x store.Ticket) store.Ticket {
			for _, p := range []*time.Time{&x.CreatedAt, &x.UpdatedAt} {
				*p = p.UTC().Truncate(time.Millisecond) // MySQL keeps milliseconds
			}
			for _, p := range []**time.Time{&x.EscalateAt, &x.FirstResponseAt, &x.ClosedAt} {
				if *p != nil {
					u := (*p).UTC().Truncate(time.Millisecond) // MySQL keeps milliseconds
					*p = &u
				}
			}
			return x
		}
		w := norm(*want)
		for name, got := range map[string]store.Ticket{"by number": *byNumber, "by id": *byID, "by source": *bySource, "listed": listed[0]} {
			if g := norm(got); !reflect.DeepEqual(g, w) {
				t.Errorf("%s:\n got %+v\nwant %+v", name, g, w)
			}
		}
		if w.GroupID == nil || *w.GroupID != group || w.ReplyHandle != "session-webhook-1" || !w.Emergency || !w.AfterHours || !w.AutoAnswered ||
			w.Level != 2 || w.EscalateAt != nil || w.AnsweredBy == nil || *w.AnsweredBy != officer || !w.CreatedAt.Equal(created) ||
			w.ClosedAt == nil || !w.ClosedAt.Equal(closed) || w.Status != store.StatusClosed {
			t.Errorf("saved ticket %+v", w)
		}
		if _, err := s.TicketByNumber(ctx, xcl, 999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing ticket: %v, want ErrNotFound", err)
		}
	})
}

// A batch of due timers is fired while an officer's answer to one of them
// is being written (its transaction open, its row changed and not yet
// committed). The batch fires every other ticket, over more than one
// transaction's worth, and leaves the answered one alone: on MariaDB it
// skips the locked row, on SQLite it waits for the answer and then finds
// the ticket answered. After the answer commits, the ticket never fires.
func TestFireDueBatchSkipsTicketAnsweredMeanwhile(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		xcl, _, _ := twoStations(t, s)
		const tickets = store.FireBatch + 5
		answered := ""
		for i := range tickets {
			tk := question(xcl, fmt.Sprintf("due-%03d", i))
			due := now.Add(-time.Duration(tickets-i) * time.Second)
			tk.EscalateAt = &due
			created := createTicket(t, s, tk, store.TicketEvent{Kind: store.TLAsked})
			if i == 3 {
				answered = created.SourceEventID
			}
		}
		target := reload(t, s, &store.Ticket{SourceEventID: answered})

		raw := b.raw(t)
		answer, err := raw.BeginTx(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer answer.Rollback()
		if _, err := answer.ExecContext(testContext(t), "UPDATE tickets SET status = ?, escalate_at = NULL, fence = fence + 1 WHERE id = ?",
			store.StatusAnswered, target.ID); err != nil {
			t.Fatalf("answer ticket %s: %v", answered, err)
		}

		type result struct {
			n     int
			fired []string
			err   error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.n, r.err = s.FireDue(testContext(t), now, 1000, escalateBy(now, time.Hour, func(tk *store.Ticket) {
				r.fired = append(r.fired, tk.SourceEventID)
			}))
			done <- r
		}()
		var r result
		if b.name == "mariadb" {
			r = <-done // SKIP LOCKED: the batch does not wait for the answer
			if err := answer.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := answer.Commit(); err != nil { // the single writer: the batch waits for it
				t.Fatal(err)
			}
			r = <-done
		}
		if r.err != nil {
			t.Fatalf("fire due: %v", r.err)
		}
		if r.n != tickets-1 || len(r.fired) != tickets-1 || slices.Contains(r.fired, answered) {
			t.Errorf("fired %d (%d decided, answered one among them: %v), want the %d others", r.n, len(r.fired), slices.Contains(r.fired, answered), tickets-1)
		}
		got := reload(t, s, target)
		if got.Status != store.StatusAnswered || got.Level != 0 || got.EscalateAt != nil {
			t.Errorf("answered ticket after the batch: status %s, level %d, timer %v; want answered, level 0, no timer", got.Status, got.Level, got.EscalateAt)
		}
		if kinds := timelineKinds(t, s, got.ID); !slices.Equal(kinds, []string{store.TLAsked}) {
			t.Errorf("answered ticket's timeline %q, want only asked", kinds)
		}
		for _, src := range []string{"due-000", "due-004", fmt.Sprintf("due-%03d", tickets-1)} {
			other := reload(t, s, &store.Ticket{SourceEventID: src})
			if other.Level != 1 || other.Fence != 1 || !slices.Equal(timelineKinds(t, s, other.ID), []string{store.TLAsked, store.TLEscalated}) {
				t.Errorf("%s after the batch: level %d, fence %d, timeline %q; want escalated once", src, other.Level, other.Fence, timelineKinds(t, s, other.ID))
			}
		}
		n, err := s.FireDue(testContext(t), now, 1000, escalateBy(now, time.Hour, func(tk *store.Ticket) {
			t.Errorf("ticket %s fired again", tk.SourceEventID)
		}))
		if err != nil || n != 0 {
			t.Errorf("second round fired %d (%v), want 0", n, err)
		}
	})
}
