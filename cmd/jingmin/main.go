// Command jingmin runs the hub. One binary, several roles:
//
//	jingmin serve                     everything in one process (the embedded default)
//	jingmin worker                    handlers and timers (distributed, over Redis)
//	jingmin adapter playground        one platform's connection (distributed)
//	jingmin healthcheck               readiness probe for containers
//	jingmin migrate [-status]         apply database migrations
//	jingmin sync [-dry-run]           write the config's directory into the database
//	jingmin roster who ...            who would answer a question, and why
//	jingmin roster shift|override|feed ...   change the roster
//	jingmin export                    the database's directory as YAML for sync
//	jingmin stats ...                 questions, first-response times, SLA breaches
//	jingmin budget ...                platform API calls against each app's monthly budget
//	jingmin broadcast send|status|cancel|retry-failed   fraud-alert broadcasts
//	jingmin purge [--dry-run]         redact residents' data past hub.retention_days
//	jingmin resident export|erase     one resident's data: as JSON, or redacted
//	jingmin wecom kf-links|consent    WeCom set-up: customer-service links, archive consent
//	jingmin bench route ...           throughput and latency of the whole pipeline
//	jingmin bench broadcast ...       broadcast rate, duplicates and resumption
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jingminhub/jingmin/bot"
)

const usage = `usage: jingmin <command> [flags]

commands:
  serve        run the hub in one process (SQLite + in-memory bus + playground by default)
  worker       run event handlers and escalation timers (distributed: bus.kind redis)
  adapter P    run platform P's connection, inbound and outbound (distributed)
  healthcheck  exit 0 when the process at -url is ready (container health checks)
  migrate      apply database migrations (-status lists them)
  sync         write the config's stations, officers, groups and roster into the
               database, one line per change (-dry-run: print only). serve, worker
               and adapter do it by themselves only into an empty database, or with -sync
  roster who   print who would answer in a group at a time, and why
  roster shift add|delete, roster override, roster feed new|revoke
               change the roster (checked and audited; running hubs follow within a second)
  export       write the database's directory and roster as YAML that sync takes back
  stats        per station and group: questions, first-response median/p90, SLA breaches
  budget       platform API calls per app and month against the budget, and what was held back
  parked       what could not be handled or delivered, and groups nobody registered
  broadcast    send a fraud alert to many groups (send --scope ... --text-file F), or
               status|cancel|retry-failed B12
  purge        redact residents' data past hub.retention_days now (--dry-run: count only);
               the running hub does it daily
  resident     export --platform P --id ID: everything held about one resident, as JSON;
               erase --platform P --id ID: redact it all, recorded with who ran it
  wecom        kf-links: make and print each customer group's customer-service link and
               welcome text; consent: check archive consent per group, list who refused
  console admin create --name N   make a break-glass local admin of the web console
               (password from stdin; TOTP is enrolled at the first sign-in)
  bench route  run a synthetic district through the hub and print the figures as JSON
  bench broadcast  send an alert to N stand-in groups, straight and with a restart

Every command takes -config FILE (default: the embedded configs/example.yaml).
stats, budget, parked, roster who, broadcast, purge and resident use the database as it is:
they neither migrate it nor write the config into it, and need no Redis and no
platform secrets.
Environment: JINGMIN_DATABASE_DRIVER, JINGMIN_DATABASE_DSN, JINGMIN_BUS, JINGMIN_REDIS_URL,
JINGMIN_PLAYGROUND_LISTEN, JINGMIN_OPS_LISTEN, JINGMIN_LOG_LEVEL.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "jingmin:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve", "worker", "adapter":
		rest, doSync, err := takeSyncFlag(args[1:])
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		if doSync {
			ctx = withSyncRequested(ctx)
		}
		switch args[0] {
		case "serve":
			return cmdServe(ctx, rest, stderr)
		case "worker":
			return cmdWorker(ctx, rest, stderr)
		}
		return cmdAdapter(ctx, rest, stderr)
	case "sync":
		return cmdSync(ctx, args[1:], stdout, stderr)
	case "export":
		return cmdExport(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], stdout, stderr)
	case "roster":
		return cmdRoster(ctx, args[1:], stdout, stderr)
	case "stats":
		return cmdStats(ctx, args[1:], stdout, stderr)
	case "budget":
		return cmdBudget(ctx, args[1:], stdout, stderr)
	case "parked":
		return cmdParked(ctx, args[1:], stdout, stderr)
	case "broadcast":
		return cmdBroadcast(ctx, args[1:], stdout, stderr)
	case "purge":
		return cmdPurge(ctx, args[1:], stdout, stderr)
	case "resident":
		return cmdResident(ctx, args[1:], stdout, stderr)
	case "console":
		return cmdConsole(ctx, args[1:], os.Stdin, stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "wecom":
		return cmdWeCom(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// newLogger writes JSON lines with residents' phone and ID numbers masked.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if v := os.Getenv("JINGMIN_LOG_LEVEL"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(bot.NewMaskingHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}
