package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/m2mauth/m2mauth/internal/store/migrate"
)

// migrationFiles holds the schema, one numbered file per change:
// migrations/0001_init.sql, migrations/0002_....sql. A file, once released,
// never changes; a new change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// applyMigrations applies the embedded migrations that db lacks, in order,
// each in its own write transaction together with its schema_migrations
// row. The version is checked again inside the transaction, so processes
// opening one database at once apply each migration once. A database with
// a version this binary does not know (written by a newer m2mauth) is
// refused.
func applyMigrations(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	ms, err := migrate.Load(migrationFiles)
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	pending, err := migrate.Pending(ms, int(newest.Int64)) // 0 when there is none
	if err != nil {
		return err
	}
	for _, m := range pending {
		applied, err := apply(ctx, db, m)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if applied {
			logger.InfoContext(ctx, "sqlite: applied migration", "version", m.Version, "name", m.Name)
		}
	}
	return nil
}

// apply runs m in one write transaction unless another connection applied
// it first, and reports whether it ran m.
func apply(ctx context.Context, db *sql.DB, m migrate.Migration) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var done bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.Version).Scan(&done); err != nil {
		return false, err
	}
	if done {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	// applied_at is a record for operators, not input to any logic, so the
	// wall clock is read here rather than injected.
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UTC().UnixMicro()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
