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
	"github.com/silenceper/wechat/v2/work/externalcontact"
	workmessage "github.com/silenceper/wechat/v2/work/message"
	"github.com/silenceper/wechat/v2/work/robot"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/httpserver"
)

// Paths the callback server answers; each is configured in the WeCom admin
// console (robot, app) or the Official Account's server settings.
const (
	PathRobot = "/wechat/robot"
	PathApp   = "/wechat/app"
	PathOA    = "/wechat/oa"
	PathReady = "/healthz"
)

// MaxBody bounds a callback body; WeCom's are a few KiB. A longer body is
// answered 413 without being read further.
const MaxBody = 64 << 10

// smallBody is the most a callback may declare and still be read without
// taking a large-body slot; every real callback fits.
const smallBody = 16 << 10

// DefaultLargeBodies is how many callbacks larger than smallBody (or of
// unknown length) are read at once; the rest are answered 503. Memory for
// bodies stays below MaxConns×smallBody + DefaultLargeBodies×MaxBody however
// many clients send.
const DefaultLargeBodies = 16

// DefaultMaxConns caps the callback server's open connections.
const DefaultMaxConns = 512

// publishTimeout keeps the answer to WeCom inside its one-second budget.
const publishTimeout = 800 * time.Millisecond

// Adapter is the WeChat side of the hub.
type Adapter struct {
	cfg   Config
	sec   Secrets
	pub   bot.Publisher
	dedup bot.Deduper
	keep  time.Duration // how long a published message id is remembered
	log   *slog.Logger
	now   func() time.Time
	guard replayGuard

	robotKey []byte // nil: robot off
	appKey   []byte // nil: app callbacks off

	tokens   cache.Cache
	appMsg   *workmessage.Client
	webhooks *robot.Client
	oa       *officialaccount.OfficialAccount // nil: Official Account off
	kf       *kfService                       // nil: customer service off
	mass     MassSendState                    // nil: customer-group mass sends off
	contacts *externalcontact.Client

	backoff time.Duration

	limitMu  sync.Mutex
	limiters map[string]*rate.Limiter // webhook key → bucket

	addrMu sync.Mutex
	addr   net.Addr

	largeBodies chan struct{} // a slot per large body being read
	maxConns    int
	rejects     *rejectLog
	counter     bot.APICounter

	archiveNotify func(ctx context.Context) // nil: no archive reader to nudge
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
	large   int
	conns   int
	counter bot.APICounter
	archive func(ctx context.Context)
	kf      KFState
	mass    MassSendState
	keep    time.Duration
}

// WithCounter counts every call to WeCom (the API budget, metrics).
func WithCounter(c bot.APICounter) Option { return func(o *options) { o.counter = c } }

// CountCalls is WithCounter for an adapter built already (the hub wires
// its budget into whichever adapter it is given); call it before Run or
// any Send.
func (a *Adapter) CountCalls(c bot.APICounter) { a.counter = c }

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

// WithDedupKeep sets how long a published callback's message id is
// remembered to drop WeCom's retry of it. Default bot.DefaultKeep.
func WithDedupKeep(d time.Duration) Option { return func(o *options) { o.keep = d } }

