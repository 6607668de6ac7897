package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
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
	cfg, err := configs.Load(*configPath)
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
		return fmt.Errorf("usage: jingmin roster who --station CODE [--group NAME|CHAT_ID] [--at \"2026-11-22 22:00\"]")
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
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "派出所\t群\t问题\t人工答复\t自动答复\t紧急\t未结\t超时升级\t首次响应中位数(分)\tP90(分)")
	for _, r := range rows {
		group := r.Group
		if group == "" {
			group = "（合计）"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\n", r.Station, bot.Mask(group), r.Questions, r.Answered, r.AutoAnswered, r.Emergencies, r.Open, r.Breaches, r.MedianMin, r.P90Min)
	}
	return tw.Flush()
}

// cmdParked lists what could not be handled or delivered (poison events,
// messages a platform refused for good), newest first, for an admin to act on.
func cmdParked(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parked", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	topic := fs.String("topic", "", "only this bus topic (events, outbound.dingtalk, ...)")
	limit := fs.Int("limit", 50, "at most this many")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	rows, err := h.store.Parked(ctx, *topic)
	if err != nil {
		return err
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
