package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/redisbus"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	return runRole(ctx, "serve", roleAll, args, stderr)
}

func cmdWorker(ctx context.Context, args []string, stderr io.Writer) error {
	return runRole(ctx, "worker", role{handlers: true}, args, stderr)
}

func cmdAdapter(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: jingmin adapter playground|wechat|dingtalk [flags]")
	}
	p := bot.Platform(args[0])
	switch p {
	case bot.Playground, bot.WeChat, bot.DingTalk:
	default:
		return fmt.Errorf("adapter %q: want playground, wechat or dingtalk", args[0])
	}
	return runRole(ctx, "adapter "+args[0], role{platform: p}, args[1:], stderr)
}

// runRole loads the config, opens the hub for r and runs it until ctx ends.
func runRole(ctx context.Context, name string, r role, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	listen := fs.String("listen", "", "playground address (default from config, 127.0.0.1:8080)")
	ops := fs.String("ops", "", "address for /healthz and /readyz (default from config; empty: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.Load(*configPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Playground.Listen = *listen
	}
	if *ops != "" {
		cfg.Ops.Listen = *ops
	}
	if !r.all() && cfg.Bus.Kind == "memory" {
		return fmt.Errorf("%s: bus.kind is memory, which one process cannot share with another: set bus.kind: redis and %s, or run `jingmin serve`", name, configs.EnvRedisURL)
	}
	log := newLogger(stderr).With("role", name)
	// Health endpoints come up first: while the store or the bus cannot be
	// reached the process says so (/readyz 503 with the reason) and keeps
	// trying, instead of exiting into a restart loop.
	var ready atomic.Value // http.Handler once the hub is open
	var lastErr atomic.Value
	lastErr.Store("starting")
	if cfg.Ops.Listen != "" {
		opsLn, err := net.Listen("tcp", cfg.Ops.Listen)
		if err != nil {
			return fmt.Errorf("ops: listen on %s: %w", cfg.Ops.Listen, err)
		}
		ops := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := ready.Load().(http.Handler); ok {
				h.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/healthz" {
				writeStatus(w, http.StatusOK, map[string]string{"status": "starting"})
				return
			}
			writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": lastErr.Load().(string)})
		})}
		go func() { _ = ops.Serve(opsLn) }()
		defer ops.Close()
		log.Info("health endpoints ready", "url", "http://"+opsLn.Addr().String()+"/readyz")
	}
	var h *hub
	for wait := time.Second; ; wait = min(wait*2, 30*time.Second) {
		if h, err = openHub(ctx, cfg, log, hubOptions{role: r}); err == nil {
			break
		}
		if !errors.Is(err, errUnavailable) {
			return err
		}
		lastErr.Store(err.Error())
		log.Error("cannot start yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
	defer h.Close()
	ready.Store(h.opsHandler())
	var ln net.Listener
	if h.playground != nil {
		if ln, err = net.Listen("tcp", cfg.Playground.Listen); err != nil {
			return fmt.Errorf("playground: listen on %s: %w", cfg.Playground.Listen, err)
		}
		log.Info("playground ready", "url", "http://"+ln.Addr().String()+"/")
	}
	if cfg.Admin.Listen != "" {
		adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin API: listen on %s: %w", cfg.Admin.Listen, err)
		}
		h.admin = adminLn
		log.Info("admin API ready", "url", "http://"+adminLn.Addr().String()+"/api/admin/")
	}
	return h.Run(ctx, ln)
}

// errUnavailable marks a start-up failure that waiting can cure: the
// database or Redis not answering (yet).
var errUnavailable = errors.New("a service the hub needs is not answering")

// role says which parts of the hub a process runs. The embedded default
// runs all of them; distributed, workers run the handlers and timers and an
// adapter process runs one platform's connection, inbound and outbound.
type role struct {
	handlers bool         // event handlers and escalation timers
	platform bot.Platform // the one platform this process serves ("" with handlers: none)
	every    bool         // everything (serve)
}

var roleAll = role{handlers: true, every: true}

// directoryRefresh is how soon a worker sees another process's change to the
// directory (duty on/off).
const directoryRefresh = 15 * time.Second

func (r role) all() bool { return r.every }

