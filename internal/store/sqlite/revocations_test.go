package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/storetest"
)

// TestRevocationsAcrossHandles: a revocation through another handle on the
// database file reaches a deny-list at its next, incremental, refresh.
func TestRevocationsAcrossHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	storetest.RevocationsAcrossReplicas(t, open(t, path), open(t, path))
}

// TestRevokedAtMigration opens a database that an m2mauth with only
// migration 0001 wrote: its deny-list entries, stamped 0 by 0005, come
// back from a full read and from no incremental one.
func TestRevokedAtMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	schema1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	exp := authz.StoreTime(time.Now().Add(time.Hour))
	db := inspect(t, path)
	for _, q := range []string{
		string(schema1),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 1)`,
		fmt.Sprintf(`INSERT INTO revoked_tokens VALUES ('old', %d)`, exp.UnixMicro()),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, path)
	all, mark, err := s.ListRevokedSince(ctx, time.Time{})
	if err != nil || len(all) != 1 || !all["old"].Equal(exp) {
		t.Fatalf("full read after the migration = %v, %v; want old until %v", all, err, exp)
	}
	if err := s.RevokeToken(ctx, "new", exp); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ListRevokedSince(ctx, mark.Add(-time.Minute))
	if err != nil || len(got) != 1 || got["new"].IsZero() {
		t.Errorf("incremental read after the migration = %v, %v; want only new", got, err)
	}
}
