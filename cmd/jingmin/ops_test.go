package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthReadinessAndMetrics(t *testing.T) {
	h := startHub(t, nil, at("2026-11-23 17:00"))
	h.say("hexie", "res-1", "刘阿姨", "@社区警务助手 门口有人发小广告")
	h.say("yangguang", "res-2", "王女士", "@社区警务助手 楼上有人打架")
	h.settle()
	h.Clock.Set(at("2026-11-23 17:31"))
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	srv := httptest.NewServer(h.opsHandler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"store":"ok"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`jingmin_tickets_routed_total{emergency="false",reason="own_officer"} 1`,
		`jingmin_tickets_routed_total{emergency="true",reason="own_officer"} 1`,
		`jingmin_escalations_total{level="1"} 2`,
		`jingmin_events_total{outcome="ok",platform="playground"} 2`,
		`jingmin_outbound_total{outcome="sent",platform="playground"}`,
		`jingmin_bus_pending{group="handlers",topic="events"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	h.store.Close() // the database goes away: not ready any more
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store closed = %d, want 503", code)
	}
}
