// Package wechat connects the hub to WeChat through WeCom (企业微信): the
// intelligent robot (智能机器人) that residents @ in community groups, the
// self-built app officers answer from on their phones, the station's Official
// Account (公众号) where residents ask one to one, and the group webhook robots
// that post proactive messages (escalation notices, broadcasts).
//
// Inbound, it serves the platforms' callback URLs, checks each request
// (signature, timestamp window, nonce once, size), normalises the message
// into a bot.Event and publishes it before answering, within the second WeCom
// allows; WeCom retries unanswered callbacks after five seconds, so events are
// de-duplicated on the platform's message id. Outbound, Send delivers a
// bot.Outbound through the best channel the platform offers for it.
//
// It builds on github.com/silenceper/wechat/v2, whose API calls go through
// package globals (util.SetURIModifier, util.DefaultHTTPClient): one process
// talks to one WeCom API host, and tests that move it cannot run in parallel.
package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount"
	oaconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	oamessage "github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work"
	workconfig "github.com/silenceper/wechat/v2/work/config"
	workmessage "github.com/silenceper/wechat/v2/work/message"
	"github.com/silenceper/wechat/v2/work/robot"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/bot"
)

// Paths the callback server answers; each is configured in the WeCom admin
// console (robot, app) or the Official Account's server settings.
const (
	PathRobot = "/wechat/robot"
	PathApp   = "/wechat/app"
	PathOA    = "/wechat/oa"
	PathReady = "/healthz"
)

// MaxBody bounds a callback body; WeCom's are a few KiB.
const MaxBody = 1 << 20

// publishTimeout keeps the answer to WeCom inside its one-second budget.
const publishTimeout = 800 * time.Millisecond

// Adapter is the WeChat side of the hub.
type Adapter struct {
	cfg   Config
	sec   Secrets
	pub   bot.Publisher
	dedup bot.Deduper
	log   *slog.Logger
	now   func() time.Time
	guard replayGuard

	robotKey []byte // nil: robot off
	appKey   []byte // nil: app callbacks off

	tokens   cache.Cache
	appMsg   *workmessage.Client
	webhooks *robot.Client
	oa       *officialaccount.OfficialAccount // nil: Official Account off

	backoff time.Duration

	limitMu  sync.Mutex
	limiters map[string]*rate.Limiter // webhook key → bucket

	addrMu sync.Mutex
	addr   net.Addr
}

var _ bot.Sender = (*Adapter)(nil)

// Option changes how New builds the adapter.
type Option func(*options)

type options struct {
	rdb     *redis.Client
	now     func() time.Time
	lookup  func(string) (string, bool)
	client  *http.Client
	backoff time.Duration
}

// WithRedis shares nonces and access tokens with other adapter processes
// through rdb, under Config.RedisPrefix.
func WithRedis(rdb *redis.Client) Option { return func(o *options) { o.rdb = rdb } }

// WithClock sets the clock used for the replay window and response_url
// expiry.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithEnv reads secrets through lookup instead of the process environment.
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookup = lookup }
}

// WithHTTPClient makes the SDK (and response_url posts) use c. The SDK keeps
// its client in a package global, so this affects the whole process.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithBackoff sets the first wait after a frequency-limit answer (45009);
// it doubles on each retry. Default one second.
func WithBackoff(d time.Duration) Option { return func(o *options) { o.backoff = d } }

