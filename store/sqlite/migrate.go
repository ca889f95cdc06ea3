package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/llmgate/gateway/store/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database records a migration
// this build does not know: it was written by a newer llmgate, and opening
// it could misread or damage data. Upgrade the binary, or restore a backup.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this build of llmgate")

// migration is one embedded schema change: migrations/NNNN_name.sql.
type migration = migrations.Migration

// loadMigrations reads the migrations under dir of fsys, in order.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	ms, err := migrations.Load(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return ms, nil
}

// migrate brings db up to the last of ms in one transaction: it creates
// schema_migrations if needed, refuses a database that records a version
// it does not know (ErrSchemaTooNew), and applies, in order, each migration
// the database lacks, recording it. Applying is all or nothing, and
// running it again on an up-to-date database changes nothing.
func migrate(ctx context.Context, db *sql.DB, ms []migration, now int64) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`); err != nil {
		return err
	}
	applied := make(map[int]bool)
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err = rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		if v < 1 || v > len(ms) {
			rows.Close()
			return fmt.Errorf("%w: it has migration %d, this build knows 1 to %d", ErrSchemaTooNew, v, len(ms))
		}
		applied[v] = true
	}
	if err = rows.Close(); err != nil {
		return err
	}
	if err = rows.Err(); err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err = tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
		}
		if _, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}
