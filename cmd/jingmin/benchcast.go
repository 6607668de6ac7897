package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/configs"
	"github.com/jingminhub/jingmin/store"
)

// castBench is `jingmin bench broadcast`: one alert to N stand-in groups,
// half on DingTalk and half on WeCom, through the real engine, store and
// rate limits, with the platforms played by an HTTP server in this process
// that counts what each group received.
type castBench struct {
	groups              int
	rateD, rateW        float64
	latency             time.Duration
	dir                 string
	recorderURL, dbPath string
}

type castResult struct {
	Groups            int     `json:"groups"`
	Seconds           float64 `json:"seconds"`
	LowerBoundSeconds float64 `json:"lower_bound_seconds"`
	Ratio             float64 `json:"ratio"`
	Duplicates        int     `json:"duplicates"`
	Missing           int     `json:"missing"`
	Resumed           bool    `json:"resumed"`
	// The kill-and-restart run.
	RestartSeconds    float64 `json:"restart_seconds"`
	RestartDuplicates int     `json:"restart_duplicates"`
	RestartMissing    int     `json:"restart_missing"`
	SentBeforeKill    int     `json:"sent_before_kill"`
	InFlightAtKill    int     `json:"in_flight_at_kill"`
	// CPUPerMessage is the CPU time (user and system, every thread) of the
	// straight run divided by the groups: the hub, its store and the
	// stand-in platform, all in this process. Unlike seconds it barely
	// moves with other work on the machine, and it shows whether a
	// message costs more in a bigger broadcast.
	CPUPerMessage float64 `json:"cpu_ms_per_message"`
	// RestartCPUPerMessage is the same over the kill-and-restart run: this
	// process (the stand-in platform, watching) and both sending processes.
	RestartCPUPerMessage float64 `json:"restart_cpu_ms_per_message"`
}

func (b *castBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.groups, "groups", 10000, "target groups, half DingTalk, half WeCom")
	fs.Float64Var(&b.rateD, "rate-dingtalk", 100, "broadcast messages per second on DingTalk")
	fs.Float64Var(&b.rateW, "rate-wechat", 100, "broadcast messages per second on WeCom")
	fs.DurationVar(&b.latency, "latency", 5*time.Millisecond, "stand-in platform's answer time per message")
}

// config is the synthetic deployment; the sender child builds the same.
func (b *castBench) config() (*configs.Config, error) {
	cfg, err := configs.Load("")
	if err != nil {
		return nil, err
	}
	cfg.Playground.Enabled = false
	cfg.Groups = nil
	for i := range b.groups {
		p := "dingtalk"
		if i%2 == 1 {
			p = "wechat"
		}
		cfg.Groups = append(cfg.Groups, configs.Group{Platform: p, ChatID: fmt.Sprintf("g%06d", i), Name: fmt.Sprintf("群%d", i), Station: "taiping"})
	}
	cfg.Broadcast.Rates = map[string]float64{"dingtalk": b.rateD, "wechat": b.rateW, "playground": 0}
	cfg.Broadcast.Workers = 4
	cfg.Broadcast.LeaseSeconds = 10
	cfg.Database.Driver, cfg.Database.DSN = "sqlite", b.dbPath
	return cfg, cfg.Validate()
}

// deadline is how long a run may take before the bench gives up: three
// times the rate's bound, plus slack, plus 20 ms a group for a busy machine.
func (b *castBench) deadline(lowerBound float64, slack time.Duration) time.Duration {
	return time.Duration(lowerBound*3*float64(time.Second)) + slack + time.Duration(b.groups)*20*time.Millisecond
}

// httpSender delivers to the stand-in platform over HTTP, as an adapter
// would to its platform.
type httpSender struct {
	url    string
	client *http.Client
}

func (s httpSender) Send(ctx context.Context, o *bot.Outbound) error {
	_, err := s.SendReceipt(ctx, o)
	return err
}

