package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/store/migrate"
	"github.com/m2mauth/m2mauth/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) authz.Store { return newStore(t) })
}

// newStore opens a store on a new database of the shared cluster.
func newStore(t testing.TB) *Store {
	t.Helper()
	return open(t, pgtest.Shared(t).NewDatabase(t))
}

// open opens the store at dsn and closes it when t ends.
func open(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, testLogger(t))
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

// testLogger logs to t's output with -v, and nowhere otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// inspect opens a plain connection to dsn, closed when t ends.
func inspect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestMigrationsApplyOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	for i := range 3 {
		s, err := Open(t.Context(), dsn, nil)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		s.Close()
	}
	if got, want := appliedVersions(t, dsn), embeddedVersions(t); got != want {
		t.Errorf("applied versions = %s, want %s", got, want)
	}
}

// embeddedVersions returns the versions of the embedded migrations,
// formatted as appliedVersions does.
func embeddedVersions(t *testing.T) string {
	t.Helper()
	ms, err := migrate.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return fmt.Sprint(vs)
}

// appliedVersions returns the versions in schema_migrations, formatted.
func appliedVersions(t *testing.T, dsn string) string {
	t.Helper()
	rows, err := inspect(t, dsn).Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(versions)
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	const n = 5
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			s, err := Open(t.Context(), dsn, nil)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	if got, want := appliedVersions(t, dsn), embeddedVersions(t); got != want {
		t.Errorf("applied versions = %s, want %s", got, want)
	}
	// Every store works on the schema.
	s := open(t, dsn)
	if _, err := s.ListKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestSecretUpdatedAtMigration opens a database that an m2mauth with only
// migration 0001 wrote: its secrets come back with UpdatedAt = CreatedAt
// and every other field as it was.
func TestSecretUpdatedAtMigration(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	schema1, err := migrationFiles.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	created := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	want := authz.Secret{
		ID: "sec_1", ClientID: "app_1", Hash: []byte("h"), Prefix: "m2ms_sec_1",
		CreatedAt: created, UpdatedAt: created, ExpiresAt: created.Add(time.Hour), LastUsedAt: created.Add(time.Minute),
	}
	conn := inspect(t, dsn)
	if _, err := conn.Exec(ctx, string(schema1)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`, nil},
		{`INSERT INTO schema_migrations (version) VALUES (1)`, nil},
		{`INSERT INTO applications VALUES ('app_1', 'A', '', false, false, NULL, $1, $1)`, []any{created}},
		{`INSERT INTO client_secrets VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			[]any{want.ID, want.ClientID, want.Hash, want.Prefix, want.CreatedAt, want.ExpiresAt, want.LastUsedAt}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	got, err := open(t, dsn).ListSecrets(ctx, "app_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("secrets after the migration = %+v, want [%+v]", got, want)
	}
	if v, want := appliedVersions(t, dsn), embeddedVersions(t); v != want {
		t.Errorf("applied versions = %s, want %s", v, want)
	}
	var nullable string
	if err := conn.QueryRow(ctx, `SELECT is_nullable FROM information_schema.columns
		WHERE table_name = 'client_secrets' AND column_name = 'updated_at'`).Scan(&nullable); err != nil || nullable != "NO" {
		t.Errorf("client_secrets.updated_at is_nullable = %q, %v; want NO", nullable, err)
	}
}

// TestIntrospectAudiencesMigration opens a database that an m2mauth with
// migrations 0001 and 0002 wrote: an application that could introspect
// every token may now introspect each API's but the management API's, in
// creation order; the others none.
func TestIntrospectAudiencesMigration(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	conn := inspect(t, dsn)
	for _, file := range []string{"migrations/0001_init.sql", "migrations/0002_secret_updated_at.sql"} {
		schema, err := migrationFiles.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(schema)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`, nil},
		{`INSERT INTO schema_migrations (version) VALUES (1), (2)`, nil},
		{`INSERT INTO apis VALUES
			('api_b', 'https://b.example.com', 'B', '[]', 60, 'ES256', false, $1, $1),
			('api_m', 'urn:m2mauth:admin', 'M', '[]', 60, 'ES256', true, $1, $1),
			('api_a', 'https://a.example.com', 'A', '[]', 60, 'ES256', false, $1, $1),
			('api_c', 'https://c.example.com', 'C', '[]', 60, 'ES256', false, $2, $2)`, []any{at.Add(time.Microsecond), at}},
		{`INSERT INTO applications VALUES
			('app_rs', 'RS', '', false, true, NULL, $1, $1),
			('app_plain', 'Plain', '', false, false, NULL, $1, $1)`, []any{at}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	s := open(t, dsn)
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
	if v, want := appliedVersions(t, dsn), embeddedVersions(t); v != want {
		t.Errorf("applied versions = %s, want %s", v, want)
	}
}

// TestCanIntrospectFollowsAudiences: can_introspect, which older replicas
// read, stays "introspect_audiences is not empty".
func TestCanIntrospectFollowsAudiences(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	s := open(t, dsn)
	conn := inspect(t, dsn)
	canIntrospect := func() bool {
		t.Helper()
		var v bool
		if err := conn.QueryRow(ctx, `SELECT can_introspect FROM applications WHERE client_id = 'app_1'`).Scan(&v); err != nil {
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

// TestManageWaitsForTheLock: a management transaction waits for another
// one's advisory lock, including one another replica holds by hand; given
// a deadline, it gives up with authz.ErrUnavailable.
func TestManageWaitsForTheLock(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	s := open(t, dsn)
	conn := inspect(t, dsn)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, manageLock); err != nil {
		t.Fatal(err)
	}
	at := authz.StoreTime(time.Now())
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := s.CreateApplication(short, authz.Application{ClientID: "app_1", CreatedAt: at, UpdatedAt: at}, nil, nil)
	if !errors.Is(err, authz.ErrUnavailable) {
		t.Errorf("CreateApplication while another holds the lock: %v, want one wrapping %q", err, authz.ErrUnavailable)
	}

	done := make(chan error, 1)
	go func() {
		done <- s.CreateApplication(ctx, authz.Application{ClientID: "app_2", CreatedAt: at, UpdatedAt: at}, nil, nil)
	}()
	select {
	case err := <-done:
		t.Fatalf("CreateApplication did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("CreateApplication after the lock's release: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := inspect(t, dsn).Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES (9999)`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), dsn, nil); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database from a newer version")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open: %v, want a newer-schema error", err)
	}
}

