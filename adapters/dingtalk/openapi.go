package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/bot"
)

// OpenAPI paths the adapter calls.
const (
	pathToken     = "/v1.0/oauth2/accessToken"
	pathGroupSend = "/v1.0/robot/groupMessages/send"
	pathBatchSend = "/v1.0/robot/oToMessages/batchSend"
	headerToken   = "x-acs-dingtalk-access-token"
	// maxResponse bounds what is read of any reply: DingTalk's are small,
	// and a misbehaving proxy must not fill memory.
	maxResponse = 1 << 20
	// throttleTries is how often one call is tried while DingTalk says
	// "too fast" before the hub's own retry takes over.
	throttleTries = 4
)

// apiError is DingTalk's error body: the OpenAPI's {code, message} or the
// older {errcode, errmsg} that some gateways and webhooks still send.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestid"`
	ErrCode   int    `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
}

// String is safe for logs and parked reasons: DingTalk's messages may quote
// a parameter, so they are masked and cut short.
func (e apiError) String() string {
	code, msg := e.Code, e.Message
	if code == "" && e.ErrCode != 0 {
		code = strconv.Itoa(e.ErrCode)
	}
	if msg == "" {
		msg = e.ErrMsg
	}
	if code == "" && msg == "" {
		return "(no error body)"
	}
	return fmt.Sprintf("code=%s: %s", code, bot.Mask(bot.Truncate(msg, 120)))
}

// throttled: DingTalk asks us to slow down (403 QpsLimit..., or the old
// 90018 / 90002 "too many calls" codes, or a plain 429).
func (e apiError) throttled(status int) bool {
	if status == http.StatusTooManyRequests || strings.Contains(e.Code, "QpsLimit") {
		return true
	}
	switch {
	case e.Code == "90018", e.Code == "90002", e.ErrCode == 90018, e.ErrCode == 90002:
		return true
	}
	return false
}

// quotaSpent: the app's monthly API quota is used up (errcode 90020).
func (e apiError) quotaSpent() bool { return e.Code == "90020" || e.ErrCode == 90020 }

// callError is a call DingTalk refused, with what it said.
type callError struct {
	path   string
	status int
	api    apiError
}

func (e *callError) Error() string { return fmt.Sprintf("%s: HTTP %d %s", e.path, e.status, e.api) }

// authFailed: the access token was refused (expired early, revoked).
func (e apiError) authFailed(status int) bool {
	return status == http.StatusUnauthorized || e.Code == "InvalidAuthentication" || e.ErrCode == 40014 || e.ErrCode == 42001
}

// post sends one JSON request and decodes a 200 reply into out. It returns
// the status and, for anything but 200, DingTalk's error body; err is set
// only when no reply came (network, timeout) or a 200 did not decode.
func (a *Adapter) post(ctx context.Context, target, token string, body, out any) (int, apiError, error) {
	return a.request(ctx, http.MethodPost, target, token, body, out)
}

// request is post with another method (the card update is a PUT). Every
// call to DingTalk passes here, so here it is counted.
func (a *Adapter) request(ctx context.Context, method, target, token string, body, out any) (int, apiError, error) {
	var apiErr apiError
	b, err := json.Marshal(body)
	if err != nil {
		return 0, apiErr, permanent(fmt.Errorf("encode request: %w", err))
	}
	if a.opts.counter != nil {
		api := pathOf(target)
		if !strings.HasPrefix(target, a.cfg.OpenAPIHost) {
			api = "sessionWebhook"
		}
		a.opts.counter.CountCall(ctx, bot.DingTalk, a.cfg.AppKey, api)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return 0, apiErr, permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set(headerToken, token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, apiErr, fmt.Errorf("post %s: %w", pathOf(target), stripURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, apiErr, fmt.Errorf("read reply of %s: %w", pathOf(target), err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = json.Unmarshal(raw, &apiErr) // a body that is not DingTalk's shape leaves it empty
		return resp.StatusCode, apiErr, nil
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, apiErr, fmt.Errorf("decode reply of %s: %w", pathOf(target), err)
		}
	}
	return resp.StatusCode, apiErr, nil
}

// call is one OpenAPI call as DingTalk wants it made: within the app's rate
// for that API, with the access token, refreshing the token once if it is
// refused, and backing off while DingTalk says the app is too fast. Errors
// no retry can fix are bot.Permanent; the rest are worth retrying later.
func (a *Adapter) call(ctx context.Context, path string, body, out any) error {
	return a.callMethod(ctx, http.MethodPost, path, body, out)
}

// callMethod is call with another method.
func (a *Adapter) callMethod(ctx context.Context, method, path string, body, out any) error {
	refreshed := false
	for try := 1; ; try++ {
		if err := a.limits.Wait(ctx, path); err != nil {
			return fmt.Errorf("%s: waiting for the rate limit: %w", path, err)
		}
		token, err := a.tokens.Token(ctx)
		if err != nil {
			return err
		}
		status, apiErr, err := a.request(ctx, method, a.cfg.OpenAPIHost+path, token, body, out)
		switch {
		case err != nil:
			return err
		case status == http.StatusOK:
			return nil
		case apiErr.quotaSpent():
			// The month's quota is used up: nothing is sent until the
			// month turns or the quota is raised; the relay asks again
			// later, and meanwhile degrades what can wait.
			if a.opts.counter != nil {
				a.opts.counter.Exhausted(bot.DingTalk, a.cfg.AppKey)
			}
			return bot.RetryAfter(a.opts.quotaRetry, fmt.Errorf("%s: DingTalk's monthly API quota is used up (errcode 90020): %w", path, &callError{path: path, status: status, api: apiErr}))
		case apiErr.authFailed(status) && !refreshed:
			refreshed = true
			a.tokens.Invalidate(ctx, token)
			a.log.Info("dingtalk access token refused; fetching a new one", "api", path, "status", status)
			continue
		case apiErr.authFailed(status):
			return permanent(fmt.Errorf("%s: HTTP %d %s, even with a fresh access token: check the app's permissions", path, status, apiErr))
		case apiErr.throttled(status):
			if try >= throttleTries {
				return fmt.Errorf("%s: throttled by DingTalk %d times (HTTP %d %s); will retry later", path, try, status, apiErr)
			}
			wait := backoff(a.opts.backoff, try)
			a.log.Warn("dingtalk throttled the app; backing off", "api", path, "status", status, "try", try, "wait", wait)
			if err := bot.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("%s: throttled, and gave up waiting: %w", path, err)
			}
			continue
		case status >= 500 || status == http.StatusRequestTimeout:
			return fmt.Errorf("%s: HTTP %d %s", path, status, apiErr)
		default:
			return permanent(&callError{path: path, status: status, api: apiErr})
		}
	}
}

// backoff is base·2^(try-1), capped at 5 s, with up to 25% jitter so that
// processes throttled together do not come back together.
func backoff(base time.Duration, try int) time.Duration {
	d := min(base<<(try-1), 5*time.Second)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// pathOf is the path of an OpenAPI URL, and only "session webhook" for a
// webhook: its query is a credential and must not reach logs.
func pathOf(target string) string {
	if i := strings.Index(target, "?"); i >= 0 {
		target = target[:i]
	}
	if i := strings.Index(target, "://"); i >= 0 {
		if j := strings.Index(target[i+3:], "/"); j >= 0 {
			return target[i+3+j:]
		}
	}
	return target
}

// stripURL keeps net/http's error but not the URL it quotes, which for a
// session webhook carries the session credential.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// limiter is a token bucket per API (DingTalk counts calls per app and API).
// With Redis, a one-second window per API shared by every process of the app
// bounds them together; the local bucket still smooths each process and
// keeps working when Redis does not answer.
type limiter struct {
	qps    int
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time

	mu    sync.Mutex
	local map[string]*rate.Limiter
}

func (l *limiter) Wait(ctx context.Context, api string) error {
	l.mu.Lock()
	lim, ok := l.local[api]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.qps), l.qps)
		l.local[api] = lim
	}
	l.mu.Unlock()
	if err := lim.Wait(ctx); err != nil {
		return err
	}
	if l.rdb == nil {
		return nil
	}
	for {
		sec := l.now().Unix()
		n, err := windowScript.Run(ctx, l.rdb, []string{l.prefix + api + ":" + strconv.FormatInt(sec, 10)}).Int64()
		if err != nil || n <= int64(l.qps) {
			return nil // Redis down: the local bucket bounds this process
		}
		wait := time.Until(time.Unix(sec+1, 0)) + time.Duration(rand.Int64N(int64(50*time.Millisecond)))
		if err := bot.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

var windowScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
return n`)