// New builds the adapter from cfg (defaults applied, then validated) and the
// secrets in the environment. pub receives inbound events; dedup remembers
// callbacks already taken and response_urls already used.
func New(cfg Config, pub bot.Publisher, dedup bot.Deduper, log *slog.Logger, opts ...Option) (*Adapter, error) {
	o := options{now: time.Now, lookup: os.LookupEnv, backoff: time.Second, large: DefaultLargeBodies, conns: DefaultMaxConns, keep: bot.DefaultKeep}
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
		backoff: o.backoff, limiters: map[string]*rate.Limiter{}, counter: o.counter, keep: o.keep,
		largeBodies: make(chan struct{}, max(o.large, 1)), maxConns: o.conns, archiveNotify: o.archive,
	}
	a.rejects = newRejectLog(a.log, o.now)
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
	if cfg.App.AgentID != "" && o.mass != nil {
		a.mass, a.contacts = o.mass, wk.GetExternalContact()
	}
	if cfg.KF.OpenKFID != "" {
		if a.kf, err = newKFService(a, o.kf); err != nil {
			return nil, err
		}
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
//	GET|POST /wechat/oa      Official Account (XML; encrypted only when an EncodingAESKey is set)
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
// the server down, letting requests in flight finish (bounded). The server
// is bounded like every hub server (httpserver): timeouts, a connection cap
// and MaxBody per request.
func (a *Adapter) Run(ctx context.Context) error {
	srv, err := httpserver.Listen(ctx, a.cfg.Listen, a.Handler(), a.log, httpserver.Options{
		Name: "wechat callbacks", ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxConns: a.maxConns, BodyLimit: MaxBody,
	})
	if err != nil {
		return err
	}
	a.addrMu.Lock()
	a.addr = srv.Addr()
	a.addrMu.Unlock()
	a.log.Info("wechat callbacks ready", "addr", srv.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	if a.kf != nil {
		g.Go(func() error { return a.kf.run(gctx) })
	}
	if a.mass != nil {
		g.Go(func() error { return a.followMassSends(gctx) })
	}
	return g.Wait()
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
	a.rejects.note(endpoint, status, reason, msg)
	http.Error(w, msg, status)
}

// rejectContent answers a callback whose decrypted content is refused. The
// log line keeps only the reason: a decoder's error can quote a fragment of
// the message, and messages carry residents' words.
func (a *Adapter) rejectContent(w http.ResponseWriter, endpoint, reason string, err error) {
	a.rejects.note(endpoint, http.StatusBadRequest, reason, reason)
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
// A body that declares more than smallBody, or no length, is read only in
// one of the large-body slots: with all taken it is answered 503 (WeCom
// retries; its own callbacks are never that large).
func (a *Adapter) readBody(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	if r.ContentLength > MaxBody {
		a.reject(w, endpoint, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBody), nil)
		return nil, false
	}
	if r.ContentLength < 0 || r.ContentLength > smallBody {
		select {
		case a.largeBodies <- struct{}{}:
			defer func() { <-a.largeBodies }()
		default:
			a.reject(w, endpoint, http.StatusServiceUnavailable, "too many large bodies being read; retry", nil)
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	switch {
	case httpserver.TooLarge(err):
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
		func(plain []byte) (*bot.Event, error) {
			if a.archiveNotify != nil && isArchiveNotify(plain) {
				a.archiveNotify(r.Context()) // the archive has new messages: see archive_notify.go
				return nil, ErrIgnored
			}
			if a.kf.takeCallback(plain) { // kf_msg_or_event: customer service has messages to pull
				return nil, ErrIgnored
			}
			return DecodeApp(plain, a.cfg.App.AgentID, a.now())
		})
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
	spend, err := a.guard.check(r.Context(), ep, q.timestamp, q.nonce, requestDigest(r.Method, cipherText))
	if err != nil {
		a.rejectCheck(w, ep, err)
		return
	}
	plain, err := open(cipherText)
	if err != nil {
		a.reject(w, ep, http.StatusBadRequest, "bad ciphertext", err)
		return
	}
	if r.Method == http.MethodGet {
		spend()
		_, _ = w.Write(plain)
		return
	}
	e, err := decode(plain)
	if a.takeEvent(w, r, ep, e, err) {
		spend()
		w.WriteHeader(http.StatusOK)
	}
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
//
// The SDK picks plain or safe mode from the caller's encrypt_type, and in
// plain mode the signature covers no content: with an EncodingAESKey
// configured (the account in safe mode), only encrypted messages whose
// msg_signature covers their ciphertext are taken, so no one who merely saw
// a signed URL can post a message of their own.
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
	digest := requestDigest(r.Method, q.echostr)
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var ok bool
		if body, ok = a.readBody(w, r, ep); !ok {
			return
		}
		digest = requestDigest(r.Method, string(body))
		if a.sec.OAAESKey != "" {
			cipherText, ok := a.oaCiphertext(w, r, body)
			if !ok {
				return
			}
			digest = requestDigest(r.Method, cipherText)
		}
	default:
		a.reject(w, ep, http.StatusMethodNotAllowed, "use GET or POST", nil)
		return
	}
	spend, err := a.guard.check(r.Context(), ep, q.timestamp, q.nonce, digest)
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
		a.rejectContent(w, ep, "official account message refused", err)
		return
	}
	if r.Method == http.MethodGet {
		spend()
		held.flush(w)
		return
	}
	if !a.takeEvent(w, r, ep, e, nerr) {
		return
	}
	spend()
	if held.body.Len() == 0 {
		_, _ = io.WriteString(held, "success")
	}
	held.flush(w)
}

// oaCiphertext checks a safe-mode Official Account POST before the SDK sees
// it: encrypt_type=aes, and msg_signature over token, timestamp, nonce and
// the body's ciphertext. It returns the ciphertext, or answers and reports
// false.
func (a *Adapter) oaCiphertext(w http.ResponseWriter, r *http.Request, body []byte) (string, bool) {
	const ep = "oa"
	qs := r.URL.Query()
	if qs.Get("encrypt_type") != "aes" || qs.Get("msg_signature") == "" {
		a.reject(w, ep, http.StatusUnauthorized, "the account is in safe mode: only encrypted messages (encrypt_type=aes, msg_signature) are taken", nil)
		return "", false
	}
	var env oamessage.EncryptedXMLMsg
	var err error
	if strings.Contains(r.Header.Get("Content-Type"), "application/json") { // as the SDK decides
		err = json.Unmarshal(body, &env)
	} else {
		err = xml.Unmarshal(body, &env)
	}
	if err != nil || env.EncryptedMsg == "" {
		a.reject(w, ep, http.StatusBadRequest, "body is not <xml><Encrypt>...</Encrypt></xml>", err)
		return "", false
	}
	if !signatureOK(qs.Get("msg_signature"), a.sec.OAToken, qs.Get("timestamp"), qs.Get("nonce"), env.EncryptedMsg) {
		a.rejectCheck(w, ep, errSignature)
		return "", false
	}
	return env.EncryptedMsg, true
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

// takeEvent publishes e once per platform message id. It reports true when
// the caller should answer success; otherwise it has answered already.
func (a *Adapter) takeEvent(w http.ResponseWriter, r *http.Request, ep string, e *bot.Event, nerr error) bool {
	switch {
	case errors.Is(nerr, ErrIgnored):
		return true
	case nerr != nil:
		a.rejectContent(w, ep, "malformed message", nerr)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	key := "wechat:callback:" + e.ID
	claim, err := a.dedup.Claim(ctx, key, bot.DefaultHold)
	if err != nil {
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
		a.reject(w, ep, http.StatusServiceUnavailable, "the same message is being taken; retry", nil)
		return false
	}
	settle := context.WithoutCancel(ctx)
	if err := bot.PublishEvent(ctx, a.pub, e); err != nil {
		_ = a.dedup.Release(settle, key)
		a.reject(w, ep, http.StatusServiceUnavailable, "the hub could not take the message now", err)
		return false
	}
	if err := a.dedup.Done(settle, key, a.keep); err != nil {
		// Published already; a retry would be dropped by the hub's own
		// de-duplication of event ids.
		a.log.Warn("wechat callback: dedup done failed", "event", e.ID, "err", err)
	}
	a.log.Info("wechat callback taken", "endpoint", ep, "event", e.ID, "chat", bot.LogChat(e.Chat), "kind", e.Kind)
	return true
}
