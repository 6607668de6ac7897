package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// TicketCounts are the counts of one place's tickets: a group, or a
// one-to-one consultation chat type of a station.
type TicketCounts struct {
	StationID uint
	GroupID   *uint
	// Platform, ChatType and ChatID say where the tickets were asked when no
	// registered group holds them (ChatID only for a group chat).
	Platform, ChatType, ChatID string

	Questions, Answered, AutoAnswered, Emergencies, Unanswered, Breaches int
	// AfterHours were asked out of hours (the duty account took them).
	AfterHours int
}

// ResponseBucket is how many first human answers of one place came after
// about Tenths tenths of a minute (see responseBucket).
type ResponseBucket struct {
	StationID uint
	GroupID   *uint
	Platform  string
	ChatType  string
	ChatID    string
	Tenths    int64
	N         int
}

// TicketStats aggregates in the database the tickets created in [from, to)
// (of one station, or every one when stationID is 0): counts per place, and
// the first-response times as a histogram, so memory stays flat however
// many tickets the window holds. Buckets are a tenth of a minute up to an
// hour, a minute up to a day, an hour beyond.
//
// It is one pass over the ix_ticket_stats index, which holds every column
// read here in the order grouped by (place, then response bucket): the
// database groups as it reads, with no sort and no table row read, and
// hands back one row per place and bucket.
func (s *Store) TicketStats(ctx context.Context, stationID uint, from, to time.Time) ([]TicketCounts, []ResponseBucket, error) {
	index := "INDEXED BY ix_ticket_stats"
	if s.driver == MySQL {
		index = "FORCE INDEX (ix_ticket_stats)"
	}
	where := "created_at >= ? AND created_at < ?"
	args := []any{from.UTC(), to.UTC()}
	if stationID != 0 {
		where = "station_id = ? AND " + where
		args = append([]any{stationID}, args...)
	}
	q := "SELECT station_id, group_id, platform, chat_type, chat_id, response_bucket, COUNT(*), " +
		"SUM(CASE WHEN auto_answered <> 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN emergency <> 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN status IN ('open', 'claimed') THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN level > 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN after_hours <> 0 THEN 1 ELSE 0 END) " +
		"FROM tickets " + index + " WHERE " + where +
		" GROUP BY station_id, group_id, platform, chat_type, chat_id, response_bucket"
	rows, err := s.read(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, nil, fmt.Errorf("count tickets: %w", err)
	}
	defer rows.Close()
	type placeKey struct {
		station          uint
		group            uint // 0: none
		platform, chType string
		chatID           string
	}
	var (
		counts  []TicketCounts
		buckets []ResponseBucket
		at      = map[placeKey]int{}
	)
	for rows.Next() {
		var (
			station                              uint
			group                                sql.NullInt64
			platform, chType, chatID             string
			bucket                               sql.NullInt64
			n, auto, emerg, unanswered, breaches int
			afterHours                           int
		)
		if err := rows.Scan(&station, &group, &platform, &chType, &chatID, &bucket, &n, &auto, &emerg, &unanswered, &breaches, &afterHours); err != nil {
			return nil, nil, fmt.Errorf("count tickets: %w", err)
		}
		// A registered group is its own place; an unregistered one is its
		// chat; one-to-one chats are a place per platform and chat type.
		k := placeKey{station: station, platform: platform, chType: chType}
		if group.Valid {
			k.group = uint(group.Int64)
		} else if chType == "group" {
			k.chatID = chatID
		}
		i, ok := at[k]
		if !ok {
			i = len(counts)
			at[k] = i
			c := TicketCounts{StationID: station, Platform: platform, ChatType: chType, ChatID: k.chatID}
			if group.Valid {
				g := k.group
				c.GroupID = &g
			}
			counts = append(counts, c)
		}
		c := &counts[i]
		c.Questions += n
		c.AutoAnswered += auto
		c.Emergencies += emerg
		c.Unanswered += unanswered
		c.Breaches += breaches
		c.AfterHours += afterHours
		if bucket.Valid {
			c.Answered += n
			buckets = append(buckets, ResponseBucket{StationID: station, GroupID: c.GroupID, Platform: platform, ChatType: chType, ChatID: k.chatID, Tenths: bucket.Int64, N: n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("count tickets: %w", err)
	}
	return counts, buckets, nil
}

// StatsBy is what TicketSeries groups a window's tickets by: the questions
// the console's charts ask.
type StatsBy int

const (
	// ByDay is the calendar day the ticket was filed, in the hub's zone
	// ("2026-11-23"): questions per day, first-response median and p90 over
	// time, the after-hours and FAQ shares per day.
	ByDay StatsBy = iota
	// ByHour is the hour of the day it was filed, in the hub's zone ("09").
	ByHour
	// ByOfficer is who answered it, else who holds it now (the officer's
	// row id): SLA breaches per officer.
	ByOfficer
)

// SeriesPoint is one key's counts (TicketCounts' place fields are unset)
// and its first-response histogram.
type SeriesPoint struct {
	Key string
	TicketCounts
	Buckets []ResponseBucket
}

// TicketSeries counts the tickets created in [from, to) (of one station, or
// every one when stationID is 0) by day, hour or officer, with the same
// counts and first-response histogram as TicketStats: one query layer for
// `jingmin stats` and the console's charts. Day and hour are those of loc
// (a zone without daylight saving, as Asia/Shanghai: its offset at from is
// used for the whole window). One pass over the window's index entries;
// the database sorts its rows by key to group them, and hands back one
// row per key and bucket, so memory stays flat with the window.
func (s *Store) TicketSeries(ctx context.Context, stationID uint, from, to time.Time, by StatsBy, loc *time.Location) ([]SeriesPoint, error) {
	_, offset := from.In(loc).Zone()
	var key string
	var keyArgs []any
	index := "INDEXED BY ix_ticket_stats"
	if s.driver == MySQL {
		index = "FORCE INDEX (ix_ticket_stats)"
	}
	switch {
	case by == ByOfficer:
		key, index = "CAST(COALESCE(answered_by, assignee_id, 0) AS CHAR)", ""
		if s.driver == SQLite {
			key = "CAST(COALESCE(answered_by, assignee_id, 0) AS TEXT)"
		}
	case s.driver == MySQL:
		format := "%Y-%m-%d"
		if by == ByHour {
			format = "%H"
		}
		key, keyArgs = "DATE_FORMAT(created_at + INTERVAL ? SECOND, '"+format+"')", []any{offset}
	default:
		format := "%Y-%m-%d"
		if by == ByHour {
			format = "%H"
		}
		key, keyArgs = "strftime('"+format+"', created_at, ?)", []any{fmt.Sprintf("%+d seconds", offset)}
	}
	where := "created_at >= ? AND created_at < ?"
	args := keyArgs // the key's placeholders come first, in the SELECT
	if stationID != 0 {
		where = "station_id = ? AND " + where
		args = append(args, stationID)
	}
	args = append(args, from.UTC(), to.UTC())
	q := "SELECT " + key + " AS k, response_bucket, COUNT(*), " +
		"SUM(CASE WHEN auto_answered <> 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN emergency <> 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN status IN ('open', 'claimed') THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN level > 0 THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN after_hours <> 0 THEN 1 ELSE 0 END) " +
		"FROM tickets " + index + " WHERE " + where + " GROUP BY k, response_bucket ORDER BY k"
	rows, err := s.read(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("count tickets by %d: %w", by, err)
	}
	defer rows.Close()
	var out []SeriesPoint
	for rows.Next() {
		var (
			raw                                  any
			bucket                               sql.NullInt64
			n, auto, emerg, unanswered, breaches int
			afterHours                           int
		)
		if err := rows.Scan(&raw, &bucket, &n, &auto, &emerg, &unanswered, &breaches, &afterHours); err != nil {
			return nil, fmt.Errorf("count tickets: %w", err)
		}
		var k string
		switch v := raw.(type) {
		case time.Time: // the SQLite driver reads a text that looks like a date as one
			k = v.Format("2006-01-02")
		case []byte:
			k = string(v)
		default:
			k = fmt.Sprint(v)
		}
		if len(out) == 0 || out[len(out)-1].Key != k {
			out = append(out, SeriesPoint{Key: k})
		}
		p := &out[len(out)-1]
		p.Questions += n
		p.AutoAnswered += auto
		p.Emergencies += emerg
		p.Unanswered += unanswered
		p.Breaches += breaches
		p.AfterHours += afterHours
		if bucket.Valid {
			p.Answered += n
			p.Buckets = append(p.Buckets, ResponseBucket{Tenths: bucket.Int64, N: n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	return out, nil
}
