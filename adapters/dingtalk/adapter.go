// Package dingtalk connects the hub to a DingTalk enterprise-internal robot
// in stream mode: no public URL, one WebSocket per app held through the
// official SDK (github.com/open-dingtalk/dingtalk-stream-sdk-go). Residents'
// @-messages in groups and officers' direct messages become bot.Events on the
// bus; bot.Outbound messages go out through the session webhook of the
// message being answered or through the robot OpenAPI. The package holds no
// business rules: what to answer is the commands package's concern.
package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/handler"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/utils"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/bot"
)

// Adapter is one DingTalk robot app: Run holds its stream and publishes what
// arrives; Send delivers outbound messages (and works whether or not Run is
// running, as the hub drains outbound messages after inbound has stopped).
type Adapter struct {
	cfg    Config
	pub    bot.Publisher
	dedup  bot.Deduper
	log    *slog.Logger
	opts   options
	http   *http.Client
	tokens *tokenSource
	limits *limiter
	health healthState
	holder string // this process's name in the lease
	gate   gate

	running atomic.Bool
	leaseMu sync.Mutex
	lease   *lease // held now; nil without Redis or while standing by
}

var _ bot.Sender = (*Adapter)(nil)

// Option changes how New builds the adapter.
type Option func(*options)

type options struct {
	rdb         redis.UniversalClient
	prefix      string
	httpClient  *http.Client
	leaseTTL    time.Duration
	flowRetry   time.Duration
	backoff     time.Duration
	healthEvery time.Duration
	now         func() time.Time
	counter     bot.APICounter
	quotaRetry  time.Duration
	dedupKeep   time.Duration
}

// WithCounter counts every call to DingTalk (the API budget, metrics).
func WithCounter(c bot.APICounter) Option { return func(o *options) { o.counter = c } }

// WithQuotaRetry sets how long a message DingTalk refused for the month's
// quota (errcode 90020) waits before it is tried again. Default 10 min.
func WithQuotaRetry(d time.Duration) Option { return func(o *options) { o.quotaRetry = d } }

// CountCalls is WithCounter for an adapter built already (the hub wires
// its budget into whichever adapter it is given); call it before Run or
// any Send.
func (a *Adapter) CountCalls(c bot.APICounter) { a.opts.counter = c }

// WithRedis shares the access token, the rate-limit windows and the
// one-stream lease between every process of the app. prefix namespaces the keys (deployments and tests share a
// server). The caller owns rdb.
func WithRedis(rdb redis.UniversalClient, prefix string) Option {
	return func(o *options) { o.rdb, o.prefix = rdb, prefix }
}

// WithHTTPClient sets the client for OpenAPI and webhook calls (proxies,
// private CAs). Default: a client with a 10 s timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithLeaseTTL sets how long a dead holder keeps the stream lease: a
// stand-by takes over within ttl + ttl/5 (+ connecting). Default 10 s.
func WithLeaseTTL(ttl time.Duration) Option { return func(o *options) { o.leaseTTL = ttl } }

// WithFlowControlRetry sets how long a direct message DingTalk
// flow-controlled waits before it is sent again (the hub's relay keeps it
// as a scheduled row meanwhile). Default 30 s.
func WithFlowControlRetry(d time.Duration) Option { return func(o *options) { o.flowRetry = d } }

// WithBackoff sets the first wait after DingTalk throttles the app; each
// further try waits twice as long. Default 300 ms.
func WithBackoff(base time.Duration) Option { return func(o *options) { o.backoff = base } }

// WithDedupKeep sets how long a published message's id is remembered to
// drop DingTalk's redelivery of it. Default bot.DefaultKeep.
func WithDedupKeep(d time.Duration) Option { return func(o *options) { o.dedupKeep = d } }

// New checks cfg and builds the adapter; nothing connects until Run.
// dedup keeps a message DingTalk delivers twice from being published twice
// (nil: an in-memory one).
func New(cfg Config, pub bot.Publisher, dedup bot.Deduper, log *slog.Logger, opts ...Option) (*Adapter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("dingtalk: no publisher for inbound events")
	}
	if dedup == nil {
		dedup = bot.NewMemoryDeduper()
	}
	if log == nil {
		log = slog.Default()
	}
	o := options{leaseTTL: DefaultLeaseTTL, flowRetry: 30 * time.Second, backoff: 300 * time.Millisecond, healthEvery: 5 * time.Minute, now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.leaseTTL < 300*time.Millisecond {
		return nil, fmt.Errorf("dingtalk: lease ttl %s is too short to renew in time", o.leaseTTL)
	}
	if o.quotaRetry <= 0 {
		o.quotaRetry = 10 * time.Minute
	}
	if o.flowRetry <= 0 {
		o.flowRetry = 30 * time.Second
	}
	if o.dedupKeep <= 0 {
		o.dedupKeep = bot.DefaultKeep
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	host, _ := os.Hostname()
	a := &Adapter{
		cfg: cfg, pub: pub, dedup: dedup, log: log.With("platform", "dingtalk"), opts: o, http: o.httpClient,
		holder: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6]),
	}
	keys := o.prefix + "dingtalk:" + cfg.AppKey + ":"
	a.tokens = &tokenSource{fetch: a.fetchToken, rdb: o.rdb, key: keys + "token", now: o.now}
	a.limits = &limiter{qps: cfg.QPS, rdb: o.rdb, prefix: keys + "qps:", now: o.now, local: map[string]*rate.Limiter{}}
	return a, nil
}

