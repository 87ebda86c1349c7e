package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) authz.Store {
		return open(t, filepath.Join(t.TempDir(), "m2mauth.db"))
	})
}

// open opens the store at path and closes it when t ends.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// inspect opens a plain connection to the database at path.
func inspect(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	for i := range 3 {
		s, err := sqlite.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := inspect(t, path).QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		var appliedAt int64
		if err := rows.Scan(&v, &appliedAt); err != nil {
			t.Fatal(err)
		}
		if appliedAt <= 0 {
			t.Errorf("version %d applied_at = %d", v, appliedAt)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(versions) != "[1]" {
		t.Errorf("applied versions = %v, want [1]", versions)
	}
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			s, err := sqlite.Open(t.Context(), path, nil)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	var n int
	if err := inspect(t, path).QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d schema_migrations rows, want 1", n)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := inspect(t, path).ExecContext(t.Context(), `INSERT INTO schema_migrations VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path, nil); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database from a newer version")
	}
}

func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	open(t, path)
	var mode string
	if err := inspect(t, path).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	api := authz.API{
		ID:            "api_1",
		Identifier:    "https://api.example.com",
		Name:          "API",
		Scopes:        []authz.Scope{{Value: "read", Description: "Read"}},
		TokenLifetime: time.Hour,
		SigningAlg:    authz.ES256,
		CreatedAt:     authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)),
		UpdatedAt:     authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)),
	}
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, path).GetAPI(ctx, api.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identifier != api.Identifier || !got.CreatedAt.Equal(api.CreatedAt) || len(got.Scopes) != 1 {
		t.Errorf("after reopen: %+v, want %+v", got, api)
	}
}

func BenchmarkClient(b *testing.B) {
	storetest.BenchClient(b, open(b, filepath.Join(b.TempDir(), "m2mauth.db")))
}

func BenchmarkClientParallel(b *testing.B) {
	storetest.BenchClientParallel(b, open(b, filepath.Join(b.TempDir(), "m2mauth.db")))
}
