package postgres

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m2mauth/m2mauth/internal/store/migrate"
)

// migrationFiles holds the schema, one numbered file per change:
// migrations/0001_init.sql, migrations/0002_....sql. A file, once released,
// never changes; a new change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the transaction-level advisory lock that
// serializes migrations across replicas: "m2mauth" in ASCII. It lies
// outside the int4 range of the hashtext keys TryLead uses, so the two
// never collide.
const migrationLock int64 = 0x6d326d61757468

// applyMigrations applies the embedded migrations that the database
// lacks, in order, in one transaction that holds an advisory lock: replicas
// opening the database at once wait for each other, and the first applies
// what is missing while the others then find nothing to do. A database
// with a version this binary does not know (written by a newer m2mauth) is
// refused.
func applyMigrations(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ms, err := migrate.Load(migrationFiles)
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	var applied []migrate.Migration
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		applied = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var newest int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		pending, err := migrate.Pending(ms, newest)
		if err != nil {
			return err
		}
		for _, m := range pending {
			// Exec without arguments uses the simple protocol, which
			// runs a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range applied {
		logger.InfoContext(ctx, "postgres: applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}
