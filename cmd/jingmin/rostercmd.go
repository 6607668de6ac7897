package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

const rosterUsage = `usage:
  jingmin roster who --station CODE [--group NAME|CHAT_ID] [--at "2026-11-22 22:00"]
  jingmin roster shift add --officer CODE --days mon,tue|workdays|restdays|daily --start 08:30 --end 17:30 [--kind day|night]
  jingmin roster shift delete --id N
  jingmin roster override --officer CODE --date 2026-12-05 --mode off|hours|extra|cover [--start HH:MM --end HH:MM] [--cover CODE]
  jingmin roster feed new|revoke --officer CODE`

// cmdRosterEdit changes the roster in the database, checked and audited
// like the console's edits (Via cli); running hubs route by it within a
// second, without a restart.
func cmdRosterEdit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(rosterUsage)
	}
	verb := args[0]
	rest := args[1:]
	if (verb == "shift" || verb == "feed") && len(rest) > 0 {
		verb += " " + rest[0]
		rest = rest[1:]
	}
	fs := flag.NewFlagSet("roster "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	officer := fs.String("officer", "", "officer code")
	days := fs.String("days", "", "mon..sun, workdays, restdays or daily, comma-separated")
	start := fs.String("start", "", "start, HH:MM")
	end := fs.String("end", "", "end, HH:MM (before start: past midnight)")
	kind := fs.String("kind", "day", "day or night")
	id := fs.Uint("id", 0, "shift id (see the console, or roster shift add's output)")
	date := fs.String("date", "", "date, 2026-12-05")
	mode := fs.String("mode", "", "off, hours, extra or cover")
	cover := fs.String("cover", "", "the colleague who covers (mode cover)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	t, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer t.Close()
	a := commands.Actor{Name: "cli", Via: store.AuditCLI}
	officerOf := func(code string) (*store.Officer, error) {
		if code == "" {
			return nil, errors.New("--officer is required")
		}
		o, _, _, err := t.rules.Officer(code)
		return o, err
	}
	explain := func(err error) error {
		var bad *commands.InvalidError
		if errors.As(err, &bad) {
			return errors.New(bad.Msg)
		}
		return err
	}
	switch verb {
	case "shift add":
		o, err := officerOf(*officer)
		if err != nil {
			return err
		}
		inputs, err := shiftDays(*days)
		if err != nil {
			return err
		}
		for _, in := range inputs {
			in.StationID, in.OfficerID, in.Start, in.End, in.Kind = o.StationID, o.ID, *start, *end, *kind
			sh, err := t.rules.SaveShift(ctx, a, in)
			if err != nil {
				return explain(err)
			}
			fmt.Fprintf(stdout, "shift %d: %s\n", sh.ID, t.rules.ShiftLabel(*sh))
		}
		return nil
	case "shift delete":
		sh, err := t.store.Shift(ctx, *id)
		if err != nil {
			return err
		}
		if err := t.rules.DeleteShift(ctx, a, sh.ID, sh.Version); err != nil {
			return explain(err)
		}
		fmt.Fprintf(stdout, "shift %d deleted\n", sh.ID)
		return nil
	case "override":
		o, err := officerOf(*officer)
		if err != nil {
			return err
		}
		in := commands.OverrideInput{StationID: o.StationID, OfficerID: o.ID, Date: *date, Mode: *mode, Start: *start, End: *end}
		if *cover != "" {
			c, err := officerOf(*cover)
			if err != nil {
				return err
			}
			in.CoverID = c.ID
		}
		if err := t.rules.AddOverride(ctx, a, in); err != nil {
			return explain(err)
		}
		fmt.Fprintf(stdout, "override of %s on %s (%s) saved\n", o.Name, *date, *mode)
		return nil
	case "feed new", "feed revoke":
		o, err := officerOf(*officer)
		if err != nil {
			return err
		}
		c := store.Edit{Audit: []store.AuditEntry{{Actor: "cli", Via: store.AuditCLI, Action: "roster.feed." + strings.TrimPrefix(verb, "feed "),
			StationID: &o.StationID, Target: "日历订阅 " + o.Name}}}
		if verb == "feed revoke" {
			if err := t.store.RevokeCalendarFeeds(ctx, o.ID, c); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "calendar feeds of %s revoked\n", o.Name)
			return nil
		}
		token, err := t.store.NewCalendarFeed(ctx, o.ID, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "calendar feed of %s (shown once; earlier addresses stop working): /ical/%s.ics\n", o.Name, token)
		return nil
	}
	return errors.New(rosterUsage)
}

// shiftDays turns --days into one shift input per stored row, as sync
// writes them.
func shiftDays(days string) ([]commands.ShiftInput, error) {
	names := map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	var out []commands.ShiftInput
	for _, d := range strings.Split(days, ",") {
		d = strings.TrimSpace(d)
		switch d {
		case "workdays":
			out = append(out, commands.ShiftInput{Weekday: -1, DayKind: "workday"})
		case "restdays":
			out = append(out, commands.ShiftInput{Weekday: -1, DayKind: "restday"})
		case "daily":
			for i := 0; i < 7; i++ {
				out = append(out, commands.ShiftInput{Weekday: i})
			}
		default:
			wd, ok := names[d]
			if !ok {
				return nil, fmt.Errorf("--days: unknown day %q (mon..sun, workdays, restdays, daily)", d)
			}
			out = append(out, commands.ShiftInput{Weekday: wd})
		}
	}
	return out, nil
}
