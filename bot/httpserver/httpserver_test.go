package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/bot/bottest"
)

func start(t *testing.T, h http.Handler, opts Options) (*Server, *bottest.LogBuffer) {
	t.Helper()
	logs := &bottest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	srv, err := Listen(context.Background(), "127.0.0.1:0", h, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv, logs
}

// get sends one GET on a fresh connection and returns the status line.
func get(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestConnectionsPastTheCapWait: with a cap of 2, five clients whose
// requests are held by the handler are never handled more than two at a
// time, and every one of them is served in the end.
func TestConnectionsPastTheCapWait(t *testing.T) {
	var inflight, most atomic.Int32
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- struct{}{}
		<-release
		inflight.Add(-1)
		io.WriteString(w, "ok")
	})
	srv, _ := start(t, h, Options{MaxConns: 2})
	const clients = 5
	var wg sync.WaitGroup
	answers := make(chan string, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- get(t, srv.Addr().String())
		}()
	}
	// Two are in; each release lets exactly one more in.
	<-entered
	<-entered
	for i := range clients {
		release <- struct{}{}
		if i+2 < clients {
			<-entered
		}
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if !strings.Contains(a, "200") {
			t.Errorf("answer %q, want 200", a)
		}
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d requests handled at once, cap is 2", m)
	}
}

// TestIdleConnectionsDoNotStarveTheServer: clients that connect and send
// nothing hold a slot only until the header timeout, so with every slot
// taken by them the server still answers the next client.
func TestIdleConnectionsDoNotStarveTheServer(t *testing.T) {
	srv, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Options{MaxConns: 3, ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	if a := get(t, srv.Addr().String()); !strings.Contains(a, "200") {
		t.Fatalf("answer %q with the slots taken by idle clients, want 200", a)
	}
	// The idle ones were closed by the server.
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("an idle connection got data")
		}
	}
}

// TestLargeBodyGets413AndIsNotRead: a body over the limit is refused with
// 413 whether it declares its length or is chunked, and the handler never
// holds more than the limit of it, however many clients send at once.
func TestLargeBodyGets413AndIsNotRead(t *testing.T) {
	const limit = 64 << 10
	var mostRead atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		for m := mostRead.Load(); int64(len(b)) > m && !mostRead.CompareAndSwap(m, int64(len(b))); m = mostRead.Load() {
		}
		if TooLarge(err) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok")
	})
	srv, _ := start(t, h, Options{BodyLimit: limit})
	url := "http://" + srv.Addr().String() + "/"
	big := strings.Repeat("x", 1<<20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body io.Reader = strings.NewReader(big)
			if i%2 == 1 {
				body = io.MultiReader(body) // no length: sent chunked
			}
			resp, err := http.Post(url, "application/octet-stream", body)
			if err != nil {
				return // the server may close before the client finished writing
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("1 MiB body: HTTP %d, want 413", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if m := mostRead.Load(); m > limit {
		t.Errorf("a handler held %d bytes of one body, limit %d", m, limit)
	}
	resp, err := http.Post(url, "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("small body: HTTP %d", resp.StatusCode)
	}
}

// TestServerErrorsGoThroughTheLogger: the standard library's own error
// lines (here a handler's panic) arrive as JSON through the given logger.
func TestServerErrorsGoThroughTheLogger(t *testing.T) {
	srv, logs := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }), Options{Name: "test"})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.ReadAll(c) // the server closes the connection after the panic
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "boom") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	line := logs.String()
	if !strings.Contains(line, `"server":"test"`) || !strings.Contains(line, `"level":"WARN"`) || !strings.HasPrefix(line, "{") {
		t.Errorf("server error line = %q, want a JSON warning naming the server", line)
	}
}

// TestRunShutsDownWhenContextEnds: Run returns nil once ctx ends, and the
// address no longer accepts.
func TestRunShutsDownWhenContextEnds(t *testing.T) {
	srv, err := Listen(context.Background(), "127.0.0.1:0", http.NotFoundHandler(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if a := get(t, srv.Addr().String()); !strings.Contains(a, "404") {
		t.Fatalf("answer %q", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if c, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		c.Close()
		t.Error("still accepting after Run returned")
	}
}
