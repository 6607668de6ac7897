package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	oamessage "github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"
	workmessage "github.com/silenceper/wechat/v2/work/message"
	"github.com/silenceper/wechat/v2/work/robot"
	"golang.org/x/time/rate"

	"github.com/jingminhub/jingmin/bot"
)

// ErrReplyWindowClosed is the reason an answer to an Official Account user is
// not delivered: WeChat accepts customer-service messages only within 48
// hours of the user's last message (errcode 45015). Send returns it wrapped
// in bot.Permanent, so the hub records the answer as undeliverable with this
// reason instead of retrying or pretending it was sent.
var ErrReplyWindowClosed = errors.New("official account user has not written in the last 48 hours, so WeChat refuses the reply (errcode 45015); reach the resident another way")

// WeCom error codes the adapter acts on.
const (
	codeBusy            = -1    // system busy: retry
	codeTokenInvalid    = 40014 // access token invalid: refetch
	codeTokenExpired    = 42001 // access token expired: refetch
	codeFrequency       = 45009 // frequency limit: back off
	codeReplyWindow     = 45015 // customer-service reply outside 48 hours
	codeConcurrency     = 45033 // too many calls at once: retry
	codeReplyQuota      = 45047 // customer-service quota for this window used up
	maxFrequencyRetries = 3
)

// WeCom's size limits, in bytes of UTF-8: app messages and webhook text take
// 2048, webhook markdown 4096. Past them WeCom cuts silently or refuses the
// message, so the adapter cuts first, visibly.
const (
	maxTextBytes     = 2048
	maxMarkdownBytes = 4096
)

// MaxGroupTextBytes is how much text one group message takes, for callers
// that must refuse rather than see a message cut (broadcast alerts).
const MaxGroupTextBytes = maxMarkdownBytes

// fit cuts s to at most n bytes on a character boundary, marking the cut.
func fit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…（已截断）"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Send delivers o: a group message through the event's response_url when it
// is still usable, else the group's webhook robot; a direct message to a
// WeCom user through the app (or the robot's single chat when answering
// there); to an Official Account user through the customer-service API.
// Failures no retry can fix are bot.Permanent, with the reason.
func (a *Adapter) Send(ctx context.Context, o *bot.Outbound) error {
	if o.Platform != bot.WeChat {
		return bot.Permanent(fmt.Errorf("wechat cannot deliver a %s message", o.Platform))
	}
	if o.Ref.Purpose == purposeMassSend {
		_, err := a.createMassSend(ctx, o)
		return err
	}
	if o.Ref.Purpose == purposeMassSendCancel {
		return a.cancelMassSend(ctx, o)
	}
	if o.Chat != nil && o.Chat.Platform != "" && o.Chat.Platform != bot.WeChat {
		return bot.Permanent(fmt.Errorf("wechat cannot deliver to a %s chat", o.Chat.Platform))
	}
	text := bot.Truncate(o.Text, bot.MaxTextRunes)
	if strings.TrimSpace(text) == "" {
		return bot.Permanent(errors.New("nothing to send: empty text"))
	}
	if o.Chat != nil && o.Chat.Type == bot.Group {
		return a.sendGroup(ctx, o, text)
	}
	to := o.ToUser
	if o.Chat != nil {
		to = o.Chat.ID
	}
	if chat, ok := strings.CutPrefix(to, KFPrefix); ok {
		if a.kf == nil {
			return bot.Permanent(errors.New("no customer-service account is configured (wechat.kf.open_kfid)"))
		}
		return a.kf.send(ctx, chat, plainText(o, text))
	}
	if openID, ok := strings.CutPrefix(to, OAPrefix); ok {
		return a.sendOA(ctx, openID, plainText(o, text))
	}
	if o.Card != nil && o.Chat == nil {
		_, err := a.sendCard(ctx, o, text)
		return err
	}
	if used, err := a.tryResponseURL(ctx, o, text); used || err != nil {
		return err
	}
	return a.sendApp(ctx, to, o, text)
}

var _ bot.ReceiptSender = (*Adapter)(nil)

