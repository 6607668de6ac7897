package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/card"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
)

// Card OpenAPI paths.
const (
	pathCardCreate = "/v1.0/card/instances/createAndDeliver"
	pathCardUpdate = "/v1.0/card/instances"
)

// cardParams are the card's variables as DingTalk's card templates take
// them (cardParamMap: strings only). docs/dingtalk-card-template.md
// describes the template that shows them.
func cardParams(c *bot.Card) map[string]string {
	type action struct {
		Label string `json:"label"`
		Value string `json:"value"`
	}
	type item struct {
		Ticket  string   `json:"ticket"`
		Number  string   `json:"number"`
		Text    string   `json:"text"`
		Status  string   `json:"status"`
		Done    bool     `json:"done"`
		Actions []action `json:"actions"`
	}
	items := make([]item, 0, len(c.Items))
	var md strings.Builder
	for i, it := range c.Items {
		var text strings.Builder
		for _, l := range it.Lines {
			fmt.Fprintf(&text, "**%s**：%s  \n", l.Label, markdown.Escape(bot.DingTalk, l.Value))
		}
		acts := make([]action, 0, len(it.Actions))
		for _, a := range it.Actions {
			acts = append(acts, action{Label: a.Label, Value: a.Value(it.TicketID)})
		}
		items = append(items, item{Ticket: strconv.FormatUint(uint64(it.TicketID), 10), Number: strconv.FormatInt(it.Number, 10),
			Text: strings.TrimSpace(text.String()), Status: it.Status, Done: it.Done, Actions: acts})
		if i > 0 {
			md.WriteString("\n\n---\n\n")
		}
		fmt.Fprintf(&md, "**#%d**  \n%s", it.Number, text.String())
		if it.Status != "" {
			fmt.Fprintf(&md, "**%s**", markdown.Escape(bot.DingTalk, it.Status))
		}
	}
	b, _ := json.Marshal(items)
	p := map[string]string{"title": c.Title, "markdown": strings.TrimSpace(md.String()), "items": string(b)}
	if len(items) == 1 {
		// A card of one ticket: its fields at the top level too, for
		// templates without a loop.
		a, _ := json.Marshal(items[0].Actions)
		p["ticket"], p["status"], p["done"], p["actions"] = items[0].Ticket, items[0].Status, strconv.FormatBool(items[0].Done), string(a)
	}
	return p
}

// openSpaceID addresses the robot's direct chat with each recipient: one
// card instance delivered to all of them.
func openSpaceID(users []string) string {
	spaces := make([]string, len(users))
	for i, u := range users {
		spaces[i] = "IM_ROBOT." + u
	}
	return "dtv1.card//" + strings.Join(spaces, ";")
}

// createCardBody is the createAndDeliver request for c.
func (a *Adapter) createCardBody(c *bot.Card, template string) map[string]any {
	return map[string]any{
		"cardTemplateId": template,
		"outTrackId":     c.Track,
		"callbackType":   "STREAM",
		"cardData":       map[string]any{"cardParamMap": cardParams(c)},
		"openSpaceId":    openSpaceID(c.Recipients),
		"imRobotOpenSpaceModel": map[string]any{
			"supportForward":  false,
			"lastMessageI18n": map[string]string{"ZH_CN": bot.Truncate(c.Title, 40)},
		},
		"imRobotOpenDeliverModel": map[string]any{"spaceType": "IM_ROBOT", "robotCode": a.cfg.RobotCode},
	}
}

// updateCardBody changes every recipient's card at once (cardData is
// shared by all).
func updateCardBody(c *bot.Card) map[string]any {
	return map[string]any{
		"outTrackId":        c.Track,
		"cardData":          map[string]any{"cardParamMap": cardParams(c)},
		"cardUpdateOptions": map[string]any{"updateCardDataByKey": true},
	}
}

