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
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/httpserver"
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
		return fmt.Errorf("usage: jingmin adapter playground|wechat|dingtalk|%s [flags]", archiveAdapter)
	}
	if args[0] == archiveAdapter {
		return runRole(ctx, "adapter "+archiveAdapter, role{archive: true}, args[1:], stderr)
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
	consoleAddr := fs.String("console", "", "web console address (serve only; default from config, 127.0.0.1:8081 in the embedded one; off: none)")
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
	switch *consoleAddr {
	case "":
	case "off":
		cfg.Console.Listen = ""
	default:
		cfg.Console.Listen = *consoleAddr
	}
	if !r.all() && cfg.Bus.Kind == "memory" {
		return fmt.Errorf("%s: bus.kind is memory, which one process cannot share with another: set bus.kind: redis and %s, or run `jingmin serve`", name, configs.EnvRedisURL)
	}
	log := newLogger(stderr).With("role", name)
	// Health endpoints come up first: while the store or the bus cannot be
	// reached the process says so (/readyz 503 with the reason) and keeps
	// trying, instead of exiting into a restart loop.
	var ready atomic.Value // http.Handler once the hub runs
	var lastErr atomic.Value
	lastErr.Store("starting")
	g, gctx := errgroup.WithContext(ctx)
	if cfg.Ops.Listen != "" {
		opsLn, err := net.Listen("tcp", cfg.Ops.Listen)
		if err != nil {
			return fmt.Errorf("ops: listen on %s: %w", cfg.Ops.Listen, err)
		}
		ops := httpserver.New(opsLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := ready.Load().(http.Handler); ok {
				h.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/healthz" {
				writeStatus(w, http.StatusOK, map[string]string{"status": "starting"})
				return
			}
			writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": lastErr.Load().(string)})
		}), log, httpserver.Options{Name: "ops", MaxConns: 64, BodyLimit: 4 << 10})
		g.Go(func() error { return ops.Run(gctx) })
		log.Info("health endpoints ready", "url", "http://"+opsLn.Addr().String()+"/readyz")
	}
	g.Go(func() error {
		var (
			h   *hub
			err error
		)
		for wait := time.Second; ; wait = min(wait*2, 30*time.Second) {
			if h, err = openHub(gctx, cfg, log, hubOptions{role: r}); err == nil {
				break
			}
			if !errors.Is(err, errUnavailable) {
				return err
			}
			lastErr.Store(err.Error())
			log.Error("cannot start yet; retrying", "err", err, "retry_in", wait)
			if bot.Sleep(gctx, wait) != nil {
				return nil
			}
		}
		defer h.Close()
		lastErr.Store("starting its parts")
		h.onReady = func() { ready.Store(h.opsHandler()) }
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
		if r.all() && cfg.Console.Listen != "" {
			if h.console, err = net.Listen("tcp", cfg.Console.Listen); err != nil {
				return fmt.Errorf("console: listen on %s: %w", cfg.Console.Listen, err)
			}
			log.Info("console ready", "url", "http://"+h.console.Addr().String()+"/")
		}
		return h.Run(gctx, ln)
	})
	err = g.Wait()
	if err != nil {
		log.Error("stopped", "err", err)
	}
	return err
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
	archive  bool         // the WeCom conversation-archive reader and toolbar page (archive.go)
}

var roleAll = role{handlers: true, every: true}

