package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// The bench's latency percentiles come from a histogram, not from every
// latency kept: they must stay within 1% of the exact figures.
func TestLatencyHistogramPercentilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h latencyHistogram
	var all []time.Duration
	for range 100000 {
		// Log-normal around 3 ms, a tail to seconds.
		d := time.Duration(math.Exp(rng.NormFloat64()*1.2) * float64(3*time.Millisecond))
		h.add(d)
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, p := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact, got := pct(all, p), h.pct(p)
		if got < exact || got > exact*1.0101 {
			t.Errorf("p%v = %.4f ms, exact %.4f ms: want within 1%% above", p*100, got, exact)
		}
	}
	if len(h.counts) > 3000 {
		t.Errorf("the histogram holds %d buckets", len(h.counts))
	}
	var empty latencyHistogram
	if empty.pct(0.99) != 0 {
		t.Errorf("an empty histogram's p99 = %v, want 0", empty.pct(0.99))
	}
}
