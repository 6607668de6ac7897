// Package redisbus is the distributed bot.Bus: Redis Streams with consumer
// groups. Publish is XADD (capped with MAXLEN ~), each subscription is one
// consumer of its group reading with XREADGROUP, an ack is XACK, and messages
// a dead consumer was holding are taken over with XAUTOCLAIM once they have
// been idle long enough. Events carry residents' words and names, so a
// stream keeps only what some group still needs: after acks, each
// subscription trims its stream (XTRIM MINID) up to the oldest entry any
// group has not yet acknowledged, at most once per TrimEvery. It passes the same contract suite as the in-memory
// bus (bot/bustest), so handlers cannot tell them apart.
package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/bot"
)

// Options tune the bus; zero values take the defaults.
type Options struct {
	// Prefix namespaces every key, so deployments (and tests) can share a server.
	Prefix string
	// MaxLen caps each stream (approximately), a backstop to the trimming
	// after acks: entries past it are dropped even if a lagging group has
	// not read them. Default 100,000 (hours of a district's events).
	MaxLen int64
	// TrimEvery is how often a subscription that acknowledged something
	// trims its stream of what every group has acknowledged. Default 5s.
	TrimEvery time.Duration
	// ClaimIdle is how long a delivered, unacked message must sit before
	// another consumer takes it over: longer than any handler runs. Default 60s.
	ClaimIdle time.Duration
	// Block is how long one XREADGROUP waits for new entries. Default 2s.
	Block time.Duration
}

// Bus is a bot.Bus over Redis Streams.
type Bus struct {
	rdb    redis.UniversalClient
	opts   Options
	name   string // consumer name prefix: host-pid
	seq    atomic.Int64
	mu     sync.Mutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ bot.Bus = (*Bus)(nil)

// New returns a bus on rdb; the caller owns rdb and closes it after the bus.
func New(rdb redis.UniversalClient, opts Options) *Bus {
	if opts.MaxLen <= 0 {
		opts.MaxLen = 100_000
	}
	if opts.TrimEvery <= 0 {
		opts.TrimEvery = 5 * time.Second
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = time.Minute
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	host, _ := os.Hostname()
	return &Bus{rdb: rdb, opts: opts, name: fmt.Sprintf("%s-%d", host, os.Getpid()), stop: make(chan struct{})}
}

func (b *Bus) key(topic string) string { return b.opts.Prefix + "stream:" + topic }

// entry fields
const (
	fieldID      = "id"
	fieldPayload = "payload"
	fieldMeta    = "meta"
)

// Publish appends msgs to the topic's stream in one round trip; it returns
// only after Redis has them.
func (b *Bus) Publish(ctx context.Context, topic string, msgs ...bot.Message) error {
	if b.isClosed() {
		return fmt.Errorf("publish to %s: %w", topic, bot.ErrClosed)
	}
	pipe := b.rdb.Pipeline()
	for _, m := range msgs {
		values := map[string]any{fieldID: m.ID, fieldPayload: m.Payload}
		if len(m.Metadata) > 0 {
			meta, err := json.Marshal(m.Metadata)
			if err != nil {
				return fmt.Errorf("publish to %s: metadata: %w", topic, err)
			}
			values[fieldMeta] = meta
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.key(topic), MaxLen: b.opts.MaxLen, Approx: true, Values: values})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Subscribe joins group (created on first use, reading the stream from its
// start so nothing published before the first consumer is lost).
func (b *Bus) Subscribe(ctx context.Context, topic, group string) (<-chan *bot.Delivery, error) {
	if b.isClosed() {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, bot.ErrClosed)
	}
	err := b.rdb.XGroupCreateMkStream(ctx, b.key(topic), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, fmt.Errorf("subscribe to %s/%s: %w", topic, group, err)
	}
	s := &subscription{bus: b, stream: b.key(topic), group: group,
		consumer: fmt.Sprintf("%s-%d", b.name, b.seq.Add(1)), out: make(chan *bot.Delivery)}
	b.wg.Add(1)
	go s.run(ctx)
	return s.out, nil
}

type subscription struct {
	bus                     *Bus
	stream, group, consumer string
	out                     chan *bot.Delivery
	retry                   []pending // nacked here, still ours in Redis
	nextClaim               time.Time
	acked                   bool // something was acked since the last trim
	lastTrim                time.Time
}

type pending struct {
	msg     redis.XMessage
	attempt int
}

// run feeds the subscription one delivery at a time until ctx ends or the
// bus closes. Whatever is unsettled then stays in the group's pending list
// and another consumer claims it after ClaimIdle.
func (s *subscription) run(ctx context.Context) {
	defer s.bus.wg.Done()
	defer close(s.out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.bus.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if s.acked && time.Since(s.lastTrim) >= s.bus.opts.TrimEvery {
			// A failed trim is tried again after the next ack; the
			// stream's MaxLen bounds it meanwhile.
			if err := s.bus.trim(ctx, s.stream); err == nil {
				s.acked = false
			}
			s.lastTrim = time.Now()
		}
		p, ok, err := s.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Redis is down or restarting: wait and try again, never spin.
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if !ok {
			continue
		}
		if !s.deliver(ctx, p) {
			return
		}
	}
}

// next finds the next message: our own nacked ones, then ones abandoned by
// dead consumers, then new ones.
func (s *subscription) next(ctx context.Context) (pending, bool, error) {
	if len(s.retry) > 0 {
		p := s.retry[0]
		s.retry = s.retry[1:]
		p.attempt++
		return p, true, nil
	}
	rdb := s.bus.rdb
	if now := time.Now(); now.After(s.nextClaim) {
		s.nextClaim = now.Add(s.bus.opts.ClaimIdle / 4)
		msgs, _, err := rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.stream, Group: s.group,
			MinIdle: s.bus.opts.ClaimIdle, Start: "0-0", Count: 1, Consumer: s.consumer}).Result()
		if err != nil {
			return pending{}, false, err
		}
		if len(msgs) > 0 {
			attempt := 2
			if info, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.stream, Group: s.group,
				Start: msgs[0].ID, End: msgs[0].ID, Count: 1}).Result(); err == nil && len(info) == 1 {
				attempt = int(info[0].RetryCount)
			}
			s.nextClaim = time.Time{} // there may be more
			return pending{msg: msgs[0], attempt: attempt}, true, nil
		}
	}
	block := s.bus.opts.Block
	if wait := time.Until(s.nextClaim); wait < block {
		block = max(wait, time.Millisecond)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: s.group, Consumer: s.consumer,
		Streams: []string{s.stream, ">"}, Count: 1, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return pending{}, false, nil
	}
	if err != nil {
		return pending{}, false, err
	}
	if len(res) == 0 || len(res[0].Messages) == 0 {
		return pending{}, false, nil
	}
	return pending{msg: res[0].Messages[0], attempt: 1}, true, nil
}

