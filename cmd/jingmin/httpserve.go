package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpPart is one of the process's HTTP servers as a part: it serves on ln
// until ctx ends, then shuts down gracefully within a bound.
type httpPart struct {
	name       string
	ln         net.Listener
	handler    http.Handler
	log        *slog.Logger
	onShutdown func()
}

func (p *httpPart) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           p.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	if p.onShutdown != nil {
		srv.RegisterOnShutdown(p.onShutdown)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(p.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s server: %w", p.name, err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", p.name, err)
	}
	return nil
}
