// Package financetest builds, for tests, a stand-in for WeCom's
// conversation-archive library (libWeWorkFinanceSdk_C.so) from C with the
// system's C compiler: the vendor's C interface, answered by the WeCom
// stand-in (wecomtest) through the library's proxy argument, so the hub's
// real loading path (purego, no cgo) runs in every test run.
package financetest

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed csrc/financestub.c
var source []byte

// Build compiles the stand-in library into the test's temporary directory
// and returns its path. It fails the test when no C compiler is found: the
// loading path must not go untested quietly.
func Build(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "financestub.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		t.Fatal(err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	lib := filepath.Join(dir, "libWeWorkFinanceSdk_C.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("build the archive library stand-in with the C compiler %s: %v\n%s", cc, err, out)
	}
	return lib
}