// SendReceipt is Send that names the platform's id where there is one: a
// card's response_code, which its next update takes, or a mass-send task's
// msgid, which is how the task is followed.
func (a *Adapter) SendReceipt(ctx context.Context, o *bot.Outbound) (string, error) {
	if o.Ref.Purpose == purposeMassSend {
		return a.createMassSend(ctx, o)
	}
	if o.Platform == bot.WeChat && o.Card != nil && o.Chat == nil && o.ToUser != "" && !strings.HasPrefix(o.ToUser, OAPrefix) {
		text := bot.Truncate(o.Text, bot.MaxTextRunes)
		if strings.TrimSpace(text) == "" {
			return "", bot.Permanent(errors.New("nothing to send: empty text"))
		}
		return a.sendCard(ctx, o, text)
	}
	return "", a.Send(ctx, o)
}

// sendGroup posts into a group chat.
func (a *Adapter) sendGroup(ctx context.Context, o *bot.Outbound, text string) error {
	if used, err := a.tryResponseURL(ctx, o, text); used || err != nil {
		return err
	}
	key, ok := a.sec.WebhookKeys[o.Chat.ID]
	if !ok {
		return bot.Permanent(fmt.Errorf("group %s has no webhook robot key and no usable response_url: add its key to %s", o.Chat.ID, a.cfg.WebhookKeysEnv))
	}
	return a.sendWebhook(ctx, key, o, text)
}

// tryResponseURL answers through the inbound event's response_url: WeCom
// honours each once and for an hour, so it is claimed in the deduper (shared
// by all senders) before use, and an expired, used or refused one leaves
// the message to the caller's fallback. used reports that the message went.
func (a *Adapter) tryResponseURL(ctx context.Context, o *bot.Outbound, text string) (used bool, err error) {
	u, expires, ok := decodeReplyHandle(o.ReplyHandle)
	if !ok || !a.now().Before(expires) {
		return false, nil
	}
	sum := sha256.Sum256([]byte(u))
	key := "wechat:response_url:" + hex.EncodeToString(sum[:16])
	claim, err := a.dedup.Claim(ctx, key, time.Minute)
	if err != nil {
		return false, fmt.Errorf("claim response_url: %w", err)
	}
	if claim != bot.ClaimNew {
		return false, nil // used by an earlier message (or being used now)
	}
	settle := context.WithoutCancel(ctx)
	body := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": fit(withMentions(text, o.AtUsers), maxMarkdownBytes)}}
	a.count(ctx, "aibot/response")
	resp, err := util.PostJSONContext(ctx, u, body)
	if err != nil {
		// Unknown whether WeCom took it: free the handle so the retry tries
		// it again rather than post twice through two channels.
		_ = a.dedup.Release(settle, key)
		return false, fmt.Errorf("post to response_url: %w", redact(err))
	}
	_ = a.dedup.Done(settle, key, responseURLTTL+time.Minute)
	var res util.CommonError
	if err := json.Unmarshal(resp, &res); err != nil || res.ErrCode != 0 {
		a.log.Info("response_url refused; falling back", "key", o.Key, "errcode", res.ErrCode)
		return false, nil
	}
	return true, nil
}

// withMentions puts WeCom's markdown @ of each user in front of the text.
func withMentions(text string, at []string) string {
	if len(at) == 0 {
		return text
	}
	var b strings.Builder
	for _, u := range at {
		b.WriteString("<@" + u + "> ")
	}
	return b.String() + text
}

