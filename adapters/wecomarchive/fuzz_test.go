package wecomarchive_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/bot"
)

// Whatever the archive holds, Decode never panics, and what it accepts is
// a valid event with bounded, valid text.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := wecomarchive.Decode(raw, names)
		if err != nil {
			return // refused or ignored: both fine, as long as nothing panicked
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		if !utf8.ValidString(e.Text) || utf8.RuneCountInString(e.Text) > bot.MaxTextRunes {
			t.Fatalf("text not valid or too long: %d runes", utf8.RuneCountInString(e.Text))
		}
	})
}
