package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "broadcast" {
		return cmdBenchBroadcast(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "broadcast-sender" {
		return cmdBenchBroadcastSender(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "route-worker" {
		return cmdBenchRouteWorker(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "route" {
		return fmt.Errorf("usage: jingmin bench route [-events N] [-groups N] [-officers N] [-concurrency N] [-burst-groups N]\n       jingmin bench broadcast [-groups N] [-rate-dingtalk R] [-rate-wechat R]")
	}
	fs := flag.NewFlagSet("bench route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := routeBench{}
	b.flags(fs)
	province := fs.Bool("province", false, "a province: 100 stations, 100,000 groups, 5,000 officers, 1,000,000 events on MySQL (-dsn) and Redis with 2 worker processes; flags given beside it (-events, ...) win")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *province {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"stations": "100", "groups": "100000", "officers": "5000", "events": "1000000",
			"store": "mysql", "bus": "redis", "procs": "2"} {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return err
				}
			}
		}
	}
	if b.events < 1 || b.groups < b.stations || b.officers < 4*b.stations || b.concurrency < 1 || b.procs < 1 || b.workers < 0 || b.senderWorkers < 1 {
		return fmt.Errorf("bench route: need events ≥ 1, groups ≥ stations, officers ≥ 4 per station, concurrency ≥ 1, procs ≥ 1")
	}
	if b.burstGroups < 0 || b.burstGroups > 0 && (b.burstQuestions < 1 || b.groupLimit < 1 || b.groupWindow <= 0) {
		return fmt.Errorf("bench route: need -burst-groups ≥ 0; a burst needs -burst-questions ≥ 1, -group-limit ≥ 1 and -group-window > 0")
	}
	if b.bus == "memory" && b.procs > 1 {
		return fmt.Errorf("bench route: -procs %d needs -bus redis (processes cannot share an in-memory bus)", b.procs)
	}
	if b.store == "mysql" && b.dsn == "" {
		return fmt.Errorf("bench route: -store mysql needs -dsn or %s", configs.EnvDatabaseDSN)
	}
	if b.workers == 0 {
		b.workers = configs.DefaultWorkers(b.store)
	}
	res, err := b.run(ctx, stderr)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	return nil
}

// flags are the route bench's flags; the worker processes it starts take
// the same ones (see args).
func (b *routeBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.events, "events", 20000, "events to send (questions, replies, emergencies, 10% redelivered duplicates)")
	fs.IntVar(&b.groups, "groups", 3200, "groups in the synthetic district")
	fs.IntVar(&b.officers, "officers", 400, "officers in the synthetic district")
	fs.IntVar(&b.stations, "stations", 16, "stations the groups and officers are spread over")
	fs.IntVar(&b.concurrency, "concurrency", 16, "events in flight at once (each waits for its first reply)")
	fs.IntVar(&b.workers, "workers", 0, "handler workers (hub.workers; default: the hub's for the store)")
	fs.IntVar(&b.senderWorkers, "sender-workers", 32, "outbound messages each platform's sender has in hand (hub.sender_workers; its default)")
	fs.StringVar(&b.dir, "dir", "", "folder for the SQLite file (default: a temporary folder, removed after)")
	fs.StringVar(&b.bus, "bus", "memory", "memory, or redis (Redis Streams at -redis)")
	fs.StringVar(&b.redisURL, "redis", envOr(configs.EnvRedisURL, "redis://127.0.0.1:6379/0"), "Redis URL for -bus redis")
	fs.StringVar(&b.store, "store", "sqlite", "sqlite, or mysql (at -dsn; the bench fills that database)")
	fs.StringVar(&b.dsn, "dsn", os.Getenv(configs.EnvDatabaseDSN), "MySQL DSN for -store mysql (without a database name the bench creates one and drops it after)")
	fs.StringVar(&b.workerBinary, "worker-binary", "", "the jingmin binary the worker processes run (default: this one)")
	fs.IntVar(&b.procs, "procs", 1, "worker processes (distributed: each a hub of its own over the shared bus and store)")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the event phase (after the baselines) to this file")
	fs.StringVar(&b.memProfile, "memprofile", "", "write a heap profile taken after the event phase (what stays in memory as traffic grows) to this file")
	fs.IntVar(&b.burstGroups, "burst-groups", 0, "groups that get a burst of questions, then their answers, while the events run (0: no burst); the stand-in platform then limits each group to -group-limit messages per -group-window")
	fs.IntVar(&b.burstQuestions, "burst-questions", 15, "questions to each burst group, all at once; each is answered once the group's acknowledgements are in")
	fs.IntVar(&b.groupLimit, "group-limit", 20, "with -burst-groups: messages the stand-in platform takes per group per -group-window (WeCom's webhook robots: 20 a minute); beyond it, it answers \"retry after\"")
	fs.BoolVar(&b.cards, "cards", false, "give officers tap-to-act cards (off in the default config): api_calls_per_question then counts card sends and updates")
	fs.DurationVar(&b.groupWindow, "group-window", time.Minute, "with -burst-groups: the window of -group-limit")
}

// args are the flags a worker process needs to build the same hub: the
// district, the store and bus, the handler workers.
func (b routeBench) args() []string {
	return []string{"-groups", strconv.Itoa(b.groups), "-officers", strconv.Itoa(b.officers), "-stations", strconv.Itoa(b.stations),
		"-workers", strconv.Itoa(b.workers), "-sender-workers", strconv.Itoa(b.senderWorkers), "-bus", b.bus, "-redis", b.redisURL,
		"-store", b.store, "-burst-groups", strconv.Itoa(b.burstGroups), "-cards=" + strconv.FormatBool(b.cards)}
}

// hubConfig is the configuration every hub of the bench runs with, over
// database dsn (a MySQL DSN, or the SQLite file) and Redis key prefix.
func (b routeBench) hubConfig(dsn, prefix string) *configs.Config {
	cfg := &configs.Config{Source: "bench"}
	cfg.Hub.Timezone, cfg.Hub.Workers, cfg.Hub.TimerSeconds, cfg.Hub.MaxTextRunes = "Asia/Shanghai", b.workers, 3600, 4000
	cfg.Hub.SenderWorkers = b.senderWorkers
	cfg.Hub.EmergencyKeywords = []string{"着火", "打架", "持刀", "走失"}
	cfg.Database.Driver, cfg.Database.DSN = store.SQLite, dsn
	if b.store == "mysql" {
		cfg.Database.Driver = store.MySQL
	}
	cfg.Bus.Kind, cfg.Bus.ClaimIdleSeconds = b.bus, 30
	if b.bus == "redis" {
		cfg.Bus.RedisURL, cfg.Bus.Prefix = b.redisURL, prefix
	}
	return cfg
}

type routeBench struct {
	events, groups, officers, stations, concurrency, workers, procs int
	senderWorkers                                                   int
	dir, bus, redisURL, store, dsn, cpuProfile, memProfile          string
	workerBinary                                                    string
	burstGroups, burstQuestions, groupLimit                         int
	groupWindow                                                     time.Duration
	// cards gives the officers tap-to-act cards, as a deployment that
	// turns them on has them (off by default, as in the default config).
	cards bool
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

type routeResult struct {
	Events         int     `json:"events"`
	EventsPerSec   float64 `json:"events_per_sec"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	StoreTxPerSec  float64 `json:"store_tx_per_sec"`
	Ratio          float64 `json:"ratio"`
	DuplicatesLeak int     `json:"duplicates_leaked"`
	Lost           int     `json:"lost"`
	RSSMB          float64 `json:"rss_mb"`
	// HeapMB is what stays live on the Go heap at the end, after a
	// collection: the hub's state and the bench's, without the garbage
	// and the runtime's reserve that rss_mb includes.
	HeapMB         float64 `json:"heap_mb"`
	Tickets        int64   `json:"tickets"`
	Outbound       int64   `json:"outbound"`
	Workers        int     `json:"workers"`
	Concurrency    int     `json:"concurrency"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	StoreDriver    string  `json:"store"`
	BusKind        string  `json:"bus"`
	Procs          int     `json:"procs"`
	// Distributed baselines: Redis XADD+XREADGROUP+XACK round trips per
	// second from one Go client (0 on the in-memory bus).
	BusRoundTrips float64 `json:"bus_roundtrips_per_sec,omitempty"`
	TxPerCommit   float64 `json:"tx_per_commit"`
	// CPUPerEvent is the process's CPU time (all threads, user and system)
	// over the event phase divided by the events: unlike events_per_sec it
	// barely moves when something else runs on the machine.
	CPUPerEventMs float64 `json:"cpu_ms_per_event"`
	// AckP99ms is publish → acknowledgement in the group, over every
	// resident's question (the burst's too): what a resident waits for.
	AckP99ms float64 `json:"ack_p99_ms"`

	// What the event phase cost the servers, from their own statistics
	// (server-wide: other clients during the run add to them). Redis: INFO
	// commandstats calls per event, in all and for the top commands; MySQL:
	// SHOW GLOBAL STATUS Questions per event, and the Com_* counters.
	RedisCmdsPerEvent float64            `json:"redis_cmds_per_event,omitempty"`
	RedisCmds         map[string]float64 `json:"redis_cmds,omitempty"`
	SQLStmtsPerEvent  float64            `json:"sql_stmts_per_event,omitempty"`
	// SQLRoundTripsPerEvent counts the MySQL wire round trips every
	// process of the run made (see wireCounter), per event.
	SQLRoundTripsPerEvent float64 `json:"sql_roundtrips_per_event,omitempty"`
	// SQLRoundTrips are those round trips per event by the first word of
	// their SQL (START, COMMIT, INSERT, ...).
	SQLRoundTrips map[string]float64 `json:"sql_roundtrips,omitempty"`
	// With worker processes: the CPU per event of the front process alone
	// (cpu_ms_per_event is the whole tree's), and each worker's resident
	// memory after the event phase and at its peak.
	FrontCPUPerEventMs float64            `json:"front_cpu_ms_per_event,omitempty"`
	WorkerRSSMB        []float64          `json:"worker_rss_mb,omitempty"`
	WorkerPeakRSSMB    []float64          `json:"worker_peak_rss_mb,omitempty"`
	SQLStmts           map[string]float64 `json:"sql_stmts,omitempty"`
	// What the run made on the servers and removed at the end: its Redis
	// key prefix (redis_keys_left counts what is still under it) and the
	// MySQL database it created, if the DSN named none.
	RedisPrefix   string `json:"redis_prefix,omitempty"`
	RedisKeysLeft *int   `json:"redis_keys_left,omitempty"`
	MySQLDatabase string `json:"mysql_database_dropped,omitempty"`

	// The burst (-burst-groups): its groups, its events (questions and
	// answers), the p99 of its acknowledgements, the answers the platform's
	// per-group limit held back, every send it told to wait and the
	// acknowledgements among them (a group over its limit by its own
	// traffic), and how long until the last answer reached its group.
	GroupLimit         string  `json:"group_limit,omitempty"`
	BurstGroups        int     `json:"burst_groups,omitempty"`
	BurstEvents        int     `json:"burst_events,omitempty"`
	BurstAckP99ms      float64 `json:"burst_ack_p99_ms,omitempty"`
	BurstAnswersWaited int     `json:"burst_answers_waited,omitempty"`
	SendsToldToWait    *int64  `json:"sends_told_to_wait,omitempty"`
	AcksToldToWait     *int64  `json:"acks_told_to_wait,omitempty"`
	BurstDrainSeconds  float64 `json:"burst_drain_seconds,omitempty"`

	// APICallsPerQuestion is what the run's outbound messages (officers'
	// cards on) would cost in platform API calls per resident question
	// on each platform, by the adapters' own Calls; APICallsByPurpose
	// splits the same per question by what the messages were for.
	APICallsPerQuestion map[string]float64            `json:"api_calls_per_question"`
	APICallsByPurpose   map[string]map[string]float64 `json:"api_calls_by_purpose"`
}

// recorder is the stand-in platform: it records when the first reply to
// each event arrived (replies carry the event's reply handle), for the
// events in flight only, and counts what it took; duplicates that leaked
// are what it took beyond the rows marked sent (every row has a unique
// key), so it keeps nothing per message and the bench's own memory stays
// flat however many events run.
// With a group limit it takes at most limit messages per group per window
// and answers the rest "retry after" the time a slot frees, as the WeCom
// webhook adapter does for a robot at its rate.
type recorder struct {
	mu      sync.Mutex
	waiters map[string]*firstReply
	// answers are the burst tickets whose answer in the group is awaited;
	// answerWaited those whose answer was told to wait at least once.
	answers      map[uint]chan struct{}
	answerWaited map[uint]bool
	limit        int
	window       time.Duration
	recent       map[string][]time.Time // per group, its sends within the window, oldest first
	sent         atomic.Int64
	calls        map[bot.Platform]map[bot.Purpose]int64 // what the sends would cost per platform
	toldWait     atomic.Int64
	acksWaited   atomic.Int64 // acknowledgements among toldWait
}

// firstReply is the first message the platform took for one event: done
// closes when it came, at says when.
type firstReply struct {
	done chan struct{}
	at   time.Time
}

// took is the time from t0 to the reply; read it only after done closed.
func (f *firstReply) took(t0 time.Time) time.Duration { return f.at.Sub(t0) }

func newRecorder(limit int, window time.Duration) *recorder {
	return &recorder{waiters: map[string]*firstReply{}, answers: map[uint]chan struct{}{}, answerWaited: map[uint]bool{},
		recent: map[string][]time.Time{}, limit: limit, window: window, calls: map[bot.Platform]map[bot.Purpose]int64{}}
}

func (r *recorder) Send(_ context.Context, o *bot.Outbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit > 0 && o.Chat != nil && o.Chat.Type == bot.Group {
		now := time.Now()
		recent := r.recent[o.Chat.ID]
		for len(recent) > 0 && now.Sub(recent[0]) >= r.window {
			recent = recent[1:]
		}
		if len(recent) >= r.limit {
			r.recent[o.Chat.ID] = recent
			r.toldWait.Add(1)
			if o.Ref.Purpose == bot.PurposeAck {
				r.acksWaited.Add(1)
			}
			if _, ok := r.answers[o.Ref.TicketID]; ok && o.Ref.Purpose == bot.PurposeAnswer {
				r.answerWaited[o.Ref.TicketID] = true
			}
			return bot.RetryAfter(recent[0].Add(r.window).Sub(now), fmt.Errorf("group %s is at its %d messages per %s", o.Chat.ID, r.limit, r.window))
		}
		r.recent[o.Chat.ID] = append(recent, now)
	}
	r.sent.Add(1)
	for p, n := range map[bot.Platform]int{bot.DingTalk: dingtalk.Calls(o), bot.WeChat: wechat.Calls(o)} {
		if r.calls[p] == nil {
			r.calls[p] = map[bot.Purpose]int64{}
		}
		r.calls[p][o.Ref.Purpose] += int64(n)
	}
	if f, ok := r.waiters[o.ReplyHandle]; ok {
		f.at = time.Now()
		close(f.done)
		delete(r.waiters, o.ReplyHandle)
	}
	if ch, ok := r.answers[o.Ref.TicketID]; ok && o.Ref.Purpose == bot.PurposeAnswer {
		close(ch)
		delete(r.answers, o.Ref.TicketID)
	}
	return nil
}

func (r *recorder) expect(handle string) *firstReply {
	f := &firstReply{done: make(chan struct{})}
	r.mu.Lock()
	r.waiters[handle] = f
	r.mu.Unlock()
	return f
}

// expectAnswer returns a channel closed when an officer's answer to ticket
// id reaches its group.
func (r *recorder) expectAnswer(id uint) <-chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	r.answers[id] = ch
	r.mu.Unlock()
	return ch
}

// district builds the synthetic directory: stations with a duty account, a
// leader, two duty officers and community officers on weekday day shifts,
// each group owned by one officer. A burst gets a station of its own, the
// last one, so the ordinary events run in the same district with or without
// it and never answer one of its tickets.
func (b routeBench) district() (store.Seed, [][]string, [][]string) {
	var seed store.Seed
	stations := b.stations
	if b.burstGroups > 0 {
		stations++
	}
	groupsOf := make([][]string, stations)
	officersOf := make([][]string, stations)
	perStation := b.officers / b.stations
	for s := 0; s < stations; s++ {
		community := perStation - 4
		if s == b.stations {
			community = 4
		}
		code := fmt.Sprintf("st%02d", s)
		seed.Stations = append(seed.Stations, store.SeedStation{Code: code, Name: fmt.Sprintf("第%d派出所", s+1), SLAMinutes: 15, DutyAccount: code + "-duty", Leader: code + "-lead"})
		add := func(id, name string, roles ...string) {
			seed.Officers = append(seed.Officers, store.SeedOfficer{Code: id, Station: code, Name: name, Roles: roles, Identities: map[string]string{"playground": id}})
		}
		add(code+"-duty", fmt.Sprintf("第%d所值班号", s+1), store.RoleDutyAccount)
		add(code+"-lead", fmt.Sprintf("所长%d", s+1), store.RoleLeader, store.RoleAdmin)
		for d := 0; d < 2; d++ {
			id := fmt.Sprintf("%s-duty%d", code, d)
			add(id, fmt.Sprintf("值班民警%d-%d", s+1, d), store.RoleDutyOfficer)
			seed.Shifts = append(seed.Shifts, store.SeedShift{Station: code, Officer: id, Weekdays: []int{0, 1, 2, 3, 4, 5, 6}, Start: "17:30", End: "22:00", Kind: "night"})
		}
		for o := 0; o < community; o++ {
			id := fmt.Sprintf("%s-o%d", code, o)
			add(id, fmt.Sprintf("民警%d-%d", s+1, o), store.RoleOfficer)
			officersOf[s] = append(officersOf[s], id)
			seed.Shifts = append(seed.Shifts, store.SeedShift{Station: code, Officer: id, Weekdays: []int{-1}, DayKind: "workday", Start: "08:30", End: "17:30", Kind: "day"})
		}
	}
	for g := 0; g < b.groups; g++ {
		s := g % b.stations
		own := officersOf[s][(g/b.stations)%len(officersOf[s])]
		id := fmt.Sprintf("g%05d", g)
		groupsOf[s] = append(groupsOf[s], id)
		seed.Groups = append(seed.Groups, store.SeedGroup{Platform: "playground", ChatID: id, Name: fmt.Sprintf("小区%d群", g), Station: fmt.Sprintf("st%02d", s), Officer: own})
	}
	for g := 0; g < b.burstGroups; g++ {
		s := b.stations
		id := fmt.Sprintf("b%05d", g)
		groupsOf[s] = append(groupsOf[s], id)
		seed.Groups = append(seed.Groups, store.SeedGroup{Platform: "playground", ChatID: id, Name: fmt.Sprintf("热点小区%d群", g), Station: fmt.Sprintf("st%02d", s), Officer: officersOf[s][g%len(officersOf[s])]})
	}
	seed.FAQs = []store.SeedFAQ{{Topic: "身份证", Keywords: []string{"身份证"}, Answer: "带户口簿到派出所户籍窗口办理。"}}
	for k, v := range configs.DefaultTemplates {
		seed.Templates = append(seed.Templates, store.Template{Key: k, Text: v})
	}
	return seed, groupsOf, officersOf
}

func (b routeBench) run(ctx context.Context, stderr io.Writer) (res *routeResult, err error) {
	dir := b.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "jingmin-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// The clock flips between a weekday morning and the same night every
	// 500 events, so the mix covers officers on shift and the duty account.
	var clock benchClock
	now := clock.now
	// What the run makes on shared servers it removes at the end, after
	// every hub has stopped (these defers run last).
	dbDSN := filepath.Join(dir, "bench.db")
	var mysqlDB *benchDatabase
	if b.store == "mysql" {
		if mysqlDB, err = openBenchDatabase(ctx, b.dsn); err != nil {
			return nil, err
		}
		defer func() {
			derr := mysqlDB.drop(context.WithoutCancel(ctx))
			mysqlDB.Close()
			if derr != nil {
				err = errors.Join(err, derr)
			} else if res != nil {
				res.MySQLDatabase = mysqlDB.created
			}
		}()
		dbDSN = mysqlDB.dsn
	}
	prefix := ""
	if b.bus == "redis" {
		prefix = benchPrefix() // a run of its own
	}
	cfg := b.hubConfig(dbDSN, prefix)
	var rs *redisSampler
	if b.bus == "redis" {
		if rs, err = newRedisSampler(ctx, b.redisURL, cfg.Bus.Prefix); err != nil {
			return nil, err
		}
		defer func() {
			left, cerr := rs.cleanUp(context.WithoutCancel(ctx))
			rs.Close()
			if cerr != nil {
				err = errors.Join(err, cerr)
			} else if res != nil {
				res.RedisKeysLeft = &left
			}
		}()
	}
	rec := newRecorder(0, 0)
	if b.burstGroups > 0 {
		rec = newRecorder(b.groupLimit, b.groupWindow)
	}
	seed, groupsOf, officersOf := b.district()
	var burstGroups, burstOfficers []string
	if b.burstGroups > 0 {
		burstGroups, burstOfficers = groupsOf[b.stations], officersOf[b.stations]
	}
	log := newLogger(io.Discard)
	// One process publishes and owns the (stand-in) platform; with -procs N,
	// N more run the handlers, as `jingmin adapter` and `jingmin worker` do.
	frontRole := roleAll
	if b.procs > 1 || b.bus != "memory" {
		frontRole = role{platform: bot.Playground}
	}
	var wire wireCounter
	h, err := openHub(ctx, cfg, log, hubOptions{now: now, seed: &seed, role: frontRole, senders: map[bot.Platform]bot.Sender{bot.Playground: rec}, dial: wire.dial, cards: b.cardPlatforms()})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	hubs := []*hub{h}
	// The workers are processes of their own (`bench route-worker`, what
	// `jingmin worker` runs), each with its own pools, caches and CPU.
	var procs []*workerProc
	defer func() {
		for _, p := range procs {
			if werr := p.stop(); werr != nil {
				err = errors.Join(err, fmt.Errorf("bench: worker process: %w", werr))
			}
		}
	}()
	if frontRole != roleAll {
		if procs, err = b.startWorkerProcs(ctx, b.procs, dbDSN, prefix, stderr); err != nil {
			return nil, err
		}
	}
	setPhase := func(n int64) {
		if clock.phase.Swap(n) == n {
			return
		}
		for _, p := range procs {
			p.setPhase(n)
		}
	}
	fmt.Fprintf(stderr, "bench: district of %d stations, %d groups, %d officers ready; measuring the raw baselines\n", b.stations, b.groups, b.officers)
	// The store's raw rate is measured for a second before the events and
	// a second after, each phase starting from an empty log, and averaged:
	// a machine whose speed drifts during the run moves both figures alike.
	rawBefore, err := h.store.RawInsertRate(ctx, time.Second)
	if err != nil {
		return nil, err
	}
	if err := h.store.Checkpoint(ctx); err != nil {
		return nil, err
	}
	var busRT float64
	if b.bus == "redis" {
		if busRT, err = redisRoundTrips(ctx, b.redisURL, cfg.Bus.Prefix, 2*time.Second); err != nil {
			return nil, err
		}
	}
	tickets0, err := h.store.CountTickets(ctx)
	if err != nil {
		return nil, err
	}
	commits0, txs0 := h.store.CommitStats()
	run, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, x := range hubs {
		running.Add(1)
		go func() { defer running.Done(); _ = x.Run(run, nil) }()
	}
	defer func() { stop(); running.Wait() }()
	runID := fmt.Sprint(time.Now().UnixNano())

	gen := newEventGen(b, groupsOf, officersOf, runID)
	var latencies, acks latencyHistogram // acks: the questions' alone
	type lateReply struct {
		wait *firstReply
		t0   time.Time
		ack  bool
	}
	var late []lateReply
	var (
		mu   sync.Mutex
		lost atomic.Int64
		next atomic.Int64
		wg   sync.WaitGroup
	)
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var redis0, sql0 map[string]int64
	if rs != nil {
		if redis0, err = redisCommandStats(ctx, rs.rdb); err != nil {
			return nil, err
		}
	}
	if mysqlDB != nil {
		if sql0, err = sqlStatus(ctx, mysqlDB.admin); err != nil {
			return nil, err
		}
	}
	// The burst runs beside the ordinary events; it ends (or is stopped)
	// before the hubs stop.
	var burstEvents atomic.Int64
	burstCtx, stopBurst := context.WithCancel(ctx)
	burstDone := make(chan burstOutcome, 1)
	waitBurst := sync.OnceValue(func() burstOutcome { return <-burstDone })
	defer func() { stopBurst(); waitBurst() }()
	workers0, err := sampleAll(procs)
	if err != nil {
		return nil, err
	}
	trips0, kinds0 := wire.trips.Load(), wire.byKind()
	sent0, err := h.store.OutboundStates(ctx, string(bot.Playground))
	if err != nil {
		return nil, err
	}
	cpu0 := processCPU()
	start := time.Now()
	go func() {
		burstDone <- b.burst(burstCtx, h.bus, h.store, rec, burstGroups, burstOfficers, runID, &burstEvents)
	}()
	for c := 0; c < b.concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.events {
					return
				}
				if i%500 == 0 {
					setPhase(int64(i / 500))
				}
				e, dup := gen.next()
				var wait *firstReply
				if !dup {
					wait = rec.expect(e.ReplyHandle)
				}
				t0 := time.Now()
				if err := bot.PublishEvent(ctx, h.bus, e); err != nil {
					lost.Add(1)
					continue
				}
				if dup {
					continue
				}
				select {
				case <-wait.done:
					mu.Lock()
					latencies.add(wait.took(t0))
					if e.Chat.Type == bot.Group {
						acks.add(wait.took(t0))
					}
					mu.Unlock()
				case <-time.After(10 * time.Second):
					// Late, not lost yet: a group at the platform's
					// limit has its acknowledgement held back a window.
					mu.Lock()
					late = append(late, lateReply{wait: wait, t0: t0, ack: e.Chat.Type == bot.Group})
					mu.Unlock()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); h.pending(ctx) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	trips := wire.trips.Load() - trips0
	kinds := map[string]int64{}
	for k, n := range wire.byKind() {
		kinds[k] += n - kinds0[k]
	}
	workers1, err := sampleAll(procs)
	if err != nil {
		return nil, err
	}
	var workerCPU time.Duration
	for i := range workers1 {
		workerCPU += time.Duration(workers1[i].CPUNanos - workers0[i].CPUNanos)
		trips += workers1[i].RoundTrips - workers0[i].RoundTrips
		for k, n := range workers1[i].Kinds {
			kinds[k] += n - workers0[i].Kinds[k]
		}
	}
	pprof.StopCPUProfile() // the profile is of the event phase only
	if b.memProfile != "" {
		if err := writeHeapProfile(b.memProfile); err != nil {
			return nil, err
		}
	}
	phaseEvents := b.events + int(burstEvents.Load())
	var redis1, sql1 map[string]int64
	if rs != nil {
		if redis1, err = redisCommandStats(ctx, rs.rdb); err != nil {
			return nil, err
		}
	}
	if mysqlDB != nil {
		if sql1, err = sqlStatus(ctx, mysqlDB.admin); err != nil {
			return nil, err
		}
	}
	// Replies still out after 10 s are lost, unless the platform's group
	// limit is on: then they get the window to come.
	lateWait, cancelLate := context.WithTimeout(ctx, rec.window)
	for _, l := range late {
		select {
		case <-l.wait.done:
			latencies.add(l.wait.took(l.t0))
			if l.ack {
				acks.add(l.wait.took(l.t0))
			}
		case <-lateWait.Done():
			lost.Add(1)
		}
	}
	cancelLate()
	burst := waitBurst()
	commits, txs := h.store.CommitStats()
	if err := h.store.Checkpoint(ctx); err != nil {
		return nil, err
	}
	rawAfter, err := h.store.RawInsertRate(ctx, time.Second)
	if err != nil {
		return nil, err
	}
	raw := (rawBefore + rawAfter) / 2

	res = &routeResult{Events: b.events, Workers: b.workers, Concurrency: b.concurrency, StoreDriver: h.store.Driver(), BusKind: b.bus, Procs: b.procs, BusRoundTrips: round(busRT, 0),
		ElapsedSeconds: round(elapsed.Seconds(), 2), StoreTxPerSec: round(raw, 0), Outbound: rec.sent.Load(), Lost: int(lost.Load())}
	res.EventsPerSec = round(float64(b.events)/elapsed.Seconds(), 0)
	res.CPUPerEventMs = round((cpu+workerCPU).Seconds()*1000/float64(b.events), 3)
	for _, w := range workers1 {
		res.WorkerRSSMB = append(res.WorkerRSSMB, w.RSSMB)
		res.WorkerPeakRSSMB = append(res.WorkerPeakRSSMB, w.PeakRSSMB)
	}
	if len(procs) > 0 {
		res.FrontCPUPerEventMs = round(cpu.Seconds()*1000/float64(b.events), 3)
	}
	res.Ratio = round(res.EventsPerSec/raw, 3)
	res.P50ms = round(latencies.pct(0.50), 2)
	res.P99ms = round(latencies.pct(0.99), 2)
	for _, d := range burst.acks {
		acks.add(d)
	}
	res.AckP99ms = round(acks.pct(0.99), 2)
	if rs != nil {
		res.RedisPrefix = rs.prefix
		// INFO is the bench's own sampling, not the hub's.
		res.RedisCmdsPerEvent, res.RedisCmds = perEvent(redis0, redis1, phaseEvents, map[string]bool{"info": true}, 8)
	}
	if mysqlDB != nil {
		res.SQLStmtsPerEvent = round(float64(sql1["Questions"]-sql0["Questions"])/float64(phaseEvents), 2)
		res.SQLRoundTripsPerEvent = round(float64(trips)/float64(phaseEvents), 2)
		res.SQLRoundTrips = map[string]float64{}
		for k, n := range kinds {
			if n > 0 {
				res.SQLRoundTrips[k] = round(float64(n)/float64(phaseEvents), 2)
			}
		}
		_, res.SQLStmts = perEvent(sql0, sql1, phaseEvents, map[string]bool{"Questions": true}, len(sqlCounters))
	}
	if len(burstGroups) > 0 {
		sort.Slice(burst.acks, func(i, j int) bool { return burst.acks[i] < burst.acks[j] })
		res.GroupLimit = fmt.Sprintf("%d/%s", b.groupLimit, b.groupWindow)
		res.BurstGroups, res.BurstEvents = len(burstGroups), int(burstEvents.Load())
		res.BurstAckP99ms = round(pct(burst.acks, 0.99), 2)
		res.BurstAnswersWaited = burst.answersWaited
		told, acksTold := rec.toldWait.Load(), rec.acksWaited.Load()
		res.SendsToldToWait, res.AcksToldToWait = &told, &acksTold
		if !burst.last.IsZero() {
			res.BurstDrainSeconds = round(burst.last.Sub(start).Seconds(), 2)
		}
		res.Lost += burst.lost
	}
	// Every row has a unique key: what the platform took beyond the rows
	// marked sent was sent twice. A row being sent may have reached the
	// platform before its mark: wait for those (bounded) first.
	var sent1 map[string]int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		if sent1, err = h.store.OutboundStates(ctx, string(bot.Playground)); err != nil {
			return nil, err
		}
		if sent1[store.OutboundSending] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if extra := rec.sent.Load() - (sent1[store.OutboundSent] - sent0[store.OutboundSent]); extra > 0 {
		res.DuplicatesLeak += int(extra)
	}
	unique := gen.questions() + len(burst.questions)
	tickets, err := h.store.CountTickets(ctx)
	if err != nil {
		return nil, err
	}
	tickets -= tickets0
	res.Tickets = tickets
	if extra := int(tickets) - unique; extra > 0 {
		res.DuplicatesLeak += extra
	}
	if missing := unique - int(tickets); missing > 0 {
		res.Lost += missing
	}
	res.APICallsPerQuestion, res.APICallsByPurpose = map[string]float64{}, map[string]map[string]float64{}
	rec.mu.Lock()
	for p, byPurpose := range rec.calls {
		var n int64
		res.APICallsByPurpose[string(p)] = map[string]float64{}
		for purpose, c := range byPurpose {
			n += c
			res.APICallsByPurpose[string(p)][string(purpose)] = round(float64(c)/float64(max(unique, 1)), 3)
		}
		res.APICallsPerQuestion[string(p)] = round(float64(n)/float64(max(unique, 1)), 3)
	}
	rec.mu.Unlock()
	res.RSSMB = peakRSSMB()
	res.HeapMB = heapAfterGC()
	res.TxPerCommit = round(float64(txs-txs0)/float64(max(commits-commits0, 1)), 2)
	return res, nil
}

// burstOutcome is what the burst saw.
type burstOutcome struct {
	acks          []time.Duration // publish → acknowledgement, per question
	questions     []string        // the questions' event ids, for the ticket count
	lost          int             // questions without acknowledgement or ticket, answers that never arrived
	answersWaited int             // answers the group's limit held back at least once
	last          time.Time       // when the last answer reached its group
}

// burst asks each burst group its questions all at once and, once the
// group's acknowledgements are in, answers every one of them as an officer
// of the burst's station. With the default numbers the acknowledgements fit in the
// group's limit and the answers beyond it wait as scheduled rows, for the
// window to pass, while the ordinary events flow: they must not hold up
// anyone else's messages.
func (b routeBench) burst(ctx context.Context, pub bot.Publisher, st *store.Store, rec *recorder, groups, officers []string, runID string, published *atomic.Int64) burstOutcome {
	var (
		mu  sync.Mutex
		out burstOutcome
		wg  sync.WaitGroup
	)
	// A group's messages beyond its limit go out one window later, or more.
	ackWait := 10*time.Second + time.Duration(b.burstQuestions/b.groupLimit)*b.groupWindow
	answerWait := 30*time.Second + time.Duration((2*b.burstQuestions+b.groupLimit-1)/b.groupLimit)*b.groupWindow
	lose := func() {
		mu.Lock()
		out.lost++
		mu.Unlock()
	}
	for gi, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tickets := make([]*store.Ticket, b.burstQuestions)
			var asking sync.WaitGroup
			for q := range b.burstQuestions {
				asking.Add(1)
				go func() {
					defer asking.Done()
					id := fmt.Sprintf("burst-%s-%d-%d", runID, gi, q)
					e := &bot.Event{ID: bot.NewEventID(bot.Playground, id), Platform: bot.Playground, MessageID: id, Kind: bot.KindText, Time: time.Now(), ReplyHandle: id,
						Chat:   bot.ChatRef{Platform: bot.Playground, ID: g, Type: bot.Group},
						Sender: bot.User{ID: fmt.Sprintf("burst-res-%d-%d", gi, q), Name: "居民"}, Text: "小区门口的路灯坏了好几天了，晚上很黑",
						AddressedToBot: true, Mentions: []bot.Mention{{Name: "社区警务助手", IsBot: true}}}
					acked := rec.expect(id)
					t0 := time.Now()
					if err := bot.PublishEvent(ctx, pub, e); err != nil {
						lose()
						return
					}
					published.Add(1)
					mu.Lock()
					out.questions = append(out.questions, e.ID)
					mu.Unlock()
					select {
					case <-acked.done:
						mu.Lock()
						out.acks = append(out.acks, acked.took(t0))
						mu.Unlock()
						t, err := st.TicketBySource(ctx, e.ID)
						if err != nil {
							lose()
							return
						}
						tickets[q] = t
					case <-time.After(ackWait):
						lose()
					case <-ctx.Done():
						lose()
					}
				}()
			}
			asking.Wait()
			var answering sync.WaitGroup
			for q, t := range tickets {
				if t == nil {
					continue // counted lost above
				}
				answered := rec.expectAnswer(t.ID)
				off := officers[q%len(officers)]
				id := fmt.Sprintf("burst-%s-%d-%d-answer", runID, gi, q)
				e := &bot.Event{ID: bot.NewEventID(bot.Playground, id), Platform: bot.Playground, MessageID: id, Kind: bot.KindText, Time: time.Now(), ReplyHandle: id,
					Chat: bot.ChatRef{Platform: bot.Playground, ID: off, Type: bot.Direct}, Sender: bot.User{ID: off},
					Text: fmt.Sprintf("#%d 已通知物业，今天修好", t.Number), AddressedToBot: true}
				if err := bot.PublishEvent(ctx, pub, e); err != nil {
					lose()
					continue
				}
				published.Add(1)
				answering.Add(1)
				go func() {
					defer answering.Done()
					select {
					case <-answered:
						now := time.Now()
						mu.Lock()
						if now.After(out.last) {
							out.last = now
						}
						mu.Unlock()
					case <-time.After(answerWait):
						lose()
					case <-ctx.Done():
						lose()
					}
				}()
			}
			answering.Wait()
		}()
	}
	wg.Wait()
	rec.mu.Lock()
	out.answersWaited = len(rec.answerWaited)
	rec.mu.Unlock()
	return out
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(float64(len(sorted))*p))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func round(x float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', places, 64), 64)
	return f
}

