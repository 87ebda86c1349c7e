package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestTrustedIssuersMigration: credentials written before 0007, and those
// an older replica inserts after it without naming the new column, read
// back naming no trusted issuer; the foreign key to trusted_issuers refuses
// to delete an issuer that a credential names, whoever deletes it; and the
// index that ListFederatedCredentials reads exists.
func TestTrustedIssuersMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	db := inspect(t, path)
	db.SetMaxOpenConns(1) // foreign_keys is a setting of the connection
	if _, err := db.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	for v, file := range []string{"0001_init", "0002_secret_updated_at", "0003_introspect_audiences", "0004_policy_claims", "0005_revoked_at", "0006_credentials"} {
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
	// As a replica running 0006 writes them: the columns it knows, named.
	insertCredential := func(id string) string {
		return fmt.Sprintf(`INSERT INTO credentials (id, client_id, type, config, created_at, expires_at, last_used_at)
			VALUES ('%s', 'app_1', 'jwks_uri', '{"jwks_uri":"https://keys.example"}', %d, NULL, NULL)`, id, us)
	}
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO applications (client_id, name, description, disabled, can_introspect, introspect_audiences, tokens_not_before, created_at, updated_at)
			VALUES ('app_1', 'A', '', 0, 0, '[]', NULL, %[1]d, %[1]d)`, us),
		insertCredential("cred_old"),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, path)
	if _, err := db.ExecContext(ctx, insertCredential("cred_late")); err != nil {
		t.Fatalf("an older replica's insert after 0007: %v", err)
	}
	list, err := s.ListCredentials(ctx, "app_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].TrustedIssuerID != "" || list[1].TrustedIssuerID != "" {
		t.Errorf("credentials after the migration = %+v, want two naming no trusted issuer", list)
	}
	var nulls int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM credentials WHERE trusted_issuer_id IS NULL`).Scan(&nulls); err != nil || nulls != 2 {
		t.Errorf("%d credentials (%v) with a NULL trusted_issuer_id, want 2", nulls, err)
	}

	ti := authz.TrustedIssuer{ID: "ti_1", Name: "I", Kind: authz.TrustedIssuerOIDC, Issuer: "https://issuer.example",
		CreatedAt: authz.StoreTime(time.UnixMicro(us)), UpdatedAt: authz.StoreTime(time.UnixMicro(us))}
	if err := s.CreateTrustedIssuer(ctx, ti); err != nil {
		t.Fatal(err)
	}
	c := authz.Credential{ID: "cred_fed", ClientID: "app_1", Type: authz.CredentialFederated, TrustedIssuerID: ti.ID,
		Config: []byte(`{"trusted_issuer":"ti_1","subject":"s"}`), CreatedAt: ti.CreatedAt}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM trusted_issuers WHERE id = 'ti_1'`); err == nil {
		t.Error("the foreign key let a trusted issuer that a credential names be deleted")
	}
	var indexed bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master
		WHERE type = 'index' AND name = 'credentials_trusted_issuer' AND tbl_name = 'credentials')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("index credentials_trusted_issuer on credentials: %v, %v; want true", indexed, err)
	}
}
