package wechat

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/util"
	workconfig "github.com/silenceper/wechat/v2/work/config"
	"github.com/silenceper/wechat/v2/work/kf"
	"github.com/silenceper/wechat/v2/work/kf/sendmsg"
	"github.com/silenceper/wechat/v2/work/kf/syncmsg"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// KFConfig is WeChat customer service (微信客服): residents on personal
// WeChat write one to one to a customer-service account, usually through a
// link pinned in their group's notice. Its callback (kf_msg_or_event)
// arrives on the app's callback URL, and the app's token calls its API, so
// the app must have the customer-service permission.
type KFConfig struct {
	// OpenKFID is the customer-service account (open_kfid); empty turns
	// customer service off.
	OpenKFID string `yaml:"open_kfid"`
}

// KFPrefix marks customer-service residents and chats: "kf:<open_kfid>:
// <external_userid>". The prefix keeps a resident's external id from ever
// being taken for an officer's account and tells Send to answer through
// kf/send_msg.
const KFPrefix = "kf:"

// KF's answer window: WeChat lets an account answer a resident for 48 hours
// after the resident's last message, with at most five messages.
const (
	KFWindow     = 48 * time.Hour
	KFMaxAnswers = 5
)

// ErrKFWindowClosed and ErrKFQuota are why an answer to a customer-service
// resident is not delivered. Send returns them wrapped in bot.Permanent, so
// the answer is recorded as undeliverable with the reason and the officer
// told, never retried or counted as sent.
var (
	ErrKFWindowClosed = errors.New("the resident has not written to customer service in the last 48 hours, so WeChat refuses the answer; reach the resident another way")
	ErrKFQuota        = errors.New("the five answers WeChat allows since the resident's last message are spent; the resident must write again first")
)

// codeKFSession is kf/send_msg's answer outside the window or past its
// quota ("send msg session status invalid").
const codeKFSession = 95018

// KFState is what customer service keeps in the database: the sync_msg
// cursor (so a restart neither loses nor repeats a page), each resident's
// conversation (the group link it came through, its window and answers) and
// the groups' links. *store.Store implements it.
type KFState interface {
	KFCursor(ctx context.Context, openKFID string) (string, error)
	SaveKFCursor(ctx context.Context, openKFID, cursor string) error
	NoteKFScene(ctx context.Context, openKFID, user, scene string) error
	NoteKFMessage(ctx context.Context, openKFID, user string, at time.Time) error
	KFSessionOf(ctx context.Context, openKFID, user string) (*store.KFSession, error)
	CountKFAnswer(ctx context.Context, openKFID, user string) error
	KFLinkByScene(ctx context.Context, scene string) (*store.KFLink, error)
}

var _ KFState = (*store.Store)(nil)

// WithKF gives customer service its database state; required when
// wechat.kf.open_kfid is set.
func WithKF(state KFState) Option { return func(o *options) { o.kf = state } }

// kfMaxPages bounds one pull, so a huge backlog is taken in turns and the
// process stays responsive to its shutdown.
const kfMaxPages = 50

// kfService pulls customer-service messages (kf/sync_msg from the stored
// cursor) when a kf_msg_or_event callback says there are some, and answers
// residents (kf/send_msg) within WeChat's window.
type kfService struct {
	a        *Adapter
	openKFID string
	client   *kf.Client
	token    credential.AccessTokenContextHandle
	state    KFState

	wake chan struct{} // one pending pull at most

	mu        sync.Mutex
	syncToken string // the latest callback's token: sync_msg without one is tightly rate-limited
}

func newKFService(a *Adapter, state KFState) (*kfService, error) {
	if state == nil {
		return nil, errors.New("wechat customer service keeps its cursor in the database: the adapter needs WithKF")
	}
	cfg := &workconfig.Config{CorpID: a.cfg.CorpID, CorpSecret: a.sec.AppSecret, AgentID: a.cfg.App.AgentID, Cache: a.tokens}
	c, err := kf.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("wechat customer service: %w", err)
	}
	return &kfService{
		a: a, openKFID: a.cfg.KF.OpenKFID, client: c, state: state, wake: make(chan struct{}, 1),
		token: credential.NewWorkAccessToken(a.cfg.CorpID, a.sec.AppSecret, a.cfg.App.AgentID, credential.CacheKeyWorkPrefix, a.tokens),
	}, nil
}

// kfCallback is the decrypted kf_msg_or_event callback.
type kfCallback struct {
	MsgType  string `xml:"MsgType"`
	Event    string `xml:"Event"`
	Token    string `xml:"Token"`
	OpenKfID string `xml:"OpenKfId"`
}

