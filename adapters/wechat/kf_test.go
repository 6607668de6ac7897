package wechat

import (
	"encoding/json"
	"testing"

	"github.com/silenceper/wechat/v2/work/kf/syncmsg"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/bot"
)

// kfMessage reads one sync_msg list entry as the SDK's SyncMsg does.
func kfMessage(raw []byte) (syncmsg.Message, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return syncmsg.Message{}, err
	}
	out := syncmsg.Message{OriginData: raw}
	out.MsgID, _ = m["msgid"].(string)
	out.OpenKFID, _ = m["open_kfid"].(string)
	out.ExternalUserID, _ = m["external_userid"].(string)
	out.MsgType, _ = m["msgtype"].(string)
	if v, ok := m["send_time"].(float64); ok {
		out.SendTime = uint64(v)
	}
	if v, ok := m["origin"].(float64); ok {
		out.Origin = uint32(v)
	}
	return out, nil
}

// TestNormaliseKFGolden: each customer-service message in testdata/kf
// becomes the direct event, or the error, in its .golden file.
func TestNormaliseKFGolden(t *testing.T) {
	golden.Run(t, "testdata/kf/*.json", func(t *testing.T, raw []byte) []byte {
		m, err := kfMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NormaliseKF(m, "wkTaipingKF", goldenNow)
		if err != nil {
			return golden.Error(err)
		}
		return golden.JSON(e)
	})
}

// The group a conversation came from survives the bus (the Redis bus
// carries events as encoded here).
func TestKFEventKeepsItsGroupOnTheBus(t *testing.T) {
	raw := []byte(`{"msgid":"kfm-9","open_kfid":"wkTaipingKF","external_userid":"wmA","send_time":1795394400,"origin":3,"msgtype":"text","text":{"content":"你好"}}`)
	m, err := kfMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NormaliseKF(m, "wkTaipingKF", goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	e.Via = &bot.ChatRef{Platform: bot.WeChat, ID: "wrOgQhDgAAheping", Type: bot.Group}
	b, err := bot.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bot.DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Via == nil || *got.Via != *e.Via || got.Text != "你好" || got.Chat.ID != "kf:wkTaipingKF:wmA" {
		t.Errorf("decoded = %+v (via %+v), want the event with its group", got, got.Via)
	}
}
