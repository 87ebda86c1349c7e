package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testSettings(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("first init stores the value", func(t *testing.T) {
		s := open(t)
		stored, created, err := s.InitSetting(t.Context(), "pepper", []byte("first"))
		noErr(t, err)
		if !created || string(stored) != "first" {
			t.Errorf("InitSetting = %q, %v; want \"first\", true", stored, created)
		}
	})

	t.Run("later init returns the first value", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, _, err := s.InitSetting(ctx, "pepper", []byte("first"))
		noErr(t, err)
		stored, created, err := s.InitSetting(ctx, "pepper", []byte("second"))
		noErr(t, err)
		if created || string(stored) != "first" {
			t.Errorf("InitSetting = %q, %v; want \"first\", false", stored, created)
		}
	})

	t.Run("names are independent", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, _, err := s.InitSetting(ctx, "pepper", []byte("first"))
		noErr(t, err)
		stored, created, err := s.InitSetting(ctx, "bootstrap", []byte("done"))
		noErr(t, err)
		if !created || string(stored) != "done" {
			t.Errorf("InitSetting = %q, %v; want \"done\", true", stored, created)
		}
	})

	t.Run("binary value round-trips", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		value := []byte{0, 1, 2, 0xff, 0xfe, 0}
		_, _, err := s.InitSetting(ctx, "pepper", value)
		noErr(t, err)
		stored, _, err := s.InitSetting(ctx, "pepper", []byte("other"))
		noErr(t, err)
		if !bytes.Equal(stored, value) {
			t.Errorf("stored = %x, want %x", stored, value)
		}
	})

	t.Run("concurrent init agrees on one value", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const n = 20
		stored := make([][]byte, n)
		created := make([]bool, n)
		errs := parallel(n, func(i int) error {
			var err error
			stored[i], created[i], err = s.InitSetting(ctx, "pepper", fmt.Appendf(nil, "value %d", i))
			return err
		})
		winner := -1
		for i := range n {
			noErr(t, errs[i])
			if created[i] {
				if winner >= 0 {
					t.Fatalf("calls %d and %d both created the setting", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no call created the setting")
		}
		want := fmt.Sprintf("value %d", winner)
		for i := range n {
			if string(stored[i]) != want {
				t.Errorf("call %d got %q, want %q", i, stored[i], want)
			}
		}
	})
}

func testRevocations(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("revoke and list", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "jti-1", at(time.Hour)))
		noErr(t, s.RevokeToken(ctx, "jti-2", at(2*time.Hour)))
		got, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "revoked", got, map[string]time.Time{"jti-1": at(time.Hour), "jti-2": at(2 * time.Hour)})
	})

	t.Run("revoke twice", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "jti-1", at(time.Hour)))
		noErr(t, s.RevokeToken(ctx, "jti-1", at(time.Hour)))
		got, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "revoked", got, map[string]time.Time{"jti-1": at(time.Hour)})
	})

	t.Run("list with nothing revoked", func(t *testing.T) {
		s := open(t)
		got, err := s.ListRevoked(t.Context())
		noErr(t, err)
		if len(got) != 0 {
			t.Errorf("revoked = %v, want none", got)
		}
	})

	t.Run("purge removes what expired at or before now", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		now := at(time.Hour)
		noErr(t, s.RevokeToken(ctx, "long-gone", now.Add(-time.Hour)))
		noErr(t, s.RevokeToken(ctx, "just-gone", now.Add(-time.Microsecond)))
		noErr(t, s.RevokeToken(ctx, "expires-now", now))
		noErr(t, s.RevokeToken(ctx, "still-valid", now.Add(time.Microsecond)))
		n, err := s.PurgeRevoked(ctx, now)
		noErr(t, err)
		if n != 3 {
			t.Errorf("purged %d, want 3", n)
		}
		got, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "revoked", got, map[string]time.Time{"still-valid": now.Add(time.Microsecond)})
		n, err = s.PurgeRevoked(ctx, now)
		noErr(t, err)
		if n != 0 {
			t.Errorf("second purge removed %d, want 0", n)
		}
	})
}

func testBootstrap(t *testing.T, open func(t *testing.T) authz.Store) {
	bootstrap := func(n int) authz.Bootstrap {
		api := newAPI(n)
		api.Identifier = authz.ManagementAudience
		api.Scopes = authz.ManagementScopes
		api.System = true
		app := newApp(n)
		var scopes []string
		for _, sc := range authz.ManagementScopes {
			scopes = append(scopes, sc.Value)
		}
		return authz.Bootstrap{
			API:    api,
			App:    app,
			Secret: newSecret(app.ClientID, 1),
			Grant:  newGrant(app.ClientID, api, 1, scopes...),
		}
	}

	t.Run("creates the API, application, secret and grant", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		b := bootstrap(1)
		created, err := s.Bootstrap(ctx, b)
		noErr(t, err)
		if !created {
			t.Fatal("Bootstrap = false on an empty store")
		}
		c, err := s.Client(ctx, b.App.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{
			Application: b.App,
			Secrets:     []authz.Secret{b.Secret},
			Grants:      []authz.ClientGrant{{Grant: b.Grant, API: &b.API}},
		})
		api, err := s.GetAPIByIdentifier(ctx, authz.ManagementAudience)
		noErr(t, err)
		same(t, "API", api, b.API)
	})

	t.Run("second bootstrap changes nothing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.Bootstrap(ctx, bootstrap(1))
		noErr(t, err)
		b := bootstrap(2)
		created, err := s.Bootstrap(ctx, b)
		noErr(t, err)
		if created {
			t.Error("second Bootstrap = true")
		}
		_, err = s.GetApplication(ctx, b.App.ClientID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetAPI(ctx, b.API.ID)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("skips when an API has the identifier", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		b := bootstrap(1)
		existing := newAPI(9)
		existing.Identifier = b.API.Identifier
		noErr(t, s.CreateAPI(ctx, existing))
		created, err := s.Bootstrap(ctx, b)
		noErr(t, err)
		if created {
			t.Error("Bootstrap = true with the identifier taken")
		}
		_, err = s.GetApplication(ctx, b.App.ClientID)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("concurrent bootstraps: exactly one creates", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const n = 20
		created := make([]bool, n)
		errs := parallel(n, func(i int) error {
			var err error
			created[i], err = s.Bootstrap(ctx, bootstrap(i+1))
			return err
		})
		winner := -1
		for i := range n {
			noErr(t, errs[i])
			if created[i] {
				if winner >= 0 {
					t.Fatalf("calls %d and %d both bootstrapped", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no call bootstrapped")
		}
		apps, _, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "applications", apps, []authz.Application{bootstrap(winner + 1).App})
	})
}