// serves reports whether this process delivers p's outbound messages.
func (r role) serves(p bot.Platform) bool { return r.every || r.platform == p }

// hub is one process's wiring: store, bus, rules, adapters and the loops that
// connect them. Every goroutine it starts is owned by Run and ends with it.
type hub struct {
	cfg        *configs.Config
	log        *slog.Logger
	store      *store.Store
	bus        bot.Bus
	closeBus   func() // closes the bus and, distributed, its Redis client
	dedup      bot.Deduper
	role       role
	admin      net.Listener // the admin API, when configured
	rules      *commands.Hub
	playground *playground.Adapter
	senders    map[bot.Platform]bot.Sender
	inbound    []adapter
	metrics    *metrics
	rdb        *redis.Client    // the bus's Redis, nil on the in-memory bus
	now        func() time.Time // the rules' clock
	// broadcastPoll: see hubOptions.
	broadcastPoll time.Duration
}

// adapter is one platform's connection: Run takes its inbound messages to
// the bus until ctx ends, Send delivers outbound ones.
type adapter interface {
	bot.Sender
	Run(ctx context.Context) error
}

// newAdapter builds a platform adapter on the hub's bus and deduper.
type newAdapter func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error)

// hubOptions vary the wiring for tests and the bench.
type hubOptions struct {
	now      func() time.Time // the rules' clock; nil: the wall clock
	seed     *store.Seed      // the directory; nil: from the config
	senders  map[bot.Platform]bot.Sender
	adapters map[bot.Platform]newAdapter
	role     role // zero: everything, as `jingmin serve`
	// broadcastPoll is how often idle broadcast lanes and the report loop
	// look for work; zero: 500ms.
	broadcastPoll time.Duration
}

// openHub opens the store (migrating it), makes the directory match the
// config, and builds bus, rules and the playground.
func openHub(ctx context.Context, cfg *configs.Config, log *slog.Logger, opts hubOptions) (*hub, error) {
	st, err := store.Open(ctx, store.Options{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN})
	if err != nil {
		if cfg.Database.Driver == store.MySQL { // a server that may come up; a SQLite file will not
			return nil, fmt.Errorf("%w: %w", errUnavailable, err)
		}
		return nil, err
	}
	seed := opts.seed
	if seed == nil {
		s := cfg.Seed()
		seed = &s
	}
	if err := startDirectory(ctx, cfg, st, *seed, opts, log); err != nil {
		st.Close()
		return nil, fmt.Errorf("load %s into the database: %w", cfg.Source, err)
	}
	if opts.role == (role{}) {
		opts.role = roleAll
	}
	b, dedup, rdb, closeBus, err := openBus(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	h := &hub{cfg: cfg, log: log, store: st, bus: b, closeBus: closeBus, dedup: dedup, role: opts.role, senders: map[bot.Platform]bot.Sender{},
		broadcastPoll: opts.broadcastPoll, now: opts.now}
	if h.now == nil {
		h.now = time.Now
	}
	h.metrics = newMetrics(h)
	h.rdb = rdb
	if h.rules, err = newRules(ctx, cfg, st, bot.BusOutbox{Publisher: b}, log, opts.now, h.metrics); err != nil {
		closeBus()
		st.Close()
		return nil, err
	}
	if h.broadcastPoll <= 0 {
		h.broadcastPoll = 500 * time.Millisecond
	}
	if opts.role.all() {
		// A platform whose adapter does not run here parks its messages with
		// the reason instead of dropping them.
		for _, p := range []bot.Platform{bot.DingTalk, bot.WeChat, bot.Playground} {
			h.senders[p] = unconfigured(p)
		}
	}
	if cfg.Playground.Enabled && opts.role.serves(bot.Playground) {
		h.playground = playground.New(b, catalog(cfg), log)
		h.senders[bot.Playground] = h.playground
	}
	for p, s := range opts.senders {
		h.senders[p] = s
	}
	adapters := map[bot.Platform]newAdapter{}
	if cfg.WeChat != nil {
		adapters[bot.WeChat] = func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			var wopts []wechat.Option
			if rdb != nil {
				wopts = append(wopts, wechat.WithRedis(rdb))
			}
			return wechat.New(*cfg.WeChat, pub, dedup, log, wopts...)
		}
	}
	if cfg.DingTalk != nil {
		adapters[bot.DingTalk] = func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			// DMs DingTalk holds back are retried for a while; the ones it
			// never takes end here, like any undeliverable message.
			dopts := []dingtalk.Option{dingtalk.WithUndeliverable(func(ctx context.Context, o *bot.Outbound, cause error) {
				h.undeliverable(ctx, bot.OutboundTopic(bot.DingTalk), o, cause)
			})}
			if rdb != nil {
				dopts = append(dopts, dingtalk.WithRedis(rdb, cfg.Bus.Prefix))
			}
			return dingtalk.New(*cfg.DingTalk, pub, dedup, log, dopts...)
		}
	}
	for p, mk := range opts.adapters {
		adapters[p] = mk
	}
	for p, mk := range adapters {
		if !opts.role.serves(p) {
			continue
		}
		a, err := mk(b, h.dedup, log)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("%s adapter: %w", p, err)
		}
		h.senders[p] = a
		h.inbound = append(h.inbound, a)
	}
	return h, nil
}

