package wecomarchive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// wecomAPI is the few WeCom API calls the archive side makes (OAuth, JS-SDK
// tickets, external contacts) with one app's access token, cached.
type wecomAPI struct {
	base, corpID, secret string
	client               *http.Client

	mu     sync.Mutex
	tokens map[string]cached // access token, jsapi tickets
}

type cached struct {
	value   string
	expires time.Time
}

func newWeComAPI(base, corpID, secret string) *wecomAPI {
	if base == "" {
		base = DefaultAPIBase
	}
	return &wecomAPI{base: base, corpID: corpID, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, tokens: map[string]cached{}}
}

// api calls a WeCom API with the app's access token.
func (c *wecomAPI) call(ctx context.Context, path string, q url.Values, into any) error {
	token, err := c.token(ctx)
	if err != nil {
		return err
	}
	q.Set("access_token", token)
	if err := c.get(ctx, path, q, into); err != nil {
		return err
	}
	return nil
}

func (c *wecomAPI) token(ctx context.Context) (string, error) {
	if v, ok := c.cachedValue("token"); ok {
		return v, nil
	}
	var got struct {
		ErrCode     int64  `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := c.get(ctx, "/cgi-bin/gettoken", url.Values{"corpid": {c.corpID}, "corpsecret": {c.secret}}, &got); err != nil {
		return "", err
	}
	c.remember("token", got.AccessToken, got.ExpiresIn)
	return got.AccessToken, nil
}

func (c *wecomAPI) get(ctx context.Context, path string, q url.Values, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("wecom %s: %w", path, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&raw); err != nil {
		return fmt.Errorf("wecom %s: %w", path, err)
	}
	var head struct {
		ErrCode int64  `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	_ = json.Unmarshal(raw, &head)
	if head.ErrCode != 0 {
		return fmt.Errorf("wecom %s: errcode %d %s", path, head.ErrCode, head.ErrMsg)
	}
	return json.Unmarshal(raw, into)
}

func (c *wecomAPI) cachedValue(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.tokens[k]
	return v.value, ok && v.value != "" && time.Now().Before(v.expires)
}

func (c *wecomAPI) remember(k, v string, seconds int) {
	if seconds <= 0 {
		seconds = 7200
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Renewed a little early, so a value never expires in flight.
	c.tokens[k] = cached{value: v, expires: time.Now().Add(time.Duration(seconds)*time.Second - 5*time.Minute)}
}

// contactName is an external contact's (a resident's) WeChat name:
// externalcontact/get; "" when WeCom does not say.
func (c *wecomAPI) contactName(ctx context.Context, externalUserID string) (string, error) {
	var got struct {
		ExternalContact struct {
			Name string `json:"name"`
		} `json:"external_contact"`
	}
	if err := c.call(ctx, "/cgi-bin/externalcontact/get", url.Values{"external_userid": {externalUserID}}, &got); err != nil {
		return "", err
	}
	return got.ExternalContact.Name, nil
}