// New builds the adapter from cfg (defaults applied, then validated) and the
// secrets in the environment. pub receives inbound events; dedup remembers
// callbacks already taken and response_urls already used.
func New(cfg Config, pub bot.Publisher, dedup bot.Deduper, log *slog.Logger, opts ...Option) (*Adapter, error) {
	o := options{now: time.Now, lookup: os.LookupEnv, backoff: time.Second}
	for _, f := range opts {
		f(&o)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := cfg.LoadSecrets(o.lookup)
	if err != nil {
		return nil, err
	}
	if pub == nil || dedup == nil {
		return nil, errors.New("wechat adapter needs a publisher and a deduper")
	}
	if log == nil {
		log = slog.Default()
	}
	silenceSDKLog()
	configureSDK(cfg, o.client)

	a := &Adapter{
		cfg: cfg, sec: sec, pub: pub, dedup: dedup, log: log.With("platform", "wechat"), now: o.now,
		backoff: o.backoff, limiters: map[string]*rate.Limiter{},
	}
	a.guard = replayGuard{window: cfg.ReplayWindow, now: o.now, nonces: newMemoryNonces(o.now)}
	a.tokens = cache.NewMemory()
	if o.rdb != nil {
		a.guard.nonces = redisNonces{rdb: o.rdb, prefix: cfg.RedisPrefix}
		a.tokens = NewRedisCache(o.rdb, cfg.RedisPrefix)
	}
	if sec.RobotToken != "" {
		if a.robotKey, err = aesKey(sec.RobotAESKey); err != nil {
			return nil, fmt.Errorf("wechat robot: %s: %w", cfg.Robot.AESKeyEnv, err)
		}
	}
	wk := work.NewWork(&workconfig.Config{CorpID: cfg.CorpID, CorpSecret: sec.AppSecret, AgentID: cfg.App.AgentID, Cache: a.tokens})
	a.webhooks = wk.GetRobot()
	if cfg.App.AgentID != "" {
		if a.appKey, err = aesKey(sec.AppAESKey); err != nil {
			return nil, fmt.Errorf("wechat app: %s: %w", cfg.App.AESKeyEnv, err)
		}
		a.appMsg = wk.GetMessage()
	}
	if cfg.OfficialAccount.AppID != "" {
		a.oa = officialaccount.NewOfficialAccount(&oaconfig.Config{
			AppID: cfg.OfficialAccount.AppID, AppSecret: sec.OASecret, Token: sec.OAToken,
			EncodingAESKey: sec.OAAESKey, Cache: a.tokens,
		})
	}
	if a.robotKey == nil && a.appKey == nil && a.oa == nil && len(sec.WebhookKeys) == 0 {
		return nil, fmt.Errorf("wechat adapter has nothing to do: set %s (robot), wechat.app.agent_id, wechat.official_account.app_id or %s", cfg.Robot.TokenEnv, cfg.WebhookKeysEnv)
	}
	return a, nil
}

var silenceOnce sync.Once

// silenceSDKLog turns off logrus, which the SDK logs through: its root
// package sets Debug level on import, and its Official Account server then
// logs raw messages, residents' words and phone numbers included. Nothing
// else in the hub uses logrus.
func silenceSDKLog() {
	silenceOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.PanicLevel)
	})
}

// configureSDK points the SDK's package-global HTTP layer at the configured
// hosts. Its clients take no context, so the default client gets a timeout
// lest a hung WeCom connection holds a sender forever.
func configureSDK(cfg Config, client *http.Client) {
	switch {
	case client != nil:
		util.DefaultHTTPClient = client
	case util.DefaultHTTPClient == http.DefaultClient:
		util.DefaultHTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.APIBase == DefaultAPIBase && cfg.OAAPIBase == DefaultOAAPIBase {
		util.SetURIModifier(nil)
		return
	}
	util.SetURIModifier(func(uri string) string {
		if rest, ok := strings.CutPrefix(uri, DefaultAPIBase); ok {
			return cfg.APIBase + rest
		}
		if rest, ok := strings.CutPrefix(uri, DefaultOAAPIBase); ok {
			return cfg.OAAPIBase + rest
		}
		return uri
	})
}

// Handler serves the callback URLs:
//
//	GET|POST /wechat/robot   intelligent robot (JSON, encrypted)
//	GET|POST /wechat/app     self-built app (XML, encrypted)
//	GET|POST /wechat/oa      Official Account (XML, plain or encrypted)
//	GET      /healthz        liveness
//
// GET is the platform's URL verification; POST delivers a message.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathReady, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	off := func(what string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, what+" is not configured on this hub", http.StatusNotFound)
		}
	}
	if a.robotKey != nil {
		mux.HandleFunc(PathRobot, a.serveRobot)
	} else {
		mux.Handle(PathRobot, off("the intelligent robot"))
	}
	if a.appKey != nil {
		mux.HandleFunc(PathApp, a.serveApp)
	} else {
		mux.Handle(PathApp, off("the WeCom app"))
	}
	if a.oa != nil {
		mux.HandleFunc(PathOA, a.serveOA)
	} else {
		mux.Handle(PathOA, off("the Official Account"))
	}
	return mux
}

