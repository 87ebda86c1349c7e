package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema, one numbered file per change:
// migrations/0001_init.sql, migrations/0002_....sql. A file, once released,
// never changes; a new change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the migration files of fsys, ordered by version.
// File names are "<version>_<description>.sql" with a positive version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not <version>_<description>.sql", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have one version", other, base)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the embedded migrations that db lacks, in order, each in
// its own write transaction together with its schema_migrations row. The
// version is checked again inside the transaction, so processes opening one
// database at once apply each migration once. A database with a version this
// binary does not know (written by a newer m2mauth) is refused.
func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	ms, err := loadMigrations(migrationFiles)
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
	if known := ms[len(ms)-1].version; newest.Valid && newest.Int64 > int64(known) {
		return fmt.Errorf("database schema version %d is newer than this m2mauth knows (%d)", newest.Int64, known)
	}
	for _, m := range ms {
		if newest.Valid && int64(m.version) <= newest.Int64 {
			continue
		}
		applied, err := apply(ctx, db, m)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if applied {
			logger.InfoContext(ctx, "sqlite: applied migration", "version", m.version, "name", m.name)
		}
	}
	return nil
}

// apply runs m in one write transaction unless another connection applied
// it first, and reports whether it ran m.
func apply(ctx context.Context, db *sql.DB, m migration) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var done bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version).Scan(&done); err != nil {
		return false, err
	}
	if done {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, err
	}
	// applied_at is a record for operators, not input to any logic, so the
	// wall clock is read here rather than injected.
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.version, time.Now().UTC().UnixMicro()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
