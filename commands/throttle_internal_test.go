package commands

import (
	"fmt"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/configs"
)

// The throttle remembers only residents who asked within the last minute
// or two: a day of questions from ever new residents leaves the hub holding
// the last minutes' askers, not everyone who ever asked.
func TestThrottleForgetsIdleResidents(t *testing.T) {
	t.Parallel()
	r := newRig(t, time.Date(2026, 11, 23, 10, 0, 0, 0, sh), func(_ *configs.Config, o *Options) { o.QuestionsPerMinute = 2 })
	for i := range 30 {
		r.group("hexie", fmt.Sprintf("res-%d", i), "@社区警务助手 门口有人发小广告")
		r.clock.Add(10 * time.Second)
	}
	r.h.throttleMu.Lock()
	n := len(r.h.recent)
	r.h.throttleMu.Unlock()
	if n > 13 {
		t.Errorf("after 30 residents over 5 minutes the throttle remembers %d of them, want at most the last two minutes' (12)", n)
	}
	if n == 0 {
		t.Errorf("the throttle forgot the residents of the last minute")
	}
}
