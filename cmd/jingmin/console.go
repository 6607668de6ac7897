package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/user"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/bot/httpserver"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/console"
)

// consoleServer is the web console on its listener, as an inbound part:
// bounded like every HTTP server of the hub, its live streams ended when
// shutdown begins.
func (h *hub) consoleServer(ln net.Listener) (func(ctx context.Context) error, error) {
	idle := time.Duration(h.cfg.Console.IdleMinutes) * time.Minute
	if idle <= 0 {
		idle = configs.DefaultConsoleIdleMinutes * time.Minute
	}
	if host, _, err := net.SplitHostPort(h.cfg.Console.Listen); err == nil && !h.cfg.Console.Insecure {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			h.log.Warn("console: listening beyond loopback; its session cookie is Secure, so serve it to browsers over HTTPS (a TLS proxy in front), or sign-in will not hold",
				"listen", h.cfg.Console.Listen)
		}
	}
	c, err := console.New(console.Options{Store: h.store, Rules: h.rules, Log: h.log.With("part", "console"),
		Idle: idle, InsecureCookies: h.cfg.Console.Insecure})
	if err != nil {
		return nil, err
	}
	srv := httpserver.New(ln, c.Handler(), h.log, httpserver.Options{Name: "console", MaxConns: 256,
		BodyLimit: 64 << 10, OnShutdown: []func(){c.Stop}})
	return srv.Run, nil
}

const consoleUsage = `usage:
  jingmin console admin create --name NAME [-config FILE]
      make a break-glass local admin of the web console; the password is read
      from stdin (at least 12 characters), stored as a bcrypt hash. The admin
      enrols an authenticator (TOTP) at the first sign-in.`

// cmdConsole runs the console's command-line tools.
func cmdConsole(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "admin" || args[1] != "create" {
		fmt.Fprintln(stderr, consoleUsage)
		return errors.New("console: want `console admin create --name NAME`")
	}
	fs := flag.NewFlagSet("console admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	name := fs.String("name", "", "the admin's user name")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("console admin create: --name is required")
	}
	fmt.Fprintln(stderr, "password (at least 12 characters), then Enter:")
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")
	t, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer t.Close()
	by := "cli:"
	if u, err := user.Current(); err == nil {
		by += u.Username
	}
	if err := console.CreateLocalAdmin(ctx, t.store, *name, password, by, time.Now()); err != nil {
		return fmt.Errorf("console admin create: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "本地管理员 %s 已创建。首次登录（/signin/admin）时须绑定验证器。\n", *name)
	return err
}
