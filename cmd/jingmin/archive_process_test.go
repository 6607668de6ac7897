package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/adapters/wecomarchive/financetest"
	"github.com/jingminhub/jingmin/store"
)

// `jingmin adapter wecom-archive`, built with CGO_ENABLED=0 as shipped
// (jingminBinary), over MariaDB
// and Redis: while the vendor library is not where the config says, the
// process is not ready and its /readyz names the path; once the library is
// there it loads it through purego, pulls the archive, and a worker files
// the resident's question.
func TestArchiveAdapterProcessWaitsForItsLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	api := wecomtest.NewServer()
	t.Cleanup(api.Close)
	lib := filepath.Join(t.TempDir(), "vendor", "libWeWorkFinanceSdk_C.so")
	d := newDeployment(t,
		withConfig(func(y string) string {
			y = strings.Replace(y, "playground:\n  enabled: true", "playground:\n  enabled: false", 1)
			y = strings.Replace(y, "groups:\n", "groups:\n  - {platform: wechat, chat_id: wrCGhexie, name: 和谐小区居民群, station: taiping, officer: wang, kind: customer}\n", 1)
			return y + "\nwecom_archive:\n  corp_id: wwtaiping\n  library: " + lib + "\n  proxy: " + api.URL +
				"\n  every: 1h\n  keys:\n    - {version: 1, env: JINGMIN_TEST_ARCHIVE_KEY_1}\n"
		}),
		withEnv(wecomarchive.EnvSecret+"="+wecomtest.ArchiveSecret, "JINGMIN_TEST_ARCHIVE_KEY_1="+string(api.ArchiveKeyPEM(1))))
	api.Archive(1, wecomtest.ArchivedText{MsgID: "p1", From: "wmRes001", RoomID: "wrCGhexie", Text: "@王警官 楼道的灯坏了", At: time.Now()})
	p := d.spawn("adapter", "wecom-archive")
	var said string
	for deadline := time.Now().Add(60 * time.Second); said == ""; time.Sleep(100 * time.Millisecond) {
		if code, status := p.readyz(); code == http.StatusServiceUnavailable && strings.Contains(status["error"], lib) {
			said = status["error"]
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the archive adapter did not say, on /readyz, that %s is missing:\n%s", lib, p.log())
		}
	}
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	built, err := os.ReadFile(financetest.Build(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, built, 0o755); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := p.readyz(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the archive adapter did not get ready once the library was there (it said %q):\n%s", said, p.log())
		}
	}
	d.start("worker")
	dsn := ""
	for _, kv := range d.env {
		if v, ok := strings.CutPrefix(kv, "JINGMIN_DATABASE_DSN="); ok {
			dsn = v
		}
	}
	st, err := store.Open(context.Background(), store.Options{Driver: store.MySQL, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tickets, err := st.TicketsFromChat(context.Background(), "wechat", "group", "wrCGhexie", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(tickets) == 1 && tickets[0].Question == "楼道的灯坏了" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket from the archived question (tickets %+v):\n%s", tickets, p.log())
		}
	}
}
