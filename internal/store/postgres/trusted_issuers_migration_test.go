package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// TestTrustedIssuersMigration: credentials written before 0007, and those
// an older replica inserts after it without naming the new column, read
// back naming no trusted issuer; the foreign key to trusted_issuers refuses
// to delete an issuer that a credential names, whoever deletes it; and the
// index that ListFederatedCredentials reads exists.
func TestTrustedIssuersMigration(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	conn := inspect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for v, file := range []string{"0001_init", "0002_secret_updated_at", "0003_introspect_audiences", "0004_policy_claims", "0005_revoked_at", "0006_credentials"} {
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
	// As a replica running 0006 writes them: the columns it knows, named.
	insertCredential := func(id string) string {
		return fmt.Sprintf(`INSERT INTO credentials (id, client_id, type, config, created_at, expires_at, last_used_at)
			VALUES ('%s', 'app_1', 'jwks_uri', '{"jwks_uri":"https://keys.example"}', $1, NULL, NULL)`, id)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO applications (client_id, name, description, disabled, can_introspect, introspect_audiences, tokens_not_before, created_at, updated_at)
		VALUES ('app_1', 'A', '', false, false, '{}', NULL, $1, $1)`, at); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, insertCredential("cred_old"), at); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	if _, err := conn.Exec(ctx, insertCredential("cred_late"), at); err != nil {
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
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM credentials WHERE trusted_issuer_id IS NULL`).Scan(&nulls); err != nil || nulls != 2 {
		t.Errorf("%d credentials (%v) with a NULL trusted_issuer_id, want 2", nulls, err)
	}

	ti := authz.TrustedIssuer{ID: "ti_1", Name: "I", Kind: authz.TrustedIssuerOIDC, Issuer: "https://issuer.example", CreatedAt: at, UpdatedAt: at}
	if err := s.CreateTrustedIssuer(ctx, ti); err != nil {
		t.Fatal(err)
	}
	c := authz.Credential{ID: "cred_fed", ClientID: "app_1", Type: authz.CredentialFederated, TrustedIssuerID: ti.ID,
		Config: []byte(`{"trusted_issuer":"ti_1","subject":"s"}`), CreatedAt: at}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `DELETE FROM trusted_issuers WHERE id = 'ti_1'`)
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "23503" {
		t.Errorf("deleting a trusted issuer that a credential names: %v, want a foreign_key_violation", err)
	}
	var indexed bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes
		WHERE tablename = 'credentials' AND indexname = 'credentials_trusted_issuer')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("index credentials_trusted_issuer on credentials: %v, %v; want true", indexed, err)
	}
}
