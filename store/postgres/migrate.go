package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles holds the schema's migrations, "NNNN_name.sql", applied
// in version order. A migration is never edited once released: a change is
// a new file (the credits ledger's tables will be the next).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database's schema was
// migrated by a newer llmgate than this one: run the newer version, or
// restore the database.
var ErrSchemaTooNew = errors.New("postgres: the database schema is newer than this llmgate")

// migration is one embedded migration.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order; it fails
// on a misnamed file or a version used twice (a bug caught by the tests).
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names)) // fs.Glob sorts names
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 4 {
			return nil, fmt.Errorf("postgres: migration %s: want NNNN_name.sql", base)
		}
		if len(ms) > 0 && ms[len(ms)-1].version >= v {
			return nil, fmt.Errorf("postgres: migration %s: version %d out of order", base, v)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	return ms, nil
}

// migrate creates the schema and applies the migrations newer than the
// database's version, all in one transaction under a transaction-scoped
// advisory lock: replicas starting at once wait for the first, then find
// nothing to do. Each migration runs with search_path set to the schema,
// so the files name tables unqualified.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
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
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("postgres: migration %s: %w", m.name, fail(ctx, "migrate", err))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.version, m.name); err != nil {
				return fail(ctx, "migrate", err)
			}
		}
		return nil
	})
}
