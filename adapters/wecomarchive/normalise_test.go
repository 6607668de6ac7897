package wecomarchive_test

import (
	"errors"
	"testing"

	"github.com/jingminhub/jingmin/adapters/golden"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
)

// names are the configured names archived "@名字" are matched against.
var names = []string{"王警官", "王建国", "老王", "叶城警事"}

// Each archived message under testdata/ normalises to its golden event,
// or its golden refusal.
func TestNormaliseGolden(t *testing.T) {
	golden.Run(t, "testdata/*.json", func(t *testing.T, raw []byte) []byte {
		e, err := wecomarchive.Decode(raw, names)
		switch {
		case errors.Is(err, wecomarchive.ErrIgnored):
			return []byte("ignored\n")
		case err != nil:
			return golden.Error(err)
		}
		return golden.JSON(e)
	})
}
