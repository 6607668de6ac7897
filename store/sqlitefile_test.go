package store_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jingminhub/jingmin/store"
)

// A new database and the folder made for it are readable by the hub's user
// alone, and so are the log files SQLite makes beside it: they hold
// residents' names and words.
func TestNewSQLiteDatabaseIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "jingmin.db")
	s := openStore(t, store.Options{Driver: store.SQLite, DSN: path})
	xcl, _, _ := twoStations(t, s) // a write, so the log files exist
	createTicket(t, s, question(xcl, "e1"))
	for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s is %v, want %v", name, got, want)
		}
	}
}

// A path SQLite cannot use gives an error that names the path and says
// why, never "unable to open database file: out of memory (14)".
func TestOpenSQLiteNamesThePathAndTheCause(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	file := filepath.Join(base, "data")
	if err := os.WriteFile(file, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(base, "db-is-a-folder")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dsn string
		want      []string
	}{
		{"a file where the folder should be", filepath.Join(file, "jingmin.db"),
			[]string{"open database " + filepath.Join(file, "jingmin.db"), file + " is not a folder", "not a directory"}},
		{"a folder where the file should be", folder, []string{"open database " + folder, "it is a folder"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkOpenError(t, c.dsn, c.want...)
		})
	}
}

func checkOpenError(t *testing.T, dsn string, want ...string) {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{Driver: store.SQLite, DSN: dsn})
	if err == nil {
		s.Close()
		t.Fatalf("open %s succeeded, want an error", dsn)
	}
	t.Logf("open %s: %v", dsn, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "out of memory") {
		t.Errorf("error %q blames memory", err)
	}
}

// A data folder the hub's user cannot write in is named as such, whether
// the database is still to be made or already there (SQLite keeps its log
// beside it). Root writes anywhere, so under root the checks run in a copy
// of the test binary as user nobody.
func TestOpenSQLiteInAFolderItCannotWriteIn(t *testing.T) {
	if dir := os.Getenv("JINGMIN_TEST_READONLY_DIR"); dir != "" {
		readOnlyChecks(t, dir)
		return
	}
	t.Parallel()
	base := t.TempDir()
	ro := filepath.Join(base, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(ro, "existing.db")
	s := openStore(t, store.Options{Driver: store.SQLite, DSN: existing})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
		readOnlyChecks(t, ro)
		return
	}
	const nobody = 65534
	if err := os.Chown(existing, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	// nobody must reach the folder and run the binary: both under a path
	// only root can write in.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for d := filepath.Dir(filepath.Dir(base)); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("user nobody cannot reach %s (set TMPDIR to a folder everyone may enter)", d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	bin := filepath.Join(base, "store.test")
	copyExecutable(t, bin)
	cmd := exec.Command(bin, "-test.run=^TestOpenSQLiteInAFolderItCannotWriteIn$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "JINGMIN_TEST_READONLY_DIR="+ro)
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the checks as user nobody failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the checks as user nobody did not run:\n%s", out)
	}
	t.Logf("as user nobody:\n%s", out)
}

func readOnlyChecks(t *testing.T, dir string) {
	t.Run("new database", func(t *testing.T) {
		path := filepath.Join(dir, "jingmin.db")
		checkOpenError(t, path, "open database "+path, "folder "+dir+" is not writable", "permission denied")
	})
	t.Run("existing database", func(t *testing.T) {
		path := filepath.Join(dir, "existing.db")
		checkOpenError(t, path, "open database "+path, "folder "+dir+" is not writable", "permission denied")
	})
}

func copyExecutable(t *testing.T, to string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
