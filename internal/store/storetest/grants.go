package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testGrants(t *testing.T, open func(t *testing.T) authz.Store) {
	// setup creates three APIs and two applications without grants.
	setup := func(t *testing.T) (authz.Store, []authz.API, []authz.Application) {
		s, ctx := open(t), t.Context()
		apis := []authz.API{newAPI(1), newAPI(2), newAPI(3)}
		apps := []authz.Application{newApp(1), newApp(2)}
		for _, a := range apis {
			noErr(t, s.CreateAPI(ctx, a))
		}
		for _, a := range apps {
			noErr(t, s.CreateApplication(ctx, a, nil, nil))
		}
		return s, apis, apps
	}

	t.Run("create and get round-trip with the audience", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		withScopes := newGrant(apps[0].ClientID, apis[0], 1, "write:things", "read:things")
		withScopes.UpdatedAt = at(time.Hour)
		noScopes := newGrant(apps[0].ClientID, apis[1], 2)
		for _, g := range []authz.Grant{withScopes, noScopes} {
			noErr(t, s.CreateGrant(ctx, g))
			got, err := s.GetGrant(ctx, g.ClientID, g.ID)
			noErr(t, err)
			same(t, "GetGrant", got, g)
		}
	})

	t.Run("create ignores the audience given", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		g := newGrant(apps[0].ClientID, apis[0], 1)
		g.Audience = "https://wrong.example.com"
		noErr(t, s.CreateGrant(ctx, g))
		got, err := s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
		if got.Audience != apis[0].Identifier {
			t.Errorf("Audience = %q, want %q", got.Audience, apis[0].Identifier)
		}
	})

	t.Run("create for a missing application", func(t *testing.T) {
		s, apis, _ := setup(t)
		wantErr(t, s.CreateGrant(t.Context(), newGrant("app_missing", apis[0], 1)), authz.ErrNotFound)
	})

	t.Run("create for a missing API", func(t *testing.T) {
		s, _, apps := setup(t)
		ctx := t.Context()
		g := newGrant(apps[0].ClientID, newAPI(9), 1)
		wantErr(t, s.CreateGrant(ctx, g), authz.ErrNotFound)
		grants, err := s.ListGrants(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "grants", grants, []authz.Grant(nil))
	})

	t.Run("second grant for one API", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		first := newGrant(apps[0].ClientID, apis[0], 1, "read:things")
		noErr(t, s.CreateGrant(ctx, first))
		wantErr(t, s.CreateGrant(ctx, newGrant(apps[0].ClientID, apis[0], 2, "write:things")), authz.ErrConflict)
		grants, err := s.ListGrants(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "grants", grants, []authz.Grant{first})
		// Another application may have a grant for the same API.
		noErr(t, s.CreateGrant(ctx, newGrant(apps[1].ClientID, apis[0], 1)))
	})

	t.Run("grant id taken", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		first := newGrant(apps[0].ClientID, apis[0], 1)
		noErr(t, s.CreateGrant(ctx, first))
		g := newGrant(apps[1].ClientID, apis[1], 2)
		g.ID = first.ID
		wantErr(t, s.CreateGrant(ctx, g), authz.ErrConflict)
	})

	t.Run("concurrent grants for one API: one wins", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		errs := parallel(20, func(i int) error {
			return s.CreateGrant(ctx, newGrant(apps[0].ClientID, apis[0], i))
		})
		created := 0
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, authz.ErrConflict):
				t.Errorf("CreateGrant: %v, want nil or a conflict", err)
			}
		}
		if created != 1 {
			t.Errorf("%d grants created, want 1", created)
		}
		grants, err := s.ListGrants(ctx, apps[0].ClientID)
		noErr(t, err)
		if len(grants) != 1 {
			t.Errorf("%d grants stored, want 1", len(grants))
		}
	})

	t.Run("get a grant of another application", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		g := newGrant(apps[0].ClientID, apis[0], 1)
		noErr(t, s.CreateGrant(ctx, g))
		_, err := s.GetGrant(ctx, apps[1].ClientID, g.ID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetGrant(ctx, apps[0].ClientID, "grant_missing")
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("list in creation order", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		want := []authz.Grant{
			newGrant(apps[0].ClientID, apis[2], 1, "read:things"),
			newGrant(apps[0].ClientID, apis[0], 2),
			newGrant(apps[0].ClientID, apis[1], 3, "write:things"),
		}
		want[2].CreatedAt = want[1].CreatedAt // the ids order these two
		for _, i := range []int{2, 0, 1} {
			noErr(t, s.CreateGrant(ctx, want[i]))
		}
		noErr(t, s.CreateGrant(ctx, newGrant(apps[1].ClientID, apis[0], 1)))
		got, err := s.ListGrants(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "grants", got, want)
	})

	t.Run("list of an application without grants", func(t *testing.T) {
		s, _, apps := setup(t)
		ctx := t.Context()
		for _, clientID := range []string{apps[0].ClientID, "app_missing"} {
			got, err := s.ListGrants(ctx, clientID)
			noErr(t, err)
			same(t, "grants of "+clientID, got, []authz.Grant(nil))
		}
	})

	t.Run("list for an API: every application's, in creation order", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		third := newApp(3)
		noErr(t, s.CreateApplication(ctx, third, nil, nil))
		want := []authz.Grant{
			newGrant(apps[1].ClientID, apis[0], 1, "read:things"),
			newGrant(apps[0].ClientID, apis[0], 2, "write:things", "read:things"),
			newGrant(third.ClientID, apis[0], 3),
		}
		want[1].CreatedAt = want[2].CreatedAt // the ids order these two
		for _, i := range []int{2, 0, 1} {
			noErr(t, s.CreateGrant(ctx, want[i]))
		}
		// Grants for other APIs are not listed.
		noErr(t, s.CreateGrant(ctx, newGrant(apps[0].ClientID, apis[1], 4, "read:things")))
		noErr(t, s.CreateGrant(ctx, newGrant(apps[1].ClientID, apis[2], 5)))
		got, err := s.ListGrantsForAPI(ctx, apis[0].ID)
		noErr(t, err)
		same(t, "grants for "+apis[0].ID, got, want)

		noErr(t, s.DeleteApplication(ctx, third.ClientID))
		got, err = s.ListGrantsForAPI(ctx, apis[0].ID)
		noErr(t, err)
		same(t, "grants after deleting an application", got, want[:2])
	})

	t.Run("list for an API without grants", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		noErr(t, s.CreateGrant(ctx, newGrant(apps[0].ClientID, apis[0], 1)))
		for _, id := range []string{apis[1].ID, "api_missing"} {
			got, err := s.ListGrantsForAPI(ctx, id)
			noErr(t, err)
			same(t, "grants for "+id, got, []authz.Grant(nil))
		}
	})

	t.Run("update replaces scopes and updated time only", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		g := newGrant(apps[0].ClientID, apis[0], 1, "read:things")
		g.UpdatedAt = at(30 * time.Minute)
		noErr(t, s.CreateGrant(ctx, g))
		u := g
		u.Scopes = []string{"write:things", "read:things"}
		u.UpdatedAt = at(time.Hour)
		u.APIID = apis[1].ID
		u.Audience = apis[1].Identifier
		u.CreatedAt = at(2 * time.Hour)
		noErr(t, s.UpdateGrant(ctx, u))
		want := g
		want.Scopes, want.UpdatedAt = u.Scopes, u.UpdatedAt
		got, err := s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
		same(t, "updated grant", got, want)

		want.Scopes, want.UpdatedAt = nil, at(3*time.Hour)
		noErr(t, s.UpdateGrant(ctx, want))
		got, err = s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
		same(t, "grant updated to no scopes", got, want)
	})

	t.Run("update a missing grant", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		g := newGrant(apps[0].ClientID, apis[0], 1, "read:things")
		wantErr(t, s.UpdateGrant(ctx, g), authz.ErrNotFound)
		noErr(t, s.CreateGrant(ctx, g))
		u := g
		u.ClientID = apps[1].ClientID
		u.Scopes = nil
		wantErr(t, s.UpdateGrant(ctx, u), authz.ErrNotFound)
		got, err := s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
		same(t, "grant of the other application", got, g)
	})

	t.Run("delete", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		gone, kept := newGrant(apps[0].ClientID, apis[0], 1), newGrant(apps[0].ClientID, apis[1], 2)
		noErr(t, s.CreateGrant(ctx, gone))
		noErr(t, s.CreateGrant(ctx, kept))
		noErr(t, s.DeleteGrant(ctx, gone.ClientID, gone.ID))
		_, err := s.GetGrant(ctx, gone.ClientID, gone.ID)
		wantErr(t, err, authz.ErrNotFound)
		got, err := s.ListGrants(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "grants left", got, []authz.Grant{kept})
		// The API can be granted again.
		noErr(t, s.CreateGrant(ctx, newGrant(apps[0].ClientID, apis[0], 3)))
	})

	t.Run("delete a missing grant", func(t *testing.T) {
		s, apis, apps := setup(t)
		ctx := t.Context()
		wantErr(t, s.DeleteGrant(ctx, apps[0].ClientID, "grant_missing"), authz.ErrNotFound)
		g := newGrant(apps[0].ClientID, apis[0], 1)
		noErr(t, s.CreateGrant(ctx, g))
		wantErr(t, s.DeleteGrant(ctx, apps[1].ClientID, g.ID), authz.ErrNotFound)
		_, err := s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
	})
}
