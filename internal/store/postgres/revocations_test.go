package postgres

import (
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/store/storetest"
)

// TestRevocationsAcrossReplicas: a revocation through another replica's
// store reaches a deny-list at its next, incremental, refresh; both stamp
// and read by the database's clock.
func TestRevocationsAcrossReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	storetest.RevocationsAcrossReplicas(t, open(t, dsn), open(t, dsn))
}

// TestRevokedAtMigration opens a database that an m2mauth with only
// migration 0001 wrote: its deny-list entries are stamped by 0005 with the
// database's time and come back from a full read; a read from after the
// migration has only what was revoked since.
func TestRevokedAtMigration(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	schema1, err := migrationFiles.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	exp := authz.StoreTime(time.Now().Add(time.Hour))
	conn := inspect(t, dsn)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{string(schema1), nil},
		{`CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`, nil},
		{`INSERT INTO schema_migrations (version) VALUES (1)`, nil},
		{`INSERT INTO revoked_tokens VALUES ('old', $1)`, []any{exp}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	s := open(t, dsn)
	all, mark, err := s.ListRevokedSince(ctx, time.Time{})
	if err != nil || len(all) != 1 || !all["old"].Equal(exp) {
		t.Fatalf("full read after the migration = %v, %v; want old until %v", all, err, exp)
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.RevokeToken(ctx, "new", exp); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ListRevokedSince(ctx, mark)
	if err != nil || len(got) != 1 || got["new"].IsZero() {
		t.Errorf("incremental read after the migration = %v, %v; want only new", got, err)
	}
}
