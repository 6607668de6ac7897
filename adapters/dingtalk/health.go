package dingtalk

import (
	"context"
	"sync"
	"time"
)

// Health is the stream connection as this process sees it.
type Health struct {
	// Running: Run is running.
	Running bool `json:"running"`
	// Holding: this process holds the app's one stream (always, without
	// Redis, while Run runs). A stand-by process is healthy but not holding.
	Holding bool `json:"holding"`
	// Connected: the stream is up as far as is known (see below).
	Connected bool `json:"connected"`
	// LastFrame is when the last frame (message, ping, keep-alive) arrived;
	// zero before the first.
	LastFrame time.Time `json:"last_frame,omitzero"`
	// SinceLastFrame is the time since LastFrame (0 before the first frame):
	// DingTalk pings a live connection, so a growing value is a warning sign.
	SinceLastFrame time.Duration `json:"since_last_frame"`
	// Reconnects counts connections after the first one since Run started
	// (SDK reconnects after a drop or a disconnect frame, and new streams after
	// the lease was lost and taken again).
	Reconnects int `json:"reconnects"`
	// Fence is the fencing token of the lease held now (0: none, or no Redis).
	Fence int64 `json:"fence,omitempty"`
}

// healthState tracks connections through what the SDK lets us see: Start
// succeeding, and the context of each frame handler, which is the
// connection's own and ends with it. A new context means a new connection;
// the current one having ended means the connection is down (the SDK
// reconnects by itself). A connection made by an SDK reconnect shows up with
// its first frame; DingTalk pings live connections, so that is soon.
type healthState struct {
	mu         sync.Mutex
	running    bool
	holding    bool
	fence      int64
	started    bool            // Start succeeded and no frame seen yet on that connection
	current    <-chan struct{} // Done of the connection the last frame came on
	connects   int
	lastFrame  time.Time
	lastLogged bool
}

func (h *healthState) snapshot(now time.Time) Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := Health{Running: h.running, Holding: h.holding, LastFrame: h.lastFrame, Reconnects: max(h.connects-1, 0), Fence: h.fence}
	switch {
	case !h.holding:
	case h.current != nil:
		out.Connected = !closed(h.current)
	default:
		out.Connected = h.started
	}
	if !h.lastFrame.IsZero() {
		out.SinceLastFrame = now.Sub(h.lastFrame)
	}
	return out
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// frame records a frame that arrived on the connection whose context is ctx.
func (h *healthState) frame(ctx context.Context, now time.Time) {
	done := ctx.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastFrame = now
	if done == nil || done == h.current || !h.holding {
		return
	}
	if h.started {
		h.started = false // the connection Start made: counted already
	} else {
		h.connects++
	}
	h.current = done
}

// hold and unhold mark the stretch during which this process holds the stream.
func (h *healthState) hold(fence int64) {
	h.mu.Lock()
	h.holding, h.fence, h.current, h.started = true, fence, nil, false
	h.mu.Unlock()
}

func (h *healthState) unhold() {
	h.mu.Lock()
	h.holding, h.fence, h.current, h.started = false, 0, nil, false
	h.mu.Unlock()
}

// connected records a successful Start.
func (h *healthState) connected() {
	h.mu.Lock()
	h.started, h.current = true, nil
	h.connects++
	h.lastLogged = true // connect logs it
	h.mu.Unlock()
}

func (h *healthState) setRunning(r bool) {
	h.mu.Lock()
	h.running = r
	if r {
		h.connects, h.lastLogged = 0, false
	}
	h.mu.Unlock()
}

// Health reports the stream's state; the hub shows it on its health surface
// and the adapter logs every change.
func (a *Adapter) Health() Health { return a.health.snapshot(a.now()) }

// watchHealth logs each change of the connection state, and a summary line
// every interval, until ctx ends.
func (a *Adapter) watchHealth(ctx context.Context, every time.Duration) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastSummary := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := a.Health()
		a.health.mu.Lock()
		changed := h.Connected != a.health.lastLogged
		a.health.lastLogged = h.Connected
		a.health.mu.Unlock()
		switch {
		case changed && h.Connected:
			a.log.Info("dingtalk stream reconnected", "reconnects", h.Reconnects, "fence", h.Fence)
		case changed && h.Holding:
			a.log.Warn("dingtalk stream disconnected; reconnecting", "reconnects", h.Reconnects, "since_last_frame", h.SinceLastFrame.Round(time.Millisecond))
		case time.Since(lastSummary) >= every:
			a.log.Info("dingtalk stream health", "holding", h.Holding, "connected", h.Connected, "since_last_frame", h.SinceLastFrame.Round(time.Second), "reconnects", h.Reconnects)
		default:
			continue
		}
		lastSummary = time.Now()
	}
}
