package wechat

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// msgaudit_notify on the app callback nudges the archive reader and
// publishes nothing; without a reader it is an event like any other.
func TestArchiveNotifyNudgesTheReader(t *testing.T) {
	f := newFixture(t)
	var nudged atomic.Int32
	f.a.archiveNotify = func(context.Context) { nudged.Add(1) }
	notify := []byte(fmt.Sprintf(`<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>`+
		`<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><AgentID>2000004</AgentID>`+
		`<Event><![CDATA[msgaudit_notify]]></Event></xml>`, testCorp, f.clock.Now().Unix()))
	if status, body := f.app(notify); status != http.StatusOK {
		t.Fatalf("msgaudit_notify answered %d %s", status, body)
	}
	if nudged.Load() != 1 {
		t.Fatalf("reader nudged %d times, want 1", nudged.Load())
	}
	if got := f.events(); len(got) != 0 {
		t.Fatalf("published %d events for msgaudit_notify", len(got))
	}
	f.a.archiveNotify = nil
	if status, _ := f.app(notify); status != http.StatusOK {
		t.Fatalf("msgaudit_notify without a reader answered %d", status)
	}
}