func (s httpSender) SendReceipt(ctx context.Context, o *bot.Outbound) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"?p="+string(o.Platform)+"&chat="+url.QueryEscape(o.Chat.ID), nil)
	if err != nil {
		return "", bot.Permanent(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("stand-in platform: %w", err)
	}
	defer resp.Body.Close()
	id, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("stand-in platform: HTTP %d", resp.StatusCode)
	}
	return string(id), nil
}

// castRecorder is the stand-in platform: it counts messages per group.
type castRecorder struct {
	mu      sync.Mutex
	got     map[string]int
	total   atomic.Int64
	latency time.Duration
}

func (r *castRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	time.Sleep(r.latency)
	chat := req.URL.Query().Get("chat")
	r.mu.Lock()
	r.got[chat]++
	r.mu.Unlock()
	n := r.total.Add(1)
	fmt.Fprint(w, n)
}

func (r *castRecorder) reset() {
	r.mu.Lock()
	r.got = map[string]int{}
	r.mu.Unlock()
	r.total.Store(0)
}

func (r *castRecorder) tally(groups int) (dups, missing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range groups {
		switch n := r.got[fmt.Sprintf("g%06d", i)]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	return dups, missing
}

func (b *castBench) openHub(ctx context.Context, log *slog.Logger) (*hub, error) {
	cfg, err := b.config()
	if err != nil {
		return nil, err
	}
	s := httpSender{url: b.recorderURL, client: &http.Client{Timeout: 10 * time.Second}}
	return openHub(ctx, cfg, log, hubOptions{
		senders:       map[bot.Platform]bot.Sender{bot.DingTalk: s, bot.WeChat: s},
		broadcastPoll: 50 * time.Millisecond,
	})
}

// draft creates and confirms the broadcast to every group.
func (b *castBench) draft(ctx context.Context, h *hub) (uint, error) {
	plan, err := h.rules.PlanBroadcast(ctx, nil, commands.Origin{Via: store.ViaCLI, From: "bench"}, commands.Scope{Kind: "all"}, "【警方预警】冒充客服退款的都是诈骗。", "", "")
	if err != nil {
		return 0, err
	}
	if _, err := h.rules.ConfirmBroadcast(ctx, nil, commands.Origin{Via: store.ViaCLI, From: "bench"}, plan.Broadcast.ID); err != nil {
		return 0, err
	}
	return plan.Broadcast.ID, nil
}

func waitDone(ctx context.Context, st *store.Store, id uint, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		b, err := st.BroadcastByID(ctx, id)
		if err != nil {
			return err
		}
		if b.Status == store.BroadcastDone {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("broadcast B%d not finished after %s", id, limit)
}

func cmdBenchBroadcast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench broadcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := &castBench{}
	b.flags(fs)
	fs.StringVar(&b.dir, "dir", "", "folder for the SQLite files (default: a temporary folder, removed after)")
	restart := fs.Bool("restart", true, "after the straight run, the kill-and-restart run (false: the straight run alone)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if b.groups < 2 || b.rateD <= 0 || b.rateW <= 0 {
		return errors.New("bench broadcast: need groups ≥ 2 and positive rates")
	}
	if b.dir == "" {
		dir, err := os.MkdirTemp("", "jingmin-castbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.dir = dir
	}
	rec := &castRecorder{got: map[string]int{}, latency: b.latency}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	b.recorderURL = "http://" + ln.Addr().String() + "/send"
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	perD, perW := math.Ceil(float64(b.groups)/2), math.Floor(float64(b.groups)/2)
	res := castResult{Groups: b.groups, LowerBoundSeconds: math.Max(perD/b.rateD, perW/b.rateW)}

	// Straight through, in this process.
	b.dbPath = filepath.Join(b.dir, "straight.db")
	h, err := b.openHub(ctx, log)
	if err != nil {
		return err
	}
	id, err := b.draft(ctx, h)
	if err != nil {
		h.Close()
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start, cpu0 := time.Now(), processCPU()
	go func() { done <- h.Run(runCtx, nil) }()
	err = waitDone(ctx, h.store, id, b.deadline(res.LowerBoundSeconds, 60*time.Second))
	res.Seconds = time.Since(start).Seconds()
	res.CPUPerMessage = round(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.groups), 3)
	stop()
	<-done
	h.Close()
	if err != nil {
		return err
	}
	res.Ratio = res.Seconds / res.LowerBoundSeconds
	res.Duplicates, res.Missing = rec.tally(b.groups)
	fmt.Fprintf(stderr, "straight: %d groups in %.2fs (lower bound %.2fs)\n", b.groups, res.Seconds, res.LowerBoundSeconds)
	if !*restart {
		line, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(line))
		return nil
	}

	// Kill and restart: the sender is a child process, SIGKILLed at half.
	// Only one process may serve a SQLite file, so a child drafts the
	// broadcast too, and this one only reads the database.
	rec.reset()
	b.dbPath = filepath.Join(b.dir, "restart.db")
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	childArgs := func(extra ...string) []string {
		return append([]string{"bench", "broadcast-sender", "-groups", strconv.Itoa(b.groups),
			"-rate-dingtalk", fmt.Sprint(b.rateD), "-rate-wechat", fmt.Sprint(b.rateW), "-latency", b.latency.String(),
			"-db", b.dbPath, "-recorder", b.recorderURL}, extra...)
	}
	drafted, err := exec.CommandContext(ctx, exe, childArgs("-draft")...).Output()
	if err != nil {
		return fmt.Errorf("bench broadcast: draft in a child process: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(drafted)), 10, 32)
	if err != nil {
		return fmt.Errorf("bench broadcast: the drafting child printed %q, not a broadcast id", drafted)
	}
	id = uint(n)
	watch, err := store.Connect(ctx, store.Options{Driver: store.SQLite, DSN: b.dbPath})
	if err != nil {
		return err
	}
	defer watch.Close()
	child := func() (*exec.Cmd, error) {
		c := exec.CommandContext(ctx, exe, childArgs()...)
		c.Stderr = stderr
		return c, c.Start()
	}
	cpu0 = processCPU() + childrenCPU()
	start = time.Now()
	c, err := child()
	if err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	for rec.total.Load() < int64(b.groups/2) {
		select {
		case err := <-exited:
			return fmt.Errorf("bench broadcast: the sending process ended before half the groups had the alert: %v", err)
		case <-ctx.Done():
			_ = c.Process.Kill()
			<-exited
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	_ = c.Process.Kill()
	<-exited
	res.SentBeforeKill = int(rec.total.Load())
	counts, err := watch.DeliveryCounts(ctx, id)
	if err != nil {
		return err
	}
	res.InFlightAtKill = counts[store.DeliverySending]
	fmt.Fprintf(stderr, "killed the sender after %d messages, %d deliveries in flight; restarting\n", res.SentBeforeKill, res.InFlightAtKill)
	if c, err = child(); err != nil {
		return err
	}
	err = waitDone(ctx, watch, id, b.deadline(res.LowerBoundSeconds, 120*time.Second))
	res.RestartSeconds = time.Since(start).Seconds()
	_ = c.Process.Signal(os.Interrupt)
	_ = c.Wait()
	res.RestartCPUPerMessage = round(float64(processCPU()+childrenCPU()-cpu0)/float64(time.Millisecond)/float64(b.groups), 3)
	if err != nil {
		return err
	}
	res.Resumed = true
	res.RestartDuplicates, res.RestartMissing = rec.tally(b.groups)
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	return nil
}

// cmdBenchBroadcastSender is the bench's sending process: a hub with the
// stand-in senders over the bench's database, until it is killed.
func cmdBenchBroadcastSender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench broadcast-sender", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := &castBench{}
	b.flags(fs)
	fs.StringVar(&b.dbPath, "db", "", "SQLite file")
	fs.StringVar(&b.recorderURL, "recorder", "", "stand-in platform URL")
	draft := fs.Bool("draft", false, "draft and confirm the broadcast, print its id and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := b.openHub(ctx, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer h.Close()
	if *draft {
		id, err := b.draft(ctx, h)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		return nil
	}
	return h.Run(ctx, nil)
}

// childrenCPU is the CPU time of this process's children that have ended
// and been waited for.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
