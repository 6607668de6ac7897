package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	status := fs.Bool("status", false, "list migrations and whether each is applied, change nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.LoadForTools(*configPath)
	if err != nil {
		return err
	}
	st, err := store.Connect(ctx, store.Options{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN})
	if err != nil {
		return err
	}
	defer st.Close()
	if !*status {
		if err := st.Migrate(ctx); err != nil {
			return err
		}
	}
	list, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(list))
	for id := range list {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		state := "pending"
		if list[id] {
			state = "applied"
		}
		fmt.Fprintf(stdout, "%s\t%s\n", id, state)
	}
	return nil
}

func cmdRoster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "who" {
		return cmdRosterEdit(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("roster who", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	station := fs.String("station", "", "station code (required)")
	group := fs.String("group", "", "group name or chat id")
	at := fs.String("at", "now", "time in the hub's zone, e.g. \"2026-11-22 22:00\"")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *station == "" {
		return fmt.Errorf("roster who: --station is required")
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	loc, _ := time.LoadLocation(h.cfg.Hub.Timezone)
	when, err := parseAt(*at, loc)
	if err != nil {
		return err
	}
	out, err := h.rules.Who(*station, *group, when)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, out)
	return nil
}

func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	station := fs.String("station", "", "station code (default: all)")
	from := fs.String("from", "", "start, e.g. 2026-11-01 (default: 30 days ago)")
	to := fs.String("to", "", "end, exclusive (default: now)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	loc, _ := time.LoadLocation(h.cfg.Hub.Timezone)
	end, err := parseAt(*to, loc)
	if err != nil {
		return err
	}
	start := end.AddDate(0, 0, -30)
	if *from != "" {
		if start, err = parseAt(*from, loc); err != nil {
			return err
		}
	}
	rows, err := h.rules.Stats(ctx, *station, start, end)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	t := table{
		header: []string{"派出所", "群", "提问", "民警答复", "自动答复", "紧急", "未答复", "超时升级", "首次答复中位数（分钟）", "首次答复P90（分钟）"},
		right:  []bool{false, false, true, true, true, true, true, true, true, true},
	}
	for _, r := range rows {
		group := r.Group
		if group == "" {
			group = "（合计）"
		}
		t.add(r.Station, bot.Mask(group), strconv.Itoa(r.Questions), strconv.Itoa(r.Answered), strconv.Itoa(r.AutoAnswered),
			strconv.Itoa(r.Emergencies), strconv.Itoa(r.Unanswered), strconv.Itoa(r.Breaches), minutes(r.MedianMin), minutes(r.P90Min))
	}
	if err := t.write(stdout); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "民警答复：有民警答复的问题；未答复：还没有任何答复的（已答复未办结的不算）；超时升级：超过时限被升级过的；—：没有答复，无从计时。")
	return err
}

// minutes shows a figure of minutes, or "—" when there was nothing to time.
func minutes(v *float64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// cmdParked lists what could not be handled or delivered (poison events,
// messages a platform refused for good), newest first, for an admin to act on.
func cmdParked(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parked", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	topic := fs.String("topic", "", "only this: events, or outbound.<platform> (outbound.dingtalk, ...)")
	limit := fs.Int("limit", 50, "at most this many")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	var rows []store.ParkedMessage
	if !strings.HasPrefix(*topic, "outbound.") {
		if rows, err = h.store.Parked(ctx, *topic); err != nil {
			return err
		}
	}
	// Messages a platform refused for good are rows of their own, kept
	// with the reason.
	if *topic == "" || strings.HasPrefix(*topic, "outbound.") {
		failed, err := h.store.FailedOutbound(ctx, strings.TrimPrefix(*topic, "outbound."), *limit)
		if err != nil {
			return err
		}
		for _, m := range failed {
			rows = append(rows, store.ParkedMessage{Topic: "outbound." + m.Platform, MessageID: m.Key, Cause: m.Reason, At: m.UpdatedAt})
		}
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "时间\t主题\t消息\t原因")
	for i, r := range rows {
		if i == *limit {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.At.Format(time.DateTime), r.Topic, r.MessageID, bot.Mask(r.Cause))
	}
	fmt.Fprintf(tw, "（共 %d 条）\n", len(rows))
	chats, err := h.store.UnknownChats(ctx)
	if err != nil {
		return err
	}
	if len(chats) > 0 {
		fmt.Fprintln(tw, "\n未登记的群\t平台\t群 ID\t消息数")
		for _, c := range chats {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", bot.Mask(c.Name), c.Platform, c.ChatID, c.Messages)
		}
	}
	return tw.Flush()
}