// openBus returns the in-memory bus of the embedded default, or Redis
// Streams when the config says so, with the matching deduper and the Redis
// client (nil on the in-memory bus) for adapters that share state through it.
func openBus(ctx context.Context, cfg *configs.Config) (bot.Bus, bot.Deduper, *redis.Client, func(), error) {
	if cfg.Bus.Kind != "redis" {
		b := bot.NewMemoryBus(0)
		return b, bot.NewMemoryDeduper(), nil, func() { b.Close() }, nil
	}
	opt, err := redis.ParseURL(cfg.Bus.RedisURL)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("bus: %s is not a Redis URL (redis://host:6379/0): %w", configs.EnvRedisURL, err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, nil, nil, fmt.Errorf("%w: bus: Redis at %s does not answer: %w", errUnavailable, opt.Addr, err)
	}
	b := redisbus.New(rdb, redisbus.Options{Prefix: cfg.Bus.Prefix, ClaimIdle: time.Duration(cfg.Bus.ClaimIdleSeconds) * time.Second})
	return b, redisbus.NewDeduper(rdb, cfg.Bus.Prefix), rdb, func() { b.Close(); rdb.Close() }, nil
}

func newRules(ctx context.Context, cfg *configs.Config, st *store.Store, out commands.Outbox, log *slog.Logger, now func() time.Time, obs commands.Observer) (*commands.Hub, error) {
	loc, err := time.LoadLocation(cfg.Hub.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%s: hub.timezone: %w", cfg.Source, err)
	}
	return commands.New(ctx, st, out, commands.Options{
		Location: loc, EmergencyKeywords: cfg.Hub.EmergencyKeywords,
		QuestionsPerMinute: cfg.Hub.QuestionsPerMinute, MaxTextRunes: cfg.Hub.MaxTextRunes,
		ConsultationStation: cfg.Hub.ConsultationStation,
		AlertLimits: map[bot.Platform]commands.TextLimit{
			bot.WeChat:     {Bytes: wechat.MaxGroupTextBytes},
			bot.DingTalk:   {Runes: bot.MaxTextRunes},
			bot.Playground: {Runes: cfg.Hub.MaxTextRunes},
		},
		Now: now, Log: log, Observer: obs,
	})
}

// catalog lists the playground's groups and staff from the config.
func catalog(cfg *configs.Config) playground.Catalog {
	var c playground.Catalog
	for _, g := range cfg.Groups {
		if g.Platform == string(bot.Playground) {
			c.Groups = append(c.Groups, playground.Chat{ID: g.ChatID, Type: bot.Group, Name: g.Name})
		}
	}
	for _, o := range cfg.Officers {
		if id, ok := o.Identities[string(bot.Playground)]; ok {
			c.Staff = append(c.Staff, playground.Persona{ID: id, Name: o.Name, Roles: o.Roles})
		}
	}
	return c
}

// unconfigured stands in for a platform whose adapter does not run in this
// process: its messages are parked with the reason, never silently dropped.
type unconfigured bot.Platform

