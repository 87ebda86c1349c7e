package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// deliveryBound is how soon a change must reach another replica.
const deliveryBound = time.Second

// next returns the next change on ch other than ChangeSynced (which the
// version check sends every feedPoll), failing t if none comes within d.
func next(t *testing.T, ch <-chan authz.Change, d time.Duration) authz.Change {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("the change feed closed")
			}
			if c.Kind == authz.ChangeSynced {
				continue
			}
			return c
		case <-timeout:
			t.Fatalf("no change within %v", d)
			return authz.Change{}
		}
	}
}

// listening starts s's change feed and waits until it listens: its first
// change, ChangeAll.
func listening(t *testing.T, s *Store) <-chan authz.Change {
	t.Helper()
	ch := s.Changes(t.Context())
	if c := next(t, ch, 5*time.Second); c.Kind != authz.ChangeAll {
		t.Fatalf("first change = %+v, want ChangeAll", c)
	}
	return ch
}

func TestChangesReachOtherReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	writer, reader := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	feed := listening(t, reader)
	own := listening(t, writer)

	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	api := authz.API{ID: "api_1", Identifier: "https://api.example.com", Scopes: []authz.Scope{{Value: "read"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: at, UpdatedAt: at}
	app := authz.Application{ClientID: "app_1", Name: "A", CreatedAt: at, UpdatedAt: at}
	sec := authz.Secret{ID: "sec_1", ClientID: app.ClientID, Hash: []byte("h"), CreatedAt: at, UpdatedAt: at}
	grant := authz.Grant{ID: "grant_1", ClientID: app.ClientID, APIID: api.ID, Scopes: []string{"read"}, CreatedAt: at, UpdatedAt: at}
	key := authz.SigningKey{KID: "kid-1", Alg: authz.ES256, State: authz.KeyNext, Private: []byte("k"), CreatedAt: at}
	client := func(id string) authz.Change { return authz.Change{Kind: authz.ChangeClient, Key: id} }
	all := authz.Change{Kind: authz.ChangeAll}
	keys := authz.Change{Kind: authz.ChangeKeys}
	settings := authz.Change{Kind: authz.ChangeSettings}
	none := authz.Change{} // the write notifies nothing

	marker := 0
	for _, tc := range []struct {
		name  string
		write func() error
		want  authz.Change
	}{
		{"create API", func() error { return writer.CreateAPI(ctx, api) }, all},
		{"update API", func() error {
			_, err := writer.UpdateAPI(ctx, api.ID, authz.APIPatch{Name: &api.Name, UpdatedAt: at})
			return err
		}, all},
		{"create application", func() error { return writer.CreateApplication(ctx, app, nil, nil) }, client(app.ClientID)},
		{"update application", func() error {
			_, err := writer.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{TokensNotBefore: at, UpdatedAt: at})
			return err
		}, client(app.ClientID)},
		{"create secret", func() error { return writer.CreateSecret(ctx, sec) }, client(app.ClientID)},
		{"expire secrets", func() error { return writer.ExpireSecrets(ctx, app.ClientID, "", at, at) }, client(app.ClientID)},
		{"rotate secret", func() error {
			rotated := sec
			rotated.ID = "sec_2"
			return writer.RotateSecret(ctx, rotated, at)
		}, client(app.ClientID)},
		{"touch secrets", func() error { return writer.TouchSecrets(ctx, map[string]time.Time{sec.ID: at}) }, none},
		{"delete secret", func() error { return writer.DeleteSecret(ctx, app.ClientID, sec.ID) }, client(app.ClientID)},
		{"create grant", func() error { return writer.CreateGrant(ctx, grant) }, client(app.ClientID)},
		{"update grant", func() error { return writer.UpdateGrant(ctx, grant) }, client(app.ClientID)},
		{"delete grant", func() error { return writer.DeleteGrant(ctx, app.ClientID, grant.ID) }, client(app.ClientID)},
		{"failed create", func() error {
			if writer.CreateApplication(ctx, app, nil, nil) == nil {
				t.Error("creating a taken client_id succeeded")
			}
			return nil
		}, none},
		{"update of nothing", func() error {
			if writer.UpdateGrant(ctx, grant) == nil {
				t.Error("updating a deleted grant succeeded")
			}
			return nil
		}, none},
		{"delete application", func() error { return writer.DeleteApplication(ctx, app.ClientID) }, client(app.ClientID)},
		{"delete API", func() error { return writer.DeleteAPI(ctx, api.ID) }, all},
		{"create key", func() error { return writer.CreateKey(ctx, key) }, keys},
		{"update keys", func() error {
			k := key
			k.State, k.ActivatedAt = authz.KeyActive, at
			return writer.UpdateKeys(ctx, map[string]authz.KeyState{key.KID: authz.KeyNext}, []authz.SigningKey{k})
		}, keys},
		{"update key private", func() error { return writer.UpdateKeyPrivate(ctx, key.KID, []byte("k2")) }, keys},
		{"delete key", func() error { return writer.DeleteKey(ctx, key.KID) }, keys},
		{"revoke token", func() error { return writer.RevokeToken(ctx, "jti-1", at) }, authz.Change{Kind: authz.ChangeRevoked, Key: "jti-1"}},
		{"purge revoked", func() error { _, err := writer.PurgeRevoked(ctx, at.Add(time.Hour)); return err }, none},
		{"init setting", func() error { _, _, err := writer.InitSetting(ctx, "pepper", []byte("p")); return err }, settings},
		{"init setting already set", func() error { _, _, err := writer.InitSetting(ctx, "pepper", []byte("q")); return err }, none},
		{"put setting", func() error { return writer.PutSetting(ctx, "pepper", []byte("r")) }, settings},
		{"append audit", func() error {
			return writer.AppendAudit(ctx, []authz.AuditEvent{{ID: "evt_1", Time: at, Action: "key.rotate"}})
		}, none},
		{"add issuance", func() error {
			return writer.AddIssuance(ctx, []authz.Issuance{{ClientID: "app_1", Audience: "a", Hour: at, Count: 1, LastIssuedAt: at}})
		}, none},
		{"bootstrap", func() error {
			b := authz.Bootstrap{API: api, App: app, Secret: sec, Grant: grant}
			b.API.Identifier = authz.ManagementAudience
			_, err := writer.Bootstrap(ctx, b)
			return err
		}, all},
		{"bootstrap again", func() error {
			b := authz.Bootstrap{API: api, App: app, Secret: sec, Grant: grant}
			b.API.Identifier = authz.ManagementAudience
			_, err := writer.Bootstrap(ctx, b)
			return err
		}, none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == none {
				// Nothing comes before the change of a later write.
				marker++
				jti := fmt.Sprintf("marker-%d", marker)
				if err := writer.RevokeToken(ctx, jti, at); err != nil {
					t.Fatal(err)
				}
				want = authz.Change{Kind: authz.ChangeRevoked, Key: jti}
			}
			if got := next(t, feed, deliveryBound); got != want {
				t.Errorf("another replica's feed: %+v, want %+v", got, want)
			}
			if got := next(t, own, deliveryBound); got != want {
				t.Errorf("the writer's own feed: %+v, want %+v", got, want)
			}
		})
	}
}

