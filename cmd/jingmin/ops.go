package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"syscall"
	"time"

	"github.com/jingminhub/jingmin/adapters/dingtalk"
	"github.com/jingminhub/jingmin/configs"
)

// opsHandler serves the process's health: /healthz answers while the process
// runs, /readyz only while the store and the bus both answer, so an
// orchestrator sends work only to a process that can keep it; /metrics is
// Prometheus's.
func (h *hub) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status := map[string]any{"status": "ok"}
		for _, a := range h.inbound {
			// A stand-by DingTalk process (another holds the one stream
			// connection) is healthy: its state is reported, not judged.
			if d, ok := a.(interface{ Health() dingtalk.Health }); ok {
				status["dingtalk"] = d.Health()
			}
		}
		writeStatus(w, http.StatusOK, status)
	})
	mux.Handle("GET /metrics", h.metrics.handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := map[string]string{"store": "ok", "bus": "ok"}, http.StatusOK
		if err := h.store.Ping(ctx); err != nil {
			status["store"], code = err.Error(), http.StatusServiceUnavailable
		}
		if err := h.bus.Ping(ctx); err != nil {
			status["bus"], code = err.Error(), http.StatusServiceUnavailable
		}
		writeStatus(w, code, status)
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// cmdHealthcheck is for container health checks (the image has no curl):
// exit 0 when -url answers 200. It prints the readiness report (JSON), or
// only the status line of anything else (a page is not a report).
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9090/readyz", "readiness URL of the process to check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("healthcheck: nothing answers at %s: the health endpoints are off unless the process is started with -ops ADDR or %s=ADDR (e.g. %s=127.0.0.1:9090 jingmin serve)",
			req.URL.Host, configs.EnvOpsListen, configs.EnvOpsListen)
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprint(stdout, string(body))
	} else {
		fmt.Fprintf(stdout, "%s: %s\n", *url, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, resp.Status)
	}
	return nil
}
