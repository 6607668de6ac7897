package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/adapters/dingtalk/dingtalktest"
	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
	"github.com/jingminhub/jingmin/store/storetest"
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
		// As the image builds it (Dockerfile): CGO_ENABLED=0, so the
		// processes load the archive library through purego as shipped.
		build := exec.Command("go", "build", "-o", binaryPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
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

// deployConfig is what a deployment runs on, beyond the example station.
type deployConfig struct {
	dsn      string                // "": a database of the test's own on the tests' MariaDB
	redisURL string                // "": the tests' Redis
	edits    []func(string) string // changes to the station YAML
	env      []string              // extra environment
}

type deployOption func(*deployConfig)

// withRedis runs the deployment on a Redis the test starts, stops and
// restarts itself.
func withRedis(url string) deployOption { return func(c *deployConfig) { c.redisURL = url } }

// withDatabase runs it on a database the test controls (a server of its own).
func withDatabase(dsn string) deployOption { return func(c *deployConfig) { c.dsn = dsn } }

// withConfig changes the station YAML; withEnv adds to the environment.
func withConfig(edit func(yaml string) string) deployOption {
	return func(c *deployConfig) { c.edits = append(c.edits, edit) }
}
func withEnv(kv ...string) deployOption {
	return func(c *deployConfig) { c.env = append(c.env, kv...) }
}

// newDeployment writes the station config and migrates the database. Each
// test gets its own Redis key prefix and, unless it brings its own server,
// its own database on the tests' MariaDB.
func newDeployment(t *testing.T, opts ...deployOption) *deployment {
	t.Helper()
	var c deployConfig
	for _, o := range opts {
		o(&c)
	}
	_, prefix := bustest.Redis(t)
	if c.redisURL == "" {
		c.redisURL = "redis://" + bustest.RedisAddr() + "/0"
	}
	if c.dsn == "" {
		c.dsn = storetest.MySQL(t)
	}
	dir := t.TempDir()
	example, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"bus:\n  kind: memory", fmt.Sprintf("bus:\n  kind: redis\n  prefix: %q\n  claim_idle_seconds: 2", prefix),
		"questions_per_minute: 5", "questions_per_minute: 0",
		"timer_seconds: 15", "timer_seconds: 3600",
	).Replace(string(example))
	for _, edit := range c.edits {
		text = edit(text)
	}
	os.MkdirAll(filepath.Join(dir, "holidays"), 0o755)
	hol, _ := os.ReadFile("../../configs/holidays/2026.yaml")
	os.WriteFile(filepath.Join(dir, "holidays", "2026.yaml"), hol, 0o644)
	cfg := filepath.Join(dir, "station.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, bin: jingminBinary(t), cfg: cfg, env: append(append(os.Environ(),
		"JINGMIN_DATABASE_DRIVER=mysql", "JINGMIN_DATABASE_DSN="+c.dsn, "JINGMIN_BUS=redis", "JINGMIN_REDIS_URL="+c.redisURL), c.env...)}
	cmd := exec.Command(d.bin, "migrate", "-config", cfg)
	cmd.Env = d.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return d
}

// proc is one running `jingmin` process of a deployment.
type proc struct {
	*exec.Cmd
	args    []string
	ops     string // its /healthz, /readyz and /metrics
	logPath string
	done    chan struct{} // closed when it exited
}

// spawn runs `jingmin args...` without waiting for it to get ready; the
// test's cleanup stops it (SIGTERM) and waits for it.
func (d *deployment) spawn(args ...string) *proc {
	d.t.Helper()
	p := &proc{args: args, ops: freeAddr(d.t), done: make(chan struct{})}
	p.Cmd = exec.Command(d.bin, append(args, "-config", d.cfg, "-ops", p.ops)...)
	p.Env = d.env
	logFile, err := os.CreateTemp(d.t.TempDir(), "process-*.log")
	if err != nil {
		d.t.Fatal(err)
	}
	p.logPath = logFile.Name()
	p.Stdout, p.Stderr = logFile, logFile
	if err := p.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { p.Wait(); logFile.Close(); close(p.done) }()
	d.t.Cleanup(func() {
		p.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.Process.Kill()
			<-p.done
		}
	})
	return p
}

// start runs `jingmin args...` and waits until it is ready.
func (d *deployment) start(args ...string) *proc {
	d.t.Helper()
	p := d.spawn(args...)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, _ := p.readyz(); code == http.StatusOK {
			return p
		}
		if p.exited() {
			break
		}
	}
	d.t.Fatalf("%v did not become ready:\n%s", args, p.log())
	return nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// readyz returns the process's readiness answer (0 when it does not answer).
