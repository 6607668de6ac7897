package store

import (
	"context"
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
func (s *Store) TicketStats(ctx context.Context, stationID uint, from, to time.Time) ([]TicketCounts, []ResponseBucket, error) {
	where := "created_at >= ? AND created_at < ?"
	args := []any{from.UTC(), to.UTC()}
	if stationID != 0 {
		where += " AND station_id = ?"
		args = append(args, stationID)
	}
	place := "station_id, group_id, platform, chat_type, CASE WHEN group_id IS NULL AND chat_type = 'group' THEN chat_id ELSE '' END"
	var counts []TicketCounts
	q := "SELECT station_id, group_id, platform, chat_type, " +
		"CASE WHEN group_id IS NULL AND chat_type = 'group' THEN chat_id ELSE '' END AS chat_id, " +
		"COUNT(*) AS questions, " +
		"SUM(CASE WHEN auto_answered = 0 AND first_response_at IS NOT NULL THEN 1 ELSE 0 END) AS answered, " +
		"SUM(CASE WHEN auto_answered <> 0 THEN 1 ELSE 0 END) AS auto_answered, " +
		"SUM(CASE WHEN emergency <> 0 THEN 1 ELSE 0 END) AS emergencies, " +
		"SUM(CASE WHEN status IN ('open', 'claimed') THEN 1 ELSE 0 END) AS unanswered, " +
		"SUM(CASE WHEN level > 0 THEN 1 ELSE 0 END) AS breaches " +
		"FROM tickets WHERE " + where + " GROUP BY " + place
	if err := s.read(ctx).Raw(q, args...).Scan(&counts).Error; err != nil {
		return nil, nil, fmt.Errorf("count tickets: %w", err)
	}
	var buckets []ResponseBucket
	q = "SELECT station_id, group_id, platform, chat_type, " +
		"CASE WHEN group_id IS NULL AND chat_type = 'group' THEN chat_id ELSE '' END AS chat_id, " +
		s.responseBucket() + " AS tenths, COUNT(*) AS n FROM tickets WHERE " + where +
		" AND auto_answered = 0 AND first_response_at IS NOT NULL GROUP BY " + place + ", tenths"
	if err := s.read(ctx).Raw(q, args...).Scan(&buckets).Error; err != nil {
		return nil, nil, fmt.Errorf("histogram of first responses: %w", err)
	}
	return counts, buckets, nil
}

// responseBucket is the SQL for a ticket's first-response time in tenths
// of a minute, rounded to its bucket.
func (s *Store) responseBucket() string {
	integer := "INTEGER"
	tenths := "CAST(ROUND((julianday(first_response_at) - julianday(created_at)) * 14400) AS INTEGER)"
	if s.driver == MySQL {
		integer = "SIGNED"
		tenths = "CAST(ROUND(TIMESTAMPDIFF(MICROSECOND, created_at, first_response_at) / 6000000) AS SIGNED)"
	}
	return "CASE WHEN " + tenths + " < 600 THEN " + tenths +
		" WHEN " + tenths + " < 14400 THEN CAST(ROUND(" + tenths + " / 10.0) * 10 AS " + integer + ")" +
		" ELSE CAST(ROUND(" + tenths + " / 600.0) * 600 AS " + integer + ") END"
}
