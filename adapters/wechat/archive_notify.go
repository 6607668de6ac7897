package wechat

import (
	"context"
	"encoding/xml"
)

// WithArchiveNotify calls notify when WeCom's msgaudit_notify event (the
// conversation archive has new messages, at most every 15 s) arrives on the
// app callback, so the archive reader pulls at once instead of at its next
// tick. notify must return quickly: WeCom waits for the callback's answer.
func WithArchiveNotify(notify func(ctx context.Context)) Option {
	return func(o *options) { o.archive = notify }
}

// isArchiveNotify reports whether a decrypted app callback is msgaudit_notify.
func isArchiveNotify(plain []byte) bool {
	var m AppMessage
	return xml.Unmarshal(plain, &m) == nil && m.MsgType == "event" && m.Event == "msgaudit_notify"
}