func (p *proc) readyz() (int, map[string]string) {
	resp, err := http.Get("http://" + p.ops + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	status := map[string]string{}
	json.NewDecoder(resp.Body).Decode(&status)
	return resp.StatusCode, status
}

// metric sums a counter or gauge of the process's /metrics over the series
// whose name and labels start with series (`jingmin_events_total{outcome="failed"`).
func (p *proc) metric(series string) float64 {
	resp, err := http.Get("http://" + p.ops + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, series) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
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
	d := newDeployment(t)
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
	d := newDeployment(t, withRedis(redisd.url))
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
	d := newDeployment(t, withRedis("redis://"+addr+"/0"))
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

// mariaDB is a mariadbd of the test's own on a free loopback port, so it
// can be stopped and restarted without disturbing the tests that share the
// server on 3306. It starts on an empty data directory with the grant
// tables skipped (no mariadb-install-db: well under a second and a few
// tens of MB instead of seconds and a 100 MB redo log), with a small
// buffer pool and redo log and no binary log.
type mariaDB struct {
	t              *testing.T
	bin, dir, port string
	cmd            *exec.Cmd
	done           chan struct{}
}

// mariadbdBinary finds the server: on PATH, or where Debian puts it.
func mariadbdBinary() (string, error) {
	var firstErr error
	for _, name := range []string{"mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld"} {
		p, err := exec.LookPath(name)
		if err == nil {
			return p, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

func startMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	bin, err := mariadbdBinary()
	if err != nil {
		bustest.Unavailable(t, "mariadbd (apt-get install mariadb-server)", err)
	}
	// A short directory: the server's unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "jmdb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	m := &mariaDB{t: t, bin: bin, dir: dir, port: port}
	m.run()
	t.Cleanup(m.stop)
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:"+port+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE jingmin CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database on the test's mariadbd: %v\n%s", err, m.log())
	}
	return m
}

// dsn is the hub's database on this server.
func (m *mariaDB) dsn() string { return "root@tcp(127.0.0.1:" + m.port + ")/jingmin" }

func (m *mariaDB) log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "server.log"))
	return string(b)
}

// run starts the server on the same port and files and waits until it
// answers queries.
func (m *mariaDB) run() {
	m.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"),
		"--port=" + m.port, "--bind-address=127.0.0.1", "--socket=" + filepath.Join(m.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(m.dir, "mysqld.pid"), "--log-error=" + filepath.Join(m.dir, "server.log"),
		"--skip-grant-tables", "--skip-log-bin", "--skip-name-resolve",
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // the server refuses to run as root otherwise
	}
	m.cmd = exec.Command(m.bin, args...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	done := make(chan struct{})
	m.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(m.cmd)
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:"+m.port+")/?timeout=1s")
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			m.t.Fatalf("mariadbd exited at start:\n%s", m.log())
		default:
		}
		if db.Ping() == nil {
			return
		}
	}
	m.t.Fatalf("mariadbd did not answer within 30s:\n%s", m.log())
}

// stop shuts the server down (SIGTERM) and waits until it has exited.
func (m *mariaDB) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		m.t.Errorf("mariadbd did not shut down within 60s; killing it")
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// dbOutage is how long TestMariaDBRestartMidFlowLosesNothing keeps the
// database down: longer than the runner's retries of a failing message
// before it would park it as poison (8 attempts, about 26 s of backoff).
const dbOutage = 32 * time.Second

