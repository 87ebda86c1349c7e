package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestAPIPolicyMigration: APIs written before 0008, and those an older
// replica inserts after it without naming the new columns, read back with
// the default sender-constraint policies and no profile, as does the API of
// the token endpoint's Client.
func TestAPIPolicyMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	db := inspect(t, path)
	for v, file := range []string{"0001_init", "0002_secret_updated_at", "0003_introspect_audiences", "0004_policy_claims",
		"0005_revoked_at", "0006_credentials", "0007_trusted_issuers"} {
		schema, err := os.ReadFile("migrations/" + file + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(schema)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if v == 0 {
			if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, 1)`, v+1); err != nil {
			t.Fatal(err)
		}
	}
	us := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)).UnixMicro()
	// As a replica running 0007 writes it: the columns it knows, named.
	insertAPI := func(id string) string {
		return fmt.Sprintf(`INSERT INTO apis (id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at)
			VALUES ('%[1]s', 'https://%[1]s.example.com', 'A', '[{"value":"read","description":""}]', 60, 'ES256', 0, %[2]d, %[2]d)`, id, us)
	}
	for _, q := range []string{
		insertAPI("api_old"),
		fmt.Sprintf(`INSERT INTO applications (client_id, name, description, disabled, can_introspect, introspect_audiences, tokens_not_before, created_at, updated_at)
			VALUES ('app_1', 'A', '', 0, 0, '[]', NULL, %[1]d, %[1]d)`, us),
		fmt.Sprintf(`INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at) VALUES ('grant_1', 'app_1', 'api_old', '["read"]', %[1]d, %[1]d)`, us),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, path)
	if _, err := db.ExecContext(ctx, insertAPI("api_late")); err != nil {
		t.Fatalf("an older replica's insert after 0008: %v", err)
	}
	check := func(what string, a authz.API) {
		t.Helper()
		if a.DPoP != authz.PolicyOptional || a.DPoPNonce || a.MTLSBound != authz.PolicyOptional || a.Profile != authz.ProfileNone {
			t.Errorf("%s: dpop %q, dpop_nonce %v, mtls_bound %q, profile %q; want optional, false, optional, none",
				what, a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile)
		}
	}
	for _, id := range []string{"api_old", "api_late"} {
		a, err := s.GetAPI(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		check(id, a)
	}
	c, err := s.Client(ctx, "app_1")
	if err != nil {
		t.Fatal(err)
	}
	check("Client grant API", *c.Grants[0].API)
	var stored string
	if err := db.QueryRowContext(ctx, `SELECT dpop || ' ' || dpop_nonce || ' ' || mtls_bound || ' ' || profile FROM apis WHERE id = 'api_old'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != "optional 0 optional none" {
		t.Errorf("stored columns = %q, want %q", stored, "optional 0 optional none")
	}
}
