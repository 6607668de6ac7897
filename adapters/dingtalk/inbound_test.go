package dingtalk

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"

	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/bot"
)

func TestGroupQuestionIsPublishedBeforeTheAck(t *testing.T) {
	var pendingAtAck atomic.Int64
	var bus *bot.MemoryBus
	srv := dingtalktest.NewServer(t, dingtalktest.Options{OnAck: func(a dingtalktest.Ack) {
		// The ack leaves the client only after the handler returned, so the
		// event must be on the bus by now.
		n, _ := bus.Pending(context.Background(), bot.TopicEvents, "test")
		pendingAtAck.Store(n)
	}})
	r := newRig(t, rigOpt{srv: srv})
	bus = r.bus
	srv.WaitConnections(t, 1)

	m := groupMsg("cidHexie==", "楼下电动车被偷了怎么办 电话13812345678")
	m.AtUsers = []chatbot.BotCallbackDataAtUserModel{{DingtalkId: "$:LWCP_v1:$wang", StaffId: "staff-wang"}}
	m.Text = " @王警官 楼下电动车被偷了怎么办 电话13812345678"
	frame := srv.Deliver(m)
	ack := srv.WaitAck(t, frame)
	if ack.Code != 200 || !strings.Contains(ack.Data, "response") {
		t.Errorf("ack = %+v, want code 200 with a response body", ack)
	}
	if pendingAtAck.Load() < 1 {
		t.Error("the frame was acked before its event was on the bus")
	}
	e := r.event()
	if e.Chat.ID != "cidHexie==" || e.Chat.Type != bot.Group || e.Sender.ID != "$:LWCP_v1:$res1" || e.Sender.Name != "刘阿姨" {
		t.Errorf("event chat/sender = %+v / %+v", e.Chat, e.Sender)
	}
	if e.Text != "楼下电动车被偷了怎么办 电话13812345678" || !e.AddressedToBot || e.Kind != bot.KindText {
		t.Errorf("event text %q addressed %v kind %s", e.Text, e.AddressedToBot, e.Kind)
	}
	if len(e.Mentions) != 2 || !e.Mentions[0].IsBot || e.Mentions[1].UserID != "staff-wang" || e.Mentions[1].Name != "王警官" {
		t.Errorf("mentions = %+v, want the robot and staff-wang", e.Mentions)
	}
	if _, err := decodeHandle(e.ReplyHandle); err != nil {
		t.Errorf("reply handle: %v", err)
	}
	if subs := srv.OpenRequests(); len(subs) == 0 || !hasSubscription(subs[0], "CALLBACK", dingtalktest.TopicBotMessage) {
		t.Errorf("connection did not subscribe to robot messages: %+v", subs)
	}
	r.cleanLogs("13812345678", "电动车", "刘阿姨", "session=")
}

func hasSubscription(req dingtalktest.OpenRequest, typ, topic string) bool {
	for _, s := range req.Subscriptions {
		if s.Type == typ && s.Topic == topic {
			return true
		}
	}
	return false
}

// failingPublisher stands for a bus that is down: the real bus behind it
// takes nothing while fail is set.
type failingPublisher struct {
	bot.Publisher
	fail atomic.Int32
}

func (f *failingPublisher) Publish(ctx context.Context, topic string, msgs ...bot.Message) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("bus unavailable")
	}
	return f.Publisher.Publish(ctx, topic, msgs...)
}

func TestBusDownMeansNoAckAndDingTalkSendsAgain(t *testing.T) {
	fp := &failingPublisher{}
	fp.fail.Store(2)
	r := newRig(t, rigOpt{pub: func(b bot.Publisher) bot.Publisher { fp.Publisher = b; return fp }})
	frame := r.srv.Deliver(groupMsg("cidHexie==", "门口有人发小广告"))
	ack := r.srv.WaitAck(t, frame)
	acks := r.srv.Acks(frame)
	if len(acks) < 3 || acks[0].Code == 200 || acks[1].Code == 200 {
		t.Fatalf("acks = %+v, want two failures then success", acks)
	}
	if ack.Attempt != 3 {
		t.Errorf("succeeded on delivery %d, want 3", ack.Attempt)
	}
	r.event()
	r.noEvent(300 * time.Millisecond)
	r.cleanLogs("小广告")
}

func TestSameMessageTwiceIsPublishedOnce(t *testing.T) {
	r := newRig(t, rigOpt{})
	m := groupMsg("cidHexie==", "车被刮了")
	m.MsgID = "msg-42"
	f1 := r.srv.Deliver(m)
	r.srv.WaitAck(t, f1)
	f2 := r.srv.Deliver(m) // DingTalk's redelivery: a new frame, the same msgId
	if a := r.srv.WaitAck(t, f2); a.Code != 200 {
		t.Errorf("duplicate acked with %d, want 200 (it is kept already)", a.Code)
	}
	if e := r.event(); e.MessageID != "msg-42" {
		t.Errorf("event %s", e.ID)
	}
	r.noEvent(300 * time.Millisecond)
}