// directoryRefresh is how soon a worker sees another process's change to the
// directory (duty on/off, a roster edit): each tick reads the directory
// revision, one row, and reloads only when it moved.
const directoryRefresh = time.Second

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
	closeBus   func()      // closes the bus and, distributed, its Redis client
	dedup      bot.Deduper // the adapters' edge de-duplication
	waker      bot.Waker   // nudges from rules to relays
	role       role
	admin      net.Listener // the admin API, when configured
	console    net.Listener // the web console, when configured
	rules      *commands.Hub
	playground *playground.Adapter
	senders    map[bot.Platform]bot.Sender
	inbound    []adapter
	metrics    *metrics
	budget     *bot.Budget      // every platform API call counted against its app's month
	rdb        *redis.Client    // the bus's Redis, nil on the in-memory bus
	now        func() time.Time // the rules' clock
	// broadcastPoll: see hubOptions.
	broadcastPoll time.Duration
	// onReady is called once every part runs (readiness).
	onReady func()
	// archive and toolbar read WeCom customer groups (archive.go).
	archive *wecomarchive.Reader
	toolbar *wecomarchive.Toolbar
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
	// wechat are more options for the configured WeChat adapter (a test's
	// clock and secrets).
	wechat []wechat.Option
	// broadcastPoll is how often idle broadcast lanes and the report loop
	// look for work; zero: 500ms.
	broadcastPoll time.Duration
	// cards gives officers on these platforms cards besides those the
	// config turns on (the bench's playground).
	cards map[bot.Platform]bool
	// console serves the web console on this listener (tests; serve opens
	// console.listen itself).
	console net.Listener
	// dial opens the MySQL connections (nil: the driver's dialer); the
	// route bench counts wire round trips through it.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// openHub opens the store (migrating it), makes the directory match the
