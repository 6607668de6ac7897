// Package storetest gives tests a database of their own on the MariaDB (or
// MySQL) server the tests use, so packages testing in parallel never share
// tables.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/jingminhub/jingmin/bot/bustest"
)

// DefaultServer is the server .ci/run starts; JINGMIN_TEST_MYSQL_DSN (a DSN
// without a database name) names another.
const DefaultServer = "root:@tcp(127.0.0.1:3306)/"

var server = sync.OnceValues(func() (*mysql.Config, error) {
	dsn := os.Getenv("JINGMIN_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = DefaultServer
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse JINGMIN_TEST_MYSQL_DSN: %w", err)
	}
	cfg.DBName = ""
	return cfg, nil
})

// admin is one pool on the server that creates and drops the per-test
// databases; it is probed once, so an absent server costs one attempt.
var admin = sync.OnceValues(func() (*sql.DB, error) {
	cfg, err := server()
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
})

// MySQL creates an empty utf8mb4 database for the test, drops it when the
// test ends, and returns its DSN. Without a server the test skips loudly,
// or fails when JINGMIN_REQUIRE_SERVICES=1.
func MySQL(t testing.TB) string {
	t.Helper()
	cfg, err := server()
	if err != nil {
		t.Fatal(err)
	}
	db, err := admin()
	if err != nil {
		bustest.Unavailable(t, "MariaDB at "+cfg.Addr, err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "jm_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database %s on %s: %v", name, cfg.Addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	c := cfg.Clone()
	c.DBName = name
	return c.FormatDSN()
}
