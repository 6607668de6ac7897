package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jingminhub/jingmin/bot"
)

// maxBatchUsers is DingTalk's limit of user ids in one batchSend call.
const maxBatchUsers = 20

// Send delivers one outbound message. A reply in a chat goes through the
// session webhook of the message it answers while that webhook lives (it can
// @ the resident), and through the OpenAPI otherwise: groupMessages/send for
// a group, oToMessages/batchSend for a direct chat. A message to a user is a
// robot direct message. Errors that no retry fixes (a wrong robot code, an
// unknown staff id, a message for another platform) are bot.Permanent, so the
// hub parks them with the reason for an admin; others are retried by the hub.
func (a *Adapter) Send(ctx context.Context, o *bot.Outbound) error {
	_, err := a.SendReceipt(ctx, o)
	return err
}

var _ bot.ReceiptSender = (*Adapter)(nil)

// SendReceipt is Send that also returns DingTalk's processQueryKey for a
// message sent through the OpenAPI ("" through a session webhook, which
// gives none), so a broadcast's delivery rows name DingTalk's message.
func (a *Adapter) SendReceipt(ctx context.Context, o *bot.Outbound) (string, error) {
	id, err := a.send(ctx, o)
	if err != nil {
		if isPermanent(err) {
			return "", bot.Permanent(err)
		}
		return "", err
	}
	return id, nil
}

func (a *Adapter) send(ctx context.Context, o *bot.Outbound) (string, error) {
	if o == nil {
		return "", permanent(errors.New("dingtalk: nil outbound message"))
	}
	if err := o.Validate(); err != nil {
		return "", permanent(fmt.Errorf("dingtalk: %w", err))
	}
	if o.Platform != bot.DingTalk || (o.Chat != nil && o.Chat.Platform != "" && o.Chat.Platform != bot.DingTalk) {
		return "", permanent(fmt.Errorf("dingtalk: outbound %s is for %s, not dingtalk", o.Key, o.Platform))
	}
	if o.Card != nil && o.ToUser != "" {
		return a.sendCard(ctx, o)
	}
	m := renderMessage(o)
	if o.ToUser != "" {
		return "", a.sendDirect(ctx, o, o.ToUser, m)
	}
	h, herr := decodeHandle(o.ReplyHandle)
	if o.ReplyHandle != "" && herr == nil && h.usable(a.now()) {
		err := a.sendWebhook(ctx, h, o, m)
		if err == nil {
			return "", nil
		}
		a.log.Warn("dingtalk session webhook failed; sending through the OpenAPI instead", "key", o.Key, "err", err)
	} else if o.ReplyHandle != "" && herr != nil {
		a.log.Warn("dingtalk reply handle unusable; sending through the OpenAPI", "key", o.Key, "err", herr)
	}
	switch o.Chat.Type {
	case bot.Group:
		return a.sendGroup(ctx, o, h, m)
	case bot.Direct:
		return "", a.sendDirect(ctx, o, o.Chat.ID, m)
	}
	return "", permanent(fmt.Errorf("dingtalk: outbound %s has chat type %q", o.Key, o.Chat.Type))
}

// message is an outbound text as DingTalk renders it.
type message struct {
	markdown bool
	title    string
	text     string
}

func renderMessage(o *bot.Outbound) message {
	m := message{markdown: o.Format == bot.FormatMarkdown, text: bot.Truncate(o.Text, bot.MaxTextRunes)}
	if m.markdown {
		m.title = o.Title
		if m.title == "" {
			first, _, _ := strings.Cut(strings.TrimSpace(o.Text), "\n")
			m.title = strings.TrimSpace(strings.TrimLeft(first, "#"))
		}
		if m.title == "" {
			m.title = "消息"
		}
		m.title = bot.Truncate(m.title, 40)
	}
	return m
}

// msgKey and msgParam are the OpenAPI's template name and its parameters,
// which DingTalk wants as a JSON string inside the JSON body.
func (m message) msgKey() string {
	if m.markdown {
		return "sampleMarkdown"
	}
	return "sampleText"
}

func (m message) msgParam(text string) string {
	var b []byte
	if m.markdown {
		b, _ = json.Marshal(map[string]string{"title": m.title, "text": text})
	} else {
		b, _ = json.Marshal(map[string]string{"content": text})
	}
	return string(b)
}

// isDingtalkID tells a DingTalk id ("$:LWCP_v1:$...", what non-members have)
// from a staff id; the webhook takes them in different lists.
func isDingtalkID(id string) bool { return strings.HasPrefix(id, "$:") }

