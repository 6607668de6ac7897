// Package httpserver holds the one way the hub serves HTTP: the WeCom
// callback URLs, the playground, the admin API and the ops endpoints all run
// on a Server from here, so none of them can be exhausted by idle or slow
// connections or by large bodies, and every error line the standard library
// writes goes through the hub's JSON logger (masked) instead of stderr.
//
// A Server bounds, per listener:
//
//   - time: ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout, so
//     a connection that sends nothing, or sends slowly, is closed;
//   - header size: MaxHeaderBytes;
//   - connections: at most MaxConns are open at once. Further connections
//     wait in the kernel's accept queue (they are not accepted, so they cost
//     the process no file descriptor) until one closes; the process keeps
//     serving the connections it holds;
//   - bodies: BodyLimit caps what a handler can read from a request; past it
//     the request is answered 413 (see LimitBody for a per-route limit).
//
// Usage:
//
//	ln, err := net.Listen("tcp", addr)
//	srv := httpserver.New(ln, handler, log, httpserver.Options{MaxConns: 256})
//	err = srv.Run(ctx) // serves until ctx ends, then shuts down gracefully
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Options bound a Server. Zero fields take the defaults below.
type Options struct {
	// Name says which server a log line is about ("admin", "wechat").
	Name string
	// ReadHeaderTimeout bounds reading a request's headers (default 5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (default 15s).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request's
	// headers (default 60s: it must outlast the longest long-poll served).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection waiting for its next
	// request (default 60s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (default 16 KiB).
	MaxHeaderBytes int
	// MaxConns caps the connections open at once (default 512). A
	// connection past the cap is not accepted until another closes.
	MaxConns int
	// BodyLimit caps every request body a handler reads; reading past it
	// fails and the request is answered 413 (default 1 MiB; negative: no
	// server-wide limit, for servers whose handlers set their own).
	BodyLimit int64
	// ShutdownTimeout bounds the graceful shutdown at the end of Run: after
	// it, connections still open are closed (default 5s).
	ShutdownTimeout time.Duration
	// OnShutdown run when Run starts shutting down, e.g. to end long-polls
	// that would otherwise hold the shutdown for their whole wait.
	OnShutdown []func()
}

// Defaults for Options.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxConns          = 512
	DefaultBodyLimit         = 1 << 20
	DefaultShutdownTimeout   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.BodyLimit == 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.Name == "" {
		o.Name = "http"
	}
	return o
}

// Server is one bounded HTTP server on one listener. Build it with New or
// Listen, then call Run once.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	opts Options
	log  *slog.Logger
}

// New serves h on ln (which the Server now owns and closes) within opts'
// bounds; log receives the server's own error lines (TLS handshakes,
// accept errors, panics in handlers) as JSON, at warn level.
func New(ln net.Listener, h http.Handler, log *slog.Logger, opts Options) *Server {
	if log == nil {
		log = slog.Default()
	}
	opts = opts.withDefaults()
	log = log.With("server", opts.Name)
	if opts.BodyLimit > 0 {
		h = LimitBody(opts.BodyLimit, h)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	for _, f := range opts.OnShutdown {
		srv.RegisterOnShutdown(f)
	}
	return &Server{ln: LimitListener(ln, opts.MaxConns), srv: srv, opts: opts, log: log}
}

// Listen opens a TCP listener on addr and returns New on it.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger, opts Options) (*Server, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", opts.withDefaults().Name, addr, err)
	}
	return New(ln, h, log, opts), nil
}

// Addr is the address the server listens on (with the port the kernel
// chose for ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends or the listener fails. When ctx ends it stops
// accepting, lets requests in flight finish for up to ShutdownTimeout, then
// closes what is left; it returns nil after a shutdown asked for by ctx.
func (s *Server) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("%s server: %w", s.opts.Name, err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(shut)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("connections still open after the shutdown timeout; closing them", "timeout", s.opts.ShutdownTimeout)
		err = s.srv.Close()
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("%s server: shut down: %w", s.opts.Name, err)
	}
	return nil
}

// LimitBody answers 413 to a request whose declared Content-Length is over
// limit, and makes reading past limit fail (net/http then closes the
// connection after the handler's answer). A handler that reads the body
// with io.ReadAll should check for *http.MaxBytesError and answer 413; see
// TooLarge.
func LimitBody(limit int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLarge(w, r, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}

// TooLarge reports whether err is a read past a body limit.
func TooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	// The unread body is not drained: the connection closes after this.
	w.Header().Set("Connection", "close")
	http.Error(w, "request body over "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
}

// LimitListener returns a listener that accepts at most n connections at
// once: Accept waits while n are open, so further clients wait in the
// kernel's backlog rather than taking a file descriptor each. (It is
// golang.org/x/net/netutil.LimitListener's behaviour, kept here so the hub
// does not take a dependency for forty lines.)
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
