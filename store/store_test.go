package store_test

import "testing"

func TestClosedStoreRefusesWorkAndClosesTwice(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.opts)
		xcl, _, _ := twoStations(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if _, _, err := s.CreateTicket(testContext(t), question(xcl, "after-close"), nil, nil); err == nil {
			t.Error("create ticket on a closed store succeeded, want an error")
		}
		if err := s.Ping(testContext(t)); err == nil {
			t.Error("ping of a closed store succeeded, want an error")
		}
	})
}
