package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// cmdSync writes the config's directory (stations, officers, groups,
// roster, holidays, FAQ, templates) into the database, one line per change.
// It is the one explicit way the YAML overwrites the database: a serving
// process does it by itself only into an empty database, or with -sync.
func cmdSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	dryRun := fs.Bool("dry-run", false, "print what would change, change nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.LoadForTools(*configPath)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.SyncDirectory(ctx, cfg.Seed(), store.SyncOptions{DryRun: *dryRun})
	if err != nil {
		return fmt.Errorf("sync %s: %w", cfg.Source, err)
	}
	printSyncReport(stdout, cfg.Source, rep, *dryRun)
	return nil
}

// printSyncReport writes one line per change and a closing count.
func printSyncReport(w io.Writer, source string, rep *store.SyncReport, dryRun bool) {
	for _, c := range rep.Changes {
		fmt.Fprintln(w, c)
	}
	switch {
	case len(rep.Changes) == 0:
		fmt.Fprintf(w, "数据库已与 %s 一致，没有变更\n", source)
	case dryRun:
		fmt.Fprintf(w, "试运行：共 %d 处变更，未写入（去掉 --dry-run 即写入）\n", len(rep.Changes))
	default:
		fmt.Fprintf(w, "已写入 %d 处变更\n", len(rep.Changes))
	}
}

// startDirectory brings a starting process's directory: written from the
// config only when the database has none yet, or when the process was
// started with -sync; otherwise what is in the database stands, so edits
// made there are not silently overwritten by a restart. A directory handed
// in by the caller (opts.seed: tests, benches) is always written. The
// process that runs everything takes the SQLite database's lock first.
func startDirectory(ctx context.Context, cfg *configs.Config, st *store.Store, seed store.Seed, opts hubOptions, log *slog.Logger) error {
	if opts.role == (role{}) || opts.role.all() {
		if err := lockDatabase(cfg); err != nil {
			return err
		}
	}
	forced := syncRequested(ctx) || opts.seed != nil
	rep, err := st.SyncDirectory(ctx, seed, store.SyncOptions{OnlyIfEmpty: !forced})
	if err != nil {
		return err
	}
	if !rep.Skipped {
		if len(rep.Changes) > 0 {
			log.Info("directory written from the config", "config", cfg.Source, "changes", len(rep.Changes))
		}
		return nil
	}
	// The database's directory stands; say when the config says otherwise.
	if dry, err := st.SyncDirectory(ctx, seed, store.SyncOptions{DryRun: true}); err == nil && len(dry.Changes) > 0 {
		log.Warn("the config differs from the directory in the database, which is kept; `jingmin sync` applies the config",
			"config", cfg.Source, "differences", len(dry.Changes))
	}
	return nil
}

// syncFlagKey marks a context whose process was started with -sync.
type syncFlagKey struct{}

// takeSyncFlag removes -sync (or --sync, -sync=true|false) from a serving
// command's arguments and reports whether it asked for a sync.
func takeSyncFlag(args []string) ([]string, bool, error) {
	out := make([]string, 0, len(args))
	on := false
	for _, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "sync" {
			out = append(out, a)
			continue
		}
		on = true
		if hasVal {
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, false, fmt.Errorf("-sync=%s: want true or false", val)
			}
			on = b
		}
	}
	return out, on, nil
}

func withSyncRequested(ctx context.Context) context.Context {
	return context.WithValue(ctx, syncFlagKey{}, true)
}

func syncRequested(ctx context.Context) bool {
	v, _ := ctx.Value(syncFlagKey{}).(bool)
	return v
}

// databaseLocks are the SQLite lock files this process holds. A lock is
// held for the process's lifetime (the kernel drops it when the process
// ends, however it ends); a hub reopened inside the same process (tests,
// a restart in place) finds it already held.
var databaseLocks = struct {
	sync.Mutex
	held map[string]*os.File
}{held: map[string]*os.File{}}

// errDatabaseInUse is the refusal of a second serving process on one
// SQLite file.
var errDatabaseInUse = errors.New("another jingmin process is serving this database")

// lockDatabase takes an exclusive advisory lock on <db>.lock beside a
// SQLite database, so a second `jingmin serve` on the same file refuses to
// start instead of running the same timers and broadcasts twice. MySQL
// needs none: its processes coordinate through row locks.
func lockDatabase(cfg *configs.Config) error {
	if cfg.Database.Driver == store.MySQL {
		return nil
	}
	path := cfg.Database.DSN
	if path == "" {
		path = filepath.Join("data", "jingmin.db")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	abs, err := filepath.Abs(path + ".lock")
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	databaseLocks.Lock()
	defer databaseLocks.Unlock()
	if _, ok := databaseLocks.held[abs]; ok {
		return nil
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := ""
			if p := strings.TrimSpace(string(pid)); p != "" {
				who = " (pid " + p + ")"
			}
			return fmt.Errorf("%w%s: %s is locked through %s; stop that process first, or give this one a database of its own (%s)",
				errDatabaseInUse, who, path, abs, configs.EnvDatabaseDSN)
		}
		return fmt.Errorf("lock %s: %w", abs, err)
	}
	// The pid is only for the message above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	databaseLocks.held[abs] = f
	return nil
}