// sendCard delivers or updates an officer card: one call for all its
// recipients. A station without a template, or a template DingTalk
// refuses, gets the card's markdown in one batch direct message instead,
// and the receipt says so (the admin is told once).
func (a *Adapter) sendCard(ctx context.Context, o *bot.Outbound) (string, error) {
	c := o.Card
	users := c.Recipients
	if len(users) == 0 {
		users = []string{o.ToUser}
	}
	if len(users) > maxBatchUsers {
		return "", permanent(fmt.Errorf("dingtalk card %s: %d recipients, at most %d", o.Key, len(users), maxBatchUsers))
	}
	template := a.cfg.cardTemplate(c.Station)
	switch {
	case c.Update && (c.Plain || template == ""):
		return "", nil // the card went as a message: nothing to redraw
	case c.Update:
		if err := a.callMethod(ctx, http.MethodPut, pathCardUpdate, updateCardBody(c), nil); err != nil {
			return "", fmt.Errorf("dingtalk card update %s: %w", o.Key, err)
		}
		return c.Track, nil
	case c.Plain:
		return bot.SentPlain, a.sendPlainCard(ctx, o, users)
	case template == "":
		return bot.FellBack("no card template for station " + c.Station), a.sendPlainCard(ctx, o, users)
	}
	var out struct {
		Success bool `json:"success"`
		Result  struct {
			DeliverResults []struct {
				SpaceID  string `json:"spaceId"`
				Success  bool   `json:"success"`
				ErrorMsg string `json:"errorMsg"`
			} `json:"deliverResults"`
		} `json:"result"`
	}
	err := a.call(ctx, pathCardCreate, a.createCardBody(c, template), &out)
	var ce *callError
	if errors.As(err, &ce) && ce.templateRefused() {
		a.log.Warn("dingtalk refused the card template; sending the card as a message", "key", o.Key, "err", ce)
		return bot.FellBack(ce.Error()), a.sendPlainCard(ctx, o, users)
	}
	if err != nil {
		return "", fmt.Errorf("dingtalk card %s: %w", o.Key, err)
	}
	delivered := 0
	for _, r := range out.Result.DeliverResults {
		if r.Success {
			delivered++
		} else {
			a.log.Warn("dingtalk card not delivered to one recipient", "key", o.Key, "space", r.SpaceID, "err", bot.Mask(bot.Truncate(r.ErrorMsg, 120)))
		}
	}
	if len(out.Result.DeliverResults) > 0 && delivered == 0 {
		return "", fmt.Errorf("dingtalk card %s: delivered to none of its %d recipients", o.Key, len(users))
	}
	return c.Track, nil
}

// templateRefused: DingTalk does not know the card template (a wrong id,
// or one not published for this app).
func (e *callError) templateRefused() bool {
	return e.status >= 400 && e.status < 500 && strings.Contains(strings.ToLower(e.api.Code), "template")
}

// sendPlainCard sends a card's markdown to all its recipients in one
// batch direct message (DingTalk takes up to 20 users a call).
func (a *Adapter) sendPlainCard(ctx context.Context, o *bot.Outbound, users []string) error {
	m := renderMessage(o)
	res, err := a.batchSend(ctx, users, m)
	if err != nil {
		return fmt.Errorf("dingtalk card %s as a message: %w", o.Key, err)
	}
	if len(res.FlowControlled) > 0 || len(res.Invalid) > 0 {
		a.log.Warn("dingtalk card as a message: some recipients not reached", "key", o.Key,
			"flow_controlled", len(res.FlowControlled), "invalid", len(res.Invalid))
	}
	return nil
}

// onCardCallback takes a pressed card button (topic
// /v1.0/card/instances/callback): its value must be one of the hub's; the
// press is published once per frame (DingTalk sends a frame again when
// the ack is late) and acked at once: the card's new state comes with the
// update the rules write.
func (a *Adapter) onCardCallback(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	now := a.now()
	if err := a.admit(ctx, now); err != nil {
		return nil, err
	}
	defer a.gate.leave()
	frameID := df.GetMessageId()
	var req card.CardRequest
	if err := json.Unmarshal([]byte(df.Data), &req); err != nil {
		a.log.Warn("dingtalk card callback dropped: data is not a card callback", "frame", frameID, "bytes", len(df.Data), "err", err)
		return ackOK(), nil
	}
	if err := json.Unmarshal([]byte(req.Content), &req.CardActionData); err != nil {
		a.log.Warn("dingtalk card callback dropped: content is not JSON", "frame", frameID, "err", err)
		return ackOK(), nil
	}
	p, err := bot.ParseCardValue(req.GetActionString("value"))
	if err != nil || req.UserId == "" || frameID == "" {
		a.log.Warn("dingtalk card callback dropped: not a press of the hub's buttons", "frame", frameID, "err", err)
		return ackOK(), nil
	}
	p.Track = bot.Truncate(req.OutTrackId, 128)
	id := "card:" + frameID
	e := &bot.Event{
		ID: bot.NewEventID(bot.DingTalk, id), Platform: bot.DingTalk, MessageID: id,
		Chat:   bot.ChatRef{Platform: bot.DingTalk, ID: req.UserId, Type: bot.Direct},
		Sender: bot.User{ID: req.UserId}, Kind: bot.KindCardPress, AddressedToBot: true, Time: now.UTC(), Press: &p,
	}
	if err := e.Validate(); err != nil {
		a.log.Warn("dingtalk card callback dropped", "frame", frameID, "err", err)
		return ackOK(), nil
	}
	if err := a.publish(ctx, e); err != nil {
		return nil, err
	}
	return ackOK(), nil
}

// Calls is how many DingTalk API calls delivering o takes when nothing
// fails and the access token is fresh: one for any message (a session
// webhook reply, a group send, a batch direct message to up to 20 users),
// one for a card to all its recipients, one to update it for all of them,
// none to update a card that went as a message. `bench route` sums it per
// question; TestCallsMatchWhatIsCounted holds it to what Send does.
func Calls(o *bot.Outbound) int {
	if o.Card != nil && o.Card.Update && o.Card.Plain {
		return 0
	}
	return 1
}
