package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/util"
	workmessage "github.com/silenceper/wechat/v2/work/message"

	"github.com/jingminhub/jingmin/bot"
)

// updateCardURL is WeCom's template card update; the SDK has no call for it.
const updateCardURL = DefaultAPIBase + "/cgi-bin/message/update_template_card?access_token="

// WeCom's button cards take at most six buttons and six horizontal lines.
const (
	maxCardButtons = 6
	maxCardLines   = 6
)

// templateCard is WeCom's button_interaction template card.
type templateCard struct {
	CardType string `json:"card_type"`
	Source   struct {
		Desc string `json:"desc"`
	} `json:"source"`
	MainTitle struct {
		Title string `json:"title"`
		Desc  string `json:"desc,omitempty"`
	} `json:"main_title"`
	SubTitleText string       `json:"sub_title_text,omitempty"`
	Horizontal   []cardKV     `json:"horizontal_content_list,omitempty"`
	TaskID       string       `json:"task_id"`
	Buttons      []cardButton `json:"button_list"`
}

type cardKV struct {
	KeyName string `json:"keyname"`
	Value   string `json:"value"`
}

type cardButton struct {
	Text  string `json:"text"`
	Style int    `json:"style"`
	Key   string `json:"key"`
}

// appTemplateCard is the app message carrying a template card.
type appTemplateCard struct {
	*workmessage.SendRequestCommon
	TemplateCard templateCard `json:"template_card"`
}

// cutBytes bounds a card field (WeCom cuts or refuses long ones).
func cutBytes(s string, n int) string { return fit(s, n) }

// renderTemplateCard is c as WeCom's button card: one ticket's lines, or
// for several (a digest) a line each; buttons of the tickets still open, at
// most six (a digest's further tickets are answered by text).
func renderTemplateCard(c *bot.Card) templateCard {
	var t templateCard
	t.CardType = "button_interaction"
	t.Source.Desc = "警民通"
	t.MainTitle.Title = cutBytes(c.Title, 108)
	t.TaskID = c.Track
	var subtitle []string
	for _, it := range c.Items {
		if len(c.Items) == 1 {
			for _, l := range it.Lines {
				if l.Label == "答复" {
					subtitle = append(subtitle, l.Value)
					continue
				}
				if len(t.Horizontal) < maxCardLines {
					t.Horizontal = append(t.Horizontal, cardKV{KeyName: l.Label, Value: cutBytes(l.Value, 90)})
				}
			}
		} else if len(t.Horizontal) < maxCardLines {
			v := ""
			for _, l := range it.Lines {
				if l.Label == "群" || l.Label == "问题" {
					v += l.Value + " "
				}
			}
			if it.Status != "" {
				v = it.Status
			}
			t.Horizontal = append(t.Horizontal, cardKV{KeyName: "#" + strconv.FormatInt(it.Number, 10), Value: cutBytes(strings.TrimSpace(v), 90)})
		}
		if it.Status != "" && len(c.Items) == 1 {
			t.MainTitle.Desc = cutBytes(it.Status, 90)
		}
		for i, a := range it.Actions {
			if len(t.Buttons) == maxCardButtons {
				break
			}
			label := a.Label
			if len(c.Items) > 1 {
				label += " #" + strconv.FormatInt(it.Number, 10)
			}
			style := 2
			if i == 0 {
				style = 1
			}
			t.Buttons = append(t.Buttons, cardButton{Text: cutBytes(label, 30), Style: style, Key: a.Value(it.TicketID)})
		}
	}
	if len(subtitle) > 0 {
		t.SubTitleText = cutBytes(strings.Join(subtitle, "；"), 300)
	}
	return t
}

// allDone: no item of the card has buttons left.
func allDone(c *bot.Card) bool {
	for _, it := range c.Items {
		if !it.Done {
			return false
		}
	}
	return true
}

// sendCard delivers or updates an officer card: one app message to all its
// recipients ("a|b|c"), whose response_code is the receipt the update
// takes; one update (atall) redraws it for all of them.
func (a *Adapter) sendCard(ctx context.Context, o *bot.Outbound, text string) (string, error) {
	c := o.Card
	if a.appMsg == nil {
		return "", bot.Permanent(fmt.Errorf("no WeCom app is configured (wechat.app.agent_id) to send cards"))
	}
	users := c.Recipients
	if len(users) == 0 {
		users = []string{o.ToUser}
	}
	to := strings.Join(users, "|")
	switch {
	case c.Update && c.Plain:
		return "", nil // the card went as a message: nothing to redraw
	case c.Update:
		return "", a.updateCard(ctx, o)
	case c.Plain:
		// The budget is spent: the card's text in one message to all.
		return bot.SentPlain, a.sendApp(ctx, to, o, text)
	}
	req := appTemplateCard{SendRequestCommon: &workmessage.SendRequestCommon{ToUser: to, MsgType: "template_card", AgentID: a.cfg.App.AgentID}, TemplateCard: renderTemplateCard(c)}
	a.count(ctx, "message/send")
	res, err := a.appMsg.Send("MessageSendTemplateCard", req)
	var ce *util.CommonError
	switch {
	case err == nil && res != nil && (res.InvalidUser != "" || res.UnlicensedUser != "") && len(users) == 1:
		return "", bot.Permanent(fmt.Errorf("card to %s: WeCom says the user is unknown, outside the app's visible range or unlicensed", to))
	case err == nil && res != nil:
		if res.InvalidUser != "" {
			a.log.Warn("wecom card: some recipients unknown to the app", "key", o.Key)
		}
		return res.ResponseCode, nil
	case errors.As(err, &ce):
		if ce.ErrCode == codeTokenInvalid || ce.ErrCode == codeTokenExpired {
			a.forgetWorkToken()
		}
		return "", classify(fmt.Errorf("card to %s: errcode %d: %s", to, ce.ErrCode, clip(ce.ErrMsg, 120)), ce.ErrCode)
	case err != nil:
		return "", fmt.Errorf("card to %s: %w", to, redact(err))
	}
	return "", errors.New("card: WeCom gave no answer")
}

