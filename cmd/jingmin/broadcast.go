package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

const broadcastUsage = `usage:
  jingmin broadcast send --scope all|station:CODE|tag:NAME|groups:a,b --text-file F [--by OFFICER_CODE] [--wait=true]
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
	refused := func(err error) error {
		var r *commands.BroadcastRefusal
		if errors.As(err, &r) {
			return fmt.Errorf("broadcast: %s", r.Message)
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
		plan, err := h.rules.PlanBroadcast(ctx, officer, sc, string(text), reportPlatform, reportUser)
		if err != nil {
			return refused(err)
		}
		fmt.Fprintln(stderr, h.rules.Preview(plan))
		b, err := h.rules.ConfirmBroadcast(ctx, officer, plan.Broadcast.ID)
		if err != nil {
			return refused(err)
		}
		fmt.Fprintf(stdout, "B%d\n", b.ID)
		if !*wait {
			return nil
		}
		return followBroadcast(ctx, h, b.ID, stdout, stderr)
	case "status", "cancel", "retry-failed":
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(idArg, "B"), "b"), 10, 32)
		if err != nil || idArg == "" {
			return fmt.Errorf("broadcast %s: name the broadcast, e.g. B12\n%s", verb, broadcastUsage)
		}
		id := uint(n)
		switch verb {
		case "cancel":
			counts, err := h.rules.CancelBroadcast(ctx, officer, id)
			if err != nil {
				return refused(err)
			}
			fmt.Fprintf(stdout, "B%d cancelled: %d sent, %d not sent\n", id, counts[store.DeliverySent], counts[store.DeliveryCancelled])
			return nil
		case "retry-failed":
			k, err := h.rules.RetryFailedBroadcast(ctx, officer, id)
			if err != nil {
				return refused(err)
			}
			fmt.Fprintf(stdout, "B%d: %d failed deliveries queued again\n", id, k)
			if k == 0 || !*wait {
				return nil
			}
			return followBroadcast(ctx, h, id, stdout, stderr)
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

// followBroadcast draws a progress bar on stderr until broadcast id is
// finished, then prints the report on stdout. Interrupting it leaves the
// broadcast running in the hub.
func followBroadcast(ctx context.Context, h *tool, id uint, stdout, stderr io.Writer) error {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
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
		fmt.Fprintf(stderr, "\r[%s%s] %d/%d sent %d failed %d", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
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
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return fmt.Errorf("stopped following B%d; it goes on in the hub (jingmin broadcast status B%d)", id, id)
		case <-tick.C:
		}
	}
}
