package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// The distributed bench counts what it costs the servers from their own
// statistics, sampled before and after the event phase. Both are server-wide
// counters: other clients of the same server during the run add to them, so
// the per-command breakdown is reported beside the totals to show where the
// calls went.

// redisCommandStats reads INFO commandstats: calls per command since the
// server started.
func redisCommandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("bench: redis INFO commandstats: %w", err)
	}
	calls := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		// cmdstat_xadd:calls=123,usec=456,usec_per_call=3.71,...
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("bench: redis INFO commandstats: %s: %w", name, err)
				}
				calls[name] = n
			}
		}
	}
	return calls, nil
}

// sqlCounters are the MariaDB/MySQL status counters the bench samples:
// Questions (statements clients sent) and the statement kinds behind them.
var sqlCounters = []string{"Questions", "Com_select", "Com_insert", "Com_update", "Com_delete",
	"Com_begin", "Com_commit", "Com_rollback", "Com_stmt_prepare", "Com_stmt_execute", "Com_stmt_close"}

// sqlStatus reads the counters of SHOW GLOBAL STATUS the bench reports.
func sqlStatus(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('"+strings.Join(sqlCounters, "','")+"')")
	if err != nil {
		return nil, fmt.Errorf("bench: SHOW GLOBAL STATUS: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("bench: SHOW GLOBAL STATUS: %w", err)
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench: SHOW GLOBAL STATUS %s=%q: %w", name, value, err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bench: SHOW GLOBAL STATUS: %w", err)
	}
	return out, nil
}

// perEvent turns two samples of counters into calls per event: the total of
// every counter not in skip, and the top largest of them one by one.
func perEvent(before, after map[string]int64, events int, skip map[string]bool, top int) (total float64, each map[string]float64) {
	type count struct {
		name string
		n    int64
	}
	var counts []count
	var sum int64
	for name, n := range after {
		d := n - before[name]
		if d <= 0 || skip[name] {
			continue
		}
		sum += d
		counts = append(counts, count{name, d})
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].n != counts[j].n {
			return counts[i].n > counts[j].n
		}
		return counts[i].name < counts[j].name
	})
	each = map[string]float64{}
	for i, c := range counts {
		if i == top {
			break
		}
		each[c.name] = round(float64(c.n)/float64(events), 2)
	}
	return round(float64(sum)/float64(events), 2), each
}

// redisSampler samples the bench's Redis server, and at the end deletes
// every key under the bench's prefix.
type redisSampler struct {
	rdb    *redis.Client
	prefix string
}

func newRedisSampler(ctx context.Context, url, prefix string) (*redisSampler, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("bench: Redis at %s does not answer: %w", opt.Addr, err)
	}
	return &redisSampler{rdb: rdb, prefix: prefix}, nil
}

// cleanUp deletes every key under the prefix (streams, consumer groups,
// de-duplication keys, limiter state) and returns how many are left: a
// bench leaves nothing of its own behind on a shared server.
func (r *redisSampler) cleanUp(ctx context.Context) (left int, err error) {
	match := redisGlobEscape(r.prefix) + "*"
	for range 3 { // a key written while the first pass ran is caught by the next
		var cursor uint64
		for {
			keys, next, err := r.rdb.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return 0, fmt.Errorf("bench: scan %s: %w", match, err)
			}
			if len(keys) > 0 {
				if err := r.rdb.Unlink(ctx, keys...).Err(); err != nil {
					return 0, fmt.Errorf("bench: unlink %d keys under %s: %w", len(keys), r.prefix, err)
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if left, err = r.countKeys(ctx); err != nil || left == 0 {
			return left, err
		}
	}
	return left, nil
}

// countKeys counts the keys under the prefix.
func (r *redisSampler) countKeys(ctx context.Context) (int, error) {
	match := redisGlobEscape(r.prefix) + "*"
	n := 0
	var cursor uint64
	for {
		keys, next, err := r.rdb.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("bench: scan %s: %w", match, err)
		}
		n += len(keys)
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

func (r *redisSampler) Close() error { return r.rdb.Close() }

// redisGlobEscape quotes the characters SCAN MATCH treats as a pattern.
func redisGlobEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]^\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// benchPrefix is a Redis key prefix no other run shares.
func benchPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("jingmin-bench:%s:", hex.EncodeToString(b))
}

// benchDatabase is the MySQL side of a bench run: with a DSN naming no
// database it creates one of its own (and drop removes it at the end); with
// one named, the bench fills that database and leaves it.
type benchDatabase struct {
	admin   *sql.DB
	dsn     string // the DSN the hub opens
	created string // the database the bench made, "" when it used the named one
}

func openBenchDatabase(ctx context.Context, dsn string) (*benchDatabase, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: -dsn %w", err)
	}
	server := cfg.Clone()
	server.DBName = ""
	admin, err := sql.Open("mysql", server.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	admin.SetMaxOpenConns(2)
	ping, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ping); err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench: MySQL at %s does not answer: %w", cfg.Addr, err)
	}
	d := &benchDatabase{admin: admin, dsn: dsn}
	if cfg.DBName != "" {
		return d, nil
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	d.created = "jingmin_bench_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+d.created+"` CHARACTER SET utf8mb4"); err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench: create database %s: %w", d.created, err)
	}
	named := cfg.Clone()
	named.DBName = d.created
	d.dsn = named.FormatDSN()
	return d, nil
}

// drop removes the database the bench created, if it created one.
func (d *benchDatabase) drop(ctx context.Context) error {
	if d.created == "" {
		return nil
	}
	if _, err := d.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+d.created+"`"); err != nil {
		return fmt.Errorf("bench: drop database %s: %w", d.created, err)
	}
	return nil
}

func (d *benchDatabase) Close() error { return d.admin.Close() }
