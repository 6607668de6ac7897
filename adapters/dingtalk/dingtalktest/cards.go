package dingtalktest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Card API paths and the card callback topic.
const (
	PathCardCreate    = "/v1.0/card/instances/createAndDeliver"
	PathCardUpdate    = "/v1.0/card/instances"
	TopicCardCallback = "/v1.0/card/instances/callback"
	// CodeQuota is what the stand-in answers (HTTP 403) once the app's
	// monthly quota is used up: DingTalk's errcode 90020.
	CodeQuota = "90020"
	// CodeTemplate is the answer to a card template the app does not have.
	CodeTemplate = "invalidParameter.cardTemplateId"
)

// Card is one card instance as its recipients see it: the latest cardData
// (shared by all), who got it, and every body that created or updated it.
type Card struct {
	Track      string
	Template   string
	Recipients []string
	Data       map[string]string
	Updates    int
	// Bodies are the create and update requests as sent, in order.
	Bodies []json.RawMessage
}

// cardState is the stand-in's card side.
type cardState struct {
	templates map[string]bool // known templates; empty: any
	cards     map[string]*Card
	quota     int // OpenAPI calls left this month; < 0: no quota
}

func (s *Server) cardRoutes(mux *http.ServeMux) {
	s.cardSt = cardState{templates: map[string]bool{}, cards: map[string]*Card{}, quota: -1}
	mux.HandleFunc("POST "+PathCardCreate, s.cardCreate)
	mux.HandleFunc("PUT "+PathCardUpdate, s.cardUpdate)
}

// Templates makes only these card template ids known; any other is refused.
func (s *Server) Templates(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.cardSt.templates[id] = true
	}
}

// Quota lets n more OpenAPI calls through this month (tokens aside); every
// later one is refused with errcode 90020.
func (s *Server) Quota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cardSt.quota = n
}

// overQuota answers a call past the quota; s.mu is held.
func (s *Server) overQuota(w http.ResponseWriter) bool {
	switch {
	case s.cardSt.quota < 0:
		return false
	case s.cardSt.quota == 0:
		writeErr(w, http.StatusForbidden, CodeQuota, "应用本月接口调用量已超出额度")
		return true
	}
	s.cardSt.quota--
	return false
}

func (s *Server) cardCreate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorise(w, r, PathCardCreate) {
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var b struct {
		CardTemplateID string `json:"cardTemplateId"`
		OutTrackID     string `json:"outTrackId"`
		CallbackType   string `json:"callbackType"`
		CardData       struct {
			CardParamMap map[string]string `json:"cardParamMap"`
		} `json:"cardData"`
		OpenSpaceID    string `json:"openSpaceId"`
		ImRobotDeliver *struct {
			SpaceType string `json:"spaceType"`
			RobotCode string `json:"robotCode"`
		} `json:"imRobotOpenDeliverModel"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter", "body is not JSON")
		return
	}
	switch {
	case b.OutTrackID == "" || len(b.OutTrackID) > 128:
		writeErr(w, http.StatusBadRequest, "invalidParameter.outTrackId", "outTrackId is required")
		return
	case len(s.cardSt.templates) > 0 && !s.cardSt.templates[b.CardTemplateID]:
		writeErr(w, http.StatusBadRequest, CodeTemplate, "卡片模板不存在")
		return
	case b.ImRobotDeliver == nil || b.ImRobotDeliver.RobotCode != s.opts.RobotCode:
		writeErr(w, http.StatusBadRequest, "invalidParameter.robotCode", "imRobotOpenDeliverModel.robotCode is wrong")
		return
	case b.CallbackType != "STREAM":
		writeErr(w, http.StatusBadRequest, "invalidParameter.callbackType", "callbackType must be STREAM for stream callbacks")
		return
	}
	spaces, ok := strings.CutPrefix(b.OpenSpaceID, "dtv1.card//")
	if !ok || spaces == "" {
		writeErr(w, http.StatusBadRequest, "invalidParameter.openSpaceId", "openSpaceId is malformed")
		return
	}
	var users []string
	type result struct {
		SpaceType string `json:"spaceType"`
		SpaceID   string `json:"spaceId"`
		Success   bool   `json:"success"`
		ErrorMsg  string `json:"errorMsg,omitempty"`
	}
	var results []result
	for _, sp := range strings.Split(spaces, ";") {
		u, ok := strings.CutPrefix(sp, "IM_ROBOT.")
		if !ok || u == "" {
			writeErr(w, http.StatusBadRequest, "invalidParameter.openSpaceId", "space "+sp+" is not IM_ROBOT.<userid>")
			return
		}
		if s.invalid[u] {
			results = append(results, result{SpaceType: "IM_ROBOT", SpaceID: u, ErrorMsg: "user not found"})
			continue
		}
		users = append(users, u)
		results = append(results, result{SpaceType: "IM_ROBOT", SpaceID: u, Success: true})
	}
	c := s.cardSt.cards[b.OutTrackID]
	if c == nil {
		c = &Card{Track: b.OutTrackID, Template: b.CardTemplateID}
		s.cardSt.cards[b.OutTrackID] = c
	}
	c.Data = maps.Clone(b.CardData.CardParamMap)
	for _, u := range users {
		if !slices.Contains(c.Recipients, u) {
			c.Recipients = append(c.Recipients, u)
		}
	}
	c.Bodies = append(c.Bodies, raw)
	s.changed()
	writeJSON(w, map[string]any{"success": true, "result": map[string]any{"outTrackId": b.OutTrackID, "deliverResults": results}})
}

func (s *Server) cardUpdate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorise(w, r, PathCardUpdate) {
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var b struct {
		OutTrackID string `json:"outTrackId"`
		CardData   struct {
			CardParamMap map[string]string `json:"cardParamMap"`
		} `json:"cardData"`
		Options struct {
			ByKey bool `json:"updateCardDataByKey"`
		} `json:"cardUpdateOptions"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter", "body is not JSON")
		return
	}
	c := s.cardSt.cards[b.OutTrackID]
	if c == nil {
		writeErr(w, http.StatusBadRequest, "invalidParameter.outTrackId", "card instance not found")
		return
	}
	if !b.Options.ByKey {
		c.Data = map[string]string{}
	}
	for k, v := range b.CardData.CardParamMap {
		c.Data[k] = v
	}
	c.Updates++
	c.Bodies = append(c.Bodies, raw)
	s.changed()
	writeJSON(w, map[string]any{"success": true, "result": true})
}

