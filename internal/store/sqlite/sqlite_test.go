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

func TestTimesReadBackInUTC(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "m2mauth.db"))
	ctx := t.Context()
	zone := time.FixedZone("UTC+5", 5*3600)
	created := time.Date(2025, 1, 2, 8, 0, 0, 1234567, zone)
	app := authz.Application{ClientID: "app_1", Name: "A", CreatedAt: created, UpdatedAt: created}
	if err := s.CreateApplication(ctx, app, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetApplication(ctx, app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if want := authz.StoreTime(created); got.CreatedAt != want {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	if !got.TokensNotBefore.IsZero() {
		t.Errorf("TokensNotBefore = %v, want zero", got.TokensNotBefore)
	}
}

// Client decodes scope lists through a cache; what it returns must still be
// the caller's to change.
func TestClientScopesAreCopies(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "m2mauth.db"))
	ctx := t.Context()
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	api := authz.API{ID: "api_1", Identifier: "https://api.example.com", Scopes: []authz.Scope{{Value: "read"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	app := authz.Application{ClientID: "app_1", CreatedAt: at, UpdatedAt: at}
	grant := authz.Grant{ID: "grant_1", APIID: api.ID, Scopes: []string{"read"}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateApplication(ctx, app, nil, []authz.Grant{grant}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c, err := s.Client(ctx, app.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		g := c.Grants[0]
		if g.API.Scopes[0].Value != "read" || g.Grant.Scopes[0] != "read" {
			t.Fatalf("scopes = %v, %v; want read", g.API.Scopes, g.Grant.Scopes)
		}
		g.API.Scopes[0].Value = "changed by the caller"
		g.Grant.Scopes[0] = "changed by the caller"
	}
}

func BenchmarkClient(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "m2mauth.db"))
	ctx := context.Background()
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	app := authz.Application{ClientID: "app_bench", Name: "Bench", CreatedAt: at, UpdatedAt: at}
	var secrets []authz.Secret
	for i := range 5 {
		secrets = append(secrets, authz.Secret{
			ID:        fmt.Sprintf("sec_%d", i),
			Hash:      make([]byte, 32),
			Prefix:    fmt.Sprintf("m2ms_sec_%d", i),
			CreatedAt: at.Add(time.Duration(i) * time.Second),
			ExpiresAt: at.Add(90 * 24 * time.Hour),
		})
	}
	var grants []authz.Grant
	for i := range 3 {
		api := authz.API{
			ID:         fmt.Sprintf("api_%d", i),
			Identifier: fmt.Sprintf("https://api%d.example.com", i),
			Name:       "API",
			Scopes: []authz.Scope{
				{Value: "read:things", Description: "Read things"},
				{Value: "write:things", Description: "Write things"},
				{Value: "delete:things", Description: "Delete things"},
			},
			TokenLifetime: time.Hour,
			SigningAlg:    authz.ES256,
			CreatedAt:     at,
			UpdatedAt:     at,
		}
		if err := s.CreateAPI(ctx, api); err != nil {
			b.Fatal(err)
		}
		grants = append(grants, authz.Grant{
			ID:        fmt.Sprintf("grant_%d", i),
			APIID:     api.ID,
			Scopes:    []string{"read:things", "write:things"},
			CreatedAt: at,
			UpdatedAt: at,
		})
	}
	if err := s.CreateApplication(ctx, app, secrets, grants); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Client(ctx, app.ClientID)
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Secrets) != 5 || len(c.Grants) != 3 {
			b.Fatalf("Client = %d secrets, %d grants", len(c.Secrets), len(c.Grants))
		}
	}
}

func BenchmarkClientParallel(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "m2mauth.db"))
	ctx := context.Background()
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	app := authz.Application{ClientID: "app_bench", Name: "Bench", CreatedAt: at, UpdatedAt: at}
	if err := s.CreateApplication(ctx, app, []authz.Secret{{ID: "sec_1", Hash: make([]byte, 32), CreatedAt: at}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Client(ctx, app.ClientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
