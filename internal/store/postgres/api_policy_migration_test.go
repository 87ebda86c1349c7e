package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// TestAPIPolicyMigration: APIs written before 0008, and those an older
// replica inserts after it without naming the new columns, read back with
// the default sender-constraint policies and no profile, as does the API of
// the token endpoint's Client.
func TestAPIPolicyMigration(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	conn := inspect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for v, file := range []string{"0001_init", "0002_secret_updated_at", "0003_introspect_audiences", "0004_policy_claims",
		"0005_revoked_at", "0006_credentials", "0007_trusted_issuers"} {
		schema, err := migrationFiles.ReadFile("migrations/" + file + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(schema)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1); err != nil {
			t.Fatal(err)
		}
	}
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	// As a replica running 0007 writes it: the columns it knows, named.
	insertAPI := func(id string) string {
		return fmt.Sprintf(`INSERT INTO apis (id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at)
			VALUES ('%[1]s', 'https://%[1]s.example.com', 'A', '[{"value":"read","description":""}]', 60, 'ES256', false, $1, $1)`, id)
	}
	for _, q := range []string{
		insertAPI("api_old"),
		`INSERT INTO applications (client_id, name, description, disabled, can_introspect, introspect_audiences, tokens_not_before, created_at, updated_at)
			VALUES ('app_1', 'A', '', false, false, '{}', NULL, $1, $1)`,
		`INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at) VALUES ('grant_1', 'app_1', 'api_old', '{read}', $1, $1)`,
	} {
		if _, err := conn.Exec(ctx, q, at); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, dsn)
	if _, err := conn.Exec(ctx, insertAPI("api_late"), at); err != nil {
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
}
