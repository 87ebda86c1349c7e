package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestPolicyClaimsMigration: rows written before 0004, and rows an older
// replica inserts after it without naming the new columns, read back with
// no policy, no claims and the API's token lifetime.
func TestPolicyClaimsMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	db := inspect(t, path)
	for _, file := range []string{"migrations/0001_init.sql", "migrations/0002_secret_updated_at.sql", "migrations/0003_introspect_audiences.sql"} {
		schema, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(schema)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	us := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)).UnixMicro()
	// As a replica running 0003 writes them: the columns it knows, named.
	insertApp := func(id string) string {
		return fmt.Sprintf(`INSERT INTO applications (client_id, name, description, disabled, can_introspect, introspect_audiences, tokens_not_before, created_at, updated_at)
			VALUES ('%s', 'A', '', 0, 0, '[]', NULL, %d, %d)`, id, us, us)
	}
	insertGrant := func(id, app string) string {
		return fmt.Sprintf(`INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at) VALUES ('%s', '%s', 'api_a', '["read"]', %d, %d)`, id, app, us, us)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 1), (2, 1), (3, 1)`,
		fmt.Sprintf(`INSERT INTO apis VALUES ('api_a', 'https://a.example.com', 'A', '[{"value":"read","description":""}]', 60, 'ES256', 0, %[1]d, %[1]d)`, us),
		insertApp("app_old"), insertGrant("grt_old", "app_old"),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, path)
	for _, q := range []string{insertApp("app_late"), insertGrant("grt_late", "app_late")} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("an older replica's insert after 0004: %v", err)
		}
	}
	for _, id := range []string{"app_old", "app_late"} {
		c, err := s.Client(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Application.Policy.IsZero() || len(c.Grants) != 1 || c.Grants[0].Grant.Claims != nil || c.Grants[0].Grant.TokenLifetime != 0 {
			t.Errorf("%s: %+v", id, c)
		}
		if got := authz.EffectiveTokenLifetime(&c.Grants[0].Grant, c.Grants[0].API); got != time.Minute {
			t.Errorf("%s: token lifetime %v, want the API's", id, got)
		}
	}
}
