package playground

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/golden"
)

// TestNormaliseGolden: each testdata/*.json post becomes the event (or the
// error) in the matching .golden file.
func TestNormaliseGolden(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	golden.Run(t, "testdata/*.json", func(t *testing.T, raw []byte) []byte {
		var p Post
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		e, err := Normalise(p, now)
		if err != nil {
			return golden.Error(err)
		}
		return golden.JSON(e)
	})
}