func TestDisconnectFrameReconnectsAndLosesNothing(t *testing.T) {
	r := newRig(t, rigOpt{})
	a := groupMsg("cidHexie==", "第一条")
	r.srv.WaitAck(t, r.srv.Deliver(a))
	r.srv.Disconnect()
	r.srv.Wait(t, 5*time.Second, "the client to close the old connection", func() bool { return r.srv.Live() == 0 })
	b := groupMsg("cidHexie==", "断线期间的第二条")
	fb := r.srv.Deliver(b) // waits for the new connection
	r.srv.WaitConnections(t, 2)
	r.srv.WaitAck(t, fb)
	got := map[string]bool{r.event().Text: true, r.event().Text: true}
	if !got["第一条"] || !got["断线期间的第二条"] {
		t.Errorf("events = %v, want both messages", got)
	}
	r.noEvent(200 * time.Millisecond)
	r.srv.Wait(t, 5*time.Second, "health to show the reconnect", func() bool {
		h := r.a.Health()
		return h.Connected && h.Reconnects >= 1
	})
	if h := r.a.Health(); !h.Holding || h.LastFrame.IsZero() || h.SinceLastFrame > 5*time.Second {
		t.Errorf("health = %+v", h)
	}
	if !strings.Contains(r.logs.String(), "disconnect frame") {
		t.Errorf("no log line for the disconnect frame")
	}
}

func TestDroppedSocketRedeliversUnackedFramesOnce(t *testing.T) {
	r := newRig(t, rigOpt{})
	m := groupMsg("cidHexie==", "掉线前的消息")
	r.srv.Deliver(m)
	r.srv.Drop() // the ack, if the client got to write it, is lost with the socket
	r.srv.WaitConnections(t, 2)
	r.srv.Wait(t, 10*time.Second, "every frame acked", func() bool { return len(r.srv.Unacked()) == 0 })
	if e := r.event(); e.Text != "掉线前的消息" {
		t.Errorf("event %q", e.Text)
	}
	r.noEvent(300 * time.Millisecond)
}

func TestBadInputIsAnsweredAndLoggedWithoutPersonalData(t *testing.T) {
	r := newRig(t, rigOpt{})
	srv := r.srv
	cases := []struct {
		name, topic, data string
		code              int
	}{
		{"data not JSON", dingtalktest.TopicBotMessage, `我的电话13812345678 {not json`, 200},
		{"data of the wrong shape", dingtalktest.TopicBotMessage, `{"msgId":42,"text":{"content":"楼道有焦味"}}`, 200},
		{"no msgId", dingtalktest.TopicBotMessage, `{"conversationId":"c","conversationType":"2","senderId":"s","text":{"content":"楼道有焦味13812345678"},"msgtype":"text"}`, 200},
		{"no conversation", dingtalktest.TopicBotMessage, `{"msgId":"m1","conversationType":"2","senderId":"s","text":{"content":"楼道有焦味"},"msgtype":"text"}`, 200},
		{"unknown conversation type", dingtalktest.TopicBotMessage, `{"msgId":"m2","conversationId":"c","conversationType":"9","senderId":"s","text":{"content":"楼道有焦味"},"msgtype":"text"}`, 200},
		{"empty data", dingtalktest.TopicBotMessage, ``, 200},
		{"unknown topic", "/v1.0/unknown/topic", `{"text":"楼道有焦味"}`, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := srv.DeliverData(tc.topic, tc.data)
			srv.Wait(t, 10*time.Second, "an answer", func() bool { return len(srv.Acks(frame)) > 0 })
			if got := srv.Acks(frame)[0].Code; got != tc.code {
				t.Errorf("answered %d, want %d", got, tc.code)
			}
		})
	}
	// Frames too broken to ack: the SDK drops them; the connection lives on.
	srv.SendRaw([]byte(`{"type":"CALLBACK","headers":null,"data":"x"}`))
	srv.SendRaw([]byte(`not a frame 13812345678`))
	srv.SendRaw([]byte(`{"specVersion":"1.0","type":"CALLBACK","headers":{"topic":"` + dingtalktest.TopicBotMessage + `","messageId":"f-x"},"data":null}`))
	ok := srv.Deliver(groupMsg("cidHexie==", "正常消息"))
	srv.WaitAck(t, ok)
	if e := r.event(); e.Text != "正常消息" {
		t.Errorf("after bad input, event %q", e.Text)
	}
	r.noEvent(200 * time.Millisecond)
	if srv.Connections() != 1 {
		t.Errorf("bad input cost the connection: %d connections", srv.Connections())
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "dingtalk robot message dropped") || !strings.Contains(logs, "data is not a robot message") {
		t.Errorf("dropped frames not logged:\n%s", logs)
	}
	r.cleanLogs("13812345678", "焦味")
}

func TestStreamThatCannotOpenKeepsTrying(t *testing.T) {
	srv := dingtalktest.NewServer(t, dingtalktest.Options{})
	srv.FailOpen(1) // the gateway is busy once
	r := newRig(t, rigOpt{srv: srv})
	srv.WaitConnections(t, 1)
	if n := len(srv.Calls(dingtalktest.PathOpen)); n != 2 {
		t.Errorf("%d connections/open calls, want 2", n)
	}
	if !strings.Contains(r.logs.String(), "cannot connect; trying again") {
		t.Error("the failed connect was not logged")
	}
	r.srv.WaitAck(t, r.srv.Deliver(groupMsg("cidHexie==", "你好")))
	r.event()
}
