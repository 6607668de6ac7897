package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// cmdPurge redacts residents' data past hub.retention_days now, as the
// running hub does daily (--dry-run: only counts).
func cmdPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	dry := fs.Bool("dry-run", false, "count what would be redacted, change nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	keep := h.cfg.Hub.Retention()
	if keep <= 0 {
		_, err := fmt.Fprintln(stdout, "hub.retention_days 为 0：居民数据永久保留，没有要删除的。")
		return err
	}
	n, err := h.rules.Purge(ctx, keep, *dry)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	what := "已删除"
	if *dry {
		what = "将删除（--dry-run，未作改动）"
	}
	loc, _ := time.LoadLocation(h.cfg.Hub.Timezone)
	_, err = fmt.Fprintf(stdout, "%s保留期（%d 天，%s 之前）已过的居民数据：工单 %d，时间线 %d，消息 %d，暂存事件 %d，未登记群名 %d%s\n",
		what, int(keep/(24*time.Hour)), time.Now().Add(-keep).In(loc).Format(time.DateOnly),
		n.Tickets, n.Timeline, n.Messages, n.Parked, n.UnknownChats, wecomCounts(n))
	return err
}

const residentUsage = `usage:
  jingmin resident export --platform P --id ID   print everything held about one resident as JSON
  jingmin resident erase --platform P --id ID    redact it all (recorded: who, when, how much)`

// cmdResident answers a resident's request under PIPL: what the hub holds
// about them (export), and deleting it (erase).
func cmdResident(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "erase") {
		return errors.New(residentUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("resident "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	platform := fs.String("platform", "", "the resident's platform: dingtalk, wechat or playground")
	id := fs.String("id", "", "the resident's id on that platform (staff id, userid, openid)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch bot.Platform(*platform) {
	case bot.DingTalk, bot.WeChat, bot.Playground:
	default:
		return fmt.Errorf("resident %s: --platform must be dingtalk, wechat or playground, got %q\n%s", verb, *platform, residentUsage)
	}
	if *id == "" {
		return fmt.Errorf("resident %s: --id is required\n%s", verb, residentUsage)
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	if verb == "export" {
		data, err := h.store.ResidentData(ctx, *platform, *id)
		if err != nil {
			return fmt.Errorf("resident export: %w", err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(data)
	}
	by := cliOrigin().From
	n, err := h.store.EraseResident(ctx, *platform, *id, bot.LogID(*id), by)
	if err != nil {
		return fmt.Errorf("resident erase: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "已删除该居民的数据：工单 %d，时间线 %d，消息 %d，暂存事件 %d%s。已记录（操作人 %s）。\n",
		n.Tickets, n.Timeline, n.Messages, n.Parked, wecomCounts(n), by)
	return err
}

// wecomCounts names the WeCom customer-service conversations and archive
// consent answers a purge or erasure forgot, only where there were some:
// deployments without WeCom see the same line as before.
func wecomCounts(n store.Redactions) string {
	if n.KFSessions == 0 && n.Consents == 0 {
		return ""
	}
	return fmt.Sprintf("，客服会话 %d，存档同意记录 %d", n.KFSessions, n.Consents)
}
