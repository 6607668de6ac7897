package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

// The archive cursor moves only with the messages it passes, once: a pull
// recorded again after a crash skips what is there, and a reader whose
// cursor moved under it writes nothing. Trouble is noted from its first
// moment and cleared when well.
func TestArchiveCursorMovesWithItsMessages(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		at := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
		batch := []store.ArchivedMessage{
			{MsgID: "m1", Seq: 1, RoomID: "wr1", Status: store.ArchivePublished, MsgTime: at},
			{MsgID: "m2", Seq: 2, Status: store.ArchiveUndecryptable, Reason: "no private key for publickey_ver 9", MsgTime: at},
		}
		if err := s.RecordArchive(ctx, "corp", 0, 2, batch); err != nil {
			t.Fatal(err)
		}
		if seq, err := s.ArchiveSeq(ctx, "corp"); err != nil || seq != 2 {
			t.Fatalf("cursor %d %v, want 2", seq, err)
		}
		if err := s.RecordArchive(ctx, "corp", 0, 3, batch); !errors.Is(err, store.ErrCursorMoved) {
			t.Fatalf("a pull from a stale cursor: %v, want ErrCursorMoved", err)
		}
		again := []store.ArchivedMessage{{MsgID: "m2", Seq: 2, Status: store.ArchivePublished, MsgTime: at},
			{MsgID: "m3", Seq: 3, Status: store.ArchivePublished, MsgTime: at}}
		if err := s.RecordArchive(ctx, "corp", 2, 3, again); err != nil {
			t.Fatal(err)
		}
		bad, err := s.ArchivedMessages(ctx, "corp", store.ArchiveUndecryptable)
		if err != nil || len(bad) != 1 || bad[0].MsgID != "m2" {
			t.Fatalf("undecryptable %+v %v: a message recorded twice must keep its first record", bad, err)
		}
		taken, err := s.ArchiveTaken(ctx, []string{"m1", "m3", "m4"})
		if err != nil || !taken["m1"] || !taken["m3"] || taken["m4"] {
			t.Fatalf("taken %v %v", taken, err)
		}
		since, err := s.ArchiveTrouble(ctx, "corp", "errcode 10001", at)
		if err != nil || !since.Equal(at) {
			t.Fatalf("trouble since %v %v, want %v", since, err, at)
		}
		if since, err = s.ArchiveTrouble(ctx, "corp", "errcode 10001", at.Add(time.Hour)); err != nil || !since.Equal(at) {
			t.Fatalf("trouble lasting: since %v %v, want %v", since, err, at)
		}
		if since, err = s.ArchiveTrouble(ctx, "corp", "", at.Add(2*time.Hour)); err != nil || !since.IsZero() {
			t.Fatalf("well again: since %v %v", since, err)
		}
		if c, err := s.ArchiveCursorOf(ctx, "corp"); err != nil || c.TroubleFrom != nil || c.Seq != 3 {
			t.Fatalf("cursor %+v %v", c, err)
		}
	})
}