// sendWebhook posts through a group's webhook robot, within its rate, backing
// off on a frequency-limit answer.
func (a *Adapter) sendWebhook(ctx context.Context, key string, o *bot.Outbound, text string) error {
	var payload any
	if o.Format == bot.FormatMarkdown {
		var m robot.WebhookSendMarkdownOption
		m.MsgType = "markdown"
		m.Markdown.Content = fit(withMentions(text, o.AtUsers), maxMarkdownBytes)
		payload = m
	} else {
		var t robot.WebhookSendTextOption
		t.MsgType = "text"
		t.Text.Content = fit(text, maxTextBytes)
		t.Text.MentionedList = o.AtUsers
		payload = t
	}
	// A robot at its rate, or told 45009, holds up only its own group: the
	// message is asked for again when the robot may speak, and the relay
	// keeps it as a scheduled row meanwhile.
	r := a.limiter(key).Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return bot.RetryAfter(d, fmt.Errorf("group %s webhook robot is at its %d messages a minute", o.Chat.ID, a.cfg.WebhookPerMinute))
	}
	// The SDK returns err == nil when WeCom answers a non-zero errcode.
	a.count(ctx, "webhook/send")
	info, err := a.webhooks.RobotBroadcast(key, payload)
	if err != nil {
		return fmt.Errorf("post to group %s webhook: %w", o.Chat.ID, redactKey(err, key))
	}
	switch info.ErrCode {
	case 0:
		return nil
	case codeFrequency:
		a.log.Warn("webhook robot over its frequency limit; asking again later", "chat", o.Chat.ID, "wait", a.backoff)
		return bot.RetryAfter(a.backoff, fmt.Errorf("group %s webhook frequency limit (45009)", o.Chat.ID))
	}
	return classify(fmt.Errorf("group %s webhook: errcode %d: %s", o.Chat.ID, info.ErrCode, clip(info.ErrMsg, 120)), info.ErrCode)
}

// limiter is the bucket of one webhook robot: WebhookPerMinute spread evenly,
// so no minute ever sees more than the limit plus one.
func (a *Adapter) limiter(key string) *rate.Limiter {
	a.limitMu.Lock()
	defer a.limitMu.Unlock()
	l, ok := a.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(a.cfg.WebhookPerMinute)), 1)
		a.limiters[key] = l
	}
	return l
}

// appMarkdown is the app message type the SDK has no struct for.
type appMarkdown struct {
	*workmessage.SendRequestCommon
	Markdown struct {
		Content string `json:"content"`
	} `json:"markdown"`
}

// sendApp sends a WeCom app message to one user (an officer).
func (a *Adapter) sendApp(ctx context.Context, to string, o *bot.Outbound, text string) error {
	if a.appMsg == nil {
		return bot.Permanent(fmt.Errorf("no WeCom app is configured (wechat.app.agent_id) to message user %s", to))
	}
	common := &workmessage.SendRequestCommon{ToUser: to, AgentID: a.cfg.App.AgentID}
	wait := a.backoff
	for attempt := 0; ; attempt++ {
		var (
			res *workmessage.SendResponse
			err error
		)
		a.count(ctx, "message/send")
		if o.Format == bot.FormatMarkdown {
			req := appMarkdown{SendRequestCommon: common}
			req.MsgType = "markdown"
			req.Markdown.Content = fit(text, maxTextBytes)
			res, err = a.appMsg.Send("MessageSendMarkdown", req)
		} else {
			res, err = a.appMsg.SendText(workmessage.SendTextRequest{SendRequestCommon: common, Text: workmessage.TextField{Content: fit(text, maxTextBytes)}})
		}
		var ce *util.CommonError
		switch {
		case err == nil && res != nil && (res.InvalidUser != "" || res.UnlicensedUser != ""):
			return bot.Permanent(fmt.Errorf("app message to %s: WeCom says the user is unknown, outside the app's visible range or unlicensed", to))
		case err == nil:
			return nil
		case errors.As(err, &ce) && ce.ErrCode == codeFrequency && attempt < maxFrequencyRetries:
			a.log.Warn("app messages over the frequency limit; backing off", "wait", wait)
			if err := bot.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("app message to %s: frequency limit (45009): %w", to, err)
			}
			wait *= 2
			continue
		case errors.As(err, &ce):
			if ce.ErrCode == codeTokenInvalid || ce.ErrCode == codeTokenExpired {
				a.forgetWorkToken()
			}
			return classify(fmt.Errorf("app message to %s: errcode %d: %s", to, ce.ErrCode, clip(ce.ErrMsg, 120)), ce.ErrCode)
		}
		// Network, HTTP status or token fetch failures: worth a retry.
		return fmt.Errorf("app message to %s: %w", to, redact(err))
	}
}

