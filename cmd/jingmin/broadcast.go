package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

const broadcastUsage = `usage:
  jingmin broadcast send --scope all|station:CODE|tag:NAME|groups:a,b --text-file F [--by OFFICER_CODE] [--wait=true] [--hub-wait 10s]
  jingmin broadcast status|cancel|retry-failed B12 [--by OFFICER_CODE]`

// cmdBroadcast drafts, confirms and follows fraud-alert broadcasts from the
// operator's shell. The serving processes send them (they own the platform
// connections); this command writes the rows and watches them.
func cmdBroadcast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(broadcastUsage)
	}
	fs := flag.NewFlagSet("broadcast "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	by := fs.String("by", "", "officer code acting (default: the operator, who may reach every group); the report also goes to their direct chat")
	scope := fs.String("scope", "", "send: all, station:CODE, tag:NAME or groups:CHAT_ID,CHAT_ID")
	textFile := fs.String("text-file", "", "send: file holding the alert text (- for standard input)")
	wait := fs.Bool("wait", true, "send, retry-failed: show progress until the broadcast is finished, then the report")
	hubWait := fs.Duration("hub-wait", 10*time.Second, "send, retry-failed: how long to wait for the running hub to start sending before saying it seems not to run")
	verb := args[0]
	rest := args[1:]
	var idArg string
	if verb != "send" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		idArg, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if idArg == "" && fs.NArg() > 0 {
		idArg = fs.Arg(0)
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	var officer *store.Officer
	var reportPlatform, reportUser string
	if *by != "" {
		if officer, reportPlatform, reportUser, err = h.rules.Officer(*by); err != nil {
			return fmt.Errorf("broadcast: --by: %w", err)
		}
	}
	from := cliOrigin()
	refused := func(err error) error {
		var r *commands.BroadcastRefusal
		if errors.As(err, &r) {
			return fmt.Errorf("broadcast: %s", reword(ctx, h.store, r.Message, cliRefusals))
		}
		return err
	}
	switch verb {
	case "send":
		if *scope == "" || *textFile == "" {
			return errors.New(broadcastUsage)
		}
		sc, err := commands.ParseScope(*scope)
		if err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
		var text []byte
		if *textFile == "-" {
			text, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		} else {
			text, err = os.ReadFile(*textFile)
		}
		if err != nil {
			return fmt.Errorf("broadcast: read the alert text: %w", err)
		}
		plan, err := h.rules.PlanBroadcast(ctx, officer, from, sc, string(text), reportPlatform, reportUser)
		if err != nil {
			return refused(err)
		}
		b, err := h.rules.ConfirmBroadcast(ctx, officer, from, plan.Broadcast.ID)
		if err != nil {
			return refused(err)
		}
		// No "reply 确认 B12" here: the command line confirms as it drafts.
		fmt.Fprintf(stderr, "预警广播 B%d：%s，共 %d 个群（%s），已确认，由运行中的 hub 发送。\n",
			b.ID, commands.ScopeLabel(b.Scope), b.Total, platformWords(plan.PerPlatform))
		fmt.Fprintf(stdout, "B%d\n", b.ID)
		if !*wait {
			fmt.Fprintf(stderr, "查看进度：jingmin broadcast status B%d；停止发送：jingmin broadcast cancel B%d\n", b.ID, b.ID)
			return nil
		}
		return followBroadcast(ctx, h, b.ID, *hubWait, stdout, stderr)
	case "status", "cancel", "retry-failed":
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(idArg, "B"), "b"), 10, 32)
		if err != nil || idArg == "" {
			return fmt.Errorf("broadcast %s: 请给出广播编号，例如 B12\n%s", verb, broadcastUsage)
		}
		id := uint(n)
		switch verb {
		case "cancel":
			counts, err := h.rules.CancelBroadcast(ctx, officer, from, id)
			if err != nil {
				return refused(err)
			}
			fmt.Fprintf(stdout, "预警广播 B%d 已取消：已送达 %d 个群，%d 个群不再发送。\n", id, counts[store.DeliverySent], counts[store.DeliveryCancelled])
			return nil
		case "retry-failed":
			k, err := h.rules.RetryFailedBroadcast(ctx, officer, id)
			if err != nil {
				return refused(err)
			}
			if k == 0 {
				fmt.Fprintf(stdout, "预警广播 B%d 没有发送失败的群，无需重发。\n", id)
				return nil
			}
			fmt.Fprintf(stdout, "预警广播 B%d：%d 个发送失败的群已重新排队，由运行中的 hub 发送。\n", id, k)
			if !*wait {
				return nil
			}
			return followBroadcast(ctx, h, id, *hubWait, stdout, stderr)
		}
		report, err := h.rules.BroadcastReport(ctx, id)
		if err != nil {
			return refused(err)
		}
		fmt.Fprintln(stdout, report)
		return nil
	}
	return fmt.Errorf("broadcast: unknown subcommand %q\n%s", verb, broadcastUsage)
}

// cliOrigin is the command line's origin for a broadcast's record: "cli"
// and the OS user running it, when known.
func cliOrigin() commands.Origin {
	from := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		from += ":" + u.Username
	}
	return commands.Origin{Via: store.ViaCLI, From: from}
}

