package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jingminhub/jingmin/configs"
)

// cmdExport writes the database's directory and roster as config YAML,
// so a deployment can keep what admins changed in the console in git and
// `jingmin sync` takes it back unchanged.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file naming the database (default: the embedded example)")
	outPath := fs.String("o", "", "write to this file instead of standard output")
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
	d, err := st.LoadDirectory(ctx)
	if err != nil {
		return err
	}
	out, extra, err := configs.Export(d, cfg.Holidays)
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		fmt.Fprintf(stderr, "export: holidays %s are in the database but not in this config's calendars; keep them in a holiday_files file\n", strings.Join(extra, ", "))
	}
	if *outPath == "" {
		_, err = stdout.Write(out)
		return err
	}
	return os.WriteFile(*outPath, out, 0o644)
}
