package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		vs = append(vs, v)
	}
	require.NoError(t, rows.Err())
	return vs
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	embedded, err := loadMigrations(migrationFiles, "migrations")
	require.NoError(t, err)
	require.NotEmpty(t, embedded)

	t.Run("fresh file", func(t *testing.T) {
		s := openTest(t)
		require.Len(t, versions(t, s.w), len(embedded))
		for _, table := range []string{"gateway_keys", "attached_keys", "credit_accounts", "credit_lots", "credit_holds",
			"credit_hold_lots", "credit_transactions", "usage_records"} {
			var n int
			require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n))
			require.Equal(t, 1, n, table)
		}
	})

	t.Run("reopen is idempotent and keeps data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.db")
		s, err := Open(ctx, path, Options{})
		require.NoError(t, err)
		k, err := s.Create(ctx, testKey(1, "e"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		for range 2 {
			s, err = Open(ctx, path, Options{})
			require.NoError(t, err)
			require.Len(t, versions(t, s.w), len(embedded))
			got, err := s.Get(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, k, got)
			require.NoError(t, s.Close())
		}
	})

	t.Run("a keys-only database gets the credits", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.db")
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		require.NoError(t, migrate(ctx, db, embedded[:1], 0))
		k := testKey(1, "e")
		_, err = db.Exec(`INSERT INTO gateway_keys (id, hash, redacted, endpoint, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1)`,
			k.ID, k.Hash[:], k.Redacted, k.Endpoint)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		s, err := Open(ctx, path, Options{})
		require.NoError(t, err)
		defer s.Close()
		require.Len(t, versions(t, s.w), len(embedded))
		_, err = s.Get(ctx, k.ID)
		require.NoError(t, err)
		_, err = s.Purchase(ctx, credits.Purchase{ID: "p1", Account: "acct", Amount: credits.MinPurchase})
		require.NoError(t, err)
	})

	t.Run("newer schema refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.db")
		s, err := Open(ctx, path, Options{})
		require.NoError(t, err)
		_, err = s.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)`, len(embedded)+1)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = Open(ctx, path, Options{})
		require.ErrorIs(t, err, ErrSchemaTooNew)
	})

	t.Run("failed migration rolls back all", func(t *testing.T) {
		db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "x.db"))
		require.NoError(t, err)
		defer db.Close()
		ms, err := loadMigrations(fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
			"m/0002_b.sql": {Data: []byte("CREATE TABLE b (x INTEGER); THIS IS NOT SQL;")},
		}, "m")
		require.NoError(t, err)
		require.Error(t, migrate(ctx, db, ms, 0))
		var n int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('a', 'b', 'schema_migrations')`).Scan(&n))
		require.Zero(t, n)

		// Fixed, both apply; then a third is added later and applies alone.
		ms[1].SQL = "CREATE TABLE b (x INTEGER);"
		require.NoError(t, migrate(ctx, db, ms, 0))
		require.Equal(t, []int{1, 2}, versions(t, db))
		ms = append(ms, migration{Version: 3, Name: "0003_c", SQL: "CREATE TABLE c (x INTEGER);"})
		require.NoError(t, migrate(ctx, db, ms, 0))
		require.Equal(t, []int{1, 2, 3}, versions(t, db))
		require.ErrorIs(t, migrate(ctx, db, ms[:2], 0), ErrSchemaTooNew)
	})
}
