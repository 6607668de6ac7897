package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// BenchmarkBroadcastDelivery sends deliveries of a broadcast half sent
// already, as a relay's broadcast lane does: claim one, mark it sent, and
// every tenth message the report loop's check for finished broadcasts.
// ns/op is the store's cost of one message; it should not depend on the
// broadcast's size (compare groups=10000 with groups=50000).
func BenchmarkBroadcastDelivery(b *testing.B) {
	for _, groups := range []int{10_000, 50_000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "cast.db")
			s := openStore(b, store.Options{Driver: store.SQLite, DSN: path})
			seed := districtSeed()
			seed.Groups = nil
			for i := range groups {
				p := "dingtalk"
				if i%2 == 1 {
					p = "wechat"
				}
				seed.Groups = append(seed.Groups, store.SeedGroup{Platform: p, ChatID: fmt.Sprintf("chat-%06d", i), Name: fmt.Sprintf("群%d", i), Station: "xcl"})
			}
			gs := syncSeed(b, s, seed).Groups
			bc := &store.Broadcast{Author: "张所长", Scope: "all", Text: "警惕冒充客服退款诈骗", ReportPlatform: "dingtalk", ReportUser: "staff-zhang"}
			if err := s.CreateBroadcast(ctx, bc, gs, nil); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			if err := s.ConfirmBroadcast(ctx, bc.ID, now, store.Actor{}); err != nil {
				b.Fatal(err)
			}
			// The first half went out already: the middle of a broadcast.
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := raw.ExecContext(ctx, "UPDATE deliveries SET status = 'sent' WHERE broadcast_id = ? AND id < (SELECT MIN(id) FROM deliveries WHERE broadcast_id = ?) + ?",
				bc.ID, bc.ID, groups/2); err != nil {
				b.Fatal(err)
			}
			raw.Close()
			if b.N > groups/2 {
				b.Fatalf("b.N %d is more than the %d deliveries left: run with -benchtime=2000x", b.N, groups/2)
			}
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				p := "dingtalk"
				if i%2 == 1 {
					p = "wechat"
				}
				got, err := s.ClaimDeliveries(ctx, p, now, time.Minute, 1)
				if err != nil || len(got) != 1 {
					b.Fatalf("claim %d: %d, %v", i, len(got), err)
				}
				if ok, err := s.MarkDeliverySent(ctx, got[0].ID, got[0].Attempts, "", now); !ok || err != nil {
					b.Fatalf("mark sent: %v %v", ok, err)
				}
				if i%10 == 0 {
					if _, err := s.FinishBroadcasts(ctx, now); err != nil {
						b.Fatal(err)
					}
				}
			}
			// CPU time moves less than ns/op when others use the machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