// Run serves the callback URLs on Config.Listen until ctx ends, then shuts
// the server down, letting requests in flight finish (bounded).
func (a *Adapter) Run(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("wechat callbacks: listen on %s: %w", a.cfg.Listen, err)
	}
	a.addrMu.Lock()
	a.addr = ln.Addr()
	a.addrMu.Unlock()
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.log.Info("wechat callbacks ready", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("wechat callbacks: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shut)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("wechat callbacks: shut down: %w", err)
	}
	return nil
}

// Addr is the address Run listens on, or nil before it does.
func (a *Adapter) Addr() net.Addr {
	a.addrMu.Lock()
	defer a.addrMu.Unlock()
	return a.addr
}

// reject answers a refused callback and logs why, never with the payload.
func (a *Adapter) reject(w http.ResponseWriter, endpoint string, status int, reason string, err error) {
	msg := reason
	if err != nil {
		msg = reason + ": " + clip(err.Error(), 200)
	}
	a.log.Warn("wechat callback rejected", "endpoint", endpoint, "status", status, "reason", msg)
	http.Error(w, msg, status)
}

// rejectContent answers a callback whose decrypted content is refused. The
// log line keeps only the reason: a decoder's error can quote a fragment of
// the message, and messages carry residents' words.
func (a *Adapter) rejectContent(w http.ResponseWriter, endpoint, reason string, err error) {
	a.log.Warn("wechat callback rejected", "endpoint", endpoint, "status", http.StatusBadRequest, "reason", reason)
	http.Error(w, reason+": "+clip(err.Error(), 200), http.StatusBadRequest)
}

// rejectCheck maps a failed signature, window or nonce check to its answer.
func (a *Adapter) rejectCheck(w http.ResponseWriter, endpoint string, err error) {
	switch {
	case errors.Is(err, errSignature):
		a.reject(w, endpoint, http.StatusUnauthorized, "signature does not match", nil)
	case errors.Is(err, errStale):
		a.reject(w, endpoint, http.StatusForbidden, "stale request", err)
	case errors.Is(err, errReplay):
		a.reject(w, endpoint, http.StatusConflict, "replayed request", err)
	default:
		a.reject(w, endpoint, http.StatusServiceUnavailable, "cannot check the request now", err)
	}
}

// readBody reads at most MaxBody bytes; ok is false when it answered already.
func (a *Adapter) readBody(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.reject(w, endpoint, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBody), nil)
		return nil, false
	case err != nil:
		a.reject(w, endpoint, http.StatusBadRequest, "cannot read body", err)
		return nil, false
	}
	return body, true
}

type signedQuery struct{ signature, timestamp, nonce, echostr string }

