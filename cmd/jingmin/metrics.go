package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// metrics is one process's Prometheus registry: its own, not the global
// one, so tests and several hubs in one process never collide.
type metrics struct {
	reg         *prometheus.Registry
	events      *prometheus.CounterVec
	eventTime   *prometheus.HistogramVec
	routed      *prometheus.CounterVec
	escalations *prometheus.CounterVec
	outbound    *prometheus.CounterVec
	apiCalls    *prometheus.CounterVec
}

var _ commands.Observer = (*metrics)(nil)

func newMetrics(h *hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jingmin_events_total", Help: "Inbound events handled, by platform and outcome (ok, failed, busy).",
		}, []string{"platform", "outcome"}),
		eventTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jingmin_event_handle_seconds", Help: "Time to handle one event.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"platform"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jingmin_tickets_routed_total", Help: "New tickets by who took them (own_officer, mentioned, on_duty, next_in_line, duty_account) and emergency.",
		}, []string{"reason", "emergency"}),
		escalations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jingmin_escalations_total", Help: "Escalation steps by level; level 1 is an SLA breach.",
		}, []string{"level"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jingmin_outbound_total", Help: "Outbound messages by platform and outcome (sent, failed: retried, refused: permanent).",
		}, []string{"platform", "outcome"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jingmin_platform_api_calls_total", Help: "Calls to the platforms' APIs, by platform, app, API and the purpose of the message that caused them (\"\" for token fetches and the like).",
		}, []string{"platform", "app", "api", "purpose"}),
	}
	m.reg.MustRegister(m.events, m.eventTime, m.routed, m.escalations, m.outbound, m.apiCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pc, ok := h.bus.(bot.PendingCounter); ok {
		lag := prometheus.NewDesc("jingmin_bus_pending", "Messages a consumer group has not acked yet (bus lag).", []string{"topic", "group"}, nil)
		m.reg.MustRegister(collectorFunc{descs: []*prometheus.Desc{lag}, collect: func(ch chan<- prometheus.Metric) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			topics := map[string]string{bot.TopicEvents: "handlers"}
			for topic, group := range topics {
				if n, err := pc.Pending(ctx, topic, group); err == nil {
					ch <- prometheus.MustNewConstMetric(lag, prometheus.GaugeValue, float64(n), topic, group)
				}
			}
		}})
	}
	if h.role.handlers {
		// The numbers come from the database, the same in every worker:
		// aggregate with max, not sum.
		m.reg.MustRegister(broadcastProgress(h))
	}
	return m
}

// broadcastWindow is how long a finished or cancelled broadcast stays on
// /metrics, so its final numbers are scraped before it goes.
const broadcastWindow = 15 * time.Minute

// broadcastProgress reports, at each scrape, the deliveries of every
// broadcast being sent (and of those finished or cancelled within
// broadcastWindow) per delivery state, from one grouped query. A scrape
// while the database is down reports no broadcasts; /readyz says why.
func broadcastProgress(h *hub) prometheus.Collector {
	deliveries := prometheus.NewDesc("jingmin_broadcast_deliveries",
		"Deliveries of each broadcast being sent or finished in the last 15 minutes, by delivery state (pending, sending, sent, failed, cancelled).",
		[]string{"broadcast", "state"}, nil)
	sending := prometheus.NewDesc("jingmin_broadcasts_sending", "Broadcasts being sent now.", nil, nil)
	states := []string{store.DeliveryPending, store.DeliverySending, store.DeliverySent, store.DeliveryFailed, store.DeliveryCancelled}
	return collectorFunc{descs: []*prometheus.Desc{deliveries, sending}, collect: func(ch chan<- prometheus.Metric) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		counts, err := h.store.BroadcastProgress(ctx, h.now().Add(-broadcastWindow))
		if err != nil {
			h.log.Debug("broadcast progress not scraped", "err", err)
			return
		}
		perState := map[uint]map[string]int{}
		var ids []uint
		nSending := 0
		for _, c := range counts {
			if perState[c.BroadcastID] == nil {
				perState[c.BroadcastID] = map[string]int{}
				ids = append(ids, c.BroadcastID)
				if c.Broadcast == store.BroadcastSending {
					nSending++
				}
			}
			perState[c.BroadcastID][c.Delivery] += c.N
		}
		for _, id := range ids {
			label := fmt.Sprintf("B%d", id)
			for _, st := range states {
				ch <- prometheus.MustNewConstMetric(deliveries, prometheus.GaugeValue, float64(perState[id][st]), label, st)
			}
		}
		ch <- prometheus.MustNewConstMetric(sending, prometheus.GaugeValue, float64(nSending))
	}}
}

// observeEvent is the bot.Log middleware's observer.
func (m *metrics) observeEvent(e *bot.Event, took time.Duration, err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, bot.ErrBusy):
		outcome = "busy"
	case err != nil:
		outcome = "failed"
	}
	m.events.WithLabelValues(string(e.Platform), outcome).Inc()
	m.eventTime.WithLabelValues(string(e.Platform)).Observe(took.Seconds())
}

func (m *metrics) Routed(reason string, emergency bool) {
	m.routed.WithLabelValues(reason, strconv.FormatBool(emergency)).Inc()
}

func (m *metrics) Escalated(level int) {
	m.escalations.WithLabelValues(strconv.Itoa(min(level, 4))).Inc()
}

// observeSend is the relays' observer: what became of each send.
func (m *metrics) observeSend(p bot.Platform, lane string, o bot.Outcome, took time.Duration) {
	outcome := map[bot.Outcome]string{bot.Sent: "sent", bot.Retry: "failed", bot.Failed: "refused"}[o]
	if outcome != "" {
		m.outbound.WithLabelValues(string(p), outcome).Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// collectorFunc is a collector computed at scrape time.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// observeAPICall counts one platform API call.
func (m *metrics) observeAPICall(p bot.Platform, app, api string, purpose bot.Purpose) {
	m.apiCalls.WithLabelValues(string(p), app, api, string(purpose)).Inc()
}
