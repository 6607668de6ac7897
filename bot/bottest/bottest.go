// Package bottest holds what tests of the hub and its adapters need around
// bot: a clock they can set, and a log sink they can read back to prove no
// resident's words or numbers were logged.
package bottest

import (
	"bytes"
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use: a test can be "at
// 22:00 on a Sunday" whatever the wall clock says.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

func (c *Clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *Clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// LogBuffer collects log output from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