// Cards returns the card instances delivered to user, oldest first, as
// they look now.
func (s *Server) Cards(user string) []Card {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Card
	for _, c := range s.cardSt.cards {
		if slices.Contains(c.Recipients, user) {
			cp := *c
			cp.Data, cp.Recipients, cp.Bodies = maps.Clone(c.Data), slices.Clone(c.Recipients), slices.Clone(c.Bodies)
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b Card) int { return strings.Compare(a.Track, b.Track) })
	return out
}

// CardByTrack is one card instance as it looks now.
func (s *Server) CardByTrack(track string) (Card, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cardSt.cards[track]
	if !ok {
		return Card{}, false
	}
	cp := *c
	cp.Data, cp.Recipients, cp.Bodies = maps.Clone(c.Data), slices.Clone(c.Recipients), slices.Clone(c.Bodies)
	return cp, true
}

// WaitCards waits until user has at least n cards and returns them.
func (s *Server) WaitCards(t testing.TB, user string, n int) []Card {
	t.Helper()
	s.Wait(t, 15*time.Second, fmt.Sprintf("%d cards for %s", n, user), func() bool { return len(s.Cards(user)) >= n })
	return s.Cards(user)
}

// WaitCard waits until the card track satisfies cond.
func (s *Server) WaitCard(t testing.TB, track, what string, cond func(Card) bool) Card {
	t.Helper()
	var got Card
	s.Wait(t, 15*time.Second, what, func() bool {
		c, ok := s.CardByTrack(track)
		got = c
		return ok && cond(c)
	})
	return got
}

// Press sends the card callback of user pressing a button whose value is
// value on card track, as DingTalk does (a CALLBACK frame on the card
// topic), and returns the frame id.
func (s *Server) Press(track, user, value string) string {
	content, _ := json.Marshal(map[string]any{"cardPrivateData": map[string]any{"actionIds": []string{"press"}, "params": map[string]string{"value": value}}})
	data, _ := json.Marshal(map[string]any{
		"outTrackId": track, "userId": user, "userIdType": 1, "corpId": "ding-corp", "spaceType": "IM_ROBOT", "spaceId": user,
		"type": "actionCallback", "extension": "{}", "content": string(content),
	})
	return s.DeliverData(TopicCardCallback, string(data))
}