func querySigned(r *http.Request, sigParam string) signedQuery {
	q := r.URL.Query()
	return signedQuery{q.Get(sigParam), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr")}
}

// serveRobot is the intelligent robot's callback URL: JSON {"encrypt"} and
// our own decryption (the SDK's refuses the robot's empty receive id).
func (a *Adapter) serveRobot(w http.ResponseWriter, r *http.Request) {
	a.serveEncrypted(w, r, "robot", a.sec.RobotToken,
		func(body []byte) (string, error) {
			var env struct {
				Encrypt string `json:"encrypt"`
			}
			err := json.Unmarshal(body, &env)
			return env.Encrypt, err
		}, `body is not {"encrypt": ...}`,
		func(cipherText string) ([]byte, error) {
			plain, rid, err := decrypt(a.robotKey, cipherText)
			if err == nil && rid != a.cfg.Robot.ReceiveID {
				err = fmt.Errorf("%w: receive id %q, want %q", errCiphertext, clip(rid, 40), a.cfg.Robot.ReceiveID)
			}
			return plain, err
		},
		func(plain []byte) (*bot.Event, error) { return DecodeRobot(plain, a.cfg.Robot.Names, a.now()) })
}

// serveApp is the self-built app's callback URL: XML <Encrypt>, whose
// receive id is the corp id, so the SDK's decryption fits.
func (a *Adapter) serveApp(w http.ResponseWriter, r *http.Request) {
	a.serveEncrypted(w, r, "app", a.sec.AppToken,
		func(body []byte) (string, error) {
			var env struct {
				Encrypt string `xml:"Encrypt"`
			}
			err := xml.Unmarshal(body, &env)
			return env.Encrypt, err
		}, "body is not <xml><Encrypt>...</Encrypt></xml>",
		func(cipherText string) ([]byte, error) {
			_, plain, err := util.DecryptMsg(a.cfg.CorpID, cipherText, a.sec.AppAESKey)
			return plain, err
		},
		func(plain []byte) (*bot.Event, error) { return DecodeApp(plain, a.cfg.App.AgentID, a.now()) })
}

// serveEncrypted is what the robot and app callback URLs share: a GET
// verifies the URL (decrypt echostr and answer it), a POST carries an
// encrypted message; both are checked for signature, freshness and replay
// before anything is decrypted, and a message is published before WeCom
// gets its answer.
func (a *Adapter) serveEncrypted(w http.ResponseWriter, r *http.Request, ep, token string,
	envelope func(body []byte) (string, error), badEnvelope string,
	open func(cipherText string) ([]byte, error), decode func(plain []byte) (*bot.Event, error)) {
	q := querySigned(r, "msg_signature")
	var cipherText string
	switch r.Method {
	case http.MethodGet:
		cipherText = q.echostr
	case http.MethodPost:
		body, ok := a.readBody(w, r, ep)
		if !ok {
			return
		}
		enc, err := envelope(body)
		if err != nil || enc == "" {
			a.reject(w, ep, http.StatusBadRequest, badEnvelope, err)
			return
		}
		cipherText = enc
	default:
		a.reject(w, ep, http.StatusMethodNotAllowed, "use GET or POST", nil)
		return
	}
	if q.signature == "" || cipherText == "" {
		a.reject(w, ep, http.StatusUnauthorized, "msg_signature, timestamp, nonce and the ciphertext are required", nil)
		return
	}
	if !signatureOK(q.signature, token, q.timestamp, q.nonce, cipherText) {
		a.rejectCheck(w, ep, errSignature)
		return
	}
	release, err := a.guard.check(r.Context(), ep, q.timestamp, q.nonce)
	if err != nil {
		a.rejectCheck(w, ep, err)
		return
	}
	plain, err := open(cipherText)
	if err != nil {
		release()
		a.reject(w, ep, http.StatusBadRequest, "bad ciphertext", err)
		return
	}
	if r.Method == http.MethodGet {
		release() // verification is not a message: WeCom may repeat it
		_, _ = w.Write(plain)
		return
	}
	e, err := decode(plain)
	a.take(w, r, ep, e, err, release)
}

// DecodeRobot parses and normalises a decrypted robot callback: the fuzzed
// entry point shared by the HTTP handler.
func DecodeRobot(plain []byte, names []string, now time.Time) (*bot.Event, error) {
	var m RobotMessage
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("robot message is not JSON: %w", err)
	}
	return NormaliseRobot(&m, names, now)
}

// DecodeApp parses and normalises a decrypted app callback.
func DecodeApp(plain []byte, agentID string, now time.Time) (*bot.Event, error) {
	var m AppMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("app message is not XML: %w", err)
	}
	return NormaliseApp(&m, agentID, now)
}