// deliver hands p to the consumer and waits for it to be settled; false
// means the subscription is over.
func (s *subscription) deliver(ctx context.Context, p pending) bool {
	m := decode(p.msg)
	settled := make(chan bool, 1) // true: acked
	d := bot.NewDelivery(m, p.attempt,
		func(ctx context.Context) error {
			err := s.bus.rdb.XAck(ctx, s.stream, s.group, p.msg.ID).Err()
			settled <- true
			if err != nil {
				return fmt.Errorf("ack %s: %w", p.msg.ID, err)
			}
			return nil
		},
		func(context.Context) error { settled <- false; return nil })
	select {
	case s.out <- d:
	case <-ctx.Done():
		return false
	}
	select {
	case acked := <-settled:
		if !acked {
			s.retry = append(s.retry, p)
		}
		s.acked = s.acked || acked
		return true
	case <-ctx.Done():
		return false
	}
}

// trim removes from stream every entry all its groups have acknowledged:
// those older than the oldest entry still pending in any group, and older
// than what any group has yet to read. Entries delivered after the groups
// were read have larger ids, so nothing a consumer holds is removed. A
// stream without groups is left to MaxLen.
func (b *Bus) trim(ctx context.Context, stream string) error {
	groups, err := b.rdb.XInfoGroups(ctx, stream).Result()
	if err != nil || len(groups) == 0 {
		return err
	}
	var minID string
	for _, g := range groups {
		keep := ""
		if g.Pending > 0 {
			sum, err := b.rdb.XPending(ctx, stream, g.Name).Result()
			if err != nil {
				return fmt.Errorf("pending of %s/%s: %w", stream, g.Name, err)
			}
			if sum.Count > 0 {
				keep = sum.Lower
			}
		}
		if keep == "" {
			// Everything delivered to the group is acked: keep from the
			// entry after the last one delivered.
			if keep, err = nextID(g.LastDeliveredID); err != nil {
				return err
			}
		}
		if minID == "" || lessID(keep, minID) {
			minID = keep
		}
	}
	if err := b.rdb.XTrimMinID(ctx, stream, minID).Err(); err != nil {
		return fmt.Errorf("trim %s: %w", stream, err)
	}
	return nil
}

// parseID splits a stream id "ms-seq".
func parseID(id string) (ms, seq uint64, err error) {
	a, c, ok := strings.Cut(id, "-")
	if ms, err = strconv.ParseUint(a, 10, 64); err != nil || !ok {
		return 0, 0, fmt.Errorf("stream id %q: %w", id, errors.Join(err, errors.New("want ms-seq")))
	}
	if seq, err = strconv.ParseUint(c, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stream id %q: %w", id, err)
	}
	return ms, seq, nil
}

func nextID(id string) (string, error) {
	ms, seq, err := parseID(id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d-%d", ms, seq+1), nil
}

// lessID orders stream ids (both valid, as Redis gives them).
func lessID(a, b string) bool {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	return am < bm || (am == bm && as < bs)
}

func decode(x redis.XMessage) bot.Message {
	m := bot.Message{}
	if v, ok := x.Values[fieldID].(string); ok {
		m.ID = v
	}
	if v, ok := x.Values[fieldPayload].(string); ok {
		m.Payload = []byte(v)
	}
	if v, ok := x.Values[fieldMeta].(string); ok {
		_ = json.Unmarshal([]byte(v), &m.Metadata)
	}
	return m
}

// Pending counts what group has not acked on topic: entries not yet read
// plus entries read and not acked (bus lag, and drain at shutdown).
func (b *Bus) Pending(ctx context.Context, topic, group string) (int64, error) {
	groups, err := b.rdb.XInfoGroups(ctx, b.key(topic)).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return 0, nil
		}
		return 0, fmt.Errorf("pending of %s/%s: %w", topic, group, err)
	}
	for _, g := range groups {
		if g.Name == group {
			return g.Lag + g.Pending, nil
		}
	}
	return 0, nil
}

// Ping reports whether Redis answers.
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return bot.ErrClosed
	}
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis bus: %w", err)
	}
	return nil
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close ends every subscription and waits for them; it does not close the
// Redis client, which the caller owns.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.stop)
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// Down reports whether err is Redis saying it cannot serve now (loading its
// data after a restart, out of client slots): the caller waits for it.
func Down(err error) bool { return redis.IsLoadingError(err) || redis.IsMaxClientsError(err) }
