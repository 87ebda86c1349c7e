package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testSecrets(t *testing.T, open func(t *testing.T) authz.Store) {
	// setup creates two applications without secrets.
	setup := func(t *testing.T) (authz.Store, []authz.Application) {
		s := open(t)
		apps := []authz.Application{newApp(1), newApp(2)}
		for _, a := range apps {
			noErr(t, s.CreateApplication(t.Context(), a, nil, nil))
		}
		return s, apps
	}

	t.Run("create and list round-trip every field in creation order", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		fresh := newSecret(apps[0].ClientID, 1)
		used := newSecret(apps[0].ClientID, 2)
		used.ExpiresAt = at(90 * 24 * time.Hour)
		used.LastUsedAt = at(3 * time.Minute)
		used.UpdatedAt = at(time.Hour) // unlike any other time of it
		tied := newSecret(apps[0].ClientID, 3)
		tied.CreatedAt = used.CreatedAt // the ids order these two
		for _, sec := range []authz.Secret{tied, fresh, used} {
			noErr(t, s.CreateSecret(ctx, sec))
		}
		noErr(t, s.CreateSecret(ctx, newSecret(apps[1].ClientID, 1)))
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{fresh, used, tied})
	})

	t.Run("create for a missing application", func(t *testing.T) {
		s, _ := setup(t)
		wantErr(t, s.CreateSecret(t.Context(), newSecret("app_missing", 1)), authz.ErrNotFound)
	})

	t.Run("secret id taken", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		first := newSecret(apps[0].ClientID, 1)
		noErr(t, s.CreateSecret(ctx, first))
		dup := newSecret(apps[1].ClientID, 1)
		dup.ID = first.ID
		wantErr(t, s.CreateSecret(ctx, dup), authz.ErrConflict)
		got, err := s.ListSecrets(ctx, apps[1].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret(nil))
	})

	t.Run("list of an application without secrets", func(t *testing.T) {
		s, apps := setup(t)
		for _, clientID := range []string{apps[0].ClientID, "app_missing"} {
			got, err := s.ListSecrets(t.Context(), clientID)
			noErr(t, err)
			same(t, "secrets of "+clientID, got, []authz.Secret(nil))
		}
	})

	t.Run("delete", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		gone, kept := newSecret(apps[0].ClientID, 1), newSecret(apps[0].ClientID, 2)
		noErr(t, s.CreateSecret(ctx, gone))
		noErr(t, s.CreateSecret(ctx, kept))
		noErr(t, s.DeleteSecret(ctx, gone.ClientID, gone.ID))
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets left", got, []authz.Secret{kept})
	})

	t.Run("delete a missing secret", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		wantErr(t, s.DeleteSecret(ctx, apps[0].ClientID, "sec_missing"), authz.ErrNotFound)
		sec := newSecret(apps[0].ClientID, 1)
		noErr(t, s.CreateSecret(ctx, sec))
		wantErr(t, s.DeleteSecret(ctx, apps[1].ClientID, sec.ID), authz.ErrNotFound)
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{sec})
	})

	t.Run("expire secrets keeps earlier expiries and skips the one named", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		expireAt, now := at(24*time.Hour), at(time.Hour)
		except := newSecret(apps[0].ClientID, 1)
		never := newSecret(apps[0].ClientID, 2)
		later := newSecret(apps[0].ClientID, 3)
		later.ExpiresAt = expireAt.Add(time.Hour)
		earlier := newSecret(apps[0].ClientID, 4)
		earlier.ExpiresAt = expireAt.Add(-time.Hour)
		exact := newSecret(apps[0].ClientID, 5)
		exact.ExpiresAt = expireAt
		otherApp := newSecret(apps[1].ClientID, 1)
		for _, sec := range []authz.Secret{except, never, later, earlier, exact, otherApp} {
			noErr(t, s.CreateSecret(ctx, sec))
		}

		noErr(t, s.ExpireSecrets(ctx, apps[0].ClientID, except.ID, expireAt, now))

		// Only the secrets whose expiry changed count as updated.
		never.ExpiresAt, never.UpdatedAt = expireAt, now
		later.ExpiresAt, later.UpdatedAt = expireAt, now
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{except, never, later, earlier, exact})
		got, err = s.ListSecrets(ctx, apps[1].ClientID)
		noErr(t, err)
		same(t, "secrets of the other application", got, []authz.Secret{otherApp})
	})

	t.Run("expire every secret", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		a, b := newSecret(apps[0].ClientID, 1), newSecret(apps[0].ClientID, 2)
		noErr(t, s.CreateSecret(ctx, a))
		noErr(t, s.CreateSecret(ctx, b))
		noErr(t, s.ExpireSecrets(ctx, apps[0].ClientID, "", at(time.Hour), at(30*time.Minute)))
		a.ExpiresAt, b.ExpiresAt = at(time.Hour), at(time.Hour)
		a.UpdatedAt, b.UpdatedAt = at(30*time.Minute), at(30*time.Minute)
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{a, b})
	})

	t.Run("expire secrets of an application without secrets", func(t *testing.T) {
		s, apps := setup(t)
		noErr(t, s.ExpireSecrets(t.Context(), apps[0].ClientID, "", at(time.Hour), at(0)))
	})

	t.Run("expire secrets of a missing application", func(t *testing.T) {
		s, _ := setup(t)
		wantErr(t, s.ExpireSecrets(t.Context(), "app_missing", "", at(time.Hour), at(0)), authz.ErrNotFound)
	})

	t.Run("rotate a secret adds it and expires the others in one go", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		expireAt := at(24 * time.Hour)
		old := newSecret(apps[0].ClientID, 1)
		earlier := newSecret(apps[0].ClientID, 2)
		earlier.ExpiresAt = expireAt.Add(-time.Hour)
		otherApp := newSecret(apps[1].ClientID, 1)
		for _, sec := range []authz.Secret{old, earlier, otherApp} {
			noErr(t, s.CreateSecret(ctx, sec))
		}
		fresh := newSecret(apps[0].ClientID, 3)
		noErr(t, s.RotateSecret(ctx, fresh, expireAt))
		// The rotation happened when fresh was created; earlier's expiry
		// did not change, so neither did its UpdatedAt.
		old.ExpiresAt, old.UpdatedAt = expireAt, fresh.CreatedAt
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{old, earlier, fresh})
		got, err = s.ListSecrets(ctx, apps[1].ClientID)
		noErr(t, err)
		same(t, "secrets of the other application", got, []authz.Secret{otherApp})
		c, err := s.Client(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "Client's secrets after the rotation", sortedBy(c.Secrets, func(s authz.Secret) string { return s.ID }),
			[]authz.Secret{old, earlier, fresh})
	})

	t.Run("a failed rotation changes nothing", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		old := newSecret(apps[0].ClientID, 1)
		noErr(t, s.CreateSecret(ctx, old))
		dup := newSecret(apps[0].ClientID, 2)
		dup.ID = old.ID
		wantErr(t, s.RotateSecret(ctx, dup, at(time.Hour)), authz.ErrConflict)
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{old})
		wantErr(t, s.RotateSecret(ctx, newSecret("app_missing", 1), at(time.Hour)), authz.ErrNotFound)
	})

	// A use is not a change: UpdatedAt stays CreatedAt throughout.
	t.Run("touch secrets only raises the last use", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		unused := newSecret(apps[0].ClientID, 1)
		raised := newSecret(apps[0].ClientID, 2)
		raised.LastUsedAt = at(time.Hour)
		kept := newSecret(apps[0].ClientID, 3)
		kept.LastUsedAt = at(time.Hour)
		untouched := newSecret(apps[1].ClientID, 1)
		untouched.LastUsedAt = at(time.Hour)
		deleted := newSecret(apps[1].ClientID, 2)
		for _, sec := range []authz.Secret{unused, raised, kept, untouched, deleted} {
			noErr(t, s.CreateSecret(ctx, sec))
		}
		noErr(t, s.DeleteSecret(ctx, deleted.ClientID, deleted.ID))

		noErr(t, s.TouchSecrets(ctx, map[string]time.Time{
			unused.ID:   at(10 * time.Minute),
			raised.ID:   at(2 * time.Hour),
			kept.ID:     at(30 * time.Minute),
			deleted.ID:  at(time.Hour),
			"sec_never": at(time.Hour),
		}))

		unused.LastUsedAt = at(10 * time.Minute)
		raised.LastUsedAt = at(2 * time.Hour)
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "secrets", got, []authz.Secret{unused, raised, kept})
		got, err = s.ListSecrets(ctx, apps[1].ClientID)
		noErr(t, err)
		same(t, "secrets of the other application", got, []authz.Secret{untouched})

		noErr(t, s.TouchSecrets(ctx, nil))
		noErr(t, s.TouchSecrets(ctx, map[string]time.Time{}))
	})

	// A flush touches a secret per active client: hundreds at once, which a
	// store may write in several statements.
	t.Run("touch many secrets in one call", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		used := map[string]time.Time{}
		var want []authz.Secret
		for i := range 345 {
			sec := newSecret(apps[0].ClientID, 10+i)
			if i%3 == 0 {
				sec.LastUsedAt = at(3 * time.Hour) // later than its use below: kept
			}
			noErr(t, s.CreateSecret(ctx, sec))
			used[sec.ID] = at(time.Duration(i) * time.Second)
			if i%3 != 0 {
				sec.LastUsedAt = at(time.Duration(i) * time.Second)
			}
			want = append(want, sec)
		}
		used["sec_never"] = at(time.Hour)
		noErr(t, s.TouchSecrets(ctx, used))
		got, err := s.ListSecrets(ctx, apps[0].ClientID)
		noErr(t, err)
		byID := func(a, b authz.Secret) int { return strings.Compare(a.ID, b.ID) }
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		same(t, "secrets", got, want)
	})
}