// TestManageNotifiesOnCommit: a management transaction notifies each
// change it made once, after it commits; one that rolls back notifies
// nothing; one that changed an API notifies ChangeAll alone.
func TestManageNotifiesOnCommit(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	writer, reader := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	feed := listening(t, reader)

	at := authz.StoreTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	api := authz.API{ID: "api_1", Identifier: "https://api.example.com", TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: at, UpdatedAt: at}
	if err := writer.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed, deliveryBound); c.Kind != authz.ChangeAll {
		t.Fatalf("after CreateAPI: %+v", c)
	}
	client := func(id string) authz.Change { return authz.Change{Kind: authz.ChangeClient, Key: id} }
	revoked := func(jti string) authz.Change { return authz.Change{Kind: authz.ChangeRevoked, Key: jti} }
	app := func(id string) authz.Application {
		return authz.Application{ClientID: id, CreatedAt: at, UpdatedAt: at}
	}
	name := "Renamed"

	// Nothing reaches the feed before the commit.
	inside := make(chan authz.Change, 1)
	err := writer.Manage(ctx, func(tx authz.Tx) error {
		for _, id := range []string{"app_1", "app_2"} {
			if err := tx.CreateApplication(ctx, app(id), nil, nil); err != nil {
				return err
			}
		}
		if _, err := tx.UpdateApplication(ctx, "app_1", authz.ApplicationPatch{Name: &name, UpdatedAt: at}); err != nil {
			return err
		}
		if err := tx.RevokeToken(ctx, "jti-1", at); err != nil {
			return err
		}
		// A failed method notifies nothing.
		if _, err := tx.UpdateApplication(ctx, "app_missing", authz.ApplicationPatch{Name: &name, UpdatedAt: at}); !errors.Is(err, authz.ErrNotFound) {
			return fmt.Errorf("updating a missing application: %v", err)
		}
		select {
		case c := <-feed:
			inside <- c
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-inside:
		t.Fatalf("%+v reached the feed before the commit", c)
	default:
	}
	for _, want := range []authz.Change{client("app_1"), client("app_2"), revoked("jti-1")} {
		if got := next(t, feed, deliveryBound); got != want {
			t.Errorf("after the commit: %+v, want %+v", got, want)
		}
	}

	// A rollback notifies nothing: the next change is a later write's.
	stop := errors.New("stop")
	if err := writer.Manage(ctx, func(tx authz.Tx) error {
		if err := tx.CreateApplication(ctx, app("app_3"), nil, nil); err != nil {
			return err
		}
		return stop
	}); err != stop {
		t.Fatalf("Manage = %v, want fn's error", err)
	}
	if err := writer.RevokeToken(ctx, "marker", at); err != nil {
		t.Fatal(err)
	}
	if got := next(t, feed, deliveryBound); got != revoked("marker") {
		t.Errorf("after a rollback: %+v, want the later write's change", got)
	}

	// An API's change stands for every other.
	if err := writer.Manage(ctx, func(tx authz.Tx) error {
		if _, err := tx.UpdateApplication(ctx, "app_2", authz.ApplicationPatch{Name: &name, UpdatedAt: at}); err != nil {
			return err
		}
		_, err := tx.UpdateAPI(ctx, api.ID, authz.APIPatch{Name: &name, UpdatedAt: at})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := writer.RevokeToken(ctx, "marker-2", at); err != nil {
		t.Fatal(err)
	}
	for _, want := range []authz.Change{{Kind: authz.ChangeAll}, revoked("marker-2")} {
		if got := next(t, feed, deliveryBound); got != want {
			t.Errorf("after an API's change: %+v, want %+v", got, want)
		}
	}
}

// findBackend returns the pid of the one connection to dsn's database
// whose application_name is name, waiting for it to appear.
func findBackend(t *testing.T, dsn, name string) int32 {
	t.Helper()
	conn := inspect(t, dsn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pids []int32
		rows, err := conn.Query(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var pid int32
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(pids) == 1 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections named %q, want 1", len(pids), name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminate ends the backend pid, as an administrator or a failover would.
func terminate(t *testing.T, dsn string, pid int32) {
	t.Helper()
	var ok bool
	if err := inspect(t, dsn).QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

func TestChangesAfterLostConnection(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	writer, reader := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	feed := listening(t, reader)

	terminate(t, dsn, findBackend(t, dsn, "m2mauth changes"))
	if c := next(t, feed, 5*time.Second); c.Kind != authz.ChangeAll {
		t.Fatalf("after the connection was lost: %+v, want ChangeAll", c)
	}
	// The feed listens again: later changes arrive.
	if err := writer.RevokeToken(ctx, "jti-after", time.Now()); err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed, deliveryBound); c != (authz.Change{Kind: authz.ChangeRevoked, Key: "jti-after"}) {
		t.Errorf("after reconnecting: %+v, want the revocation", c)
	}
}

func TestChangesEnd(t *testing.T) {
	t.Run("when the context is done", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		ch := s.Changes(ctx)
		next(t, ch, 5*time.Second)
		cancel()
		drained(t, ch)
	})
	t.Run("when the store closes", func(t *testing.T) {
		s, err := Open(t.Context(), pgtest.Shared(t).NewDatabase(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := s.Changes(t.Context())
		next(t, ch, 5*time.Second)
		s.Close()
		drained(t, ch)
	})
}

// drained fails t unless ch is closed within a second.
func drained(t *testing.T, ch <-chan authz.Change) {
	t.Helper()
	timeout := time.After(time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the change feed is still open")
		}
	}
}

func TestTryLead(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	lead := func(s *Store, want bool) func() {
		t.Helper()
		release, ok, err := s.TryLead(ctx, "rotation")
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Fatalf("TryLead = %v, want %v", ok, want)
		}
		return release
	}

	releaseA := lead(a, true)
	lead(b, false)
	lead(a, true) // still the holder
	lead(b, false)
	if _, ok, err := b.TryLead(ctx, "purge"); err != nil || !ok {
		t.Fatalf("another name: %v, %v; want it free", ok, err)
	}

	releaseA()
	releaseA() // twice is harmless
	lead(b, true)
	lead(a, false)

	// The connection a replica keeps between tries dies: the next try
	// takes a new one instead of failing.
	var idle int32
	if err := inspect(t, dsn).QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'm2mauth lease'
		  AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`).Scan(&idle); err != nil {
		t.Fatal(err)
	}
	terminate(t, dsn, idle)
	lead(a, false)

	// The holder's connection dies: the lease passes on.
	terminate(t, dsn, holder(t, dsn, "rotation"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := a.TryLead(ctx, "rotation")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not pass on after its holder's connection died")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lead(b, false) // the old holder learns it lost the lease
}

// holder returns the pid of the connection holding the advisory lock of
// lease name in dsn's database.
func holder(t *testing.T, dsn, name string) int32 {
	t.Helper()
	var pid int32
	err := inspect(t, dsn).QueryRow(t.Context(), `SELECT l.pid FROM pg_locks l
		JOIN pg_database d ON d.oid = l.database AND d.datname = current_database()
		WHERE l.locktype = 'advisory' AND l.granted
		  AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint`, name).Scan(&pid)
	if err != nil {
		t.Fatalf("finding the holder of %q: %v", name, err)
	}
	return pid
}

// TestFeedAndPoolSurviveRestart stops PostgreSQL under a listening feed
// and an open pool, and starts it again: reads work again, the feed says
// ChangeAll, and later changes arrive.
func TestFeedAndPoolSurviveRestart(t *testing.T) {
	pg := pgtest.Start(t)
	pg.SkipUnlessControllable(t)
	dsn := pg.NewDatabase(t)
	writer, reader := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	at := authz.StoreTime(time.Now())
	app := authz.Application{ClientID: "app_1", CreatedAt: at, UpdatedAt: at}
	if err := writer.CreateApplication(ctx, app, nil, nil); err != nil {
		t.Fatal(err)
	}
	feed := listening(t, reader)
	if _, err := reader.Client(ctx, app.ClientID); err != nil {
		t.Fatal(err)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Client(ctx, app.ClientID); !errors.Is(err, authz.ErrUnavailable) {
		t.Errorf("Client with the server down: %v, want one wrapping %q", err, authz.ErrUnavailable)
	}
	if err := writer.Manage(ctx, func(authz.Tx) error { return nil }); !errors.Is(err, authz.ErrUnavailable) {
		t.Errorf("Manage with the server down: %v, want one wrapping %q", err, authz.ErrUnavailable)
	}
	if err := pg.StartAgain(); err != nil {
		t.Fatal(err)
	}

	if c := next(t, feed, 10*time.Second); c.Kind != authz.ChangeAll {
		t.Fatalf("after the restart: %+v, want ChangeAll", c)
	}
	if _, err := reader.Client(ctx, app.ClientID); err != nil {
		t.Errorf("Client after the restart: %v", err)
	}
	yes := true
	if _, err := writer.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: at}); err != nil {
		t.Fatalf("UpdateApplication after the restart: %v", err)
	}
	if c := next(t, feed, deliveryBound); c != (authz.Change{Kind: authz.ChangeClient, Key: app.ClientID}) {
		t.Errorf("after the restart: %+v, want the application's change", c)
	}
}