// forgetWorkToken drops the cached app token after WeCom called it invalid
// (revoked, or fetched anew elsewhere), so the next send fetches a fresh one.
// The key is the SDK's (credential.WorkAccessToken).
func (a *Adapter) forgetWorkToken() {
	_ = a.tokens.Delete(fmt.Sprintf("gowechat_work__access_token_%s_%s", a.cfg.CorpID, a.cfg.App.AgentID))
}

// customerSendURL is the Official Account customer-service message API. It is
// called through the SDK's HTTP layer rather than message.Manager.Send,
// which flattens the errcode into a string and takes no context, when
// 45015 must be told from a transient failure.
const customerSendURL = DefaultOAAPIBase + "/cgi-bin/message/custom/send?access_token="

// sendOA answers an Official Account user.
func (a *Adapter) sendOA(ctx context.Context, openID, text string) error {
	if a.oa == nil {
		return bot.Permanent(errors.New("no official account is configured (wechat.official_account.app_id)"))
	}
	wait := a.backoff
	for attempt := 0; ; attempt++ {
		token, err := a.oa.GetAccessTokenContext(ctx)
		if err != nil {
			return fmt.Errorf("official account token: %w", redact(err))
		}
		a.count(ctx, "message/custom/send")
		resp, err := util.PostJSONContext(ctx, customerSendURL+token, oamessage.NewCustomerTextMessage(openID, fit(text, maxTextBytes)))
		if err != nil {
			return fmt.Errorf("official account reply: %w", redact(err))
		}
		var res util.CommonError
		if err := json.Unmarshal(resp, &res); err != nil {
			return fmt.Errorf("official account reply: answer is not JSON: %w", err)
		}
		switch res.ErrCode {
		case 0:
			return nil
		case codeReplyWindow:
			return bot.Permanent(ErrReplyWindowClosed)
		case codeReplyQuota:
			return bot.Permanent(errors.New("official account reply quota for this resident's 48-hour window is used up (errcode 45047); reach the resident another way"))
		case codeFrequency:
			if attempt < maxFrequencyRetries {
				if err := bot.Sleep(ctx, wait); err != nil {
					return fmt.Errorf("official account reply: frequency limit (45009): %w", err)
				}
				wait *= 2
				continue
			}
		case codeTokenInvalid, codeTokenExpired:
			_ = a.tokens.Delete(fmt.Sprintf("gowechat_officialaccount__access_token_%s", a.cfg.OfficialAccount.AppID))
		}
		return classify(fmt.Errorf("official account reply: errcode %d: %s", res.ErrCode, clip(res.ErrMsg, 120)), res.ErrCode)
	}
}

// classify marks err permanent unless code is one a retry can fix.
func classify(err error, code int64) error {
	switch code {
	case codeBusy, codeFrequency, codeConcurrency, codeTokenInvalid, codeTokenExpired:
		return err
	}
	return bot.Permanent(err)
}

// plainText is text for channels without markdown: officers' cards lose
// their heading marks.
func plainText(o *bot.Outbound, text string) string {
	if o.Format != bot.FormatMarkdown {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			lines[i] = strings.TrimLeft(l, "# ")
		}
	}
	return strings.Join(lines, "\n")
}

// secretParams are query parameters that carry credentials; the SDK puts
// them in URLs and its errors quote the URL.
var secretParams = regexp.MustCompile(`(?i)\b(access_token|corpsecret|secret|key|response_code|code)=[^&\s"]+`)

// redact hides credentials in an SDK error's text. It keeps the message only:
// the original error would still quote them.
func redact(err error) error {
	return errors.New(secretParams.ReplaceAllString(err.Error(), "$1=***"))
}

// redactKey also removes a webhook key wherever it appears.
func redactKey(err error, key string) error {
	msg := redact(err).Error()
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "***")
	}
	return errors.New(msg)
}
