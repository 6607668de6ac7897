package store_test

import (
	"testing"
	"time"

	"github.com/jingminhub/jingmin/store"
)

func TestMarkDigestOncePerShift(t *testing.T) {
	t.Parallel()
	monday := time.Date(2026, 11, 23, 8, 30, 0, 0, cst)
	tuesday := monday.Add(24 * time.Hour)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		d := syncSeed(t, s, districtSeed())
		wang, li := officerByCode(t, d, "xcl-wang").ID, officerByCode(t, d, "xcl-li").ID
		steps := []struct {
			name    string
			officer uint
			start   time.Time
			want    bool
		}{
			{"first digest of the shift", wang, monday, true},
			{"same shift again (another worker, or a restart)", wang, monday, false},
			{"same shift start given in UTC", wang, monday.UTC(), false},
			{"an older shift", wang, monday.Add(-24 * time.Hour), false},
			{"another officer, same shift start", li, monday, true},
			{"the next shift", wang, tuesday, true},
			{"the next shift again", wang, tuesday, false},
			{"the previous shift after the next one", wang, monday, false},
			{"an officer that does not exist", 999999, tuesday, false},
		}
		for _, st := range steps {
			got, err := s.MarkDigest(testContext(t), st.officer, st.start, nil)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != st.want {
				t.Errorf("%s: MarkDigest = %v, want %v", st.name, got, st.want)
			}
		}
		got := officerByCode(t, loadDirectory(t, s), "xcl-wang")
		if got.DigestFor == nil || !got.DigestFor.Equal(tuesday) {
			t.Errorf("xcl-wang digest recorded for %v, want %v", deref(got.DigestFor), tuesday)
		}
	})
}

func TestMarkDigestSurvivesResync(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 17, 30, 0, 0, cst)
	forEachDB(t, func(t *testing.T, s *store.Store) {
		d := syncSeed(t, s, districtSeed())
		li := officerByCode(t, d, "xcl-li").ID
		if ok, err := s.MarkDigest(testContext(t), li, start, nil); err != nil || !ok {
			t.Fatalf("first digest = %v, %v; want true", ok, err)
		}
		seed := districtSeed()
		seed.Officers[1].Name = "李明明"
		syncSeed(t, s, seed)
		if ok, err := s.MarkDigest(testContext(t), li, start, nil); err != nil || ok {
			t.Errorf("digest for the same shift after a re-sync = %v, %v; want false", ok, err)
		}
	})
}