func (a *Adapter) now() time.Time { return a.opts.now() }

func (a *Adapter) leaseKey() string { return a.opts.prefix + "dingtalk:" + a.cfg.AppKey + ":lease" }

// Run holds the app's stream until ctx ends: with Redis it first waits for
// the lease (standing by while another process holds it); it keeps
// reconnecting through network trouble (the SDK after a drop, Run itself
// when a connection cannot be opened at all) and gives the stream up when
// the lease is lost. Every goroutine it starts ends before it returns.
func (a *Adapter) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("dingtalk: adapter is already running")
	}
	defer a.running.Store(false)
	useSDKLogger(a.log)
	a.health.setRunning(true)
	defer a.health.setRunning(false)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.watchHealth(ctx, a.opts.healthEvery) }()
	for {
		l, err := a.awaitTurn(ctx)
		if err != nil {
			break // ctx ended
		}
		a.stream(ctx, l)
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	return nil
}

// awaitTurn returns the lease once this process holds it (nil without
// Redis: the only process holds the stream), or ctx's error.
func (a *Adapter) awaitTurn(ctx context.Context) (*lease, error) {
	if a.opts.rdb == nil {
		return nil, ctx.Err()
	}
	poll := a.opts.leaseTTL / 5
	standing := false
	for {
		l, ok, err := tryAcquire(ctx, a.opts.rdb, a.leaseKey(), a.holder, a.opts.leaseTTL)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			a.log.Warn("dingtalk stream lease: Redis did not answer; trying again", "err", err)
		case ok:
			a.log.Info("dingtalk stream lease acquired", "holder", a.holder, "fence", l.token)
			return l, nil
		case !standing:
			standing = true
			a.log.Info("dingtalk stream held by another process; standing by", "holder", leaseHolder(ctx, a.opts.rdb, a.leaseKey()))
		}
		if err := bot.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// handlerWait bounds how long giving up the stream waits for frames being
// published to finish, so that they are acked instead of redelivered.
const handlerWait = 3 * time.Second

// stream holds one turn on the stream: connect, serve until ctx ends or the
// lease is lost, then close and give the lease back.
func (a *Adapter) stream(ctx context.Context, l *lease) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var fence int64
	if l != nil {
		fence = l.token
	}
	a.setLease(l)
	a.health.hold(fence)
	var wg sync.WaitGroup
	if l != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.keep(sctx, func(err error) {
				a.log.Warn("dingtalk stream lease lost; closing the stream", "fence", fence, "err", err)
				stop()
			})
		}()
	}
	cli := a.newClient()
	a.gate.open()
	if a.connect(sctx, cli) {
		<-sctx.Done()
	}
	// Take no new frames, let the ones being published finish (so they are
	// acked rather than sent again), then close.
	a.health.unhold()
	a.gate.shut(handlerWait)
	cli.Close()
	a.log.Info("dingtalk stream closed", "fence", fence)
	stop()
	wg.Wait()
	a.setLease(nil)
	if l != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := l.release(rctx); err != nil {
			a.log.Warn("dingtalk stream lease not released; a stand-by takes over when it expires", "err", err)
		}
		cancel()
	}
}

// connect starts the client, retrying with backoff until it connects or ctx
// ends. (The SDK reconnects a connection that drops, but not one that never
// opened.)
func (a *Adapter) connect(ctx context.Context, cli *client.StreamClient) bool {
	wait := time.Second
	for {
		err := cli.Start(ctx)
		if err == nil {
			a.health.connected()
			a.log.Info("dingtalk stream connected", "fence", a.health.snapshot(a.now()).Fence)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.log.Warn("dingtalk stream: cannot connect; trying again", "err", bot.Mask(bot.Truncate(err.Error(), 200)), "retry_in", wait)
		if bot.Sleep(ctx, wait) != nil {
			return false
		}
		wait = min(wait*2, time.Minute)
	}
}

func (a *Adapter) newClient() *client.StreamClient {
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(a.cfg.AppKey, a.cfg.AppSecret)),
		client.WithOpenApiHost(a.cfg.StreamHost),
	)
	cli.RegisterCallbackRouter(payload.BotMessageCallbackTopic, a.onBotMessage)
	cli.RegisterRouter(utils.SubscriptionTypeKCallback, payload.CardInstanceCallbackTopic, a.onCardCallback)
	cli.RegisterRouter(utils.SubscriptionTypeKSystem, "ping", a.observe(cli.OnPing))
	// DingTalk also sends SYSTEM KEEPALIVE frames; the SDK has no handler for
	// them (it would answer 404), and they are what shows an idle stream alive.
	cli.RegisterRouter(utils.SubscriptionTypeKSystem, "KEEPALIVE", a.observe(func(context.Context, *payload.DataFrame) (*payload.DataFrameResponse, error) {
		return nil, nil
	}))
	cli.RegisterRouter(utils.SubscriptionTypeKSystem, "disconnect", a.observe(func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
		a.log.Info("dingtalk asked to reconnect (disconnect frame); frames in flight come again on the new connection")
		return cli.OnDisconnect(ctx, df)
	}))
	return cli
}