// processCPU is the CPU time the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMB reads the process's peak resident set (VmHWM) from /proc.
func peakRSSMB() float64 { return procStatusMB("VmHWM:") }

// procStatusMB reads one memory line of /proc/self/status in MB.
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return round(kb/1024, 1)
		}
	}
	return 0
}

// redisRoundTrips is the distributed bus's raw baseline: one client doing
// XADD, XREADGROUP and XACK in turn, as fast as it can, for d.
func redisRoundTrips(ctx context.Context, url, prefix string, d time.Duration) (float64, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	stream := prefix + "baseline"
	defer rdb.Del(context.WithoutCancel(ctx), stream)
	if err := rdb.XGroupCreateMkStream(ctx, stream, "g", "0").Err(); err != nil {
		return 0, fmt.Errorf("bench: redis baseline: %w", err)
	}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"payload": "楼道有焦味"}}).Err(); err != nil {
			return 0, fmt.Errorf("bench: redis baseline: %w", err)
		}
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 1}).Result()
		if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
			return 0, fmt.Errorf("bench: redis baseline read: %v", err)
		}
		if err := rdb.XAck(ctx, stream, "g", res[0].Messages[0].ID).Err(); err != nil {
			return 0, fmt.Errorf("bench: redis baseline: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// writeHeapProfile writes what is live on the heap now, after a collection,
// so the profile shows what stays rather than what was allocated.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

// cardPlatforms is where the bench's officers get cards (-cards).
func (b routeBench) cardPlatforms() map[bot.Platform]bool {
	if !b.cards {
		return nil
	}
	return map[bot.Platform]bool{bot.Playground: true}
}

// eventGen makes the bench's events as they are sent, so the bench holds
// the events in flight and a window of recent questions (for redeliveries),
// not the whole run: its memory stays flat from 100,000 events to millions.
type eventGen struct {
	mu         sync.Mutex
	rng        *rand.Rand
	runID      string
	stations   int
	groupsOf   [][]string
	officersOf [][]string
	asked      []int        // questions per station so far, for officers' answers
	recent     []*bot.Event // the last questions, redelivered now and then
	made, asks int
}

// redeliveryWindow is how many of the latest questions a redelivery picks
// from: platforms redeliver within a minute, not days later.
const redeliveryWindow = 4096

func newEventGen(b routeBench, groupsOf, officersOf [][]string, runID string) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(42, 7)), runID: runID, stations: b.stations, groupsOf: groupsOf, officersOf: officersOf,
		asked: make([]int, b.stations)}
}