func TestOpenFailsWithoutServer(t *testing.T) {
	// A port nothing listens on: 1 is reserved (tcpmux) and unused here.
	_, err := Open(t.Context(), "postgres://m2mauth:hunter2-password@127.0.0.1:1/m2mauth?sslmode=disable&connect_timeout=2", nil)
	if err == nil {
		t.Fatal("Open succeeded without a server")
	}
	if strings.Contains(err.Error(), "hunter2-password") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestPoolSettings(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	for _, tc := range []struct {
		name        string
		params      string
		maxConns    int32
		connTimeout time.Duration
	}{
		{"defaults", "", defaultMaxConns, defaultConnectTimeout},
		{"from the DSN", "pool_max_conns=7&connect_timeout=3", 7, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := dsn
			if tc.params != "" {
				u += "&" + tc.params
			}
			s := open(t, u)
			cfg := s.pool.Config()
			if cfg.MaxConns != tc.maxConns || cfg.ConnConfig.ConnectTimeout != tc.connTimeout {
				t.Errorf("MaxConns, ConnectTimeout = %d, %v; want %d, %v",
					cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, tc.maxConns, tc.connTimeout)
			}
			if cfg.HealthCheckPeriod != defaultHealthCheckPeriod {
				t.Errorf("HealthCheckPeriod = %v", cfg.HealthCheckPeriod)
			}
		})
	}
}