// takeCallback reports whether plain is a kf_msg_or_event callback and, if
// so, asks for a pull. The callback carries no message, only the news that
// there are some: it is answered at once and the pull runs on its own.
func (k *kfService) takeCallback(plain []byte) bool {
	if k == nil || !strings.Contains(string(plain), "kf_msg_or_event") {
		return false
	}
	var cb kfCallback
	if err := xml.Unmarshal(plain, &cb); err != nil || cb.MsgType != "event" || cb.Event != "kf_msg_or_event" {
		return false
	}
	if cb.OpenKfID != "" && cb.OpenKfID != k.openKFID {
		k.a.log.Info("kf callback for another customer-service account; ignored", "open_kfid", clip(cb.OpenKfID, 64))
		return true
	}
	if len(cb.Token) <= 128 {
		k.mu.Lock()
		k.syncToken = cb.Token
		k.mu.Unlock()
	}
	k.nudge()
	return true
}

func (k *kfService) nudge() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run pulls once at start (what came while the process was down) and then
// on every callback, until ctx ends. A failed pull is tried again after a
// pause, from the same cursor.
func (k *kfService) run(ctx context.Context) error {
	k.nudge()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.wake:
		case <-retry.C:
		}
		more, err := k.pull(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			k.a.log.Warn("kf sync_msg failed; the cursor stays and the pull is tried again", "err", err, "wait", wait)
			retry.Reset(wait)
			wait = min(wait*2, time.Minute)
		default:
			wait = time.Second
			if more {
				k.nudge()
			}
		}
	}
}

// pull takes pages from the stored cursor until WeChat says there is no
// more (or kfMaxPages), publishing each resident's message and saving the
// cursor after each page. more reports a backlog left for the next turn.
func (k *kfService) pull(ctx context.Context) (more bool, err error) {
	cursor, err := k.state.KFCursor(ctx, k.openKFID)
	if err != nil {
		return false, err
	}
	k.mu.Lock()
	token := k.syncToken
	k.mu.Unlock()
	for range kfMaxPages {
		page, err := k.client.SyncMsg(kf.SyncMsgOptions{Cursor: cursor, Token: token, Limit: 1000, OpenKfID: k.openKFID})
		if err != nil {
			return false, fmt.Errorf("kf sync_msg: page refused: %w", redact(err))
		}
		for _, m := range page.MsgList {
			if err := k.take(ctx, m); err != nil {
				return false, err
			}
		}
		if page.NextCursor != "" && page.NextCursor != cursor {
			if len(page.NextCursor) > 128 {
				return false, errors.New("kf sync_msg: next_cursor longer than 128 bytes")
			}
			if err := k.state.SaveKFCursor(ctx, k.openKFID, page.NextCursor); err != nil {
				return false, err
			}
			cursor = page.NextCursor
		}
		if page.HasMore == 0 {
			return false, nil
		}
	}
	return true, nil
}

// take handles one pulled message: a resident entering through a group's
// link records the group; a resident's message opens a new answer window
// and is published once. What residents did not write (the account's own
// answers, other events) is skipped; a malformed message is skipped with a
// log line, never published half-read.
func (k *kfService) take(ctx context.Context, m syncmsg.Message) error {
	switch {
	case m.MsgType == "event" && m.EventType == "enter_session":
		ev, err := m.GetEnterSessionEvent()
		if err != nil || ev.ExternalUserID == "" || checkIDs(ev.ExternalUserID, ev.Event.Scene) != nil {
			k.a.log.Warn("kf enter_session event malformed; skipped", "msg", clip(m.MsgID, 64))
			return nil
		}
		if ev.Event.Scene == "" {
			return nil
		}
		return k.state.NoteKFScene(ctx, k.openKFID, ev.ExternalUserID, clip(ev.Event.Scene, 32))
	case m.Origin != 3: // 3: a WeChat resident; 4: system events; 5: a receptionist in WeCom
		return nil
	}
	e, err := NormaliseKF(m, k.openKFID, k.a.now())
	if err != nil {
		k.a.log.Warn("kf message malformed; skipped", "msg", clip(m.MsgID, 64), "err", err)
		return nil
	}
	if err := k.state.NoteKFMessage(ctx, k.openKFID, m.ExternalUserID, e.Time); err != nil {
		return err
	}
	if via, err := k.via(ctx, m.ExternalUserID); err != nil {
		return err
	} else if via != nil {
		e.Via = via
	}
	return k.publish(ctx, e)
}

// via is the group whose link the resident came through, nil when unknown.
func (k *kfService) via(ctx context.Context, user string) (*bot.ChatRef, error) {
	s, err := k.state.KFSessionOf(ctx, k.openKFID, user)
	if err != nil || s.Scene == "" {
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return nil, err
	}
	l, err := k.state.KFLinkByScene(ctx, s.Scene)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &bot.ChatRef{Platform: bot.WeChat, ID: l.ChatID, Type: bot.Group}, nil
}

