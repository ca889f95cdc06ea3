package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// query runs sql on dsn and returns the single int it selects.
func queryInt(t *testing.T, dsn, sql string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&n))
	return n
}

// execSQL runs sql on dsn.
func execSQL(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
}

const (
	countMigrations = `SELECT count(*) FROM llmgate.schema_migrations`
	maxMigration    = `SELECT max(version) FROM llmgate.schema_migrations`
	countTables     = `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	t.Run("fresh", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		open(t, dsn, postgres.Options{})
		require.Equal(t, 2, queryInt(t, dsn, countMigrations))
		require.Equal(t, 2, queryInt(t, dsn, maxMigration))
		// schema_migrations, gateway_keys, attached_keys, and the
		// ledger's credit_accounts, credit_lots, credit_holds,
		// credit_hold_allocations, credit_transactions, usage_records.
		require.Equal(t, 9, queryInt(t, dsn, countTables, "llmgate"))
		require.Equal(t, 0, queryInt(t, dsn, countTables, "public"))
	})
	t.Run("reopen", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		s := open(t, dsn, postgres.Options{})
		k, err := s.Create(ctx, testKey(1))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		s = open(t, dsn, postgres.Options{})
		require.Equal(t, 2, queryInt(t, dsn, countMigrations))
		_, err = s.Get(ctx, k.ID)
		require.NoError(t, err, "the data survives a reopen")
	})
	t.Run("concurrent", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				s, err := postgres.Open(ctx, dsn, postgres.Options{})
				errs[i] = err
				if err == nil {
					s.Close()
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "Open %d", i)
		}
		require.Equal(t, 2, queryInt(t, dsn, countMigrations))
	})
	t.Run("upgrade from 0001", func(t *testing.T) {
		// A database of the llmgate before the credits ledger: schema
		// version 1 with a key in it.
		dsn := pgtest.NewDatabase(t)
		keysSQL, err := os.ReadFile("migrations/0001_keys.sql")
		require.NoError(t, err)
		execSQL(t, dsn, `CREATE SCHEMA llmgate`)
		execSQL(t, dsn, `CREATE TABLE llmgate.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())`)
		execSQL(t, dsn, `SET search_path TO llmgate; `+string(keysSQL)+`;
INSERT INTO schema_migrations (version, name) VALUES (1, '0001_keys')`)
		k := testKey(1)
		execSQL(t, dsn, `INSERT INTO llmgate.gateway_keys (id, hash, redacted, endpoint, created_at, updated_at)
VALUES ($1, $2, $3, $4, now(), now())`, k.ID, k.Hash[:], k.Redacted, k.Endpoint)

		s := open(t, dsn, postgres.Options{})
		require.Equal(t, 2, queryInt(t, dsn, maxMigration))
		require.Equal(t, 9, queryInt(t, dsn, countTables, "llmgate"))
		_, err = s.Get(ctx, k.ID)
		require.NoError(t, err, "the keys survive the upgrade")
		_, err = s.Purchase(ctx, credits.Purchase{ID: "p1", Account: "acme", Amount: credits.MinPurchase})
		require.NoError(t, err)
	})
	t.Run("newer schema", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		open(t, dsn, postgres.Options{})
		execSQL(t, dsn, `INSERT INTO llmgate.schema_migrations (version, name) VALUES (9999, '9999_future')`)
		_, err := postgres.Open(ctx, dsn, postgres.Options{})
		require.ErrorIs(t, err, postgres.ErrSchemaTooNew)
		require.ErrorContains(t, err, "9999")
	})
	t.Run("schemas side by side", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		open(t, dsn, postgres.Options{Schema: "one"})
		open(t, dsn, postgres.Options{Schema: "two"})
		require.Equal(t, 9, queryInt(t, dsn, countTables, "one"))
		require.Equal(t, 9, queryInt(t, dsn, countTables, "two"))
		require.Equal(t, 0, queryInt(t, dsn, countTables, "llmgate"))
	})
}
