package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// healthcheck says what is wrong in terms of what to do: the ops endpoint
// being off is not a bare "connection refused", and a page is reported by
// its status, not printed.
func TestHealthcheckSaysWhatIsWrong(t *testing.T) {
	serve := func(ctype string, code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	off := "http://" + freeAddr(t) + "/readyz" // nothing listens there
	for _, tc := range []struct {
		name, url string
		ok        bool
		out       []string
		notOut    []string
		err       []string
	}{
		{"ready", serve("application/json", 200, `{"bus":"ok","store":"ok"}`) + "/readyz", true, []string{`"store":"ok"`}, nil, nil},
		{"not ready", serve("application/json", 503, `{"bus":"ok","store":"dial tcp: refused"}`) + "/readyz", false,
			[]string{`"store":"dial tcp: refused"`}, nil, []string{"503"}},
		{"a page", serve("text/html; charset=utf-8", 200, "<!doctype html><title>警民通</title>") + "/", true,
			[]string{"200 OK"}, []string{"<title>", "doctype"}, nil},
		{"a missing page", serve("text/plain", 404, "404 page not found") + "/nope", false, []string{"404 Not Found"}, []string{"page not found"}, []string{"404"}},
		{"ops off", off, false, nil, nil, []string{"nothing answers at", "-ops ADDR", "JINGMIN_OPS_LISTEN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "healthcheck", "-url", tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v\n%s", err, tc.ok, out)
			}
			for _, w := range tc.out {
				mustContain(t, "output", out, w)
			}
			for _, w := range tc.notOut {
				if strings.Contains(out, w) {
					t.Errorf("output %q contains %q", out, w)
				}
			}
			for _, w := range tc.err {
				mustContain(t, "error", err.Error(), w)
			}
		})
	}
}
