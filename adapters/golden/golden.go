// Package golden holds the golden-file check every adapter's normalisation
// tests use: each input under testdata/ beside the .golden file that says
// what it must become. `go test ./adapters/... -update` rewrites the golden
// files; review the diff before committing it.
package golden

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Run runs one subtest per file matching pattern, comparing make's output
// for its contents with the file of the same name ending in .golden.
func Run(t *testing.T, pattern string, make func(t *testing.T, raw []byte) []byte) {
	t.Helper()
	inputs, _ := filepath.Glob(pattern)
	if len(inputs) == 0 {
		t.Fatalf("no golden inputs match %s", pattern)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := make(t, raw)
			file := strings.TrimSuffix(in, filepath.Ext(in)) + ".golden"
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s became:\n%s\nwant:\n%s", in, got, want)
			}
		})
	}
}

// JSON is v indented, as golden files hold it.
func JSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// Error is how a golden file holds a refusal.
func Error(err error) []byte { return []byte("error: " + err.Error() + "\n") }

// File compares got with the golden file at path (rewritten with -update):
// for outputs that have no input file of their own, such as a command's
// printout.
func File(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output became:\n%s\nwant (%s):\n%s", got, path, want)
	}
}