// followBroadcast draws a progress bar on stderr until broadcast id is
// finished, then prints the report on stdout. Interrupting it leaves the
// broadcast running in the hub. The command line only writes rows; when no
// delivery moves for hubWait, no hub is sending, and it says so instead of
// waiting at 0 sent.
func followBroadcast(ctx context.Context, h *tool, id uint, hubWait time.Duration, stdout, stderr io.Writer) error {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	var last string
	lastMove := time.Now()
	for {
		b, counts, err := h.rules.BroadcastProgress(ctx, id)
		if err != nil {
			return err
		}
		done := counts[store.DeliverySent] + counts[store.DeliveryFailed] + counts[store.DeliveryCancelled]
		const width = 30
		fill := 0
		if b.Total > 0 {
			fill = done * width / b.Total
		}
		fmt.Fprintf(stderr, "\r[%s%s] 已处理 %d/%d：送达 %d，失败 %d", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
			done, b.Total, counts[store.DeliverySent], counts[store.DeliveryFailed])
		if b.Status == store.BroadcastDone || b.Status == store.BroadcastCancelled {
			fmt.Fprintln(stderr)
			report, err := h.rules.BroadcastReport(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, report)
			return nil
		}
		if now := fmt.Sprint(counts); now != last {
			last, lastMove = now, time.Now()
		} else if counts[store.DeliverySending] == 0 && time.Since(lastMove) >= hubWait {
			fmt.Fprintln(stderr)
			return fmt.Errorf("预警广播 B%d 已确认并保存，但 %s 内没有一个群开始发送：预警由运行中的 hub（jingmin serve，分布式部署中是各平台的 jingmin adapter）发送，它似乎没有在运行。hub 启动后会接着发送；查看进度：jingmin broadcast status B%d", id, hubWait, id)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return fmt.Errorf("已停止跟踪 B%d，广播仍在 hub 中继续发送（查看：jingmin broadcast status B%d）", id, id)
		case <-tick.C:
		}
	}
}

func platformWords(per map[string]int) string {
	keys := make([]string, 0, len(per))
	for p := range per {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, p := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", commands.PlatformLabel(p), per[p]))
	}
	return strings.Join(parts, "、")
}

// The broadcast rules word their refusals for the chat, where the way out
// is a chat command ("请用“广播 本所 内容”"). On the command line the way
// out is a flag, in the admin API a field, so each surface says it in its
// own terms. A refusal names its template only through its text: reword
// finds the deployment's template the text was rendered from and renders
// the surface's version with the same values. Refusals whose words suit
// every surface are left as they are.
var (
	cliRefusals = map[string]string{
		"broadcast_not_admin":   "--by 指定的人不是派出所管理员或分局管理员，不能发布预警广播；不加 --by 则以操作员身份发送，可发往任何群。",
		"broadcast_own_station": "--by 指定的管理员只能向本所（{station}）的群广播：--scope 请用 station:本所代码、tag:标签名 或 groups:群号,群号，且只含本所的群。",
		"broadcast_empty":       "预警内容为空：--text-file 指定的文件里没有文字。",
		"broadcast_usage":       "--scope 应为 all、station:CODE、tag:NAME 或 groups:CHAT_ID,CHAT_ID。",
		"broadcast_not_author":  "预警广播 B{id} 不是 --by 指定的人发起的，只有发起人可以操作；不加 --by 则以操作员身份操作。",
	}
	apiRefusals = map[string]string{
		"broadcast_not_admin":   "by 所指的人不是派出所管理员或分局管理员，不能发布预警广播。",
		"broadcast_own_station": "by 所指的管理员只能向本所（{station}）的群广播：scope 请用 station:本所代码、tag:标签名 或 groups:群号,群号，且只含本所的群。",
		"broadcast_empty":       "text 为空：预警内容不能为空。",
		"broadcast_usage":       "scope 应为 all、station:CODE、tag:NAME 或 groups:CHAT_ID,CHAT_ID。",
		"broadcast_not_author":  "预警广播 B{id} 不是 by 所指的人发起的，只有发起人可以操作。",
	}
)

var placeholder = regexp.MustCompile(`\\\{([a-z_]+)\\\}`)

// reword returns msg in the surface's words when it was rendered from one
// of the templates words rewrites, else msg unchanged.
func reword(ctx context.Context, st *store.Store, msg string, words map[string]string) string {
	d, err := st.LoadDirectory(ctx)
	if err != nil {
		return msg
	}
	templates := map[string]string{}
	for _, t := range d.Templates {
		templates[t.Key] = t.Text
	}
	keys := make([]string, 0, len(words))
	for k := range words {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		tmpl, ok := templates[key]
		if !ok {
			continue
		}
		re, err := regexp.Compile("^" + placeholder.ReplaceAllString(regexp.QuoteMeta(tmpl), `(?P<$1>.*?)`) + "$")
		if err != nil {
			continue
		}
		m := re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		out := words[key]
		for i, name := range re.SubexpNames() {
			if name != "" {
				out = strings.ReplaceAll(out, "{"+name+"}", m[i])
			}
		}
		return out
	}
	return msg
}