func (u unconfigured) Send(context.Context, *bot.Outbound) error {
	return bot.Permanent(fmt.Errorf("no %s adapter is configured in this deployment", string(u)))
}

// Run serves until ctx ends, then shuts down in order: stop taking messages,
// let the bus drain (bounded), stop the loops, close.
func (h *hub) Run(ctx context.Context, ln net.Listener) error {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	park := func(ctx context.Context, topic string, m bot.Message, cause error) error {
		if err := h.store.Park(ctx, topic, m.ID, m.Payload, cause.Error()); err != nil {
			return err
		}
		if strings.HasPrefix(topic, "outbound.") {
			if o, err := bot.DecodeOutbound(m.Payload); err == nil {
				h.tellUndelivered(ctx, o, cause)
			}
		}
		return nil
	}
	handler := bot.Chain(h.rules.Handler(),
		bot.Dependencies(dependencyDown),
		bot.Log(h.log, h.metrics.observeEvent),
		bot.Dedup(h.dedup, h.hold(), bot.DefaultKeep),
		bot.Recover(h.log))
	var runners []*bot.Runner
	if h.role.handlers {
		runners = append(runners, &bot.Runner{
			Subscriber: h.bus, Topic: bot.TopicEvents, Group: "handlers", Workers: h.cfg.HandlerWorkers(),
			Process: bot.EventProcessor(handler), Park: park, Log: h.log,
		})
	}
	for p, s := range h.senders {
		runners = append(runners, &bot.Runner{
			Subscriber: h.bus, Topic: bot.OutboundTopic(p), Group: "senders", Workers: h.cfg.Hub.SenderWorkers,
			Process: bot.DeliveryProcessor(h.metrics.counted(p, s), h.dedup, h.hold()), Park: park, Log: h.log,
		})
	}
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(work) }()
	}
	if h.role.handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.rules.RunTimers(work, time.Duration(h.cfg.Hub.TimerSeconds)*time.Second)
		}()
	}
	if h.role.handlers {
		// Finishing broadcasts and reporting to their authors.
		wg.Add(1)
		go func() { defer wg.Done(); _ = h.rules.RunBroadcastReports(work, h.broadcastPoll) }()
	}
	if lanes := h.broadcastLanes(); len(lanes) > 0 {
		// Broadcast sends go from the process that owns each platform's
		// connection, like every other outbound message.
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.rules.RunBroadcasts(work, lanes, commands.EngineOptions{
				Lease: time.Duration(h.cfg.Broadcast.LeaseSeconds) * time.Second, Poll: h.broadcastPoll,
				MaxAttempts: h.cfg.Broadcast.MaxAttempts, Dedup: h.dedup, Log: h.log,
			})
		}()
	}
	if _, memory := h.bus.(*bot.MemoryBus); !memory && h.role.handlers {
		// Other processes change the directory too (an officer's 值班 开 is
		// handled by whichever worker got it): pick their changes up.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(directoryRefresh)
			defer tick.Stop()
			for {
				select {
				case <-work.Done():
					return
				case <-tick.C:
					if err := h.rules.Reload(work); err != nil {
						h.log.Warn("reloading the directory", "err", err)
					}
				}
			}
		}()
	}
	if h.admin != nil {
		admin := &http.Server{Handler: adminAPI{h: h, token: h.cfg.Admin.Token}.handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() { defer wg.Done(); _ = admin.Serve(h.admin) }()
		defer admin.Close()
	}

	// Inbound adapters stop first at shutdown: nothing new comes in while
	// the bus drains.
	in, stopIn := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIn()
	var inWG sync.WaitGroup
	for _, a := range h.inbound {
		inWG.Add(1)
		go func() {
			defer inWG.Done()
			if err := a.Run(in); err != nil {
				h.log.Error("adapter stopped", "err", err)
			}
		}()
	}

	var srv *http.Server
	serveErr := make(chan error, 1)
	if ln != nil {
		srv = &http.Server{Handler: h.playground.Handler(), ReadHeaderTimeout: 10 * time.Second}
		srv.RegisterOnShutdown(h.playground.Stop)
		go func() { serveErr <- srv.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("playground server: %w", err)
	}
	h.log.Info("shutting down")
	if srv != nil {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(shut)
		cancel()
		if e := <-serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	stopIn()
	inWG.Wait()
	if _, memory := h.bus.(*bot.MemoryBus); memory {
		h.drain(10 * time.Second)
	}
	stopWork()
	if h.admin != nil {
		h.admin.Close()
	}
	wg.Wait()
	return err
}

// dependencyDown reports whether a handler's failure says the database or
// Redis is down, restarting or refusing connections, rather than anything
// about the event: the event then waits for it instead of being parked.
func dependencyDown(err error) bool {
	if bot.Unreachable(err) || errors.Is(err, mysql.ErrInvalidConn) || redis.IsLoadingError(err) || redis.IsMaxClientsError(err) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1927, // connection was killed
			4031: // disconnected by the server for inactivity
			return true
		}
	}
	return false
}

