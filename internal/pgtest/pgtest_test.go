package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// query connects to dsn and returns the one text value sql selects.
func query(ctx context.Context, dsn, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}

func TestNewDatabaseIsolatesTests(t *testing.T) {
	c := pgtest.Shared(t)
	a, b := c.NewDatabase(t), c.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	for _, dsn := range []string{a, b} {
		name, err := query(t.Context(), dsn, `SELECT current_database()`)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "m2mauth_test_") || !strings.Contains(dsn, "/"+name) {
			t.Errorf("connected to %q through %s", name, dsn)
		}
	}
	enc, err := query(t.Context(), a, `SHOW server_encoding`)
	if err != nil {
		t.Fatal(err)
	}
	if enc != "UTF8" {
		t.Errorf("server_encoding = %s, want UTF8", enc)
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	c := pgtest.Shared(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := c.NewDatabase(t)
		var err error
		if name, err = query(t.Context(), dsn, `SELECT current_database()`); err != nil {
			t.Fatal(err)
		}
	})
	n, err := query(t.Context(), c.DSN(), `SELECT count(*)::text FROM pg_database WHERE datname = '`+name+`'`)
	if err != nil {
		t.Fatal(err)
	}
	if n != "0" {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestStopAndStartAgainKeepPortAndData(t *testing.T) {
	c := pgtest.Start(t)
	c.SkipUnlessControllable(t)
	ctx := t.Context()
	dsn := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')`); err != nil {
		t.Fatal(err)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(ctx, dsn, `SELECT 'up'`); err == nil {
		t.Fatal("the server answers after Stop")
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("a connection from before Stop still works")
	}
	if err := c.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if v, err := query(ctx, dsn, `SELECT v FROM kept`); err != nil || v != "survives" {
		t.Fatalf("after StartAgain: %q, %v", v, err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := query(ctx, dsn, `SELECT v FROM kept`); err != nil || v != "survives" {
		t.Fatalf("after Restart: %q, %v", v, err)
	}
}

func TestCloseRemovesTheCluster(t *testing.T) {
	if os.Getenv(pgtest.EnvDatabaseURL) != "" {
		t.Skip("uses a throwaway cluster")
	}
	c, err := pgtest.StartCluster()
	if err != nil {
		pgtest.Start(t) // skips or fails as tests do
		t.Fatal(err)
	}
	if _, err := query(t.Context(), c.DSN(), `SELECT 'up'`); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t.Context(), c.DSN(), `SELECT 'up'`); err == nil {
		t.Error("the server answers after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.StartAgain(); err == nil {
		t.Error("StartAgain after Close succeeded")
	}
}
