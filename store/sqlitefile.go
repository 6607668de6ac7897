package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// prepareSQLiteFile makes sure path can hold the database before SQLite
// opens it. SQLite's own error for a folder it cannot write in is "unable to
// open database file: out of memory (14)", which names neither the file nor
// the cause; this names both. A new database file and a new folder for it
// are readable by the hub's user alone (0600 and 0700): they hold residents'
// names and words. SQLite gives its -wal and -shm files the database file's
// mode.
func prepareSQLiteFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("open database %s: %s is not a folder: %w", path, dir, cause(err))
		}
		return fmt.Errorf("open database %s: create folder %s: %w", path, dir, cause(err))
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("open database %s: it is a folder, not a database file", path)
	case err == nil:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open database %s: the file is not writable: %w", path, cause(err))
		}
		return f.Close()
	case errors.Is(err, fs.ErrNotExist):
		// Created here rather than by SQLite, which would make it 0644.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case errors.Is(err, fs.ErrExist): // another process was quicker
			return nil
		case err != nil:
			return fmt.Errorf("open database %s: folder %s is not writable: %w", path, dir, cause(err))
		}
		return f.Close()
	default:
		return fmt.Errorf("open database %s: %w", path, cause(err))
	}
}

// sqliteOpenError explains why SQLite could not open path: a database in
// a folder it cannot write in opens, but its write-ahead log cannot be made
// beside it, and SQLite's error then names neither.
func sqliteOpenError(path string, err error) error {
	dir := filepath.Dir(path)
	probe, perr := os.CreateTemp(dir, ".jingmin-write-check-*")
	if perr != nil {
		return fmt.Errorf("open database %s: folder %s is not writable (SQLite keeps its log beside the database): %w", path, dir, cause(perr))
	}
	probe.Close()
	os.Remove(probe.Name())
	return fmt.Errorf("open database %s: %w", path, err)
}

// cause is the system's reason inside a path error ("permission denied"),
// so a message that names the path already does not name it twice.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