// broadcastLanes is one sending lane per platform this process delivers
// to, each with its configured token bucket, yielding to interactive
// messages waiting on the platform's outbound topic.
func (h *hub) broadcastLanes() []commands.BroadcastLane {
	var lanes []commands.BroadcastLane
	for p, s := range h.senders {
		var lim commands.Limiter
		r := h.cfg.Broadcast.Rates[string(p)]
		switch {
		case r > 0 && h.rdb != nil:
			// Every process serving the platform shares the one limit.
			lim = redisbus.NewLimiter(h.rdb, h.cfg.Bus.Prefix+"broadcast-rate:"+string(p), r)
		case r > 0:
			lim = rate.NewLimiter(rate.Limit(r), 1)
		}
		topic := bot.OutboundTopic(p)
		busy := func(ctx context.Context) bool {
			pc, ok := h.bus.(bot.PendingCounter)
			if !ok {
				return false
			}
			n, err := pc.Pending(ctx, topic, "senders")
			return err == nil && n > 0
		}
		lanes = append(lanes, commands.BroadcastLane{Platform: p, Sender: s, Limiter: lim, Rate: float64(r), Workers: h.cfg.Broadcast.Workers, Busy: busy})
	}
	return lanes
}

// drain waits until everything accepted has been handled and sent: the
// in-memory bus does not outlive the process.
func (h *hub) drain(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if h.pending() == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.log.Warn("shutdown before the bus drained; undelivered messages are lost with this process")
}

// undeliverable keeps a message a platform adapter gave up on, for admins,
// and lets the rules tell whoever needs to know.
func (h *hub) undeliverable(ctx context.Context, topic string, o *bot.Outbound, cause error) {
	payload, _ := bot.EncodeOutbound(o)
	if err := h.store.Park(ctx, topic, o.Key, payload, cause.Error()); err != nil {
		h.log.Error("keeping an undeliverable message", "message", o.Key, "err", err)
	}
	h.tellUndelivered(ctx, o, cause)
}

func (h *hub) tellUndelivered(ctx context.Context, o *bot.Outbound, cause error) {
	if err := h.rules.Undelivered(ctx, o, cause.Error()); err != nil {
		h.log.Warn("telling the officer of an undelivered answer", "message", o.Key, "err", err)
	}
}

// hold is how long a message being handled stays claimed.
func (h *hub) hold() time.Duration {
	if h.cfg.Hub.DedupHoldSeconds > 0 {
		return time.Duration(h.cfg.Hub.DedupHoldSeconds) * time.Second
	}
	return bot.DefaultHold
}

// pending counts messages accepted but not yet handled or sent.
func (h *hub) pending() int64 {
	pc, ok := h.bus.(bot.PendingCounter)
	if !ok {
		return 0
	}
	ctx := context.Background()
	n, _ := pc.Pending(ctx, bot.TopicEvents, "handlers")
	for p := range h.senders {
		m, _ := pc.Pending(ctx, bot.OutboundTopic(p), "senders")
		n += m
	}
	return n
}

func (h *hub) Close() {
	h.closeBus()
	h.store.Close()
}

// parseAt reads a time in the hub's zone: "2026-11-22 22:00" or RFC 3339.
func parseAt(s string, loc *time.Location) (time.Time, error) {
	if s == "" || s == "now" {
		return time.Now(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", time.RFC3339, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read time %q: use \"2026-11-22 22:00\"", s)
}
