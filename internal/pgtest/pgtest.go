// Package pgtest gives each test its own empty PostgreSQL database, so that
// store tests run in parallel without seeing each other's rows.
//
// Tests that need PostgreSQL call [NewDatabase]. It skips the test unless the
// environment variable TIENDA_TEST_POSTGRES_DSN names a server on which the
// user may create databases, such as
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that names the test server.
const EnvDSN = "TIENDA_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN, or skips tb when none is configured.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		tb.Skipf("PostgreSQL tests skipped: %s is not set", EnvDSN)
	}
	return dsn
}

// NewDatabase creates an empty database on the test server and returns its
// DSN. The database is dropped when the test ends. It skips tb when
// TIENDA_TEST_POSTGRES_DSN is not set.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := DSN(tb)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to %s: %v", EnvDSN, err)
	}
	defer conn.Close(context.Background())

	name := "tienda_test_" + randomSuffix(tb)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() { dropDatabase(tb, admin, name) })

	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}

func dropDatabase(tb testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Logf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	// WITH (FORCE) ends connections that a pool closed too late.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Logf("drop database %s: %v", name, err)
	}
}

func randomSuffix(tb testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random database name: %v", err)
	}
	return hex.EncodeToString(b)
}
