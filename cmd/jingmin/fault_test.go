package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// jingminBinary builds the real binary once per test run.
func jingminBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jingmin-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "jingmin")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// deployment is the example station running distributed: real processes
// over the test's own MariaDB database and Redis prefix.
type deployment struct {
	t        *testing.T
	bin, cfg string
	env      []string
}

// newDeployment uses the tests' Redis, or redisURL when it is not empty (a
// server the test starts, stops and restarts itself).
func newDeployment(t *testing.T, redisURL string) *deployment {
	dsn, sharedRedis, prefix := services(t)
	if redisURL == "" {
		redisURL = sharedRedis
	}
	dir := t.TempDir()
	example, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"bus:\n  kind: memory", fmt.Sprintf("bus:\n  kind: redis\n  prefix: %q\n  claim_idle_seconds: 2", prefix),
		"questions_per_minute: 5", "questions_per_minute: 0\n  dedup_hold_seconds: 5",
		"timer_seconds: 15", "timer_seconds: 3600",
	).Replace(string(example))
	os.MkdirAll(filepath.Join(dir, "holidays"), 0o755)
	hol, _ := os.ReadFile("../../configs/holidays/2026.yaml")
	os.WriteFile(filepath.Join(dir, "holidays", "2026.yaml"), hol, 0o644)
	cfg := filepath.Join(dir, "station.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, bin: jingminBinary(t), cfg: cfg, env: append(os.Environ(),
		"JINGMIN_DATABASE_DRIVER=mysql", "JINGMIN_DATABASE_DSN="+dsn, "JINGMIN_BUS=redis", "JINGMIN_REDIS_URL="+redisURL)}
	cmd := exec.Command(d.bin, "migrate", "-config", cfg)
	cmd.Env = d.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return d
}

// start runs `jingmin args...` and waits until it is ready.
func (d *deployment) start(args ...string) *exec.Cmd {
	d.t.Helper()
	ops := freeAddr(d.t)
	cmd := exec.Command(d.bin, append(args, "-config", d.cfg, "-ops", ops)...)
	cmd.Env = d.env
	logFile, _ := os.Create(filepath.Join(d.t.TempDir(), "process.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logFile.Close()
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + ops + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
	}
	log, _ := os.ReadFile(logFile.Name())
	d.t.Fatalf("%v did not become ready:\n%s", args, log)
	return nil
}

func transcript(t *testing.T, base string, ct bot.ChatType, id string) []playground.Line {
	t.Helper()
	resp, err := http.Get(base + "/api/chats/" + string(ct) + "/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []playground.Line
	json.NewDecoder(resp.Body).Decode(&lines)
	return lines
}

// TestKillingAWorkerMidFlowLosesAndDoublesNothing: 1,000 questions flow
// through an adapter process into two worker processes; one worker is
// killed with SIGKILL halfway. Every question still gets exactly one ticket,
// one acknowledgement in its group and one direct message to an officer.
func TestKillingAWorkerMidFlowLosesAndDoublesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	d := newDeployment(t, "")
	base := d.frontDoor()
	victim := d.start("worker")
	d.start("worker")
	const n = 1000
	d.ask(base, n, func(i int) {
		if i == n/2 {
			victim.Process.Kill() // SIGKILL: no goodbye, whatever it held is left in flight
		}
	})
	d.expectEach(base, n, "with a worker killed")
}

// TestRedisRestartMidFlowLosesNothing: the bus itself goes away and comes
// back while questions flow. While it is down the adapter refuses messages
// (the platform sends them again) instead of acknowledging what it could not
// keep; afterwards every question has its one ticket, reply and DM.
func TestRedisRestartMidFlowLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	redisd := startRedis(t)
	d := newDeployment(t, redisd.url)
	base := d.frontDoor()
	d.start("worker")
	const n = 400
	var outage sync.WaitGroup
	refused := d.ask(base, n, func(i int) {
		if i == n/2 {
			outage.Add(1)
			go func() { defer outage.Done(); redisd.restart() }() // questions keep coming meanwhile
		}
	})
	outage.Wait()
	if refused == 0 {
		t.Error("no message was refused while Redis was down: the outage did not happen, or something was acknowledged that was not kept")
	}
	d.expectEach(base, n, "with Redis restarted")
}

