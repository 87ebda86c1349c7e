package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
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
	if fmt.Sprint(versions) != "[1 2 3 4 5 6 7 8 9]" {
		t.Errorf("applied versions = %v, want [1 2 3 4 5 6 7 8 9]", versions)
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
	if n != 9 {
		t.Errorf("%d schema_migrations rows, want 9", n)
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

// TestSecretUpdatedAtMigration opens a database that an m2mauth with only
// migration 0001 wrote: its secrets come back with UpdatedAt = CreatedAt
// and every other field as it was, and the rebuilt table keeps its index
// and its foreign key.
func TestSecretUpdatedAtMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	schema1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	created := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	want := authz.Secret{
		ID: "sec_1", ClientID: "app_1", Hash: []byte("h"), Prefix: "m2ms_sec_1",
		CreatedAt: created, UpdatedAt: created, ExpiresAt: created.Add(time.Hour), LastUsedAt: created.Add(time.Minute),
	}
	db := inspect(t, path)
	for _, q := range []string{
		string(schema1),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 1)`,
		fmt.Sprintf(`INSERT INTO applications VALUES ('app_1', 'A', '', 0, 0, NULL, %d, %d)`, created.UnixMicro(), created.UnixMicro()),
		fmt.Sprintf(`INSERT INTO client_secrets VALUES ('sec_1', 'app_1', x'68', 'm2ms_sec_1', %d, %d, %d)`,
			created.UnixMicro(), want.ExpiresAt.UnixMicro(), want.LastUsedAt.UnixMicro()),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s := open(t, path)
	got, err := s.ListSecrets(ctx, "app_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("secrets after the migration = %+v, want [%+v]", got, want)
	}
	var notNull bool
	if err := db.QueryRowContext(ctx, `SELECT "notnull" FROM pragma_table_info('client_secrets') WHERE name = 'updated_at'`).Scan(&notNull); err != nil || !notNull {
		t.Errorf("client_secrets.updated_at NOT NULL: %v, %v; want true", notNull, err)
	}
	var indexed bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master
		WHERE type = 'index' AND name = 'client_secrets_client' AND tbl_name = 'client_secrets')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("index client_secrets_client on client_secrets: %v, %v; want true", indexed, err)
	}
	if err := s.DeleteApplication(ctx, "app_1"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM client_secrets`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d secrets (%v) left after deleting their application, want 0", n, err)
	}
}

// TestIntrospectAudiencesMigration opens a database that an m2mauth with
// migrations 0001 and 0002 wrote: an application that could introspect
// every token may now introspect each API's but the management API's, in
// creation order; the others none.
func TestIntrospectAudiencesMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	db := inspect(t, path)
	for _, file := range []string{"migrations/0001_init.sql", "migrations/0002_secret_updated_at.sql"} {
		schema, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(schema)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	us := at.UnixMicro()
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 1), (2, 1)`,
		fmt.Sprintf(`INSERT INTO apis VALUES
			('api_b', 'https://b.example.com', 'B', '[]', 60, 'ES256', 0, %[1]d, %[1]d),
			('api_m', 'urn:m2mauth:admin', 'M', '[]', 60, 'ES256', 1, %[1]d, %[1]d),
			('api_a', 'https://a.example.com', 'A', '[]', 60, 'ES256', 0, %[1]d, %[1]d),
			('api_c', 'https://c.example.com', 'C', '[]', 60, 'ES256', 0, %[2]d, %[2]d)`, us+1, us),
		fmt.Sprintf(`INSERT INTO applications VALUES
			('app_rs', 'RS', '', 0, 1, NULL, %[1]d, %[1]d),
			('app_plain', 'Plain', '', 0, 0, NULL, %[1]d, %[1]d)`, us),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s := open(t, path)
	for _, tc := range []struct {
		clientID string
		want     []string
	}{
		{"app_rs", []string{"https://c.example.com", "https://a.example.com", "https://b.example.com"}},
		{"app_plain", nil},
	} {
		got, err := s.GetApplication(ctx, tc.clientID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.IntrospectAudiences) != fmt.Sprint(tc.want) {
			t.Errorf("%s: IntrospectAudiences = %q, want %q", tc.clientID, got.IntrospectAudiences, tc.want)
		}
	}
}

// TestCanIntrospectFollowsAudiences: can_introspect, which older replicas
// read, stays "introspect_audiences is not empty".
func TestCanIntrospectFollowsAudiences(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	s := open(t, path)
	db := inspect(t, path)
	canIntrospect := func() bool {
		t.Helper()
		var v bool
		if err := db.QueryRowContext(ctx, `SELECT can_introspect FROM applications WHERE client_id = 'app_1'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	app := authz.Application{ClientID: "app_1", IntrospectAudiences: []string{"https://a.example.com"}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateApplication(ctx, app, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !canIntrospect() {
		t.Error("created with audiences: can_introspect is false")
	}
	name, none, some := "Renamed", []string{}, []string{"https://b.example.com"}
	for _, tc := range []struct {
		name  string
		patch authz.ApplicationPatch
		want  bool
	}{
		{"a rename keeps it", authz.ApplicationPatch{Name: &name}, true},
		{"no audiences clear it", authz.ApplicationPatch{IntrospectAudiences: &none}, false},
		{"audiences set it", authz.ApplicationPatch{IntrospectAudiences: &some}, true},
	} {
		tc.patch.UpdatedAt = at
		if _, err := s.UpdateApplication(ctx, app.ClientID, tc.patch); err != nil {
			t.Fatal(err)
		}
		if got := canIntrospect(); got != tc.want {
			t.Errorf("%s: can_introspect = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLockedDatabaseIsUnavailable: while another process holds the write
// lock, a write that gives up (here at its deadline) reports
// authz.ErrUnavailable.
func TestLockedDatabaseIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	s := open(t, path)
	conn, err := inspect(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	at := authz.StoreTime(time.Now())
	err = s.CreateApplication(ctx, authz.Application{ClientID: "app_1", CreatedAt: at, UpdatedAt: at}, nil, nil)
	if !errors.Is(err, authz.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CreateApplication while locked: %v, want one wrapping %q and the deadline", err, authz.ErrUnavailable)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = s.Manage(ctx, func(authz.Tx) error { return nil })
	if !errors.Is(err, authz.ErrUnavailable) {
		t.Errorf("Manage while locked: %v, want one wrapping %q", err, authz.ErrUnavailable)
	}
	// Reads go on beside the lock (WAL).
	if _, err := s.GetApplication(t.Context(), "app_1"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetApplication while locked: %v, want not found", err)
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
