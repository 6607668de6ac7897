package commands

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// switchedRoster is the demo roster on Monday 2026-11-23 with duty switches
// made at odd seconds, as officers send them: 王建国 signs off at
// 12:00:17, 张伟 comes on at 17:40:05 until 19:45:30, and on Tuesday 陈晓
// comes on at 06:10:42 without an end (twelve hours).
func switchedRoster() *store.Directory {
	in := demoRoster()
	at := func(s string) *time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", s, sh)
		if err != nil {
			panic(err)
		}
		return &t
	}
	for i := range in.Officers {
		o := &in.Officers[i]
		switch o.ID {
		case 1:
			o.DutyOverride, o.DutySince = ptr(false), at("2026-11-23 12:00:17")
		case 4:
			o.DutyOverride, o.DutySince, o.DutyUntil = ptr(true), at("2026-11-23 17:40:05"), at("2026-11-23 19:45:30")
		case 3:
			o.DutyOverride, o.DutySince = ptr(true), at("2026-11-24 06:10:42")
		}
	}
	return in
}

// A directory keeps each station's roster for the stretch in which it
// cannot change; a question asked one second after a shift ends, a switch
// is sent or lapses, or the day turns must still go to whoever covers it
// then, in whatever order the workers' clocks ask.
func TestRoutingAtEveryBoundaryMatchesTheRoster(t *testing.T) {
	in := switchedRoster()
	held := newDirectory(in)
	st, g := held.stations[1], held.groups["playground\x00hexie"]

	var instants []time.Time
	for _, b := range []string{
		"2026-11-23 00:00", "2026-11-23 08:30", "2026-11-23 12:00", "2026-11-23 17:30",
		"2026-11-23 17:40", "2026-11-23 19:45", "2026-11-24 00:00", "2026-11-24 06:10",
		"2026-11-24 08:30", "2026-11-24 17:30", "2026-11-24 18:10", "2026-11-25 00:00",
		"2026-11-25 12:00", "2026-11-25 14:00", "2026-11-27 20:00", "2026-11-28 00:00",
		"2026-11-28 02:00",
	} {
		for s := -2; s <= 60; s++ {
			instants = append(instants, when(b).Add(time.Duration(s)*time.Second))
		}
	}
	for at := when("2026-11-22 00:00"); at.Before(when("2026-11-29 00:00")); at = at.Add(37 * time.Minute) {
		instants = append(instants, at)
	}
	// In time order, then shuffled: clocks of concurrent workers straddle
	// boundaries, and a test clock goes back.
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	shuffled := append([]time.Time(nil), instants...)
	rand.New(rand.NewSource(16)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	for _, at := range append(instants, shuffled...) {
		fresh := newDirectory(in) // nothing held: worked out at exactly this instant
		fst, fg := fresh.stations[1], fresh.groups["playground\x00hexie"]
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"route", routeOf(held.route(st, g, nil, at, sh)), routeOf(fresh.route(fst, fg, nil, at, sh))},
			{"route without a group officer", routeOf(held.route(st, nil, nil, at, sh)), routeOf(fresh.route(fst, nil, nil, at, sh))},
			{"duty officer", officerName(held.dutyOfficerNow(st, at, sh)), officerName(fresh.dutyOfficerNow(fst, at, sh))},
			{"rostered", held.anyRosteredAt(st, at, sh), fresh.anyRosteredAt(fst, at, sh)},
			{"next start", nextOf(held, st, at), nextOf(fresh, fst, at)},
		} {
			if c.got != c.want {
				t.Fatalf("%s at %s = %v, worked out afresh %v", c.name, at.Format("01-02 15:04:05"), c.got, c.want)
			}
		}
	}

	// What residents see at the edges of the switches, on the held directory.
	for _, tc := range []struct{ at, want string }{
		{"2026-11-23 12:00:16", "王建国 own_officer"},
		{"2026-11-23 12:00:17", "李明 on_duty"},
		{"2026-11-23 17:40:04", "值班号 duty_account"},
		{"2026-11-23 17:40:05", "张伟 on_duty"},
		{"2026-11-23 19:45:29", "张伟 on_duty"},
		{"2026-11-23 19:45:30", "值班号 duty_account"},
		{"2026-11-24 18:10:41", "陈晓 on_duty"},
		{"2026-11-24 18:10:42", "值班号 duty_account"},
	} {
		at, err := time.ParseInLocation("2006-01-02 15:04:05", tc.at, sh)
		if err != nil {
			t.Fatal(err)
		}
		r := held.route(st, g, nil, at, sh)
		if got := officerName(r.Officer) + " " + r.Reason; got != tc.want {
			t.Errorf("question at %s goes to %s, want %s", tc.at, got, tc.want)
		}
	}
}

func routeOf(r Route) string {
	return officerName(r.Officer) + " " + r.Reason + " " + r.Shift.String()
}

func nextOf(d *directory, st *store.Station, at time.Time) string {
	next, ok := d.nextStart(st, at, sh)
	if !ok {
		return "none"
	}
	return next.In(sh).Format("01-02 15:04:05")
}