// updateCard redraws a card for all its recipients with the handle the
// relay found for it (the response_code of its send or of the latest
// press; each is taken once). A card whose every ticket is done turns its
// buttons into one inactive line saying what happened.
func (a *Adapter) updateCard(ctx context.Context, o *bot.Outbound) error {
	c := o.Card
	if c.Handle == "" {
		return bot.Permanent(errors.New("card update: no unused response_code left for this card (WeCom takes each once); it is redrawn at its next press"))
	}
	body := map[string]any{"atall": 1, "agentid": a.cfg.App.AgentID, "response_code": c.Handle}
	if allDone(c) && len(c.Items) == 1 {
		body["button"] = map[string]string{"replace_name": cutBytes(c.Items[0].Status, 60)}
	} else {
		body["template_card"] = renderTemplateCard(c)
	}
	token, err := a.appMsg.GetAccessToken()
	if err != nil {
		return fmt.Errorf("card update: app token: %w", redact(err))
	}
	a.count(ctx, "message/update_template_card")
	resp, err := util.PostJSONContext(ctx, updateCardURL+token, body)
	if err != nil {
		return fmt.Errorf("card update: %w", redact(err))
	}
	var res util.CommonError
	if err := json.Unmarshal(resp, &res); err != nil {
		return fmt.Errorf("card update: answer is not JSON: %w", err)
	}
	if res.ErrCode != 0 {
		if res.ErrCode == codeTokenInvalid || res.ErrCode == codeTokenExpired {
			a.forgetWorkToken()
		}
		return classify(fmt.Errorf("card update: errcode %d: %s", res.ErrCode, clip(res.ErrMsg, 120)), res.ErrCode)
	}
	return nil
}

// count tells the counter of one call to WeCom.
func (a *Adapter) count(ctx context.Context, api string) {
	if a.counter != nil {
		a.counter.CountCall(ctx, bot.WeChat, a.cfg.CorpID+"/"+a.cfg.App.AgentID, api)
	}
}

// cardPress turns a template_card_event into a card press: the button's
// key must be one of the hub's; the event's ResponseCode is the card's
// fresh handle. Its id is the ResponseCode's digest: unique per press,
// the same when WeCom sends the callback again, and no credential in logs.
func cardPress(m *AppMessage, agentID string, now time.Time) (*bot.Event, error) {
	if m.FromUserName == "" || m.ResponseCode == "" {
		return nil, errors.New("template card event lacks FromUserName or ResponseCode")
	}
	if err := checkIDs(m.FromUserName, m.AgentID, m.TaskID); err != nil {
		return nil, err
	}
	p, err := bot.ParseCardValue(m.EventKey)
	if err != nil {
		return nil, err
	}
	p.Track, p.Handle = m.TaskID, m.ResponseCode
	sum := sha256.Sum256([]byte(m.ResponseCode))
	id := "app:" + agentID + ":card:" + hex.EncodeToString(sum[:12])
	e := &bot.Event{
		ID: bot.NewEventID(bot.WeChat, id), Platform: bot.WeChat, MessageID: id,
		Chat:   bot.ChatRef{Platform: bot.WeChat, ID: m.FromUserName, Type: bot.Direct},
		Sender: bot.User{ID: m.FromUserName}, Kind: bot.KindCardPress, AddressedToBot: true,
		Time: unixOr(m.CreateTime, now), Press: &p,
	}
	return e, e.Validate()
}

// Calls is how many WeCom API calls delivering o takes when nothing fails
// and the access token is fresh: one for any message (a response_url or
// webhook post, an app message to up to 1000 users), one for a card to all
// its recipients, one to update it for all of them with its latest
// response_code, none to update a card that went as a message. `bench
// route` sums it per question; TestCallsMatchWhatIsCounted holds it to what
// Send does.
func Calls(o *bot.Outbound) int {
	if o.Card != nil && o.Card.Update && o.Card.Plain {
		return 0
	}
	return 1
}
