package store_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// The database counts a window's tickets per place and buckets their first
// responses, the same on SQLite and MariaDB, without the tickets being read.
func TestTicketStatsCountsAndBucketsInTheDatabase(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, _ := twoStations(t, s)
		day := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		answered := func(tk *store.Ticket, after time.Duration) {
			at := tk.CreatedAt.Add(after)
			tk.Status, tk.FirstResponseAt = store.StatusAnswered, &at
		}
		for i, c := range []struct {
			station uint
			after   time.Duration // 0: unanswered
			auto    bool
			emerg   bool
			level   int
		}{
			{xcl, 90 * time.Second, false, false, 0}, // 1.5 min: a tenth-of-a-minute bucket
			{xcl, 3*time.Minute + 2*time.Second, false, true, 0},
			{xcl, 2*time.Hour + 20*time.Second, false, false, 2}, // a minute bucket
			{xcl, 0, false, false, 1},
			{xcl, time.Second, true, false, 0},    // answered from the FAQ: not a human answer
			{jy, 30 * time.Hour, false, false, 3}, // an hour bucket
		} {
			tk := question(c.station, fmt.Sprint("stats-", i))
			tk.CreatedAt = day.Add(time.Duration(i) * time.Minute)
			tk.Emergency, tk.Level, tk.AutoAnswered = c.emerg, c.level, c.auto
			if c.after > 0 {
				answered(tk, c.after)
			}
			createTicket(t, s, tk)
		}
		outside := question(xcl, "stats-outside")
		outside.CreatedAt = day.Add(-time.Hour)
		createTicket(t, s, outside)

		counts, buckets, err := s.TicketStats(testContext(t), 0, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint]store.TicketCounts{}
		for _, c := range counts {
			got[c.StationID] = c
		}
		want := store.TicketCounts{Questions: 5, Answered: 3, AutoAnswered: 1, Emergencies: 1, Unanswered: 1, Breaches: 2}
		c := got[xcl]
		if c.Questions != want.Questions || c.Answered != want.Answered || c.AutoAnswered != want.AutoAnswered ||
			c.Emergencies != want.Emergencies || c.Unanswered != want.Unanswered || c.Breaches != want.Breaches {
			t.Errorf("xcl counts = %+v, want %+v", c, want)
		}
		if got[jy].Questions != 1 || got[jy].Answered != 1 {
			t.Errorf("jy counts = %+v", got[jy])
		}
		tenths := map[int64]int{}
		for _, b := range buckets {
			tenths[b.Tenths] += b.N
		}
		for _, w := range []int64{15, 30, 1200, 18000} {
			if tenths[w] != 1 {
				t.Errorf("buckets = %v, want one answer at %d tenths of a minute", tenths, w)
			}
		}
		if len(tenths) != 4 {
			t.Errorf("buckets = %v, want the four human answers only", tenths)
		}
	})
}

// BenchmarkTicketStatsMillion aggregates a district's year (1,000,000
// tickets over 3,200 groups of 16 stations) on SQLite. The tickets are made
// by the database itself, once, before the clock starts.
func BenchmarkTicketStatsMillion(b *testing.B) {
	path := b.TempDir() + "/year.db"
	s := openStore(b, store.Options{Driver: store.SQLite, DSN: path})
	ctx := b.Context()
	d := syncSeed(b, s, districtSeed())
	station := d.Stations[0].ID
	const n = 1_000_000
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.ExecContext(ctx, `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO tickets (station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status,
			emergency, after_hours, auto_answered, level, fence, created_at, first_response_at, updated_at, response_bucket)
		SELECT ?, i, 'bench-' || i, 'dingtalk', 'cid-' || (i % 3200), 'group', 'r' || (i % 426000), '问题', 
			CASE WHEN i % 10 = 0 THEN 'open' ELSE 'answered' END, i % 50 = 0, i % 3 = 0, i % 7 = 0, i % 11 = 0, 0,
			strftime('%Y-%m-%d %H:%M:%f+00:00', ?, '+' || (i * 31) || ' seconds'),
			CASE WHEN i % 10 = 0 THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f+00:00', ?, '+' || (i * 31 + (i % 5000)) || ' seconds') END,
			strftime('%Y-%m-%d %H:%M:%f+00:00', ?),
			-- what the store writes with a human answer: its bucket
			CASE WHEN i % 10 = 0 OR i % 7 = 0 THEN NULL
				WHEN CAST(ROUND((i % 5000) / 6.0) AS INTEGER) < 600 THEN CAST(ROUND((i % 5000) / 6.0) AS INTEGER)
				ELSE CAST(ROUND(CAST(ROUND((i % 5000) / 6.0) AS INTEGER) / 10.0) * 10 AS INTEGER) END
		FROM seq`, n, station, start.Format("2006-01-02 15:04:05"), start.Format("2006-01-02 15:04:05"), start.Format("2006-01-02 15:04:05"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		counts, buckets, err := s.TicketStats(ctx, 0, start, start.AddDate(1, 0, 0))
		if err != nil {
			b.Fatal(err)
		}
		if len(counts) != 3200 || len(buckets) == 0 {
			b.Fatalf("%d places, %d buckets", len(counts), len(buckets))
		}
	}
}
