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

// execErr runs sql on dsn and returns its error.
func execErr(t *testing.T, dsn, sql string) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
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
		require.Equal(t, 3, queryInt(t, dsn, countMigrations))
		require.Equal(t, 3, queryInt(t, dsn, maxMigration))
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
		require.Equal(t, 3, queryInt(t, dsn, countMigrations))
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
		require.Equal(t, 3, queryInt(t, dsn, countMigrations))
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
		require.Equal(t, 3, queryInt(t, dsn, maxMigration))
		require.Equal(t, 9, queryInt(t, dsn, countTables, "llmgate"))
		_, err = s.Get(ctx, k.ID)
		require.NoError(t, err, "the keys survive the upgrade")
		_, err = s.Purchase(ctx, credits.Purchase{ID: "p1", Account: "acme", Amount: credits.MinPurchase})
		require.NoError(t, err)
	})
	t.Run("upgrade from 0002", func(t *testing.T) {
		// A database of the llmgate before leases: schema version 2
		// with an account, its lot and an open hold of $3 from it.
		dsn := pgtest.NewDatabase(t)
		execSQL(t, dsn, `CREATE SCHEMA llmgate`)
		execSQL(t, dsn, `CREATE TABLE llmgate.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())`)
		for i, name := range []string{"0001_keys", "0002_credits"} {
			sql, err := os.ReadFile("migrations/" + name + ".sql")
			require.NoError(t, err)
			execSQL(t, dsn, `SET search_path TO llmgate; `+string(sql))
			execSQL(t, dsn, `INSERT INTO llmgate.schema_migrations (version, name) VALUES ($1, $2)`, i+1, name)
		}
		execSQL(t, dsn, `SET search_path TO llmgate;
INSERT INTO credit_accounts (id, created_at, purchased, held) VALUES ('acme', now(), 10000000, 3000000);
INSERT INTO credit_lots (id, account, amount, remaining, purchased_at, expires_at)
	VALUES ('p1', 'acme', 10000000, 7000000, now(), now() + interval '365 days');
INSERT INTO credit_holds (id, account, amount, created_at, expires_at)
	VALUES ('lease-1', 'acme', 3000000, now(), now() + interval '1 hour');
INSERT INTO credit_hold_allocations (hold_id, lot_id, amount) VALUES ('lease-1', 'p1', 3000000);
INSERT INTO credit_transactions (account, kind, amount, lot_id, at) VALUES ('acme', 'purchase', 10000000, 'p1', now())`)
		// Version 2 refuses an open hold of nothing.
		require.ErrorContains(t, execErr(t, dsn, `INSERT INTO llmgate.credit_holds (id, account, amount, created_at, expires_at)
	VALUES ('empty', 'acme', 0, now(), now())`), "credit_holds_amount_check")

		s := open(t, dsn, postgres.Options{})
		require.Equal(t, 3, queryInt(t, dsn, maxMigration))
		require.Equal(t, 9, queryInt(t, dsn, countTables, "llmgate"))
		require.Zero(t, queryInt(t, dsn, `SELECT flush_seq FROM llmgate.credit_holds WHERE id = 'lease-1'`))
		// The hold made before the upgrade is a lease: spent down to
		// nothing, it stays open; a replay changes nothing.
		r, err := s.Flush(ctx, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: 3 * credits.Dollar})
		require.NoError(t, err)
		require.Equal(t, 3*credits.Dollar, r.Spent)
		require.Zero(t, r.Hold.Amount)
		r, err = s.Flush(ctx, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: 3 * credits.Dollar})
		require.NoError(t, err)
		require.True(t, r.Replayed)
		require.Equal(t, 1, queryInt(t, dsn, `SELECT flush_seq FROM llmgate.credit_holds WHERE id = 'lease-1' AND state = 'open' AND amount = 0`))
		r, err = s.Flush(ctx, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Grow: credits.Dollar})
		require.NoError(t, err)
		require.Equal(t, credits.Dollar, r.Hold.Amount)
		require.NoError(t, s.Release(ctx, "lease-1"))
		b, err := s.Balance(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, credits.Balance{Account: "acme", Available: 7 * credits.Dollar, Spent: 3 * credits.Dollar,
			Purchased: 10 * credits.Dollar, NextExpiry: b.NextExpiry, Known: true}, b)
		// The check still refuses a negative amount.
		require.ErrorContains(t, execErr(t, dsn, `UPDATE llmgate.credit_holds SET amount = -1 WHERE id = 'lease-1'`),
			"credit_holds_amount_check")
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