// frontDoor starts the playground adapter process and returns its URL.
func (d *deployment) frontDoor() string {
	listen := freeAddr(d.t)
	d.env = append(d.env, "JINGMIN_PLAYGROUND_LISTEN="+listen)
	d.start("adapter", "playground")
	return "http://" + listen
}

var faultGroups = []string{"hexie", "hexie-shops", "yangguang", "xincun-elders"}

// ask posts n questions from 8 residents at a time, each resent until the
// adapter takes it, as a platform does; during runs before question i. It
// returns how many posts were refused on the way.
func (d *deployment) ask(base string, n int, during func(i int)) (refused int64) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next = make(chan int)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"chat_id":%q,"chat_type":"group","sender_id":"res-%d","sender_name":"居民","text":"@社区警务助手 第%d个问题","message_id":"q-%d"}`, faultGroups[i%len(faultGroups)], i, i, i)
				for {
					resp, err := http.Post(base+"/api/messages", "application/json", strings.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							break
						}
					}
					mu.Lock()
					refused++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond) // not taken: the platform would send it again
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		during(i)
		next <- i
	}
	close(next)
	wg.Wait()
	return refused
}

// expectEach waits for n tickets, n acknowledgements in the groups and n
// officer DMs, then checks no late duplicate shows up.
func (d *deployment) expectEach(base string, n int, what string) {
	t := d.t
	db, err := sql.Open("mysql", envValue(d.env, "JINGMIN_DATABASE_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	staff := []string{"wang", "li", "chen", "zhang", "zhao", "taiping-duty"}
	count := func() (tickets, acks, dms int) {
		db.QueryRow("SELECT COUNT(*) FROM tickets").Scan(&tickets)
		for _, g := range faultGroups {
			for _, l := range transcript(t, base, bot.Group, g) {
				if l.Bot {
					acks++
				}
			}
		}
		for _, s := range staff {
			for _, l := range transcript(t, base, bot.Direct, s) {
				if l.Bot {
					dms++
				}
			}
		}
		return
	}
	var tickets, acks, dms int
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if tickets, acks, dms = count(); tickets >= n && acks >= n && dms >= n {
			break
		}
	}
	time.Sleep(3 * time.Second) // a late duplicate would show now
	tickets, acks, dms = count()
	if tickets != n || acks != n || dms != n {
		t.Errorf("%d questions %s: %d tickets, %d acknowledgements, %d officer DMs; want %d of each", n, what, tickets, acks, dms, n)
	}
}

// redisServer is a redis-server of the test's own, so it can be restarted
// without disturbing other tests; it keeps an append-only file, as a
// production Redis carrying the bus must.
type redisServer struct {
	t        *testing.T
	url, dir string
	port     string
	cmd      *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		bustest.Unavailable(t, "redis-server", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	r := &redisServer{t: t, url: "redis://" + addr + "/0", dir: t.TempDir(), port: port}
	r.run()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) run() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", r.port, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+r.port); err == nil {
			c.Close()
			return
		}
	}
	r.t.Fatal("redis-server did not start")
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
		r.cmd = nil
	}
}

// restart stops the server, leaves it down for a moment, and starts it
// again on the same port and files.
func (r *redisServer) restart() {
	r.stop()
	time.Sleep(4 * time.Second) // longer than the client's own retries
	r.run()
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestWorkerWaitsForRedisInsteadOfExiting: a worker started before Redis
// says why it is not ready and keeps trying; once Redis answers it gets
// ready and handles questions.
func TestWorkerWaitsForRedisInsteadOfExiting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		bustest.Unavailable(t, "redis-server", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	d := newDeployment(t, "redis://"+addr+"/0")
	ops := freeAddr(t)
	cmd := exec.Command(d.bin, "worker", "-config", d.cfg, "-ops", ops)
	cmd.Env = d.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + ops + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), addr) {
			body = string(b)
			break
		}
	}
	if body == "" {
		t.Fatal("the worker did not report, on /readyz, which Redis it is waiting for")
	}
	r := &redisServer{t: t, url: "redis://" + addr + "/0", dir: t.TempDir(), port: port}
	r.run()
	t.Cleanup(r.stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + ops + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not become ready after Redis came up")
		}
	}
	if cmd.ProcessState != nil {
		t.Fatal("the worker exited")
	}
}