// serveOA is the Official Account's server URL. The SDK's server parses,
// decrypts (safe mode) and answers; it checks neither freshness nor replays,
// and writes "success" before the message is stored, so its answer is held
// back until the event is published.
func (a *Adapter) serveOA(w http.ResponseWriter, r *http.Request) {
	const ep = "oa"
	q := querySigned(r, "signature")
	if q.signature == "" {
		a.reject(w, ep, http.StatusUnauthorized, "signature, timestamp and nonce are required", nil)
		return
	}
	if !signatureOK(q.signature, a.sec.OAToken, q.timestamp, q.nonce) {
		a.rejectCheck(w, ep, errSignature)
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		var ok bool
		if body, ok = a.readBody(w, r, ep); !ok {
			return
		}
	} else if r.Method != http.MethodGet {
		a.reject(w, ep, http.StatusMethodNotAllowed, "use GET or POST", nil)
		return
	}
	release, err := a.guard.check(r.Context(), ep, q.timestamp, q.nonce)
	if err != nil {
		a.rejectCheck(w, ep, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	held := &heldResponse{header: http.Header{}}
	srv := a.oa.GetServer(r, held)
	var (
		e    *bot.Event
		nerr = ErrIgnored
	)
	srv.SetMessageHandler(func(m *oamessage.MixMessage) *oamessage.Reply {
		e, nerr = NormaliseOA(OAMessage{
			OpenID: string(m.FromUserName), MsgID: m.MsgID, MsgType: string(m.MsgType),
			Content: m.Content, Recognition: m.Recognition, CreateTime: m.CreateTime,
		}, a.now())
		return nil
	})
	if err := serveSafely(srv.Serve); err != nil {
		release()
		a.rejectContent(w, ep, "official account message refused", err)
		return
	}
	if r.Method == http.MethodGet {
		release()
		held.flush(w)
		return
	}
	if !a.takeEvent(w, r, ep, e, nerr, release) {
		return
	}
	if held.body.Len() == 0 {
		_, _ = io.WriteString(held, "success")
	}
	held.flush(w)
}

// serveSafely turns a panic inside the SDK's server (its renderer panics on
// write errors) into an error.
func serveSafely(serve func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sdk server panicked: %v", p)
		}
	}()
	return serve()
}

// heldResponse records what the SDK's server writes, to send it only once the
// message is safely published.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header         { return h.header }
func (h *heldResponse) Write(b []byte) (int, error) { return h.body.Write(b) }
func (h *heldResponse) WriteHeader(status int)      { h.status = status }

func (h *heldResponse) flush(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	_, _ = w.Write(h.body.Bytes())
}

// take answers a robot or app callback: 200 once the event is published (or
// when there is nothing to publish), an error status otherwise.
func (a *Adapter) take(w http.ResponseWriter, r *http.Request, ep string, e *bot.Event, nerr error, release func()) {
	if a.takeEvent(w, r, ep, e, nerr, release) {
		w.WriteHeader(http.StatusOK)
	}
}

// takeEvent publishes e once per platform message id. It reports true when
// the caller should answer success; otherwise it has answered already.
func (a *Adapter) takeEvent(w http.ResponseWriter, r *http.Request, ep string, e *bot.Event, nerr error, release func()) bool {
	switch {
	case errors.Is(nerr, ErrIgnored):
		return true
	case nerr != nil:
		release()
		a.rejectContent(w, ep, "malformed message", nerr)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	key := "wechat:callback:" + e.ID
	claim, err := a.dedup.Claim(ctx, key, bot.DefaultHold)
	if err != nil {
		release()
		a.reject(w, ep, http.StatusServiceUnavailable, "cannot take the message now", err)
		return false
	}
	switch claim {
	case bot.ClaimDone:
		a.log.Info("wechat callback repeated", "endpoint", ep, "event", e.ID)
		return true
	case bot.ClaimBusy:
		// The first delivery is being published right now; if it fails,
		// the platform's next retry must still find the door open.
		release()
		a.reject(w, ep, http.StatusServiceUnavailable, "the same message is being taken; retry", nil)
		return false
	}
	settle := context.WithoutCancel(ctx)
	if err := bot.PublishEvent(ctx, a.pub, e); err != nil {
		_ = a.dedup.Release(settle, key)
		release()
		a.reject(w, ep, http.StatusServiceUnavailable, "the hub could not take the message now", err)
		return false
	}
	if err := a.dedup.Done(settle, key, bot.DefaultKeep); err != nil {
		// Published already; a retry would be dropped by the hub's own
		// de-duplication of event ids.
		a.log.Warn("wechat callback: dedup done failed", "event", e.ID, "err", err)
	}
	a.log.Info("wechat callback taken", "endpoint", ep, "event", e.ID, "chat", e.Chat.Key(), "kind", e.Kind)
	return true
}
