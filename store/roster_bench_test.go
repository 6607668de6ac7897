package store_test

import (
	"path/filepath"
	"testing"

	"github.com/jingminhub/jingmin/store"
)

// What each process pays every second to notice another's directory
// change (DirectoryVersion) against what reloading costs (LoadDirectory),
// on SQLite with the district seed.
func BenchmarkDirectoryVersion(b *testing.B) {
	s := openStore(b, store.Options{Driver: store.SQLite, DSN: filepath.Join(b.TempDir(), "hub.db")})
	syncSeed(b, s, districtSeed())
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DirectoryVersion(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadDirectory(b *testing.B) {
	s := openStore(b, store.Options{Driver: store.SQLite, DSN: filepath.Join(b.TempDir(), "hub.db")})
	syncSeed(b, s, districtSeed())
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LoadDirectory(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
