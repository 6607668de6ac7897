package store_test

import (
	"database/sql"
	"fmt"
	"slices"
	"syscall"
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
	b.Run("place", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			counts, buckets, err := s.TicketStats(ctx, 0, start, start.AddDate(1, 0, 0))
			if err != nil {
				b.Fatal(err)
			}
			if len(counts) != 3200 || len(buckets) == 0 {
				b.Fatalf("%d places, %d buckets", len(counts), len(buckets))
			}
		}
	})
	// The console's charts: the same year per day and per hour of the day.
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	for _, by := range []struct {
		name string
		by   store.StatsBy
	}{{"day", store.ByDay}, {"hour", store.ByHour}} {
		b.Run(by.name, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				points, err := s.TicketSeries(ctx, 0, start, start.AddDate(1, 0, 0), by.by, shanghai)
				if err != nil {
					b.Fatal(err)
				}
				if len(points) == 0 {
					b.Fatal("no points")
				}
			}
		})
	}
}

// The console's charts ask the same layer by day and hour of the day (in
// the hub's zone) and by officer: counts, after-hours and FAQ shares,
// breaches and the first-response histogram per key, on both databases.
func TestTicketSeriesByDayHourAndOfficer(t *testing.T) {
	t.Parallel()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	forEachDB(t, func(t *testing.T, s *store.Store) {
		xcl, jy, d := twoStations(t, s)
		wang := officerByCode(t, d, "xcl-wang")
		local := func(v string) time.Time {
			at, err := time.ParseInLocation("2006-01-02 15:04", v, shanghai)
			if err != nil {
				t.Fatal(err)
			}
			return at
		}
		for i, c := range []struct {
			station uint
			at      string
			after   time.Duration
			auto    bool
			night   bool
			level   int
		}{
			{xcl, "2026-11-23 07:30", 2 * time.Minute, false, false, 0}, // 23:30 UTC the day before: a local day
			{xcl, "2026-11-23 09:10", 30 * time.Minute, false, false, 1},
			{xcl, "2026-11-23 09:50", time.Second, true, true, 0},
			{xcl, "2026-11-24 23:10", 0, false, true, 2},
			{jy, "2026-11-24 09:00", 0, false, false, 0},
		} {
			tk := question(c.station, fmt.Sprint("series-", i))
			tk.CreatedAt, tk.AutoAnswered, tk.AfterHours, tk.Level = local(c.at), c.auto, c.night, c.level
			if c.station == xcl {
				tk.AssigneeID = &wang.ID
			}
			if c.after > 0 {
				at := tk.CreatedAt.Add(c.after)
				tk.Status, tk.FirstResponseAt = store.StatusAnswered, &at
			}
			createTicket(t, s, tk)
		}
		from, to := local("2026-11-23 00:00"), local("2026-11-25 00:00")
		type row struct {
			key                                            string
			questions, answered, auto, night, breach, open int
			tenths                                         []int64
		}
		flat := func(ps []store.SeriesPoint) []row {
			var out []row
			for _, p := range ps {
				r := row{p.Key, p.Questions, p.Answered, p.AutoAnswered, p.AfterHours, p.Breaches, p.Unanswered, nil}
				for _, b := range p.Buckets {
					for range b.N {
						r.tenths = append(r.tenths, b.Tenths)
					}
				}
				slices.Sort(r.tenths)
				out = append(out, r)
			}
			return out
		}
		for _, c := range []struct {
			by      store.StatsBy
			station uint
			want    []row
		}{
			{store.ByDay, xcl, []row{{"2026-11-23", 3, 2, 1, 1, 1, 0, []int64{20, 300}}, {"2026-11-24", 1, 0, 0, 1, 1, 1, nil}}},
			{store.ByDay, 0, []row{{"2026-11-23", 3, 2, 1, 1, 1, 0, []int64{20, 300}}, {"2026-11-24", 2, 0, 0, 1, 1, 2, nil}}},
			{store.ByHour, xcl, []row{{"07", 1, 1, 0, 0, 0, 0, []int64{20}}, {"09", 2, 1, 1, 1, 1, 0, []int64{300}}, {"23", 1, 0, 0, 1, 1, 1, nil}}},
			{store.ByOfficer, 0, []row{{"0", 1, 0, 0, 0, 0, 1, nil}, {fmt.Sprint(wang.ID), 4, 2, 1, 2, 2, 1, []int64{20, 300}}}},
		} {
			got, err := s.TicketSeries(testContext(t), c.station, from, to, c.by, shanghai)
			if err != nil {
				t.Fatal(err)
			}
			if g := flat(got); fmt.Sprint(g) != fmt.Sprint(c.want) {
				t.Errorf("by %d of station %d = %v, want %v", c.by, c.station, g, c.want)
			}
		}
	})
}

// BenchmarkTicketStatsMillionMySQL is BenchmarkTicketStatsMillion on
// MariaDB: the same year of 1,000,000 tickets, made by the server itself.
func BenchmarkTicketStatsMillionMySQL(b *testing.B) {
	be := mariadbBackend(b)
	s := openStore(b, be.opts)
	ctx := b.Context()
	d := syncSeed(b, s, districtSeed())
	station := d.Stations[0].ID
	raw, err := sql.Open("mysql", be.rawDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	digits := "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
		"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	i := "(a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1)"
	tenths := "ROUND((" + i + " % 5000) / 6.0)"
	_, err = raw.ExecContext(ctx, `INSERT INTO tickets (station_id, number, source_event_id, platform, chat_id, chat_type, resident_id, question, status,
			emergency, after_hours, auto_answered, level, fence, created_at, first_response_at, updated_at, response_bucket)
		SELECT ?, `+i+`, CONCAT('bench-', `+i+`), 'dingtalk', CONCAT('cid-', `+i+` % 3200), 'group', CONCAT('r', `+i+` % 426000), '问题',
			CASE WHEN `+i+` % 10 = 0 THEN 'open' ELSE 'answered' END, `+i+` % 50 = 0, `+i+` % 3 = 0, `+i+` % 7 = 0, `+i+` % 11 = 0, 0,
			TIMESTAMP('2026-01-01') + INTERVAL (`+i+` * 31) SECOND,
			CASE WHEN `+i+` % 10 = 0 THEN NULL ELSE TIMESTAMP('2026-01-01') + INTERVAL (`+i+` * 31 + `+i+` % 5000) SECOND END,
			TIMESTAMP('2026-01-01'),
			CASE WHEN `+i+` % 10 = 0 OR `+i+` % 7 = 0 THEN NULL WHEN `+tenths+` < 600 THEN `+tenths+` ELSE ROUND(`+tenths+` / 10.0) * 10 END
		FROM `+digits+` a, `+digits+` b, `+digits+` c, `+digits+` e, `+digits+` f, `+digits+` g`, station)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, "ANALYZE TABLE tickets"); err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	b.Run("place", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			counts, buckets, err := s.TicketStats(ctx, 0, start, start.AddDate(1, 0, 0))
			if err != nil {
				b.Fatal(err)
			}
			if len(counts) != 3200 || len(buckets) == 0 {
				b.Fatalf("%d places, %d buckets", len(counts), len(buckets))
			}
		}
	})
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("day", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := s.TicketSeries(ctx, 0, start, start.AddDate(1, 0, 0), store.ByDay, shanghai); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process's CPU seconds per operation (the client's
// side: the SQLite engine runs in it; MariaDB's work is in the server) at
// the end of a benchmark: on a busy machine wall time per operation moves
// with the load, CPU time much less.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric((cpu()-start).Seconds()/float64(b.N), "cpu-s/op")
	}
}
