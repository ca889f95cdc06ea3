// Package pgtest gives tests a fresh PostgreSQL database each: the stores
// of store/postgres (keys now, the credits ledger later) test against a
// real server without sharing state.
//
// The server is the one LLMGATE_TEST_POSTGRES_DSN names, for example
//
//	LLMGATE_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' go test ./store/postgres/...
//
// Its user must be allowed to create databases. Without the variable the
// tests are skipped.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable naming the test server: a DSN of a
// database the tests connect to in order to create and drop theirs.
const EnvDSN = "LLMGATE_TEST_POSTGRES_DSN"

// DatabasePrefix starts the name of every database NewDatabase creates;
// the rest is random hex.
const DatabasePrefix = "llmgate_test_"

// NewDatabase creates an empty database on the server named by EnvDSN and
// returns a DSN for it; the database is dropped when the test ends, its
// connections terminated first. It skips the test when EnvDSN is not set,
// and fails it when the server cannot be reached. Safe for parallel tests.
func NewDatabase(t testing.TB) (dsn string) {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		t.Skipf("PostgreSQL tests need a server: set %s, e.g. %s='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'", EnvDSN, EnvDSN)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := DatabasePrefix + hex.EncodeToString(b[:])
	dsn, err := WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	exec(t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec(t, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return dsn
}

// exec runs one statement on the admin database, on a connection of its
// own (CREATE and DROP DATABASE cannot run in a transaction or a pool's
// session state).
func exec(t testing.TB, admin, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// WithDatabase returns dsn (a URL or keyword/value DSN) with its database
// replaced by name.
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value: a later keyword overrides an earlier one.
	return dsn + " dbname=" + name, nil
}
