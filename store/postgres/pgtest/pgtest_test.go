package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/store/postgres/pgtest"
)

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ name, dsn, want string }{
		{"url", "postgres://u@h:5432/postgres?sslmode=disable", "postgres://u@h:5432/db1?sslmode=disable"},
		{"url without database", "postgresql://u@h", "postgresql://u@h/db1"},
		{"keyword/value", "host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=db1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pgtest.WithDatabase(tc.dsn, "db1")
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			cfg, err := pgx.ParseConfig(got)
			require.NoError(t, err)
			require.Equal(t, "db1", cfg.Database)
		})
	}
}

func TestNewDatabase(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) == "" {
		t.Skip("set " + pgtest.EnvDSN + " to run PostgreSQL tests")
	}
	var name string
	t.Run("create", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		require.NoError(t, conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name))
		require.True(t, strings.HasPrefix(name, pgtest.DatabasePrefix), name)
		// A connection left open does not stop the drop.
	})
	// Dropped at the subtest's end.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv(pgtest.EnvDSN))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n))
	require.Zero(t, n, "database %s dropped", name)
}