// TestMariaDBRestartMidFlowLosesNothing: the database goes away while
// questions flow, stays away longer than a failing message is retried
// before it is parked, and comes back. Meanwhile the workers keep running
// and say on /readyz that they wait for the database, the adapter keeps
// taking questions onto the bus, and the workers keep retrying what they
// cannot file. Afterwards every question has its one ticket, one
// acknowledgement and one officer DM, and nothing was parked.
func TestMariaDBRestartMidFlowLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	db := startMariaDB(t)
	d := newDeployment(t, withDatabase(db.dsn()))
	base := d.frontDoor()
	workers := []*proc{d.start("worker"), d.start("worker")}
	const n = 300
	reached, stopped, asked := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(asked)
		d.ask(base, n, func(i int) {
			if i == n/3 {
				close(reached)
				<-stopped // the rest are asked while the database is down
			}
		})
	}()
	<-reached
	db.stop()
	down := time.Now()
	close(stopped)

	for i, w := range workers {
		var code int
		var status map[string]string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if code, status = w.readyz(); code == http.StatusServiceUnavailable {
				break
			}
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(status["store"], "127.0.0.1:"+db.port) || status["bus"] != "ok" {
			t.Errorf("worker %d /readyz with the database down = %d %v; want 503 naming the database's address, the bus ok", i, code, status)
		}
	}
	for time.Since(down) < dbOutage {
		for i, w := range workers {
			if w.exited() {
				t.Fatalf("worker %d exited while the database was down:\n%s", i, w.log())
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	var failed float64
	for _, w := range workers {
		failed += w.metric(`jingmin_events_total{outcome="failed"`)
	}
	if failed == 0 {
		t.Error("no event failed while the database was down: the outage did not happen, or was not felt")
	}
	db.run()
	<-asked
	d.expectEach(base, n, "with MariaDB restarted")

	for i, w := range workers {
		if w.exited() {
			t.Errorf("worker %d exited:\n%s", i, w.log())
		} else if code, status := w.readyz(); code != http.StatusOK {
			t.Errorf("worker %d /readyz after the database came back = %d %v", i, code, status)
		}
	}
	conn, err := sql.Open("mysql", db.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var parked int
	if err := conn.QueryRow("SELECT COUNT(*) FROM parked_messages").Scan(&parked); err != nil {
		t.Fatal(err)
	}
	if parked != 0 {
		t.Errorf("%d messages were parked as poison: they only failed because the database was down", parked)
	}
	for i, w := range workers {
		// Not even tried: had the database come back just then, a good
		// event would have been parked.
		if strings.Contains(w.log(), "parking failed message") {
			t.Errorf("worker %d tried to park an event that failed only because the database was down", i)
		}
	}
	t.Logf("%.0f event failures while the database was down for %s", failed, dbOutage)
}

// dependencyDown tells the database's "I am down" answers from its "this
// statement is wrong" ones.
func TestDependencyDownKnowsDatabaseErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("file ticket: %w", mysql.ErrInvalidConn), true},
		{fmt.Errorf("file ticket: %w", &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}), true},
		{fmt.Errorf("file ticket: %w", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}), true},
		{fmt.Errorf("file ticket: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("file ticket: %w", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}), false},
		{fmt.Errorf("file ticket: %w", &mysql.MySQLError{Number: 1406, Message: "Data too long"}), false},
		{errors.New("no such station"), false},
	} {
		if got := dependencyDown(c.err); got != c.want {
			t.Errorf("dependencyDown(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestDingTalkAdapterRestartedMidFlowRepliesOnce: residents' questions
// come over the real DingTalk stream protocol (the stand-in gateway, which
// sends again whatever was not acked) to a `jingmin adapter dingtalk`
// process, handled by a worker. The adapter is stopped with SIGTERM and
// replaced while questions flow; its successor is frozen with questions
// on the wire and replies on their way out, then killed with SIGKILL and
// replaced too. DingTalk sends the unacked questions again to the next
// process. Each question still gets exactly one acknowledgement in its
// group, one ticket and one DM to an officer.
func TestDingTalkAdapterRestartedMidFlowRepliesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dt := dingtalktest.NewServer(t, dingtalktest.Options{})
	groups := []string{"cidHexieDing==", "cidXincunDing=="}
	identity := regexp.MustCompile(`identities: \{playground: ([a-z-]+)\}`)
	d := newDeployment(t, withConfig(func(yaml string) string {
		yaml = identity.ReplaceAllString(yaml, "identities: {playground: $1, dingtalk: staff-$1}")
		yaml = strings.Replace(yaml, "\ngroups:\n", "\ngroups:\n"+
			"  - {platform: dingtalk, chat_id: \""+groups[0]+"\", name: 和谐小区钉钉群, station: taiping, officer: wang}\n"+
			"  - {platform: dingtalk, chat_id: \""+groups[1]+"\", name: 新村钉钉群, station: taiping}\n", 1)
		yaml = strings.Replace(yaml, "playground:\n  enabled: true", "playground:\n  enabled: false", 1)
		// Two messages in hand: when both wait on a held reply, nothing
		// else is on its way out.
		yaml = strings.Replace(yaml, "sender_workers: 32", "sender_workers: 2", 1)
		return yaml + "\ndingtalk:\n  app_key: " + dt.AppKey() + "\n  openapi_host: " + dt.URL + "\n"
	}), withEnv(dingtalk.EnvAppSecret+"="+dt.AppSecret()))
	d.start("worker")

	const n = 200
	var (
		mu     sync.Mutex
		frames []string
	)
	resident := func(i int) string { return fmt.Sprintf("$:LWCP_v1:$res-%d", i) }
	ask := func(from, to int) {
		for i := from; i < to; i++ {
			f := dt.Deliver(dingtalktest.Msg{MsgID: fmt.Sprintf("msg-q-%d", i), ConversationID: groups[i%2], Group: true,
				SenderID: resident(i), SenderNick: "居民", Text: fmt.Sprintf(" 第%d号问题", i), AtBot: true})
			mu.Lock()
			frames = append(frames, f)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}

	db, err := sql.Open("mysql", envValue(d.env, "JINGMIN_DATABASE_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := d.start("adapter", "dingtalk")
	dt.WaitConnections(t, 1)
	ask(0, 40)
	// SIGTERM while questions keep coming: the process finishes what it
	// took, gives the stream back, and the next one takes it over.
	first.Process.Signal(syscall.SIGTERM)
	ask(40, 80)
	<-first.done
	second := d.start("adapter", "dingtalk")
	dt.WaitConnections(t, 2)
	ask(80, 120)

	// DingTalk's reply endpoint slows down: both of the process's senders
	// wait on a reply. Then the process freezes with questions written to
	// its socket, and is killed.
	release := dt.HoldWebhooks()
	ask(120, 140)
	dt.Wait(t, 30*time.Second, "both senders waiting on a held reply", func() bool { return dt.Held() == 2 })
	// Everything else the process sent is recorded: the two held replies
	// are all it has in hand when it freezes.
	dt.Wait(t, 30*time.Second, "only the held replies in hand", func() bool {
		var inHand int
		db.QueryRow("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sending'").Scan(&inHand)
		return inHand == 2
	})
	second.Process.Signal(syscall.SIGSTOP)
	ask(140, 160)
	second.Process.Kill()
	<-second.done
	dt.Wait(t, 10*time.Second, "the killed process's held replies to be abandoned", func() bool { return dt.Held() == 0 })
	release()
	ask(160, 180) // while no process holds the stream
	third := d.start("adapter", "dingtalk")
	dt.WaitConnections(t, 3)
	ask(180, n)

	staff := []string{"wang", "li", "chen", "zhang", "zhao", "taiping-duty"}
	count := func() (tickets int, acks map[string]int, dms map[int]int) {
		db.QueryRow("SELECT COUNT(*) FROM tickets").Scan(&tickets)
		acks, dms = map[string]int{}, map[int]int{}
		for _, g := range groups {
			for _, m := range dt.Group(g) {
				for _, at := range m.AtDingtalkIDs {
					acks[at]++
				}
			}
		}
		for _, s := range staff {
			for _, m := range dt.DMs("staff-" + s) {
				var q int
				if i := strings.Index(m.Text, "第"); i >= 0 {
					if _, err := fmt.Sscanf(m.Text[i:], "第%d号问题", &q); err == nil {
						dms[q]++
					}
				}
			}
		}
		return
	}
	// Settled: every question answered, and no outbound row left to send
	// or in a relay's hands, so no late duplicate can still come.
	settled := func() bool {
		tickets, acks, dms := count()
		var unsent int
		db.QueryRow("SELECT COUNT(*) FROM outbound_messages WHERE state IN ('pending', 'sending')").Scan(&unsent)
		return tickets >= n && len(acks) >= n && len(dms) >= n && len(dt.Unacked()) == 0 && unsent == 0
	}
	dt.Wait(t, 90*time.Second, "every question answered and nothing left in flight", settled)

	tickets, acks, dms := count()
	if tickets != n {
		t.Errorf("%d questions, %d tickets", n, tickets)
	}
	for i := 0; i < n; i++ {
		if c := acks[resident(i)]; c != 1 {
			t.Errorf("question %d: %d acknowledgements in the group, want 1", i, c)
		}
		if c := dms[i]; c != 1 {
			t.Errorf("question %d: %d officer DMs, want 1", i, c)
			for _, s := range staff {
				for _, m := range dt.DMs("staff-" + s) {
					if strings.Contains(m.Text, fmt.Sprintf("第%d号问题", i)) {
						t.Logf("DM to %s: %q", s, m.Text)
					}
				}
			}
			rows, _ := db.Query("SELECT `key`, state, fence, attempts, message_id, reason FROM outbound_messages WHERE text LIKE ?", fmt.Sprintf("%%第%d号问题%%", i))
			for rows != nil && rows.Next() {
				var key, state, mid, reason string
				var fence, attempts int
				rows.Scan(&key, &state, &fence, &attempts, &mid, &reason)
				t.Logf("row %s: %s fence %d attempts %d message %q reason %q", key, state, fence, attempts, mid, reason)
			}
			for name, p := range map[string]*proc{"first": first, "second": second, "third": third} {
				for _, line := range strings.Split(p.log(), "\n") {
					if strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") || strings.Contains(line, "shutting") {
						t.Logf("%s adapter: %s", name, line)
					}
				}
			}
		}
	}
	redelivered := 0
	mu.Lock()
	for _, f := range frames {
		for _, a := range dt.Acks(f) {
			if a.Code == http.StatusOK && a.Attempt > 1 {
				redelivered++
			}
		}
	}
	mu.Unlock()
	if redelivered == 0 {
		t.Error("DingTalk sent no question again: nothing was in flight when the adapters stopped, so the test proved nothing")
	}
	t.Logf("%d questions were sent again by DingTalk after an adapter stopped", redelivered)
}
