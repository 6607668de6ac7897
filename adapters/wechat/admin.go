package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/util"
	workconfig "github.com/silenceper/wechat/v2/work/config"
	"github.com/silenceper/wechat/v2/work/kf"
)

// Admin makes the WeCom calls a station's admin runs from the command line
// (customer-service links, archive consent), with the app's token; it
// serves no callbacks and sends no messages.
type Admin struct {
	cfg   Config
	token credential.AccessTokenContextHandle
	kf    *kf.Client
}

// NewAdmin builds an Admin from cfg and the app's secret read through lookup
// (os.LookupEnv when nil); client, when set, carries the API calls.
func NewAdmin(cfg Config, lookup func(string) (string, bool), client *http.Client) (*Admin, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.App.AgentID == "" {
		return nil, errors.New("wechat.app.agent_id is not set: these calls use the app's token (give the app the customer-contact, customer-service and archive permissions)")
	}
	sec, err := cfg.LoadSecrets(lookup)
	if err != nil {
		return nil, err
	}
	silenceSDKLog()
	configureSDK(cfg, client)
	tokens := cache.NewMemory()
	kc, err := kf.NewClient(&workconfig.Config{CorpID: cfg.CorpID, CorpSecret: sec.AppSecret, AgentID: cfg.App.AgentID, Cache: tokens})
	if err != nil {
		return nil, fmt.Errorf("wechat customer service: %w", err)
	}
	return &Admin{cfg: cfg, kf: kc, token: credential.NewWorkAccessToken(cfg.CorpID, sec.AppSecret, cfg.App.AgentID, credential.CacheKeyWorkPrefix, tokens)}, nil
}

// KFScene is the customer-service scene of a group: WeCom takes at most 32
// bytes of [0-9a-zA-Z_-], which a chat id need not fit, so it is a digest.
func KFScene(chatID string) string {
	sum := sha256.Sum256([]byte(chatID))
	return "g" + hex.EncodeToString(sum[:12])
}

// KFLink makes the customer-service link of a group (kf/add_contact_way
// with the group's scene).
func (a *Admin) KFLink(ctx context.Context, chatID string) (string, error) {
	if a.cfg.KF.OpenKFID == "" {
		return "", errors.New("wechat.kf.open_kfid is not set: name the customer-service account the links open")
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// The SDK's call takes no context; the HTTP client's timeout bounds it.
	res, err := a.kf.AddContactWay(kf.AddContactWayOptions{OpenKFID: a.cfg.KF.OpenKFID, Scene: KFScene(chatID)})
	if err != nil {
		return "", fmt.Errorf("kf/add_contact_way: %w", redact(err))
	}
	if res.URL == "" {
		return "", errors.New("kf/add_contact_way answered no url")
	}
	return res.URL, nil
}

// Consent is a customer-group member's answer to archiving (会话内容存档).
type Consent struct {
	ExternalUserID string
	Agree          bool
	ChangedAt      time.Time
}

// RoomConsent asks which members of a customer group agreed to archiving
// (msgaudit/check_room_agree): those who refused are not archived, so the
// hub cannot see what they write.
func (a *Admin) RoomConsent(ctx context.Context, roomID string) ([]Consent, error) {
	var res struct {
		util.CommonError
		AgreeInfo []struct {
			StatusChangeTime int64  `json:"status_change_time"`
			ExternalOpenID   string `json:"exteranalopenid"` // sic: WeCom's spelling
			AgreeStatus      string `json:"agree_status"`
		} `json:"agreeinfo"`
	}
	if err := a.call(ctx, "/cgi-bin/msgaudit/check_room_agree", map[string]string{"roomid": roomID}, &res); err != nil {
		return nil, err
	}
	out := make([]Consent, 0, len(res.AgreeInfo))
	for _, m := range res.AgreeInfo {
		if m.ExternalOpenID == "" || checkIDs(m.ExternalOpenID) != nil {
			continue
		}
		out = append(out, Consent{ExternalUserID: m.ExternalOpenID, Agree: m.AgreeStatus == "Agree", ChangedAt: time.Unix(m.StatusChangeTime, 0).UTC()})
	}
	return out, nil
}

// call posts body to a WeCom API path with the app's token and decodes the
// answer into out, whose errcode becomes the error.
func (a *Admin) call(ctx context.Context, path string, body, out any) error {
	token, err := a.token.GetAccessTokenContext(ctx)
	if err != nil {
		return fmt.Errorf("wecom token: %w", redact(err))
	}
	resp, err := util.PostJSONContext(ctx, DefaultAPIBase+path+"?access_token="+token, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, redact(err))
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("%s: answer is not JSON: %w", path, err)
	}
	var ce util.CommonError
	_ = json.Unmarshal(resp, &ce)
	if ce.ErrCode != 0 {
		return fmt.Errorf("%s: errcode %d: %s", path, ce.ErrCode, clip(ce.ErrMsg, 120))
	}
	return nil
}