func TestInvalidKeyState(t *testing.T) {
	s := newStore(t)
	err := s.CreateKey(t.Context(), authz.SigningKey{KID: "kid-1", Alg: authz.ES256, State: "lost", CreatedAt: time.Now()})
	if !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("CreateKey with state lost: %v, want one wrapping %q", err, authz.ErrInvalid)
	}
}

// Orderings and cursors compare bytes, as SQLite's do, whatever the
// database's collation: "B" sorts before "a".
func TestOrderIsBytewise(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, id := range []string{"app_a", "app_B", "app__", "app_Z"} {
		if err := s.CreateApplication(ctx, authz.Application{ClientID: id, CreatedAt: at, UpdatedAt: at}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor := ""
	for {
		list, next, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			got = append(got, a.ClientID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if want := "[app_B app_Z app__ app_a]"; fmt.Sprint(got) != want {
		t.Errorf("order = %v, want %s", got, want)
	}
}

// TestConcurrentRotationAcrossStores: replicas (separate pools) rotating at
// once: exactly one compare-and-set wins.
func TestConcurrentRotationAcrossStores(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := t.Context()
	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	first := open(t, dsn)
	active := authz.SigningKey{KID: "kid-a", Alg: authz.ES256, State: authz.KeyActive, Private: []byte("a"), CreatedAt: at, ActivatedAt: at}
	next := authz.SigningKey{KID: "kid-b", Alg: authz.ES256, State: authz.KeyNext, Private: []byte("b"), CreatedAt: at}
	for _, k := range []authz.SigningKey{active, next} {
		if err := first.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const n = 6
	stores := []*Store{first}
	for len(stores) < n {
		stores = append(stores, open(t, dsn))
	}
	errs := make(chan error, n)
	start := make(chan struct{})
	for i, s := range stores {
		go func() {
			<-start
			a, b := active, next
			a.State, a.RetiredAt, a.RemoveAfter = authz.KeyRetired, at.Add(time.Hour), at.Add(2*time.Hour)
			b.State, b.ActivatedAt = authz.KeyActive, at.Add(time.Duration(i)*time.Second)
			errs <- s.UpdateKeys(ctx, map[string]authz.KeyState{a.KID: authz.KeyActive, b.KID: authz.KeyNext},
				[]authz.SigningKey{b, a}) // not in kid order
		}()
	}
	close(start)
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, authz.ErrConflict):
			t.Errorf("UpdateKeys: %v, want nil or a conflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d rotations won, want 1", won)
	}
}

func BenchmarkClient(b *testing.B) {
	storetest.BenchClient(b, newStore(b))
}

func BenchmarkClientParallel(b *testing.B) {
	storetest.BenchClientParallel(b, newStore(b))
}

func TestMalformedDSNHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://m2mauth:hunter2-password@127.0.0.1:notaport/m2mauth",
		"host=127.0.0.1 password=hunter2-password pool_max_conns=none",
	} {
		_, err := Open(t.Context(), dsn, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "hunter2-password") {
			t.Errorf("the error shows the password: %v", err)
		}
		t.Log(err)
	}
}

// TestUseJTIAcrossReplicas: two stores on one database, as two replicas
// have, agree on every use of a key: of concurrent uses on both exactly one
// is fresh, and a key used on one is refused on the other.
func TestUseJTIAcrossReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	storetest.UseJTIOnce(t, []authz.Replay{a, b}, "client-1:jti-race")
	ctx := t.Context()
	fresh, err := a.UseJTI(ctx, "client-1:jti-1", time.Now().Add(time.Minute))
	if err != nil || !fresh {
		t.Fatalf("first use on replica a = %v, %v; want fresh", fresh, err)
	}
	fresh, err = b.UseJTI(ctx, "client-1:jti-1", time.Now().Add(time.Minute))
	if err != nil || fresh {
		t.Fatalf("replay on replica b = %v, %v; want refused", fresh, err)
	}
}
