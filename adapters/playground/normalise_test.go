package playground

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestNormaliseGolden: each testdata/*.json post becomes the event (or the
// error) in the matching .golden file.
func TestNormaliseGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.json")
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var p Post
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			var got []byte
			e, err := Normalise(p, now)
			if err != nil {
				got = []byte("error: " + err.Error() + "\n")
			} else {
				got, _ = json.MarshalIndent(e, "", "  ")
				got = append(got, '\n')
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(got) != string(want) {
				t.Errorf("normalised %s:\n%s\nwant:\n%s", in, got, want)
			}
		})
	}
}