// sendWebhook answers through a session webhook. The webhook answers HTTP
// 200 even when it refuses (expired session, bad body), so errcode decides.
func (a *Adapter) sendWebhook(ctx context.Context, h replyHandle, o *bot.Outbound, m message) error {
	var staff, dingtalk []string
	text := m.text
	var prefix strings.Builder
	for _, id := range o.AtUsers {
		if isDingtalkID(id) {
			// The at list alone notifies the person; their DingTalk id is
			// not something to show in the text.
			dingtalk = append(dingtalk, id)
			continue
		}
		staff = append(staff, id)
		// A staff id is shown as an @ where "@id" appears in the text.
		if !strings.Contains(text, "@"+id) {
			prefix.WriteString("@" + id + " ")
		}
	}
	text = prefix.String() + text
	body := map[string]any{}
	if m.markdown {
		body["msgtype"] = "markdown"
		body["markdown"] = map[string]string{"title": m.title, "text": text}
	} else {
		body["msgtype"] = "text"
		body["text"] = map[string]string{"content": text}
	}
	if len(o.AtUsers) > 0 {
		at := map[string]any{"isAtAll": false}
		if len(staff) > 0 {
			at["atUserIds"] = staff
		}
		if len(dingtalk) > 0 {
			at["atDingtalkIds"] = dingtalk
		}
		body["at"] = at
	}
	if err := a.limits.Wait(ctx, "sessionWebhook"); err != nil {
		return fmt.Errorf("session webhook: waiting for the rate limit: %w", err)
	}
	var reply apiError
	status, apiErr, err := a.post(ctx, h.Webhook, "", body, &reply)
	switch {
	case err != nil:
		return fmt.Errorf("session webhook: %w", err)
	case status != http.StatusOK:
		return fmt.Errorf("session webhook: HTTP %d %s", status, apiErr)
	case reply.ErrCode != 0:
		return fmt.Errorf("session webhook refused: %s", reply)
	}
	return nil
}

// sendGroup posts to a group through the OpenAPI. It cannot @ anyone, so
// the resident being answered is named in the text instead.
func (a *Adapter) sendGroup(ctx context.Context, o *bot.Outbound, h replyHandle, m message) (string, error) {
	text := m.text
	if h.Nick != "" && slices.Contains(o.AtUsers, h.User) && !strings.Contains(text, "@"+h.Nick) {
		text = "@" + h.Nick + " " + text
	}
	body := map[string]string{
		"robotCode":          a.cfg.RobotCode,
		"openConversationId": o.Chat.ID,
		"msgKey":             m.msgKey(),
		"msgParam":           m.msgParam(text),
	}
	var out struct {
		ProcessQueryKey string `json:"processQueryKey"`
	}
	if err := a.call(ctx, pathGroupSend, body, &out); err != nil {
		return "", fmt.Errorf("dingtalk group message %s: %w", o.Key, err)
	}
	return out.ProcessQueryKey, nil
}

// batchResult is what oToMessages/batchSend says about the users it was given.
type batchResult struct {
	ProcessQueryKey string   `json:"processQueryKey"`
	Invalid         []string `json:"invalidStaffIdList"`
	FlowControlled  []string `json:"flowControlledStaffIdList"`
}

// batchSend sends one robot direct message to at most maxBatchUsers users.
func (a *Adapter) batchSend(ctx context.Context, users []string, m message) (batchResult, error) {
	var out batchResult
	if len(users) == 0 || len(users) > maxBatchUsers {
		return out, permanent(fmt.Errorf("batchSend takes 1 to %d users, got %d", maxBatchUsers, len(users)))
	}
	body := map[string]any{
		"robotCode": a.cfg.RobotCode,
		"userIds":   users,
		"msgKey":    m.msgKey(),
		"msgParam":  m.msgParam(m.text),
	}
	err := a.call(ctx, pathBatchSend, body, &out)
	return out, err
}

// sendDirect sends a robot direct message to one user. A user DingTalk
// flow-controls right now is asked again later: DingTalk did not deliver,
// and will if asked after a while, so the relay schedules the message
// instead of retrying at once. An id DingTalk does not know is permanent.
func (a *Adapter) sendDirect(ctx context.Context, o *bot.Outbound, user string, m message) error {
	res, err := a.batchSend(ctx, []string{user}, m)
	if err != nil {
		return fmt.Errorf("dingtalk direct message %s: %w", o.Key, err)
	}
	switch {
	case slices.Contains(res.Invalid, user):
		return permanent(fmt.Errorf("dingtalk direct message %s: staff id %s is unknown to DingTalk for this robot: check the officer's dingtalk identity", o.Key, user))
	case slices.Contains(res.FlowControlled, user):
		return bot.RetryAfter(a.opts.flowRetry, fmt.Errorf("dingtalk direct message %s: recipient is flow-controlled by DingTalk", o.Key))
	}
	return nil
}
