package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/httpserver"
	"github.com/jingminhub/jingmin/configs"
)

// archiveAdapter is `jingmin adapter wecom-archive`: the process that reads
// WeCom customer groups through the conversation archive and serves their
// chat-toolbar page. One process per corp: its cursor is in the database,
// and a second reader's pull is dropped when the first recorded it.
const archiveAdapter = "wecom-archive"

// archiveWake is the nudge channel from the app callback (msgaudit_notify)
// to the archive reader, carried by the hub's waker like the relays' nudges.
const archiveWake = bot.Platform("wecom-archive")

// runsArchive: this process reads the archive (serve, or the archive adapter).
func (r role) runsArchive() bool { return r.every || r.archive }

// openArchive builds the reader and the toolbar page when configured for
// this role. A missing library keeps the process from being ready, with the
// path in its readiness answer, and it tries again (a volume mounted late).
func (h *hub) openArchive() error {
	cfg := h.cfg.WeComArchive
	if cfg == nil || !h.role.runsArchive() {
		return nil
	}
	sec, err := cfg.LoadSecrets(os.LookupEnv)
	if err != nil {
		return err
	}
	rd, err := wecomarchive.NewReader(*cfg, sec, h.store, h.bus, h.rules, h.rules.MentionNames, h.log.With("part", "wecom archive"))
	if err != nil {
		return fmt.Errorf("%w: wecom archive: %w", errUnavailable, err)
	}
	h.archive = rd
	if cfg.Toolbar.Listen != "" {
		secret := strings.TrimSpace(os.Getenv(cfg.Toolbar.SecretEnv))
		if secret == "" {
			rd.Close()
			return fmt.Errorf("wecom_archive.toolbar: the app secret is not set (%s)", cfg.Toolbar.SecretEnv)
		}
		h.toolbar = wecomarchive.NewToolbar(cfg.Toolbar, cfg.CorpID, secret, h.store, h.log.With("part", "toolbar"))
	}
	return nil
}

// archiveParts are the reader and the toolbar page, when this process runs them.
func (h *hub) archiveParts() []part {
	var parts []part
	if h.archive != nil {
		parts = append(parts, part{"wecom archive reader", func(ctx context.Context, ready func()) error {
			wake, err := h.waker.Wakeups(ctx, archiveWake)
			if err != nil {
				return fmt.Errorf("listen for msgaudit_notify nudges: %w", err)
			}
			ready()
			return h.archive.Run(ctx, wake)
		}})
	}
	if h.toolbar != nil {
		parts = append(parts, part{"chat-toolbar page", func(ctx context.Context, ready func()) error {
			listen := h.cfg.WeComArchive.Toolbar.Listen
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			h.log.Info("chat-toolbar page ready", "url", "http://"+ln.Addr().String()+wecomarchive.PathToolbar)
			srv := httpserver.New(ln, h.toolbar.Handler(), h.log, httpserver.Options{Name: "toolbar", MaxConns: 256, BodyLimit: 4 << 10})
			ready()
			return srv.Run(ctx)
		}})
	}
	return parts
}

// archiveNotify nudges the reader, in whichever process it runs.
func (h *hub) archiveNotify(ctx context.Context) { h.waker.Wake(ctx, archiveWake) }

// toolbarURL is the toolbar page's public address, linked from officers'
// direct messages ("" without one).
func toolbarURL(cfg *configs.Config) string {
	if cfg.WeComArchive == nil {
		return ""
	}
	return cfg.WeComArchive.Toolbar.URL
}