// config, and builds bus, rules and the playground.
func openHub(ctx context.Context, cfg *configs.Config, log *slog.Logger, opts hubOptions) (*hub, error) {
	st, err := store.Open(ctx, store.Options{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN, Dial: opts.dial})
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
	b, dedup, waker, rdb, closeBus, err := openBus(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	h := &hub{cfg: cfg, log: log, store: st, bus: b, closeBus: closeBus, dedup: dedup, waker: waker, role: opts.role, senders: map[bot.Platform]bot.Sender{},
		broadcastPoll: opts.broadcastPoll, now: opts.now, console: opts.console}
	if h.now == nil {
		h.now = time.Now
	}
	h.metrics = newMetrics(h)
	h.rdb = rdb
	h.budget = &bot.Budget{Limits: map[bot.Platform]int64{}, Observe: h.metrics.observeAPICall, Now: h.now, Log: log}
	for p, n := range cfg.Budget.MonthlyCalls {
		h.budget.Limits[bot.Platform(p)] = n
	}
	if h.rules, err = newRules(ctx, cfg, st, waker, log, opts.now, h.metrics, h.budget, opts.cards); err != nil {
		closeBus()
		st.Close()
		return nil, err
	}
	h.budget.Book, h.budget.Location = h.rules.BudgetBook(), h.rules.Location()
	if h.broadcastPoll <= 0 {
		h.broadcastPoll = 500 * time.Millisecond
	}
	if opts.role.all() {
		// A platform whose adapter does not run here fails its messages with
		// the reason instead of dropping them.
		for _, p := range []bot.Platform{bot.DingTalk, bot.WeChat, bot.Playground} {
			h.senders[p] = unconfigured(p)
		}
	}
	if cfg.Playground.Enabled && opts.role.serves(bot.Playground) {
		h.playground = playground.New(b, catalog(cfg), log, playground.WithRecord(playgroundRecord{store: st, rules: h.rules}))
		h.senders[bot.Playground] = h.playground
	}
	for p, s := range opts.senders {
		h.senders[p] = s
	}
	adapters := map[bot.Platform]newAdapter{}
	if cfg.WeChat != nil {
		adapters[bot.WeChat] = func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			wopts := []wechat.Option{wechat.WithArchiveNotify(h.archiveNotify), wechat.WithKF(st), wechat.WithMassSends(st),
				wechat.WithDedupKeep(time.Duration(cfg.Bus.DedupKeepSeconds) * time.Second)}
			if rdb != nil {
				wopts = append(wopts, wechat.WithRedis(rdb))
			}
			wopts = append(wopts, opts.wechat...)
			return wechat.New(*cfg.WeChat, pub, dedup, log, wopts...)
		}
	}
	if cfg.DingTalk != nil {
		adapters[bot.DingTalk] = func(pub bot.Publisher, dedup bot.Deduper, log *slog.Logger) (adapter, error) {
			dopts := []dingtalk.Option{dingtalk.WithDedupKeep(time.Duration(cfg.Bus.DedupKeepSeconds) * time.Second)}
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
		if c, ok := a.(interface{ CountCalls(bot.APICounter) }); ok {
			c.CountCalls(h.budget) // every platform call is counted where it is made
		}
		h.senders[p] = a
		h.inbound = append(h.inbound, a)
	}
	if err := h.openArchive(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// openBus returns the in-memory bus of the embedded default, or Redis
// Streams when the config says so, with the matching deduper and waker and
// the Redis client (nil on the in-memory bus) for adapters that share state
// through it.
func openBus(ctx context.Context, cfg *configs.Config) (bot.Bus, bot.Deduper, bot.Waker, *redis.Client, func(), error) {
	if cfg.Bus.Kind != "redis" {
		b := bot.NewMemoryBus(0)
		return b, bot.NewMemoryDeduper(), &bot.MemoryWaker{}, nil, func() { b.Close() }, nil
	}
	opt, err := redis.ParseURL(cfg.Bus.RedisURL)
	if err != nil {
		return nil, nil, nil, nil, nil, fmt.Errorf("bus: %s is not a Redis URL (redis://host:6379/0): %w", configs.EnvRedisURL, err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, nil, nil, nil, fmt.Errorf("%w: bus: Redis at %s does not answer: %w", errUnavailable, opt.Addr, err)
	}
	b := redisbus.New(rdb, redisbus.Options{Prefix: cfg.Bus.Prefix, ClaimIdle: time.Duration(cfg.Bus.ClaimIdleSeconds) * time.Second})
	return b, redisbus.NewDeduper(rdb, cfg.Bus.Prefix), redisbus.NewWaker(rdb, cfg.Bus.Prefix), rdb, func() { b.Close(); rdb.Close() }, nil
}

func newRules(ctx context.Context, cfg *configs.Config, st *store.Store, waker bot.Waker, log *slog.Logger, now func() time.Time, obs commands.Observer, budget *bot.Budget, cards map[bot.Platform]bool) (*commands.Hub, error) {
	on := cardPlatforms(cfg)
	for p, c := range cards {
		on[p] = on[p] || c
	}
	loc, err := time.LoadLocation(cfg.Hub.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%s: hub.timezone: %w", cfg.Source, err)
	}
	return commands.New(ctx, st, commands.Options{
		Location: loc, EmergencyKeywords: cfg.Hub.EmergencyKeywords, UrgentKeywords: cfg.Hub.UrgentKeywords,
		QuestionsPerMinute: cfg.Hub.QuestionsPerMinute, MaxTextRunes: cfg.Hub.MaxTextRunes,
		ConsultationStation: cfg.Hub.ConsultationStation,
		EscalationWindow:    time.Duration(cfg.Hub.EscalationDigestMinutes) * time.Minute,
		DutyOnFor:           time.Duration(cfg.Hub.DutyOnHours) * time.Hour,
		CustomerGroupCap:    cfg.Broadcast.CustomerGroupDailyCap,
		OwnerRemindAfter:    time.Duration(cfg.Broadcast.OwnerRemindMinutes) * time.Minute,
		AlertLimits: map[bot.Platform]commands.TextLimit{
			bot.WeChat:     {Bytes: wechat.MaxGroupTextBytes},
			bot.DingTalk:   {Runes: bot.MaxTextRunes},
			bot.Playground: {Runes: cfg.Hub.MaxTextRunes},
		},
		Now: now, Log: log, Observer: obs, Waker: waker, ToolbarURL: toolbarURL(cfg),
		Cards: on, Budget: budget, AuditRetention: cfg.Hub.AuditRetention(),
		SwapApproval:            cfg.Hub.SwapsNeedApproval(),
		BroadcastSecondApproval: cfg.Broadcast.SecondApproval,
	})
}

// cardPlatforms are the platforms whose officers get tap-to-act cards: a
// DingTalk app with a card template, a WeCom app with cards on.
func cardPlatforms(cfg *configs.Config) map[bot.Platform]bool {
	on := map[bot.Platform]bool{}
	if cfg.DingTalk != nil && cfg.DingTalk.CardsOn() {
		on[bot.DingTalk] = true
	}
	if cfg.WeChat != nil && cfg.WeChat.App.Cards && cfg.WeChat.App.AgentID != "" {
		on[bot.WeChat] = true
	}
	return on
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
// process: its messages fail with the reason, never silently dropped.
type unconfigured bot.Platform

func (u unconfigured) Send(context.Context, *bot.Outbound) error {
	return bot.Permanent(fmt.Errorf("no %s adapter is configured in this deployment", string(u)))
}

// Run serves until ctx ends or a part fails, then shuts down in order:
// stop taking messages (adapters, the playground), let the in-memory bus
// drain (bounded), stop the handlers, timers and relays. Every part is a
// value with Run(ctx) under one errgroup: the first error stops the process
// with that error, nothing is dropped.
func (h *hub) Run(ctx context.Context, ln net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	// Work (handlers, timers, relays) outlives the inbound side at shutdown,
	// so what came in is handled and sent.
	work, stopWork := context.WithCancel(context.WithoutCancel(gctx))
	defer stopWork()
	parts := h.workParts()
	ready := &readiness{want: int64(len(parts)), done: h.onReady}
	for _, p := range parts {
		g.Go(func() error {
			if err := p.run(work, ready.one); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		})
	}
	// The inbound side stops first at shutdown: nothing new comes in while
	// the bus drains.
	in, inCtx := errgroup.WithContext(gctx)
	inbound := func(name string, run func(ctx context.Context) error) {
		in.Go(func() error {
			err := run(inCtx)
			if err == nil && inCtx.Err() == nil {
				// None ends by itself: stop rather than run deaf.
				err = errors.New("stopped by itself")
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	for _, a := range h.inbound {
		inbound("adapter", a.Run)
	}
	if ln != nil {
		inbound("playground", h.playground.NewServer(ln).Run)
	}
	if h.admin != nil {
		admin := httpserver.New(h.admin, adminAPI{h: h, token: h.cfg.Admin.Token}.handler(), h.log,
			httpserver.Options{Name: "admin API", MaxConns: 64, BodyLimit: 256 << 10})
		inbound("admin API", admin.Run)
	}
	if h.console != nil {
		run, err := h.consoleServer(h.console)
		if err != nil {
			return err
		}
		inbound("console", run)
	}
	g.Go(func() error {
		<-inCtx.Done() // ctx ended, or an inbound part failed
		err := in.Wait()
		h.log.Info("shutting down")
		if _, memory := h.bus.(*bot.MemoryBus); memory {
			h.drain(context.WithoutCancel(ctx), 10*time.Second)
		}
		stopWork()
		return err
	})
	return g.Wait()
}

// part is one long-running piece of a process. run calls ready once it has
// started (subscribed, listening), and returns when ctx ends.
type part struct {
	name string
	run  func(ctx context.Context, ready func()) error
}

// readiness calls done once every part said it started.
type readiness struct {
	want int64
	n    atomic.Int64
	done func()
}

func (r *readiness) one() {
	if r.n.Add(1) == r.want && r.done != nil {
		r.done()
	}
}

// workParts are the parts of this process's role: the event handlers,
// timers and broadcast reports (handlers), the relay of each platform it
// serves, and the directory refresh (distributed workers).
func (h *hub) workParts() []part {
	var parts []part
	started := func(run func(ctx context.Context) error) func(ctx context.Context, ready func()) error {
		return func(ctx context.Context, ready func()) error { ready(); return run(ctx) }
	}
	if h.role.handlers {
		handler := bot.Chain(h.rules.Handler(),
			bot.Dependencies(dependencyDown),
			bot.Log(h.log, h.metrics.observeEvent),
			bot.Recover(h.log))
		runner := &bot.Runner{
			Subscriber: h.bus, Topic: bot.TopicEvents, Group: "handlers", Workers: h.cfg.HandlerWorkers(),
			Process: bot.EventProcessor(handler), Park: h.park, Log: h.log,
		}
		parts = append(parts,
			part{"event handlers", func(ctx context.Context, ready func()) error { runner.OnReady = ready; return runner.Run(ctx) }},
			part{"escalation timers", started(func(ctx context.Context) error {
				return h.rules.RunTimers(ctx, time.Duration(h.cfg.Hub.TimerSeconds)*time.Second)
			})},
			part{"broadcast reports", started(func(ctx context.Context) error { return h.rules.RunBroadcastReports(ctx, h.broadcastPoll) })},
			part{"retention", started(func(ctx context.Context) error { return h.rules.RunRetention(ctx, h.cfg.Hub.Retention(), 24*time.Hour) })},
		)
		// Other processes change the directory too (an officer's 值班 开
		// handled by another worker, a roster edit from the console or the
		// CLI): pick their changes up.
		parts = append(parts, part{"directory refresh", started(h.refreshDirectory)})
	}
	// The API budget's counts reach the database every second, from every
	// process that calls a platform.
	parts = append(parts, part{"api budget", started(h.budget.Run)})
	parts = append(parts, h.archiveParts()...)
	for p, s := range h.senders {
		relay := h.relay(p, s)
		parts = append(parts, part{string(p) + " relay", func(ctx context.Context, ready func()) error {
			wake, err := h.waker.Wakeups(ctx, p)
			if err != nil {
				return fmt.Errorf("listen for nudges: %w", err)
			}
			relay.Wake = wake
			ready()
			return relay.Run(ctx)
		}})
	}
	return parts
}

// relay is platform p's relay: interactive messages first, broadcast
// deliveries in their own lane at the configured pace, giving way to them.
func (h *hub) relay(p bot.Platform, s bot.Sender) *bot.Relay {
	var lim bot.Limiter
	r := h.cfg.Broadcast.Rates[string(p)]
	switch {
	case r > 0 && h.rdb != nil:
		// Every process serving the platform shares the one limit.
		lim = redisbus.NewLimiter(h.rdb, h.cfg.Bus.Prefix+"broadcast-rate:"+string(p), r)
	case r > 0:
		lim = rate.NewLimiter(rate.Limit(r), 1)
	}
	poll := h.broadcastPoll
	return &bot.Relay{
		Platform: p, Sender: s, Poll: poll,
		Lease:       time.Duration(h.cfg.Broadcast.LeaseSeconds) * time.Second,
		MaxAttempts: h.cfg.Broadcast.MaxAttempts,
		Lanes: []bot.Lane{
			{Name: "interactive", Queue: h.rules.Outbox(), Workers: h.cfg.Hub.SenderWorkers},
			// A confirmed broadcast is found by the poll: the nudges are
			// about interactive rows.
			{Name: "broadcast", Queue: h.rules.Deliveries(), Workers: h.cfg.Broadcast.Workers, Limiter: lim, Yield: true, PollOnly: true},
		},
		Observe: h.metrics.observeSend,
		Budget:  h.budget,
		Log:     h.log,
	}
}

// refreshDirectory reloads the directory when its revision moved, checked
// every directoryRefresh.
func (h *hub) refreshDirectory(ctx context.Context) error {
	tick := time.NewTicker(directoryRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := h.rules.Refresh(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("reloading the directory", "err", err)
			}
		}
	}
}

// park keeps an event that failed for good for admins.
func (h *hub) park(ctx context.Context, topic string, m bot.Message, cause error) error {
	return h.store.Park(ctx, topic, m.ID, m.Payload, cause.Error())
}

// dependencyDown reports whether a handler's failure says the database or
// Redis is down, restarting or refusing connections, rather than anything
// about the event: the event then waits for it instead of being parked.
// Each package knows its own server's answers.
func dependencyDown(err error) bool {
	return bot.Unreachable(err) || store.Down(err) || redisbus.Down(err)
}

// drain waits until every event accepted has been handled: the in-memory
// bus does not outlive the process (outbound messages are rows, and wait
// for the next start).
func (h *hub) drain(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if h.pending(ctx) == 0 {
			return
		}
		if bot.Sleep(ctx, 20*time.Millisecond) != nil {
			break
		}
	}
	h.log.Warn("shutdown before the bus drained; events not yet handled are lost with this process")
}

// pending counts events accepted but not yet handled.
func (h *hub) pending(ctx context.Context) int64 {
	pc, ok := h.bus.(bot.PendingCounter)
	if !ok {
		return 0
	}
	n, _ := pc.Pending(context.WithoutCancel(ctx), bot.TopicEvents, "handlers")
	return n
}

func (h *hub) Close() {
	if h.archive != nil {
		h.archive.Close()
	}
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
