package commands

import (
	"strings"
	"testing"
)

// "值班 开" ends when the officer says, else with their rostered shift (the
// one they are in or one about to start), else after hub.duty_on_hours;
// the reply says when, and routing follows it.
func TestDutyOnEndsAndSaysWhen(t *testing.T) {
	for _, tc := range []struct {
		name, at, who, cmd string
		reply              string
		onAt, offAt        string // routing to who at onAt, not at offAt
	}{
		{"in a shift: its end", "2026-11-23 18:34", "zhang", "值班 开", "到今天22:00为止", "2026-11-23 21:59", "2026-11-23 22:30"},
		{"before a shift: that shift's end", "2026-11-23 16:30", "zhang", "值班 开", "到今天22:00为止", "2026-11-23 16:31", "2026-11-23 22:00"},
		{"no shift near: the configured span", "2026-11-23 19:00", "wang", "值班 开", "到今天23:00为止", "2026-11-23 22:59", "2026-11-23 23:00"},
		{"an end given", "2026-11-23 19:00", "wang", "值班 开 到 23:30", "到今天23:30为止", "2026-11-23 23:29", "2026-11-23 23:30"},
		{"an end past midnight", "2026-11-23 22:10", "zhang", "值班 开 到 01:00", "到明天（周二）01:00为止", "2026-11-24 00:59", "2026-11-24 01:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, when(tc.at), nil)
			r.direct(tc.who, tc.cmd)
			reply := to(r.sent(), tc.who)
			if len(reply) != 1 || !strings.Contains(reply[0].Text, tc.reply) {
				t.Fatalf("%s at %s answered:\n%s\nwant it to say %s", tc.cmd, tc.at, texts(reply), tc.reply)
			}
			d := r.h.dir.Load()
			st := d.stationByCode("taiping")
			g := d.group("playground", "xincun-elders") // no officer of its own
			if got := d.route(st, g, nil, when(tc.onAt), sh); got.Officer == nil || got.Officer.Code != tc.who {
				t.Errorf("at %s the question goes to %s (%s), want %s", tc.onAt, officerName(got.Officer), got.Reason, tc.who)
			}
			if got := d.route(st, g, nil, when(tc.offAt), sh); got.Officer != nil && got.Officer.Code == tc.who {
				t.Errorf("at %s the question still goes to %s: the switch did not end", tc.offAt, tc.who)
			}
		})
	}
}

// "值班 关" during a shift hands the officer's questions to the colleague
// on shift, never to "out of hours", until the officer's next shift;
// `roster who` shows the switch.
func TestDutyOffFallsToColleagueUntilNextShift(t *testing.T) {
	r := newRig(t, when("2026-11-23 10:00"), nil)
	r.direct("wang", "值班 关")
	reply := to(r.sent(), "wang")
	if len(reply) != 1 || !strings.Contains(reply[0].Text, "明天（周二）08:30") {
		t.Fatalf("值班 关 answered:\n%s\nwant it to say until the next shift, 明天（周二）08:30", texts(reply))
	}
	r.clock.Set(when("2026-11-23 10:05"))
	r.group("hexie", "res-1", "@社区警务助手 我家电动车被偷了")
	msgs := r.sent()
	ack := to(msgs, "hexie")
	if len(ack) != 1 || strings.Contains(ack[0].Text, "非工作时间") || !strings.Contains(ack[0].Text, "李明警官") {
		t.Errorf("with 王建国 signed off, the resident was told:\n%s\nwant 李明, on shift", texts(ack))
	}
	if len(to(msgs, "li")) != 1 || len(to(msgs, "wang")) != 0 {
		t.Errorf("the question's DM went to:\n%s\nwant 李明 only", texts(msgs))
	}
	who, err := r.h.Who("taiping", "hexie", when("2026-11-23 10:05"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "王建国 值班 关（至 11-24 08:30）") || !strings.Contains(who, "答复人：李明") {
		t.Errorf("roster who does not show the switch:\n%s", who)
	}
	d := r.h.dir.Load()
	if got := d.route(d.stationByCode("taiping"), d.group("playground", "hexie"), nil, when("2026-11-24 08:30"), sh); got.Officer == nil || got.Officer.Name != "王建国" {
		t.Errorf("at his next shift the group goes to %s, want 王建国 back", officerName(got.Officer))
	}
}

func TestDutyOnRefusesAnImpossibleEnd(t *testing.T) {
	r := newRig(t, when("2026-11-23 19:00"), nil)
	r.direct("wang", "值班 开 到 25:00")
	reply := to(r.sent(), "wang")
	if len(reply) != 1 || !strings.Contains(reply[0].Text, "不是有效的时间") {
		t.Fatalf("值班 开 到 25:00 answered:\n%s", texts(reply))
	}
	if o := r.h.dir.Load().officerByIdentity("playground", "wang"); o.DutyOverride != nil {
		t.Errorf("an impossible end switched 王建国's duty: %v", *o.DutyOverride)
	}
}

// When everyone rostered has signed off, it is still working hours: the
// question goes to the next in line, the leader, not "out of hours".
func TestDutyOffOfTheLastOneOnShiftFallsToTheLeader(t *testing.T) {
	r := newRig(t, when("2026-11-27 10:00"), nil) // 李明 is on leave that day
	r.direct("wang", "值班 关")
	r.sent()
	r.group("hexie", "res-1", "@社区警务助手 我家电动车被偷了")
	msgs := r.sent()
	ack := to(msgs, "hexie")
	if len(ack) != 1 || strings.Contains(ack[0].Text, "非工作时间") || !strings.Contains(ack[0].Text, "赵刚") {
		t.Errorf("with the only officer on shift signed off, the resident was told:\n%s\nwant the leader, 赵刚", texts(ack))
	}
	if len(to(msgs, "zhao")) != 1 {
		t.Errorf("the leader got no DM:\n%s", texts(msgs))
	}
	who, err := r.h.Who("taiping", "hexie", when("2026-11-27 10:05"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "答复人：赵刚") || !strings.Contains(who, "升级链：赵刚") {
		t.Errorf("roster who:\n%s", who)
	}
}

// A duty switch delivered twice by the platform is recorded once, with its
// reply: the second delivery changes nothing.
func TestDutySwitchRedeliveredIsRecordedOnce(t *testing.T) {
	r := newRig(t, when("2026-11-23 19:00"), nil)
	e := r.direct("wang", "值班 开 到 21:00")
	r.clock.Set(when("2026-11-23 20:30"))
	r.handle(e)
	if got := to(r.sent(), "wang"); len(got) != 1 {
		t.Fatalf("two deliveries answered %d times:\n%s", len(got), texts(got))
	}
	wang := r.h.dir.Load().officerByIdentity("playground", "wang")
	if wang.DutySince == nil || !wang.DutySince.Equal(when("2026-11-23 19:00")) || wang.DutyUntil == nil || !wang.DutyUntil.Equal(when("2026-11-23 21:00")) {
		t.Errorf("after the redelivery the switch runs %v–%v, want 19:00–21:00", wang.DutySince, wang.DutyUntil)
	}
}
