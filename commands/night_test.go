package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot"
)

// A question filed for the morning keeps its promise: whatever happens to
// it overnight (the duty account claims it, hands it to a colleague who is
// off), nobody is paged before the promised time plus the SLA. Emergencies
// and questions the resident marks urgent keep the immediate clock.
func TestNightPromiseStartsTheClockAtTheNextShift(t *testing.T) {
	for _, tc := range []struct {
		name, ask string
		then      []string // the duty account's commands after filing
		paged     bool     // someone is paged by 22:48
	}{
		{name: "filed", ask: "想问下户口迁移需要什么材料"},
		{name: "claimed by the duty account", ask: "想问下户口迁移需要什么材料", then: []string{"#1 认领"}},
		{name: "handed to an officer who is off", ask: "想问下户口迁移需要什么材料", then: []string{"#1 转 李警官"}},
		{name: "marked urgent", ask: "紧急：家门口有陌生人一直徘徊", paged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, when("2026-11-23 22:30"), nil)
			r.group("hexie", "res-1", "@社区警务助手 "+tc.ask)
			ack := to(r.sent(), "hexie")
			if len(ack) != 1 {
				t.Fatalf("acknowledgement: %s", texts(ack))
			}
			if want := "明天（周二）08:30"; !tc.paged && !strings.Contains(ack[0].Text, want) {
				t.Errorf("acknowledgement %q does not promise %s", ack[0].Text, want)
			}
			if tc.paged && strings.Contains(ack[0].Text, "08:30") {
				t.Errorf("an urgent question is put off to the morning: %q", ack[0].Text)
			}
			for _, c := range tc.then {
				r.direct("taiping-duty", c)
			}
			if replies := to(r.sent(), "taiping-duty"); len(tc.then) > 0 && strings.Contains(texts(replies), "分钟内答复") {
				t.Errorf("the night's reply sets a deadline the ticket does not have:\n%s", texts(replies))
			}
			var paged []bot.Outbound
			for m := 1; m <= 18; m++ {
				r.clock.Set(when("2026-11-23 22:30").Add(time.Duration(m) * time.Minute))
				r.tick()
				for _, o := range r.sent() {
					if o.Ref.Purpose == bot.PurposeEscalation {
						paged = append(paged, o)
					}
				}
			}
			if tc.paged != (len(paged) > 0) {
				t.Fatalf("18 minutes after filing, escalations: %s(want any: %v)", texts(paged), tc.paged)
			}
			if tc.paged {
				return
			}
			// The morning: the ticket is handed over at the shift's start
			// and escalates only after the SLA from then.
			r.clock.Set(when("2026-11-24 08:30"))
			r.tick()
			r.sent()
			r.clock.Set(when("2026-11-24 08:44"))
			r.tick()
			if got := r.sent(); len(got) != 0 {
				t.Errorf("before 08:45 the ticket escalated: %s", texts(got))
			}
			r.clock.Set(when("2026-11-24 08:45"))
			r.tick()
			if got := r.sent(); len(got) == 0 || got[0].Ref.Purpose != bot.PurposeEscalation {
				t.Errorf("at 08:45, 15 minutes after the promised time, nothing escalated: %s", texts(got))
			}
		})
	}
}

// The promise names the day as the 2026 calendar has it: make-up working
// days and holidays respected, with the weekday said.
func TestNightPromiseNamesTheRealDay(t *testing.T) {
	for _, tc := range []struct{ at, want string }{
		{"2026-09-19 22:30", "明天（周日）08:30"}, // a make-up working Sunday
		{"2026-09-24 22:30", "明天（周五）09:00"}, // Mid-Autumn holiday: the rest-day shift
		{"2026-10-09 22:30", "明天（周六）08:30"}, // a make-up working Saturday
		{"2026-09-30 22:30", "明天（周四）09:00"}, // National Day
		{"2026-11-28 23:00", "明天（周日）09:00"}, // an ordinary weekend
		{"2026-11-24 01:00", "今天08:30"},
	} {
		r := newRig(t, when(tc.at), nil)
		r.group("hexie", "res-1", "@社区警务助手 想咨询一下户籍业务")
		ack := to(r.sent(), "hexie")
		if len(ack) != 1 || !strings.Contains(ack[0].Text, tc.want+"会有民警答复您") {
			t.Errorf("filed at %s: %s want %s", tc.at, texts(ack), tc.want)
		}
	}
}