// observe records a system frame for Health before the SDK handles it.
func (a *Adapter) observe(next handler.IFrameHandler) handler.IFrameHandler {
	return func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
		a.health.frame(ctx, a.now())
		return next(ctx, df)
	}
}

func (a *Adapter) setLease(l *lease) {
	a.leaseMu.Lock()
	a.lease = l
	a.leaseMu.Unlock()
}

// holds says whether frames may be acted on now: always without Redis, and
// with Redis only under a lease known to be valid.
func (a *Adapter) holds() bool {
	if a.opts.rdb == nil {
		return true
	}
	a.leaseMu.Lock()
	l := a.lease
	a.leaseMu.Unlock()
	return l != nil && l.valid()
}

// inboundHold bounds how long a message being published stays claimed: if
// this process dies mid-publish, DingTalk's redelivery (16-60 s later) is not
// turned away.
const inboundHold = 15 * time.Second

// onBotMessage takes one robot callback: normalise, publish durably, and
// only then return, which is when the SDK acks. A message that cannot be
// kept (the bus is down) is answered with an error so DingTalk sends it
// again; one that can never be understood is acked and logged, as sending it
// again would change nothing.
func (a *Adapter) onBotMessage(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	now := a.now()
	if err := a.admit(ctx, now); err != nil {
		return nil, err
	}
	defer a.gate.leave()
	frameID := df.GetMessageId()
	var data chatbot.BotCallbackDataModel
	if err := json.Unmarshal([]byte(df.Data), &data); err != nil {
		a.log.Warn("dingtalk frame dropped: data is not a robot message", "frame", frameID, "bytes", len(df.Data), "err", err)
		return ackOK(), nil
	}
	e, err := Normalise(&data, now)
	if err != nil {
		a.log.Warn("dingtalk robot message dropped", "frame", frameID, "err", err)
		return ackOK(), nil
	}
	if err := a.publish(ctx, e); err != nil {
		return nil, err
	}
	return ackOK(), nil
}

// publish puts e on the bus once per DingTalk message.
func (a *Adapter) publish(ctx context.Context, e *bot.Event) error {
	key := "dingtalk:inbound:" + e.ID
	detached := context.WithoutCancel(ctx)
	claim, err := a.dedup.Claim(ctx, key, inboundHold)
	deduped := err == nil
	if err != nil {
		// Publishing twice is harmless (the hub de-duplicates events too);
		// not publishing would lose the message.
		a.log.Warn("dingtalk inbound de-duplication unavailable; publishing anyway", "event", e.ID, "err", err)
		claim = bot.ClaimNew
	}
	switch claim {
	case bot.ClaimDone:
		a.log.Debug("dingtalk sent a message again that is already kept", "event", e.ID)
		return nil
	case bot.ClaimBusy:
		// Being published by another handler right now, which may yet fail:
		// ask for it again rather than ack something not yet kept.
		return fmt.Errorf("message %s is being kept by another handler: send again", e.MessageID)
	}
	if err := bot.PublishEvent(ctx, a.pub, e); err != nil {
		if deduped {
			_ = a.dedup.Release(detached, key)
		}
		a.log.Error("dingtalk message not kept; DingTalk will send it again", "event", e.ID, "err", err)
		return fmt.Errorf("message %s not kept, send again: %w", e.MessageID, err)
	}
	if deduped {
		if err := a.dedup.Done(detached, key, a.opts.dedupKeep); err != nil {
			a.log.Warn("dingtalk inbound de-duplication not recorded", "event", e.ID, "err", err)
		}
	}
	a.log.Debug("dingtalk message kept", "event", e.ID, "chat", bot.LogChat(e.Chat), "kind", e.Kind)
	return nil
}

// ackOK is the success answer DingTalk expects for a callback.
func ackOK() *payload.DataFrameResponse {
	r := payload.NewSuccessDataFrameResponse()
	r.Message = "OK"
	_ = r.SetJson(map[string]any{"response": nil})
	return r
}

// gate lets the stream stop taking frames and wait for those in progress.
type gate struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{}
}

func (g *gate) open() {
	g.mu.Lock()
	g.closed = false
	g.mu.Unlock()
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// shut refuses new frames and waits up to wait for the ones in progress.
func (g *gate) shut(wait time.Duration) {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// admit lets a stream frame in: it counts for the stream's health, and it
// is refused (DingTalk sends it again) while the stream closes or while
// another adapter process holds the stream's lease. Once admitted, the
// caller leaves the gate when done.
func (a *Adapter) admit(ctx context.Context, now time.Time) error {
	a.health.frame(ctx, now)
	if !a.gate.enter() {
		return errors.New("stream closing: send again")
	}
	if !a.holds() {
		a.gate.leave()
		return errors.New("stream lease not held: send again")
	}
	return nil
}
