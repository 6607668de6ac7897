package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jingminhub/jingmin/configs"
)

// wireCounter counts the round trips a process makes to MySQL, on the wire:
// every connection the store opens goes through its dial, and each time a
// connection turns from writing to reading is one round trip (a request
// sent, its answer awaited). Statements the driver interpolates, batches
// and transactions' BEGIN and COMMIT all count as what they cost, not as
// an estimate from the server's statement counters.
type wireCounter struct {
	trips atomic.Int64
	mu    sync.Mutex
	kinds map[string]int64 // round trips by the request's first word (COM_QUERY's SQL verb)
}

// count records one request sent: its kind is the first word of its SQL
// (a COM_QUERY packet: 4 bytes of header, then 0x03 and the text).
func (w *wireCounter) count(p []byte) {
	kind := "other"
	if len(p) > 5 && p[4] == 0x03 {
		word := p[5:min(len(p), 5+20)]
		if i := bytes.IndexAny(word, " \t\n("); i >= 0 {
			word = word[:i]
		}
		kind = strings.ToUpper(string(word))
	}
	w.mu.Lock()
	if w.kinds == nil {
		w.kinds = map[string]int64{}
	}
	w.kinds[kind]++
	w.mu.Unlock()
}

// byKind is a copy of the counts by kind.
func (w *wireCounter) byKind() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int64, len(w.kinds))
	for k, v := range w.kinds {
		out[k] = v
	}
	return out
}

func (w *wireCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, w: w}, nil
}

// countedConn is one counted connection. The driver uses a connection
// from one goroutine at a time; the flag is atomic for its cancel watcher.
type countedConn struct {
	net.Conn
	w     *wireCounter
	wrote atomic.Bool
}

func (c *countedConn) Write(p []byte) (int, error) {
	if !c.wrote.Swap(true) {
		c.w.count(p)
	}
	return c.Conn.Write(p)
}

func (c *countedConn) Read(p []byte) (int, error) {
	if c.wrote.Swap(false) {
		c.w.trips.Add(1)
	}
	return c.Conn.Read(p)
}

// benchClock is the rules' clock in the route bench: a weekday morning or
// the same night, flipping with the phase so the mix covers officers on
// shift and the duty account.
type benchClock struct{ phase atomic.Int64 }

func (c *benchClock) now() time.Time {
	day, night := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	t := day
	if c.phase.Load()%2 == 1 {
		t = night
	}
	return t.Add(time.Duration(time.Now().UnixNano() % int64(time.Minute)))
}

// workerSample is what a worker process reports when asked: its CPU time,
// its MySQL round trips so far, and its resident memory now and at peak.
type workerSample struct {
	CPUNanos   int64            `json:"cpu_ns"`
	RoundTrips int64            `json:"sql_round_trips"`
	Kinds      map[string]int64 `json:"sql_round_trips_by_kind"`
	RSSMB      float64          `json:"rss_mb"`
	PeakRSSMB  float64          `json:"peak_rss_mb"`
}

func sampleSelf(w *wireCounter) workerSample {
	return workerSample{CPUNanos: int64(processCPU()), RoundTrips: w.trips.Load(), Kinds: w.byKind(), RSSMB: procStatusMB("VmRSS:"), PeakRSSMB: procStatusMB("VmHWM:")}
}

// cmdBenchRouteWorker is one worker process of the distributed route bench,
// as `jingmin worker` runs: the handlers and timers of a hub over the
// bench's Redis and database. It speaks to the bench on stdin and stdout,
// one line each way: it says "ready" once its hub is open; "phase N" sets
// its clock's phase, "sample" has it print a workerSample; the end of its
// stdin stops it.
func cmdBenchRouteWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench route-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := routeBench{}
	b.flags(fs)
	var dsn, prefix string
	fs.StringVar(&dsn, "db", "", "the database the bench made: a MySQL DSN, or a SQLite file with -store sqlite")
	fs.StringVar(&prefix, "prefix", "", "the bench's Redis key prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if b.workers == 0 {
		b.workers = configs.DefaultWorkers(b.store)
	}
	cfg := b.hubConfig(dsn, prefix)
	seed, _, _ := b.district()
	var (
		clock benchClock
		wire  wireCounter
	)
	w, err := openHub(ctx, cfg, newLogger(io.Discard), hubOptions{now: clock.now, seed: &seed, role: role{handlers: true}, dial: wire.dial, cards: b.cardPlatforms()})
	if err != nil {
		return err
	}
	defer w.Close()
	run, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.Run(run, nil) }()
	out := bufio.NewWriter(stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "phase":
			n, _ := strconv.ParseInt(arg, 10, 64)
			clock.phase.Store(n)
		case "sample":
			line, _ := json.Marshal(sampleSelf(&wire))
			fmt.Fprintln(out, string(line))
			out.Flush()
		}
	}
	stop()
	return <-done
}

// workerProc is a worker process the bench started, and its pipes.
type workerProc struct {
	cmd *exec.Cmd
	mu  sync.Mutex // one request at a time
	in  io.WriteCloser
	out *bufio.Scanner
}

// startWorkerProcs starts n worker processes of this binary over the
// bench's database and Redis prefix and waits until each has its hub open.
func (b routeBench) startWorkerProcs(ctx context.Context, n int, dsn, prefix string, stderr io.Writer) ([]*workerProc, error) {
	exe := b.workerBinary
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	var procs []*workerProc
	stderr = &lockedWriter{w: stderr} // the workers write to it side by side
	for range n {
		args := append([]string{"bench", "route-worker"}, b.args()...)
		args = append(args, "-db", dsn, "-prefix", prefix)
		c := exec.CommandContext(ctx, exe, args...)
		c.Stderr = stderr
		in, err := c.StdinPipe()
		if err != nil {
			return procs, fmt.Errorf("bench: %w", err)
		}
		outPipe, err := c.StdoutPipe()
		if err != nil {
			return procs, fmt.Errorf("bench: %w", err)
		}
		if err := c.Start(); err != nil {
			return procs, fmt.Errorf("bench: start a worker process: %w", err)
		}
		p := &workerProc{cmd: c, in: in, out: bufio.NewScanner(outPipe)}
		procs = append(procs, p)
		if !p.out.Scan() || p.out.Text() != "ready" {
			return procs, fmt.Errorf("bench: worker process %d did not start (its errors are above)", c.Process.Pid)
		}
	}
	return procs, nil
}

func (p *workerProc) setPhase(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.in, "phase %d\n", n)
}

func (p *workerProc) sample() (workerSample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s workerSample
	if _, err := fmt.Fprintln(p.in, "sample"); err != nil {
		return s, fmt.Errorf("bench: ask worker %d: %w", p.cmd.Process.Pid, err)
	}
	if !p.out.Scan() {
		return s, fmt.Errorf("bench: worker %d did not answer", p.cmd.Process.Pid)
	}
	if err := json.Unmarshal(p.out.Bytes(), &s); err != nil {
		return s, fmt.Errorf("bench: worker %d: %w", p.cmd.Process.Pid, err)
	}
	return s, nil
}

// stop closes the worker's stdin, which stops it, and waits for it.
func (p *workerProc) stop() error {
	p.in.Close()
	return p.cmd.Wait()
}

// sampleAll asks every worker for a sample.
func sampleAll(procs []*workerProc) ([]workerSample, error) {
	out := make([]workerSample, len(procs))
	for i, p := range procs {
		s, err := p.sample()
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// lockedWriter lets several processes' output copiers share one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
