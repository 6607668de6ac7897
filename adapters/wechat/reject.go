package wechat

import (
	"log/slog"
	"sync"
	"time"
)

// rejectLines is how many lines a minute one reason for refusing callbacks
// may log on one endpoint. Refusals are what an attacker controls: without a
// bound, a flood of forged callbacks is a flood of log lines.
const rejectLines = 10

// rejectLog writes "wechat callback rejected" lines at a bounded rate per
// endpoint and reason; the first line after a quiet spell says how many
// were left out.
type rejectLog struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*rejectWindow // endpoint + reason; both come from code, so the map stays small
}

type rejectWindow struct {
	start      time.Time
	lines      int
	suppressed int
}

func newRejectLog(log *slog.Logger, now func() time.Time) *rejectLog {
	return &rejectLog{log: log, now: now, seen: map[string]*rejectWindow{}}
}

// note records one refusal; reason is the fixed part that names the kind,
// detail what is said about this one.
func (l *rejectLog) note(endpoint string, status int, reason, detail string) {
	l.mu.Lock()
	now := l.now()
	w := l.seen[endpoint+"\x00"+reason]
	if w == nil {
		w = &rejectWindow{start: now}
		l.seen[endpoint+"\x00"+reason] = w
	}
	if now.Sub(w.start) >= time.Minute {
		w.start, w.lines = now, 0
	}
	if w.lines >= rejectLines {
		w.suppressed++
		l.mu.Unlock()
		return
	}
	w.lines++
	suppressed := w.suppressed
	w.suppressed = 0
	l.mu.Unlock()
	attrs := []any{"endpoint", endpoint, "status", status, "reason", detail}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.log.Warn("wechat callback rejected", attrs...)
}
