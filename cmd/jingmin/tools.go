package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// tool is what a command-line tool (stats, parked, roster who, broadcast)
// needs: the config, the store and the rules over the directory already in
// the database. Opening it writes nothing: no migration, no sync of the
// config into the database, no Redis, no platform adapters (so no platform
// secrets), so a tool pointed at a production database leaves it as it was.
type tool struct {
	cfg   *configs.Config
	store *store.Store
	rules *commands.Hub
}

// openTool opens the database named by the config without changing it, and
// refuses a database whose schema is behind this binary's, naming the
// command that brings it up to date.
func openTool(ctx context.Context, configPath string) (*tool, error) {
	cfg, err := configs.LoadForTools(configPath)
	if err != nil {
		return nil, err
	}
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// No waker: what a tool's rules write (a broadcast's rows) the running
	// hub's relays find by polling.
	rules, err := newRules(ctx, cfg, st, nil, newLogger(io.Discard), nil, nil, nil, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &tool{cfg: cfg, store: st, rules: rules}, nil
}

func (t *tool) Close() { t.store.Close() }

// openExisting connects to the configured database without migrating it.
// A SQLite file that does not exist is not created: the tool says where it
// looked instead of answering from an empty database.
func openExisting(ctx context.Context, cfg *configs.Config) (*store.Store, error) {
	if cfg.Database.Driver != store.MySQL {
		path := cfg.Database.DSN
		if path == "" {
			path = filepath.Join("data", "jingmin.db")
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: start the hub there first (jingmin serve), or set %s", path, configs.EnvDatabaseDSN)
		}
	}
	st, err := store.Connect(ctx, store.Options{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN})
	if err != nil {
		return nil, err
	}
	if err := schemaCurrent(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// schemaCurrent fails when a migration this binary knows is not applied.
func schemaCurrent(ctx context.Context, st *store.Store) error {
	list, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	var pending []string
	for id, applied := range list {
		if !applied {
			pending = append(pending, id)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	sort.Strings(pending)
	return fmt.Errorf("the database schema is not up to date (%d migrations not applied: %s): run `jingmin migrate` first",
		len(pending), strings.Join(pending, ", "))
}