// questions is how many distinct questions were made.
func (g *eventGen) questions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.asks
}

// next makes the next event: 10% redeliveries of a recent question, the
// rest questions in groups (emergencies, FAQ, ordinary ones) and officers'
// answers to earlier tickets of their station.
func (g *eventGen) next() (e *bot.Event, dup bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rng := g.rng
	i := g.made
	g.made++
	if len(g.recent) > 10 && rng.IntN(10) == 0 { // 10% redelivered duplicates
		return g.recent[rng.IntN(len(g.recent))], true
	}
	s := rng.IntN(g.stations)
	id := "bench-" + g.runID + "-" + strconv.Itoa(i)
	e = &bot.Event{ID: bot.NewEventID(bot.Playground, id), Platform: bot.Playground, MessageID: id, Kind: bot.KindText, Time: time.Now(), ReplyHandle: id}
	switch r := rng.IntN(100); {
	case r < 28 && g.asked[s] > 4: // an officer answers an earlier ticket of the station
		off := g.officersOf[s][rng.IntN(len(g.officersOf[s]))]
		e.Chat = bot.ChatRef{Platform: bot.Playground, ID: off, Type: bot.Direct}
		e.Sender = bot.User{ID: off}
		e.Text = fmt.Sprintf("#%d 已处理，请放心", 1+rng.IntN(g.asked[s]/2))
		e.AddressedToBot = true
	default:
		grp := g.groupsOf[s][rng.IntN(len(g.groupsOf[s]))]
		e.Chat = bot.ChatRef{Platform: bot.Playground, ID: grp, Type: bot.Group}
		e.Sender = bot.User{ID: fmt.Sprintf("res-%d", rng.IntN(400000)), Name: "居民"}
		e.AddressedToBot = true
		e.Mentions = []bot.Mention{{Name: "社区警务助手", IsBot: true}}
		switch {
		case r < 33:
			e.Text = "3号楼有人打架，快来人"
		case r < 40:
			e.Text = "请问补办身份证需要什么材料"
		default:
			e.Text = "楼道里电动车充电很危险，能不能管一管"
		}
		g.asked[s]++
		if len(g.recent) < redeliveryWindow {
			g.recent = append(g.recent, e)
		} else {
			g.recent[g.asks%redeliveryWindow] = e
		}
		g.asks++
	}
	return e, false
}

// latencyHistogram keeps latencies in buckets 1% wide (from a microsecond
// to over an hour), so percentiles of millions of events take a few
// kilobytes, within 1% of the exact figure.
type latencyHistogram struct {
	counts []int64
	n      int64
}

const histogramGrowth = 1.01

func (h *latencyHistogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log(us)/math.Log(histogramGrowth)) + 1
	}
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]int64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
}

// pct is the p-th percentile in milliseconds: the upper edge of the bucket
// it falls in.
func (h *latencyHistogram) pct(p float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := min(h.n-1, int64(float64(h.n)*p))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return math.Pow(histogramGrowth, float64(i)) / 1000
		}
	}
	return 0
}

// heapAfterGC is the live heap after a collection, in MB.
func heapAfterGC() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return round(float64(m.HeapAlloc)/(1<<20), 1)
}
