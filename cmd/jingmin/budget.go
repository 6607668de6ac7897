package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/jingminhub/jingmin/store"
)

// cmdBudget prints each platform app's API calls by month against its
// budget, and what was held back or degraded to stay within it: the
// report the budget's notices point to.
func cmdBudget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("budget", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	platform := fs.String("platform", "", "dingtalk or wechat (default: both)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	usage, err := h.store.APIUsageOf(ctx, *platform)
	if err != nil {
		return err
	}
	if *asJSON {
		if usage == nil {
			usage = []store.APIUsage{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(usage)
	}
	t := table{
		header: []string{"平台", "应用", "月份", "调用", "预算", "已用", "降级/暂缓", "80%提醒", "超出"},
		right:  []bool{false, false, false, true, true, true, true, false, false},
	}
	loc := h.rules.Location()
	for _, u := range usage {
		limit := h.cfg.Budget.MonthlyCalls[u.Platform]
		budget, share := "—", "—"
		if limit > 0 {
			budget, share = strconv.FormatInt(limit, 10), fmt.Sprintf("%d%%", u.Calls*100/limit)
		}
		warned, over := "—", "—"
		if u.WarnedAt != nil {
			warned = u.WarnedAt.In(loc).Format("01-02 15:04")
		}
		if u.OverAt != nil {
			over = u.OverAt.In(loc).Format("01-02 15:04")
		}
		t.add(u.Platform, u.App, u.Month, strconv.FormatInt(u.Calls, 10), budget, share, strconv.FormatInt(u.Held, 10), warned, over)
	}
	if len(usage) == 0 {
		_, err := fmt.Fprintln(stdout, "no platform API calls counted yet")
		return err
	}
	return t.write(stdout)
}
