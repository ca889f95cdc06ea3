package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/llmgate/gateway/store/internal/migrations"

	"github.com/jackc/pgx/v5"
)

// migrationFiles holds the schema's migrations, "NNNN_name.sql", applied
// in version order. A migration is never edited once released: a change is
// a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database's schema was
// migrated by a newer llmgate than this one: run the newer version, or
// restore the database.
var ErrSchemaTooNew = errors.New("postgres: the database schema is newer than this llmgate")

// migration is one embedded migration.
type migration = migrations.Migration

// embeddedMigrations returns the embedded migrations in version order.
func embeddedMigrations() ([]migration, error) {
	ms, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return ms, nil
}

// migrate creates the schema and applies the migrations newer than the
// database's version, all in one transaction under a transaction-scoped
// advisory lock: replicas starting at once wait for the first, then find
// nothing to do. Each migration runs with search_path set to the schema,
// so the files name tables unqualified.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := embeddedMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].Version
	ident := pgx.Identifier{s.schema}.Sanitize()
	return s.inTx(ctx, "migrate", func(tx pgx.Tx) error {
		// The lock's key is derived from the schema, so stores in
		// different schemas of one database migrate independently.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"llmgate.migrate."+s.schema); err != nil {
			return fail(ctx, "migrate", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident); err != nil {
			return fail(ctx, "migrate", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fail(ctx, "migrate", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+ident+`.schema_migrations`).Scan(&current); err != nil {
			return fail(ctx, "migrate", err)
		}
		if current > latest {
			return fmt.Errorf("%w: schema %s is at version %d, this llmgate knows up to %d",
				ErrSchemaTooNew, s.schema, current, latest)
		}
		if current == latest {
			return nil
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+ident); err != nil {
			return fail(ctx, "migrate", err)
		}
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("postgres: migration %s: %w", m.Name, fail(ctx, "migrate", err))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return fail(ctx, "migrate", err)
			}
		}
		return nil
	})
}