// publish puts e on the bus once per message id, as callbacks are: a page
// pulled again (a cursor saved late) publishes nothing twice.
func (k *kfService) publish(ctx context.Context, e *bot.Event) error {
	key := "wechat:callback:" + e.ID
	claim, err := k.a.dedup.Claim(ctx, key, bot.DefaultHold)
	if err != nil {
		return fmt.Errorf("kf message: %w", err)
	}
	switch claim {
	case bot.ClaimDone:
		return nil
	case bot.ClaimBusy:
		return errors.New("kf message is being published by another process; pulled again later")
	}
	settle := context.WithoutCancel(ctx)
	if err := bot.PublishEvent(ctx, k.a.pub, e); err != nil {
		_ = k.a.dedup.Release(settle, key)
		return fmt.Errorf("kf message: publish: %w", err)
	}
	if err := k.a.dedup.Done(settle, key, bot.DefaultKeep); err != nil {
		k.a.log.Warn("kf message: dedup done failed", "event", e.ID, "err", err)
	}
	k.a.log.Info("wechat kf message taken", "event", e.ID, "chat", bot.LogChat(e.Chat), "kind", e.Kind)
	return nil
}

// NormaliseKF turns a resident's customer-service message into a direct
// event of the chat "kf:<open_kfid>:<external_userid>".
func NormaliseKF(m syncmsg.Message, openKFID string, now time.Time) (*bot.Event, error) {
	if m.MsgID == "" || m.ExternalUserID == "" {
		return nil, errors.New("kf message lacks msgid or external_userid")
	}
	if err := checkIDs(m.MsgID, m.ExternalUserID, m.OpenKFID); err != nil {
		return nil, err
	}
	if m.OpenKFID != "" && m.OpenKFID != openKFID {
		return nil, fmt.Errorf("kf message for account %s, this is %s", clip(m.OpenKFID, 64), openKFID)
	}
	var (
		content string
		msgType = m.MsgType
	)
	if msgType == "text" {
		t, err := m.GetTextMessage()
		if err != nil {
			return nil, fmt.Errorf("kf text message: %w", err)
		}
		content = t.Text.Content
	}
	return directEvent("kf:"+m.MsgID, KFPrefix+openKFID+":"+m.ExternalUserID, msgType, content, "", int64(m.SendTime), now)
}

// kfSendURL is kf/send_msg, called through the SDK's HTTP layer rather than
// kf.Client.SendMsg, which flattens unknown errcodes into a string and takes
// no context, when 95018 must be told from a transient failure.
const kfSendURL = DefaultAPIBase + "/cgi-bin/kf/send_msg?access_token="

// send answers a customer-service resident: within 48 hours of their last
// message and at most five times since, as WeChat allows; otherwise the
// answer is refused for good with the reason, before WeChat is asked.
func (k *kfService) send(ctx context.Context, chat string, text string) error {
	openKFID, user, ok := strings.Cut(chat, ":")
	if !ok || user == "" {
		return bot.Permanent(fmt.Errorf("%q is not a customer-service chat (kf:<open_kfid>:<external_userid>)", clip(KFPrefix+chat, 80)))
	}
	if openKFID != k.openKFID {
		return bot.Permanent(fmt.Errorf("customer-service account %s is not this hub's (%s)", clip(openKFID, 64), k.openKFID))
	}
	s, err := k.state.KFSessionOf(ctx, openKFID, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bot.Permanent(ErrKFWindowClosed)
	case err != nil:
		return err
	case s.LastInAt == nil || k.a.now().Sub(*s.LastInAt) > KFWindow:
		return bot.Permanent(ErrKFWindowClosed)
	case s.Answers >= KFMaxAnswers:
		return bot.Permanent(ErrKFQuota)
	}
	token, err := k.token.GetAccessTokenContext(ctx)
	if err != nil {
		return fmt.Errorf("kf token: %w", redact(err))
	}
	msg := sendmsg.Text{Message: sendmsg.Message{ToUser: user, OpenKFID: openKFID}, MsgType: "text"}
	msg.Text.Content = fit(text, maxTextBytes)
	resp, err := util.PostJSONContext(ctx, kfSendURL+token, msg)
	if err != nil {
		return fmt.Errorf("kf send_msg: %w", redact(err))
	}
	var res util.CommonError
	if err := json.Unmarshal(resp, &res); err != nil {
		return fmt.Errorf("kf send_msg: answer is not JSON: %w", err)
	}
	switch res.ErrCode {
	case 0:
		if err := k.state.CountKFAnswer(context.WithoutCancel(ctx), openKFID, user); err != nil {
			k.a.log.Warn("kf answer sent but not counted", "err", err)
		}
		return nil
	case codeKFSession:
		return bot.Permanent(fmt.Errorf("%w (errcode 95018)", ErrKFWindowClosed))
	case codeTokenInvalid, codeTokenExpired:
		k.a.forgetWorkToken()
	}
	return classify(fmt.Errorf("kf send_msg: errcode %d: %s", res.ErrCode, clip(res.ErrMsg, 120)), res.ErrCode)
}
